import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
// The snapshot store's record and lock helpers now live in src/sys/ (atomic.ts, lock.ts, proc.ts);
// these are the behaviours the store relies on. More in test/unit/sys/.
import { writeFileAtomic } from '../../../src/sys/atomic.js';
import { lockHolderAlive as ownerAlive, lockHolderLine as ownerTag, withLock } from '../../../src/sys/lock.js';
import { readJsonIfExists as readJson } from '../../../src/sys/proc.js';
import { isNodeletError } from '../../../src/errors.js';

const dirs: string[] = [];
function tmp(): string {
  const d = `/dev/shm/nodelet-test-${randomBytes(6).toString('hex')}`;
  fs.mkdirSync(d);
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

describe('writeFileAtomic', () => {
  it('writes whole files and leaves no temp files', () => {
    const d = tmp();
    writeFileAtomic(join(d, 'r.json'), JSON.stringify({ a: 1 }));
    writeFileAtomic(join(d, 'r.json'), JSON.stringify({ a: 2 }));
    expect(readJson(join(d, 'r.json'))).toEqual({ a: 2 });
    expect(fs.readdirSync(d)).toEqual(['r.json']);
    expect(readJson(join(d, 'missing.json'))).toBeUndefined();
  });
});

describe('withLock', () => {
  it('serialises callers in one process', async () => {
    const d = tmp();
    const order: string[] = [];
    const job = (n: string) =>
      withLock(join(d, 'x.lock'), async () => {
        order.push(`${n}+`);
        await new Promise((r) => setTimeout(r, 20));
        order.push(`${n}-`);
      });
    await Promise.all([job('a'), job('b'), job('c')]);
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  it('breaks the stale lock of a dead process', async () => {
    const d = tmp();
    const pid = deadPid();
    expect(ownerAlive(`${pid} 1`)).toBe(false);
    fs.writeFileSync(join(d, 'x.lock'), `${pid} 12345`);
    expect(await withLock(join(d, 'x.lock'), async () => 'got it')).toBe('got it');
  });

  it('waits for a live owner and times out with a clear error', async () => {
    const d = tmp();
    expect(ownerAlive(ownerTag())).toBe(true);
    fs.writeFileSync(join(d, 'x.lock'), ownerTag());
    const err = await withLock(join(d, 'x.lock'), async () => 'no', { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(isNodeletError(err, 'ERR_LOCK_TIMEOUT')).toBe(true);
    expect(String((err as Error).message)).toContain(String(process.pid));
  });
});
