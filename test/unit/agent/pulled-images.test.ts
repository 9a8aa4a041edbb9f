import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { credentialHash, mustAttemptPull, PulledImageStore, recordPulled, type PulledRecords, type PullSecretRef } from '../../../src/agent/pulled-images.js';

const ref = (name: string, pw: string, uid = `uid-${name}`): PullSecretRef => ({ namespace: 'ns', name, uid, credentialHash: credentialHash({ username: 'u', password: pw }) });
const ID = 'sha256:' + '1'.repeat(64);
const REPO = 'localhost:5000/pause';

describe('mustAttemptPull (KubeletEnsureSecretPulledImages, NeverVerifyPreloadedImages)', () => {
  it('an image with no record is preloaded: not verified', () => {
    expect(mustAttemptPull({}, ID, REPO, [])).toEqual({ pull: false });
  });
  it('pulled anonymously or with node credentials: every pod may use it', () => {
    const r: PulledRecords = {};
    recordPulled(r, ID, REPO, { nodePodsAccessible: true });
    expect(mustAttemptPull(r, ID, REPO, [])).toEqual({ pull: false });
    // but only under the repository it was pulled as
    expect(mustAttemptPull(r, ID, 'localhost:5000/other', [])).toEqual({ pull: true });
  });
  it('pulled with a secret: a pod without it must pull; the same secret or the same credentials may use it', () => {
    const r: PulledRecords = {};
    expect(recordPulled(r, ID, REPO, { secret: ref('a', 'pw') })).toBe(true);
    expect(recordPulled(r, ID, REPO, { secret: ref('a', 'pw') })).toBe(false);
    expect(mustAttemptPull(r, ID, REPO, [])).toEqual({ pull: true });
    expect(mustAttemptPull(r, ID, REPO, [ref('other', 'nope')])).toEqual({ pull: true });
    expect(mustAttemptPull(r, ID, REPO, [ref('a', 'pw')])).toEqual({ pull: false });
    // the same coordinates with rotated credentials still count (kubelet matches either)
    expect(mustAttemptPull(r, ID, REPO, [ref('a', 'rotated')])).toEqual({ pull: false });
    // another secret holding the same credentials: accepted, and worth recording
    expect(mustAttemptPull(r, ID, REPO, [ref('b', 'pw')])).toEqual({ pull: false, matched: ref('b', 'pw') });
    // a recreated secret (new uid) with other credentials: pull
    expect(mustAttemptPull(r, ID, REPO, [ref('a', 'other', 'uid-new')])).toEqual({ pull: true });
  });
  it('node-wide access absorbs the secrets', () => {
    const r: PulledRecords = {};
    recordPulled(r, ID, REPO, { secret: ref('a', 'pw') });
    recordPulled(r, ID, REPO, { secret: ref('b', 'pw2') });
    expect(r[ID]![REPO]!.secrets!.map((s) => s.name)).toEqual(['a', 'b']);
    recordPulled(r, ID, REPO, { nodePodsAccessible: true });
    expect(r[ID]![REPO]).toEqual({ nodePodsAccessible: true });
    expect(recordPulled(r, ID, REPO, { secret: ref('c', 'x') })).toBe(false);
  });
});

describe('PulledImageStore', () => {
  it('persists the records and reads them back', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pulled-'));
    try {
      const file = path.join(dir, 'sub', 'image-pulls.json');
      const s = new PulledImageStore(file);
      recordPulled(s.records, ID, REPO, { secret: ref('a', 'pw') });
      s.save();
      expect(JSON.parse(readFileSync(file, 'utf8')).records[ID][REPO].secrets[0].name).toBe('a');
      expect(mustAttemptPull(new PulledImageStore(file).records, ID, REPO, [])).toEqual({ pull: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
