// The C side validates everything it reads: malformed plans are refused with stage "plan".
import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_SHIM_BINARY } from '../../../src/runtime/shim/index.js';
import { encodePlan } from '../../../src/runtime/shim/encode.js';
import { decodeRecords, TAGS } from '../../../src/runtime/shim/protocol.js';
import { minimalShimPlan } from '../../helpers/shim-plan.js';

async function feed(mode: 'run', payload: Buffer): Promise<{ code: number | null; records: { tag: number; fields: string[] }[] }> {
  const child = spawn(DEFAULT_SHIM_BINARY, [mode], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  (child.stdio[3] as Writable).on('error', () => {});
  (child.stdio[3] as Writable).end(payload);
  (child.stdio[4] as Readable).on('data', (b: Buffer) => chunks.push(b));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  return { code, records: decodeRecords(Buffer.concat(chunks)).records };
}

function rec(tag: number, payload: Buffer | string): Buffer {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(8);
  h.writeUInt32LE(tag, 0);
  h.writeUInt32LE(p.length, 4);
  return Buffer.concat([h, p]);
}

const valid = encodePlan(minimalShimPlan('/nonexistent-rootfs', '/dev/shm/nodelet-test-wire-never-created'));

describe('C plan validation', () => {
  test.each([
    ['truncated header', Buffer.concat([valid, Buffer.from([1, 0, 0])]), /truncated/],
    ['length past the end', Buffer.concat([valid, rec(TAGS.ENV[0], 'A=b').subarray(0, 9)]), /bad length/],
    ['unknown tag', Buffer.concat([valid, rec(999, 'x')]), /unknown record tag/],
    ['wrong field count', Buffer.concat([valid, rec(TAGS.MOUNT[0], 'a\0b')]), /want 6 fields/],
    ['bad number', Buffer.concat([valid, rec(TAGS.UID[0], '12abc')]), /invalid number/],
    ['negative uid', Buffer.concat([valid, rec(TAGS.UID[0], '-1')]), /invalid number/],
    ['relative cwd', Buffer.concat([valid, rec(TAGS.CWD[0], 'tmp')]), /absolute/],
    ['unknown namespace', Buffer.concat([valid, rec(TAGS.NAMESPACE[0], 'user\0')]), /namespace type/],
    ['missing argv', Buffer.concat([rec(TAGS.VERSION[0], '1'), rec(TAGS.CWD[0], '/')]), /argv is empty/],
    ['wrong version', Buffer.concat([valid, rec(TAGS.VERSION[0], '2')]), /version 2/],
    ['over 1 MiB', Buffer.concat([valid, ...Array.from({ length: 17 }, () => rec(TAGS.ENV[0], 'x'.repeat(65_000)))]), /larger than/],
    ['too many env entries', Buffer.concat([valid, ...Array.from({ length: 1100 }, () => rec(TAGS.ENV[0], 'A=1'))]), /too many env/],
  ])('%s', async (_name, payload, msg) => {
    const { code, records } = await feed('run', payload);
    expect(code).toBe(1);
    const err = records.find((r) => r.tag === TAGS.ST_ERROR[0]);
    expect(err?.fields[0]).toBe('plan');
    expect(err?.fields[2]).toMatch(msg);
    expect(records.some((r) => r.tag === TAGS.ST_SHIM_PID[0])).toBe(false); // refused before forking
  });
  // exec requests are validated by the same parser: see exec.test.ts (a malformed request)
});
