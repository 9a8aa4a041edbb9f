// readTerminationMessage against files: the head of the message file, the tail of the CRI log.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTerminationMessage } from '../../../src/host/termination-message.js';

const dir = mkdtempSync('/dev/shm/nodelet-test-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('termination message', () => {
  const log = join(dir, '0.log');
  const lines = Array.from({ length: 100 }, (_, i) => `2026-01-01T00:00:00.000000000Z stdout F line ${i}`);
  writeFileSync(log, lines.join('\n') + '\n2026-01-01T00:00:01Z stderr P par\n2026-01-01T00:00:01Z stderr F tial\n');
  it('reads the file (max 4096 bytes)', () => {
    const f = join(dir, 'msg');
    writeFileSync(f, 'x'.repeat(5000));
    expect(readTerminationMessage({ messageFile: f, policy: 'File', exitCode: 1, logPath: log })).toHaveLength(4096);
  });
  it('FallbackToLogsOnError: last 80 lines of the log when the file is empty and the container failed', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const m = readTerminationMessage({ messageFile: empty, policy: 'FallbackToLogsOnError', exitCode: 2, logPath: log });
    const got = m.trimEnd().split('\n');
    expect(got).toHaveLength(80);
    expect(got[0]).toBe('line 21');
    expect(got[79]).toBe('partial');
    expect(readTerminationMessage({ messageFile: empty, policy: 'FallbackToLogsOnError', exitCode: 0, logPath: log })).toBe('');
    expect(readTerminationMessage({ messageFile: empty, policy: 'File', exitCode: 2, logPath: log })).toBe('');
  });
});

