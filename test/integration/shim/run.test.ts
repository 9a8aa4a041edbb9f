// The shim runs a container and records what it did: CRI logs, exit code, signal.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFixture, runToExit, streamText, sleep, type Fixture } from './util.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

const CRI = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] /;

describe('shim run', () => {
  test('stdout and stderr become CRI log lines; exit code recorded', async () => {
    const { state, log, plan } = await runToExit(f, { argv: ['sh', '-c', 'echo hi; echo err >&2; exit 3'] });
    expect(state.status).toBe('exited');
    expect(state.exitCode).toBe(3);
    expect(state.signal).toBeUndefined();
    expect(state.oomKilled).toBe(false);
    const lines = log.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(CRI);
    expect(lines.some((l) => / stdout F hi$/.test(l))).toBe(true);
    expect(lines.some((l) => / stderr F err$/.test(l))).toBe(true);
    const exit = JSON.parse(await readFile(join(plan.stateDir, 'exit.json'), 'utf8'));
    expect(exit).toMatchObject({ exitCode: 3, status: 'exited', containerId: plan.containerId });
    expect(Date.parse(state.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(state.startedAt));
    // atomic writes leave no temp files behind
    expect((await readdir(plan.stateDir)).sort()).toEqual(['container.log', 'exit.json', 'state.json']);
  });

  test('a process killed by a signal records the signal (exitCode 128+N)', async () => {
    const plan = f.plan({ argv: ['sleep', '1000'] });
    const s = await f.client.start(plan);
    expect(await f.client.shimAlive(plan.stateDir)).toBe(true);
    expect((await f.client.readState(plan.stateDir))?.status).toBe('running');
    process.kill(s.pid, 'SIGKILL');
    const e = await f.client.waitExit(plan.stateDir);
    expect(e).toMatchObject({ status: 'exited', signal: 'SIGKILL', exitCode: 137, pid: s.pid });
    const raw = JSON.parse(await readFile(join(plan.stateDir, 'exit.json'), 'utf8'));
    expect(raw.signal).toBe('SIGKILL');
    for (let i = 0; i < 100 && (await f.client.shimAlive(plan.stateDir)); i++) await sleep(10);
    expect(await f.client.shimAlive(plan.stateDir)).toBe(false); // the shim exits after recording
  });

  test('SIGTERM to the shim does not kill the container', async () => {
    const plan = f.plan({ argv: ['sleep', '1000'] });
    const s = await f.client.start(plan);
    process.kill(s.shimPid, 'SIGTERM');
    process.kill(s.shimPid, 'SIGHUP');
    await sleep(100);
    expect(await f.client.shimAlive(plan.stateDir)).toBe(true);
    process.kill(s.pid, 'SIGTERM'); // PID 1 ignores SIGTERM without a handler: kill it
    process.kill(s.pid, 'SIGKILL');
    expect((await f.client.waitExit(plan.stateDir)).signal).toBe('SIGKILL');
  });

  test('partial lines: long lines split with P, unterminated tail is P', async () => {
    const { log } = await runToExit(f, {
      argv: ['sh', '-c', 'printf "%20000s\\n" x | tr " " a; printf "tail-no-newline"'],
    });
    const lines = log.trimEnd().split('\n');
    const tags = lines.map((l) => l.split(' ')[2]);
    expect(tags).toEqual(['P', 'F', 'P']);
    expect(lines[0]!.split(' ')[3]).toHaveLength(16384);
    expect(lines[2]).toMatch(/ stdout P tail-no-newline$/);
    expect(streamText(log, 'stdout')).toBe('a'.repeat(19999) + 'x\ntail-no-newline');
  });

  test('log rotation keeps every line across rotated files', async () => {
    const plan = f.plan({
      argv: ['sh', '-c', 'i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); done'],
      logMaxBytes: 2000,
      logMaxFiles: 100,
    });
    await f.client.start(plan);
    await f.client.waitExit(plan.stateDir);
    const files = (await readdir(plan.stateDir)).filter((n) => n.startsWith('container.log'));
    expect(files.length).toBeGreaterThan(5);
    const ordered = files
      .map((n) => ({ n, i: n === 'container.log' ? 0 : Number(n.split('.').pop()) }))
      .sort((a, b) => b.i - a.i);
    let all = '';
    for (const { n } of ordered) {
      const text = await readFile(join(plan.stateDir, n), 'utf8');
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2000);
      all += text;
    }
    expect(streamText(all, 'stdout')).toBe(Array.from({ length: 400 }, (_, i) => `line ${i}\n`).join(''));
  });

  test('rotation drops the oldest file beyond logMaxFiles', async () => {
    const plan = f.plan({
      argv: ['sh', '-c', 'i=0; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); done'],
      logMaxBytes: 1000,
      logMaxFiles: 3,
    });
    await f.client.start(plan);
    await f.client.waitExit(plan.stateDir);
    const files = (await readdir(plan.stateDir)).filter((n) => n.startsWith('container.log')).sort();
    expect(files).toEqual(['container.log', 'container.log.1', 'container.log.2']);
    const last = streamText(await readFile(plan.logPath, 'utf8'), 'stdout');
    expect(last.endsWith('line 399\n')).toBe(true);
  });

  test('tty: output arrives through a pty', async () => {
    const { state, log } = await runToExit(f, { tty: true, argv: ['sh', '-c', 'tty; test -t 1 && echo is-a-tty'] });
    expect(state.exitCode).toBe(0);
    const out = streamText(log, 'stdout');
    expect(out).toContain('is-a-tty');
  });

  test('the shim stays small: RSS measured', async () => {
    const plan = f.plan({ argv: ['sh', '-c', 'while true; do echo tick; sleep 0.05; done'] });
    const s = await f.client.start(plan);
    await sleep(300);
    const status = await readFile(`/proc/${s.shimPid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
    console.log(`shim VmRSS ${rssKb} kB`);
    expect(rssKb).toBeLessThan(1024);
    process.kill(s.pid, 'SIGKILL');
    await f.client.waitExit(plan.stateDir);
  });
});

describe('shim run with stdin', () => {
  test('stdin: true gives the process a pipe the monitor holds, written through the attach socket', async () => {
    const plan = f.plan({ stdin: true, argv: ['sh', '-c', 'read line; echo "got $line"'] });
    const s = await f.client.start(plan);
    const a = await f.client.attach(plan.stateDir, s.pid, { stdin: true });
    a.stdout.resume();
    a.stderr!.resume();
    a.stdin!.write('hello\n');
    expect(await a.exit).toEqual({ exitCode: 0 });
    const e = await f.client.waitExit(plan.stateDir);
    expect(e.exitCode).toBe(0);
    expect(streamText(await readFile(plan.logPath, 'utf8'), 'stdout')).toBe('got hello\n');
  });
});

describe('shim lifecycle', () => {
  test('50 start/exit cycles leave no process, fd or mount behind', async () => {
    const { processesMentioning } = await import('./util.js');
    const fdsBefore = (await readdir('/proc/self/fd')).length;
    for (let i = 0; i < 50; i++) {
      const plan = f.plan({ argv: ['true'] });
      await f.client.start(plan);
      expect((await f.client.waitExit(plan.stateDir)).exitCode).toBe(0);
    }
    await sleep(50);
    expect((await readdir('/proc/self/fd')).length).toBeLessThanOrEqual(fdsBefore + 2);
    expect(await processesMentioning(f.dir)).toEqual([]);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(f.dir);
  });

  test('waitExit rejects ERR_SHIM_LOST when the shim dies without recording an exit', async () => {
    const plan = f.plan({ argv: ['sleep', '1000'] });
    const s = await f.client.start(plan);
    process.kill(s.shimPid, 'SIGKILL');
    await expect(f.client.waitExit(plan.stateDir)).rejects.toMatchObject({ code: 'ERR_SHIM_LOST' });
    expect(await f.client.shimAlive(plan.stateDir)).toBe(false);
    process.kill(s.pid, 'SIGKILL');
  });

  test('waitExit honours an AbortSignal', async () => {
    const plan = f.plan({ argv: ['sleep', '1000'] });
    const s = await f.client.start(plan);
    const ac = new AbortController();
    const p = f.client.waitExit(plan.stateDir, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ERR_CANCELED' });
    process.kill(s.pid, 'SIGKILL');
    await f.client.waitExit(plan.stateDir);
  });
});

describe('shim edge cases', () => {
  test('a line of exactly 16 KiB is one F line; 16 KiB + 1 is P then F', async () => {
    const { log } = await runToExit(f, { argv: ['sh', '-c', 'head -c 16384 /dev/zero | tr "\\0" a; echo; head -c 16385 /dev/zero | tr "\\0" b; echo'] });
    const tags = log.trimEnd().split('\n').map((l) => l.split(' ')[2] + ':' + l.split(' ')[3]!.length);
    expect(tags).toEqual(['F:16384', 'P:16384', 'F:1']);
  });

  test('starting over a state dir whose shim is still running is refused', async () => {
    const plan = f.plan({ argv: ['sleep', '1000'] });
    const s = await f.client.start(plan);
    await expect(f.client.start(plan)).rejects.toMatchObject({ code: 'ERR_CONTAINER_RUNNING' });
    process.kill(s.pid, 'SIGKILL');
    await f.client.waitExit(plan.stateDir);
  });
});
