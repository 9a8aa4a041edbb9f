// src/sys/proc.ts: pidAlive, /proc/<pid>/stat start time, processRunning, readJsonIfExists, sleep.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseProcStat, pidAlive, procStat, procStatAsync, processRunning, processStartTime, readJsonIfExists, sleep, waitAtMost } from '../../../src/sys/proc.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tmp(): string {
  const d = `/dev/shm/nodelet-test-proc-${randomBytes(6).toString('hex')}`;
  fs.mkdirSync(d);
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
}

function firstLine(c: ChildProcess): Promise<string> {
  return new Promise((r) => createInterface({ input: c.stdout! }).once('line', r));
}

describe('pidAlive', () => {
  it('is kill(pid, 0): true for live pids (EPERM too), false for dead or invalid ones', () => {
    expect(pidAlive(process.pid)).toBe(true);
    expect(pidAlive(1)).toBe(true);
    expect(pidAlive(deadPid())).toBe(false);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(pidAlive(bad)).toBe(false);
  });
});

describe('/proc/<pid>/stat', () => {
  it('parses past a command name holding spaces and parentheses', () => {
    const fields = ['S', '1', '7', '7', '0', '-1', '4194560', '0', '0', '0', '0', '0', '0', '0', '0', '20', '0', '1', '0', '424242', '1000'];
    const f = parseProcStat(`77 (we (ird) ) name) ${fields.join(' ')}\n`);
    expect(f[0]).toBe('S');
    expect(f[19]).toBe('424242');
  });

  it('processStartTime is field 22 of the real process, stable, later for a later process', async () => {
    const mine = processStartTime(process.pid)!;
    expect(mine).toMatch(/^\d+$/);
    expect(processStartTime(process.pid)).toBe(mine);
    // a child whose command name has ") (" in it: the parser must not be fooled
    const d = tmp();
    const bin = join(d, 'x) y (z');
    fs.copyFileSync('/bin/sleep', bin);
    fs.chmodSync(bin, 0o755);
    const c = spawn(bin, ['30'], { stdio: 'ignore' });
    children.push(c);
    await new Promise((r) => c.once('spawn', r));
    let st: string[] | undefined;
    for (let i = 0; i < 100 && !(st = procStat(c.pid!))?.[0]?.match(/[SR]/); i++) await sleep(10);
    expect(st![0]).toMatch(/^[SR]$/);
    expect(Number(st![1])).toBe(process.pid); // ppid
    const start = processStartTime(c.pid!)!;
    expect(BigInt(start) >= BigInt(mine)).toBe(true);
    expect((await procStatAsync(c.pid!))?.[19]).toBe(start);
    expect(processStartTime(deadPid())).toBeUndefined();
    expect(await procStatAsync(deadPid())).toBeUndefined();
  });

  it('processRunning: false for a zombie (pidAlive says true) and for a pid with another start time', async () => {
    // A child that exits only once its parent has become a `sleep` that never waits: a zombie until afterEach kills
    // the sleep. (If the child exited before the exec, dash could reap it first.) The child waits on a line from fd 3.
    const c = spawn('sh', ['-c', 'exec 3<&0; { read x <&3; } & echo $!; exec sleep 300'], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.push(c);
    const zombie = Number(await firstLine(c));
    for (let i = 0; i < 500 && fs.readFileSync(`/proc/${c.pid}/comm`, 'utf8') !== 'sleep\n'; i++) await sleep(10);
    c.stdin!.write('go\n');
    for (let i = 0; i < 500 && procStat(zombie)?.[0] !== 'Z'; i++) await sleep(10);
    expect(procStat(zombie)?.[0]).toBe('Z');
    expect(pidAlive(zombie)).toBe(true);
    expect(processRunning(zombie)).toBe(false);
    const start = processStartTime(process.pid)!;
    expect(processRunning(process.pid)).toBe(true);
    expect(processRunning(process.pid, start)).toBe(true);
    expect(processRunning(process.pid, String(BigInt(start) + 1n))).toBe(false);
    expect(processRunning(deadPid())).toBe(false);
  });
});

describe('readJsonIfExists', () => {
  it('undefined when absent, the value when valid, throws on invalid unless ignoreInvalid', () => {
    const d = tmp();
    expect(readJsonIfExists(join(d, 'missing.json'))).toBeUndefined();
    fs.writeFileSync(join(d, 'file'), 'x');
    expect(readJsonIfExists(join(d, 'file', 'below.json'))).toBeUndefined(); // ENOTDIR
    fs.writeFileSync(join(d, 'ok.json'), '{"a":[1,2]}');
    expect(readJsonIfExists<{ a: number[] }>(join(d, 'ok.json'))).toEqual({ a: [1, 2] });
    fs.writeFileSync(join(d, 'bad.json'), '{"a":');
    expect(() => readJsonIfExists(join(d, 'bad.json'))).toThrow(SyntaxError);
    expect(readJsonIfExists(join(d, 'bad.json'), { ignoreInvalid: true })).toBeUndefined();
    expect(() => readJsonIfExists(d)).toThrow(/EISDIR/);
    expect(readJsonIfExists(d, { ignoreInvalid: true })).toBeUndefined();
  });
});

describe('sleep', () => {
  it('waits, and rejects with the abort reason as soon as the signal aborts', async () => {
    let t = Date.now();
    await sleep(40);
    expect(Date.now() - t).toBeGreaterThanOrEqual(35);
    const ac = new AbortController();
    t = Date.now();
    setTimeout(() => ac.abort(new Error('cancelled')), 20);
    await expect(sleep(10_000, ac.signal)).rejects.toThrow('cancelled');
    expect(Date.now() - t).toBeLessThan(2000);
    await expect(sleep(10, ac.signal)).rejects.toThrow('cancelled'); // already aborted
  });
});

describe('waitAtMost', () => {
  it('returns when the promise settles or the time is up, whichever is first, and rejects only with the promise', async () => {
    let t0 = Date.now();
    await waitAtMost(new Promise(() => {}), 50);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    t0 = Date.now();
    await waitAtMost(sleep(5), 10_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect(waitAtMost(Promise.reject(new Error('boom')), 1000)).rejects.toThrow('boom');
    await waitAtMost(undefined, 1); // nothing to wait for
  });
});
