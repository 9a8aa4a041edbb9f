import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { criLogText, LOG_TAIL_BYTES, terminationMessage, wantsLogFallback } from '../../../src/pod/termination-message.js';
import { loadManifests } from '../../../src/pod/manifest.js';

describe('termination message (pure)', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `2026-01-01T00:00:00.000000000Z stdout F line ${i}`);
  const log = lines.join('\n') + '\n2026-01-01T00:00:01Z stderr P par\n2026-01-01T00:00:01Z stderr F tial\n';
  it('the message file wins; the log only with FallbackToLogsOnError, an empty file and a failure', () => {
    expect(terminationMessage({ message: 'bye', policy: 'FallbackToLogsOnError', exitCode: 1, logTail: log })).toBe('bye');
    expect(wantsLogFallback('', 'FallbackToLogsOnError', 2)).toBe(true);
    expect(wantsLogFallback('', 'FallbackToLogsOnError', 0)).toBe(false);
    expect(wantsLogFallback('', 'File', 2)).toBe(false);
    expect(terminationMessage({ message: '', policy: 'FallbackToLogsOnError', exitCode: 2 })).toBe('');
    const got = terminationMessage({ message: '', policy: 'FallbackToLogsOnError', exitCode: 2, logTail: log }).trimEnd().split('\n');
    expect(got).toHaveLength(80);
    expect(got[0]).toBe('line 21');
    expect(got[79]).toBe('partial');
  });
  it('keeps at most 2048 bytes; a full tail read drops its cut first line', () => {
    const long = Array.from({ length: 60 }, (_, i) => `t stdout F ${String(i).padStart(2, '0')}${'y'.repeat(60)}`).join('\n') + '\n';
    const m = terminationMessage({ message: '', policy: 'FallbackToLogsOnError', exitCode: 1, logTail: long });
    expect(Buffer.byteLength(m)).toBe(2048);
    expect(m.endsWith('59' + 'y'.repeat(60) + '\n')).toBe(true);
    // lines that are not CRI lines are skipped, so only the first and the last line carry text
    const tail = (first: string, size: number) => first + 'junk\n'.repeat(Math.floor((size - first.length - 17) / 5)).padEnd(size - first.length - 17, '-') + '\nt stdout F last\n';
    const full = tail('t stdout F first\n', LOG_TAIL_BYTES);
    expect(full).toHaveLength(LOG_TAIL_BYTES);
    expect(terminationMessage({ message: '', policy: 'FallbackToLogsOnError', exitCode: 1, logTail: full })).toBe('last\n');
    expect(terminationMessage({ message: '', policy: 'FallbackToLogsOnError', exitCode: 1, logTail: tail('t stdout F first\n', 1000) })).toBe('first\nlast\n');
  });
  it('parses CRI log lines', () => expect(criLogText('t stdout P a\nt stdout F b\nt stderr F c\n')).toBe('ab\nc\n'));
});

describe('valid fixtures', () => {
  it('web.yaml loads with defaults and no warnings', () => {
    const f = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/manifests/valid/web.yaml');
    const r = loadManifests(readFileSync(f, 'utf8'), 'web.yaml');
    expect(r.pods).toHaveLength(1);
    expect(r.warnings).toEqual([]);
    expect(r.pods[0]!.spec.volumes![2]!.secret!.defaultMode).toBe(0o400);
    expect(r.pods[0]!.spec.containers[0]!.imagePullPolicy).toBe('Always');
  });
});
