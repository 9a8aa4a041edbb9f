// Every manifest under test/fixtures/manifests/invalid/ must be rejected by
// loadManifests with an error on the field named in its "# expect:" line.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifests, ManifestError } from '../../../src/pod/manifest.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/manifests/invalid');
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

describe('invalid manifests', () => {
  it('has at least 20 fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
  });
  for (const f of files) {
    it(f, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const m = /^# expect: (.+)$/m.exec(text);
      expect(m, `${f} lacks a "# expect:" line`).toBeTruthy();
      const field = m![1]!.trim();
      let err: unknown;
      try {
        loadManifests(text, f);
      } catch (e) {
        err = e;
      }
      expect(err, `${f} was accepted`).toBeInstanceOf(ManifestError);
      const me = err as ManifestError;
      expect(me.code).toBe('ERR_POD_INVALID');
      const fields = me.errors.map((e) => e.field);
      expect(fields, me.message).toContain(field);
      // rendered one per line like kubectl
      expect(me.message).toContain(`* ${field}: `);
    });
  }
});
