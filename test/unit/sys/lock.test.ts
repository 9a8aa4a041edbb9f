// src/sys/lock.ts: one lock file implementation, one staleness rule (holder pid +
// start time). Real child processes hold, die and race.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { acquireLock, lockHolderAlive, lockHolderLine, parseLockHolder, readLockHolder, tryLock, unlock, withLock } from '../../../src/sys/lock.js';
import { processStartTime } from '../../../src/sys/proc.js';
import { isNodeletError } from '../../../src/errors.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tmp(): string {
  const d = `/dev/shm/nodelet-test-lock-${randomBytes(6).toString('hex')}`;
  fs.mkdirSync(d);
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A pid that is certainly dead: a shell that already exited (and was reaped). */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
}

const CHILD = resolve('test/unit/sys/lock-child.ts');
const VITE_NODE = resolve('node_modules/vite-node/vite-node.mjs');

/** Spawn the lock child; lines() yields its stdout lines. */
function child(args: string[]): { proc: ChildProcess; next: () => Promise<string>; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [VITE_NODE, CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(proc);
  const queue: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const next = () => {
    const q = queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise<string>((res, rej) => {
      waiters.push(res);
      void exited.then((c) => rej(new Error(`lock child exited (${c}) before printing`)));
    });
  };
  return { proc, next, exited };
}

describe('lock file format and the staleness rule', () => {
  it('the holder line is "<pid> <starttime>" of this process', () => {
    const h = parseLockHolder(lockHolderLine());
    expect(h).toEqual({ pid: process.pid, startTime: processStartTime(process.pid) });
    expect(lockHolderAlive(lockHolderLine())).toBe(true);
    for (const bad of ['', '123', '123 ', 'x 1', '0 5', '-1 5', '12 34 56']) expect(parseLockHolder(bad)).toBeUndefined();
  });

  it('a dead pid is stale; a live pid with another start time (a reused pid) is stale; the same start time is not', () => {
    expect(lockHolderAlive(`${deadPid()} 12345`)).toBe(false);
    const start = processStartTime(process.pid)!;
    expect(lockHolderAlive(`${process.pid} ${start}`)).toBe(true);
    expect(lockHolderAlive(`${process.pid} ${BigInt(start) + 1n}`)).toBe(false);
    expect(lockHolderAlive('garbage')).toBe(false);
  });

  it('tryLock creates a complete lock file in one step, refuses a second taker, unlock releases only its own lock', () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    expect(tryLock(f)).toBe(true);
    expect(fs.readFileSync(f, 'utf8')).toBe(lockHolderLine() + '\n');
    expect(tryLock(f)).toBe(false); // held by a live process (this one)
    expect(fs.readdirSync(d)).toEqual(['x.lock']); // no temp files left
    unlock(f);
    expect(fs.existsSync(f)).toBe(false);
    // somebody else's lock is never removed by unlock
    fs.writeFileSync(f, `1 ${processStartTime(1)}\n`);
    unlock(f);
    expect(fs.existsSync(f)).toBe(true);
  });

  it('takes over the lock of a dead holder, and of a reused pid (same pid, other start time)', () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    fs.writeFileSync(f, `${deadPid()} 12345`); // no newline: a foreign file
    expect(tryLock(f)).toBe(true);
    expect(readLockHolder(f)).toEqual({ pid: process.pid, startTime: processStartTime(process.pid) });
    unlock(f);
    // pid 1 is alive, but not the process that wrote this line
    fs.writeFileSync(f, `1 ${BigInt(processStartTime(1)!) + 7n}\n`);
    expect(tryLock(f)).toBe(true);
    unlock(f);
    // the real pid 1 with its real start time holds it
    fs.writeFileSync(f, `1 ${processStartTime(1)}\n`);
    expect(tryLock(f)).toBe(false);
    expect(fs.readFileSync(f, 'utf8')).toBe(`1 ${processStartTime(1)}\n`); // untouched: no claim added to a live lock
    // an unparseable (empty) lock file is stale: this implementation never writes one
    fs.writeFileSync(f, '');
    expect(tryLock(f)).toBe(true);
    unlock(f);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  it('a stale lock being taken over by another live taker (its claim comes first) is left to it', () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    fs.writeFileSync(f, `${deadPid()} 12345\nclaim 1 ${processStartTime(1)}\n`);
    expect(tryLock(f)).toBe(false);
    expect(fs.readFileSync(f, 'utf8')).toContain(`claim ${lockHolderLine()}\n`); // we queued behind it
    // a claimer that died before finishing is skipped: the next live claim (ours) wins
    fs.writeFileSync(f, `${deadPid()} 12345\nclaim ${deadPid()} 999\n`);
    expect(tryLock(f)).toBe(true);
    expect(fs.readFileSync(f, 'utf8')).toBe(lockHolderLine() + '\n');
    unlock(f);
  });
});

describe('locks between processes', () => {
  it('two holders: a child holds it, this process waits, times out with a clear error, then gets it once released', async () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    const c = child(['hold', f]);
    expect(await c.next()).toBe('held');
    expect(readLockHolder(f)?.pid).toBe(c.proc.pid);
    expect(tryLock(f)).toBe(false);
    const err = await withLock(f, () => 'no', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(isNodeletError(err, 'ERR_LOCK_TIMEOUT')).toBe(true);
    expect(String((err as Error).message)).toContain(String(c.proc.pid));
    const got = withLock(f, () => 'mine', { pollMs: 10 });
    c.proc.stdin!.end();
    expect(await c.next()).toBe('released');
    expect(await got).toBe('mine');
    expect(fs.existsSync(f)).toBe(false);
  }, 60_000);

  it('a holder killed with SIGKILL leaves a stale lock that is taken over', async () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    const c = child(['hold', f]);
    expect(await c.next()).toBe('held');
    c.proc.kill('SIGKILL');
    await c.exited;
    expect(fs.existsSync(f)).toBe(true);
    await acquireLock(f, { timeoutMs: 5000 });
    expect(readLockHolder(f)?.pid).toBe(process.pid);
    unlock(f);
  }, 60_000);

  it('concurrent takeover of a stale lock by several processes: exactly one wins each round', async () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    const rounds = 25;
    const racers = [0, 1, 2].map(() => child(['race', f, d, String(rounds)]));
    for (const r of racers) expect(await r.next()).toBe('ready');
    const dead = deadPid();
    for (let r = 0; r < rounds; r++) {
      fs.rmSync(f, { force: true });
      fs.writeFileSync(f, `${dead} 12345\n`); // stale: the holder is dead
      fs.writeFileSync(join(d, `go-${r}`), '');
      const results = await Promise.all(racers.map((c) => c.next()));
      const won = results.filter((l) => l === `${r} won`);
      expect(results.every((l) => l.startsWith(`${r} `))).toBe(true);
      expect(won).toHaveLength(1);
      const holder = readLockHolder(f);
      expect(racers.map((c) => c.proc.pid)).toContain(holder?.pid);
    }
    for (const c of racers) c.proc.stdin!.end();
    await Promise.all(racers.map((c) => c.exited));
  }, 120_000);
});

describe('withLock in one process', () => {
  it('queues callers in call order and removes the lock file', async () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    const order: string[] = [];
    const job = (n: string) =>
      withLock(f, async () => {
        order.push(`${n}+`);
        expect(readLockHolder(f)?.pid).toBe(process.pid);
        await new Promise((r) => setTimeout(r, 10));
        order.push(`${n}-`);
      });
    await Promise.all([job('a'), job('b'), job('c')]);
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  it('releases the lock when fn throws, and honours an abort signal while waiting', async () => {
    const d = tmp();
    const f = join(d, 'x.lock');
    await expect(withLock(f, () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(fs.existsSync(f)).toBe(false);
    fs.writeFileSync(f, `1 ${processStartTime(1)}\n`); // held by a live process
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop waiting')), 50);
    await expect(acquireLock(f, { signal: ac.signal })).rejects.toThrow('stop waiting');
  });
});
