// exec into a running container: output, exit code, identity, timeout leaves nothing behind.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ShimStartError, type ExecRequest, type ShimState } from '../../../src/runtime/shim/index.js';
import { DEFAULT_CAPS } from '../../helpers/shim-plan.js';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isNodeletError } from '../../../src/errors.js';
import { encodeExec } from '../../../src/runtime/shim/encode.js';
import { encodeFrame, encodeRecords, EXEC_SOCKET, FRAMES } from '../../../src/runtime/shim/protocol.js';
import { makeFixture, processesMentioning, sleep, type Fixture } from './util.js';

let f: Fixture;
let c: ShimState;
let stateDir: string;
beforeAll(async () => {
  f = await makeFixture();
  const plan = f.plan({ argv: ['sleep', '1000'], hostname: 'exec-host' });
  stateDir = plan.stateDir;
  c = await f.client.start(plan);
});
afterAll(async () => {
  process.kill(c.pid, 'SIGKILL');
  await f.client.waitExit(stateDir);
  await f.cleanup();
});

const req = (argv: string[], o: Partial<ExecRequest> = {}): ExecRequest => ({
  stateDir,
  pid: c.pid,
  cgroupProcsFiles: [],
  argv,
  env: ['PATH=/bin'],
  cwd: '/',
  uid: 0,
  gid: 0,
  additionalGids: [],
  capabilities: DEFAULT_CAPS,
  noNewPrivs: true,
  ...o,
});

describe('shim exec', () => {
  test('output and exit code, inside the container namespaces', async () => {
    const r = await f.client.exec(req(['sh', '-c', 'echo out; echo err >&2; hostname; cat /proc/1/cmdline; exit 7']));
    expect(r.exitCode).toBe(7);
    expect(r.timedOut).toBe(false);
    expect(r.stdout.toString()).toBe('out\nexec-host\nsleep\u00001000\u0000');
    expect(r.stderr.toString()).toBe('err\n');
  });

  test('stdin, user, cwd and only fds 0-2', async () => {
    const r = await f.client.exec(req(['sh', '-c', 'cat; id -u; pwd; exec ls /proc/self/fd'], { stdin: 'from-stdin\n', uid: 1000, gid: 1000, cwd: '/tmp' }));
    expect(r.stdout.toString()).toBe('from-stdin\n1000\n/tmp\n0\n1\n2\n3\n') // 3: ls's own directory fd;
    expect(r.exitCode).toBe(0);
  });

  test('a signal-killed exec reports the signal', async () => {
    const r = await f.client.exec(req(['sh', '-c', 'kill -9 $$']));
    expect(r).toMatchObject({ exitCode: 137, signal: 'SIGKILL', timedOut: false });
  });

  test('timeout kills the whole process group and leaves no process behind', async () => {
    const t0 = Date.now();
    const r = await f.client.exec(req(['sh', '-c', 'echo started; sleep 4242.5 & sleep 4243.5'], { timeoutMs: 300 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(137);
    expect(r.stdout.toString()).toBe('started\n');
    expect(await processesMentioning('4242.5')).toEqual([]);
    expect(await processesMentioning('4243.5')).toEqual([]);
  });

  test('a missing binary is a ShimStartError with stage exec', async () => {
    const e = await f.client.exec(req(['/bin/nosuch'])).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ShimStartError);
    expect((e as ShimStartError).code).toBe('ERR_EXEC_START');
    expect((e as ShimStartError).details).toMatchObject({ stage: 'exec', errnoName: 'ENOENT' });
  });

  test('a pid that is not the shim\'s container is refused', async () => {
    const e = await f.client.exec(req(['true'], { pid: 0x3ffffff0 })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ShimStartError);
    expect((e as ShimStartError).details).toMatchObject({ stage: 'namespaces', errnoName: 'ESRCH' });
  });

  test('a state dir without a running shim is ERR_CONTAINER_NOT_RUNNING', async () => {
    const e = await f.client.exec(req(['true'], { stateDir: `${f.dir}/no-such-state` })).catch((x: unknown) => x);
    expect(isNodeletError(e, 'ERR_CONTAINER_NOT_RUNNING')).toBe(true);
  });

  test('the container is undisturbed by the execs', async () => {
    expect(await f.client.shimAlive(stateDir)).toBe(true);
    expect((await f.client.readState(stateDir))?.status).toBe('running');
  });
});

describe('shim exec edge cases', () => {
  test('a process that escapes the group and keeps stdout open does not hang the exec', async () => {
    const t0 = Date.now();
    const r = await f.client.exec(req(['sh', '-c', 'setsid sleep 4244.5 & echo done']));
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe('done\n');
    expect(Date.now() - t0).toBeLessThan(3000);
    const { processesMentioning: pm } = await import('./util.js');
    for (const pid of await pm('4244.5')) process.kill(pid, 'SIGKILL');
  });
});

/** Read a stream until `re` matches what arrived so far (bounded by the test timeout). */
function until(s: Readable, re: RegExp): Promise<string> {
  let acc = '';
  return new Promise((resolve, reject) => {
    const on = (b: Buffer) => {
      acc += b.toString();
      if (re.test(acc)) {
        s.off('data', on);
        resolve(acc);
      }
    };
    s.on('data', on);
    s.once('end', () => reject(new Error(`stream ended before ${re}: ${JSON.stringify(acc)}`)));
  });
}

const collect = (s: Readable | null) => {
  const out: Buffer[] = [];
  s?.on('data', (b: Buffer) => out.push(b));
  return () => Buffer.concat(out).toString();
};

describe('streaming exec through the monitor', () => {
  const open = (argv: string[], io: Parameters<typeof f.client.execStream>[2] = {}) => f.client.execStream(stateDir, req(argv), io);

  test('a tty: the process sees a terminal of the given size, and a resize', async () => {
    const s = await open(['sh', '-c', 'tty; stty size; read x; stty size; echo "[$x]" >&2; exit 4'], { tty: true, stdin: true, size: { cols: 91, rows: 27 } });
    expect(s.stderr).toBeNull();
    const first = await until(s.stdout, /\d+ \d+\r?\n/);
    expect(first).toMatch(/^\/dev\/pts\/\d+\r\n27 91\r\n$/);
    s.resize(100, 40);
    s.stdin!.write('go\n');
    const rest = await until(s.stdout, /\[go\]/);
    expect(rest).toMatch(/go\r\n40 100\r\n\[go\]/); // echo of the input, new size, stderr on the same terminal
    expect(await s.exit).toEqual({ exitCode: 4 });
  });

  test('interactive stdin is streamed: a line in, its echo out, EOF, exit code', async () => {
    const s = await open(['sh', '-c', 'read line; echo "got $line"; cat; echo done >&2; exit 3'], { stdin: true });
    const err = collect(s.stderr);
    s.stdin!.write('hello\n');
    expect(await until(s.stdout, /got hello\n/)).toBe('got hello\n'); // answered before stdin ended
    s.stdin!.write('more\n');
    expect(await until(s.stdout, /more\n/)).toBe('more\n');
    s.stdin!.end();
    expect(await s.exit).toEqual({ exitCode: 3 });
    expect(err()).toBe('done\n');
  });

  test('large output is relayed completely, with back-pressure', async () => {
    const s = await open(['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x; echo; echo end >&2']);
    let n = 0;
    s.stdout.pause();
    await sleep(200); // the reader is slow: the shim must hold back, not buffer without bound
    s.stdout.on('data', (b: Buffer) => { n += b.length; });
    s.stdout.resume();
    const err = collect(s.stderr);
    expect(await s.exit).toEqual({ exitCode: 0 });
    expect(n).toBe(3_000_001);
    expect(err()).toBe('end\n');
  });

  test('kill() ends the whole process group', async () => {
    const s = await open(['sh', '-c', 'sleep 4247.5 & sleep 4248.5']);
    s.stdout.resume();
    s.stderr!.resume();
    await waitFor(async () => (await processesMentioning('4247.5')).length > 0 || undefined);
    s.kill();
    expect(await s.exit).toEqual({ exitCode: 137, signal: 'SIGKILL' });
    await waitFor(async () => ((await processesMentioning('4247.5')).length + (await processesMentioning('4248.5')).length === 0) || undefined);
  });

  test('the client going away mid-exec kills the exec and its group', async () => {
    const sock = await rawConnect(stateDir);
    sock.write(encodeFrame(FRAMES.REQUEST, encodeExec(req(['sh', '-c', 'sleep 4249.5 & sleep 4250.5']))));
    const started = await new Promise<Buffer>((r) => sock.once('data', r));
    expect(started[0]).toBe(FRAMES.STARTED);
    await waitFor(async () => (await processesMentioning('4249.5')).length > 0 || undefined);
    sock.destroy();
    await waitFor(async () => ((await processesMentioning('4249.5')).length + (await processesMentioning('4250.5')).length === 0) || undefined);
    await waitFor(() => helpersOf(c.shimPid).length === 0 || undefined); // the helper exited and was reaped
  });

  test('input still being sent when the process has exited does not lose the EXIT (the shim lingers)', async () => {
    const sock = await rawConnect(stateDir);
    const got: Buffer[] = [];
    let error: Error | undefined;
    sock.on('error', (e) => { error = e; });
    const closed = new Promise((r) => sock.on('close', r));
    sock.write(encodeFrame(FRAMES.REQUEST, encodeExec(req(['sh', '-c', 'sleep 0.2; exit 7']), { stdin: true })));
    got.push(await new Promise<Buffer>((r) => sock.once('data', r))); // STARTED
    sock.pause(); // the EXIT stays unread, as when a client's stdout is backed up
    await sleep(700); // the process has exited and the shim has sent EXIT meanwhile
    await new Promise((r) => sock.write(Buffer.concat([encodeFrame(FRAMES.STDIN, 'late\n'), encodeFrame(FRAMES.STDIN_EOF)]), r));
    sock.on('data', (b: Buffer) => got.push(b));
    sock.resume();
    sock.end();
    await closed;
    expect(error).toBeUndefined(); // no EPIPE: the shim did not close under our write
    const all = Buffer.concat(got);
    expect(all[0]).toBe(FRAMES.STARTED);
    const exit = all.subarray(all.length - 7);
    expect([exit[0], exit.subarray(5).toString()]).toEqual([FRAMES.EXIT, '7\0']);
  });

  test('the socket is 0600 in a 0700 dir, and a non-root peer is refused even if it gets through', async () => {
    const sockPath = join(stateDir, EXEC_SOCKET);
    expect(statSync(sockPath).mode & 0o777).toBe(0o600);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    const client = `const s = require('net').createConnection(${JSON.stringify(sockPath)});
      s.on('connect', () => s.write(${JSON.stringify(encodeFrame(FRAMES.REQUEST, encodeExec(req(['touch', '/tmp/by-nobody']))).toString('base64'))}, 'base64'));
      let n = 0; s.on('data', (b) => { n += b.length; }); s.on('error', (e) => { console.log(e.code); });
      s.on('close', () => console.log('closed', n));`;
    const asNobody = () => execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', client], { encoding: 'utf8' }).trim();
    expect(asNobody()).toBe('EACCES\nclosed 0');
    const dirMode = statSync(f.dir).mode & 0o777;
    for (const d of [f.dir, stateDir]) chmodSync(d, 0o711);
    chmodSync(sockPath, 0o666);
    try {
      expect(asNobody()).toMatch(/^(E[A-Z]+\n)?closed 0$/); // SO_PEERCRED: closed without a word (EPIPE/ECONNRESET on its write)
    } finally {
      chmodSync(f.dir, dirMode);
      chmodSync(stateDir, 0o700);
      chmodSync(sockPath, 0o600);
    }
    expect((await f.client.exec(req(['ls', '/tmp']))).stdout.toString()).not.toContain('by-nobody');
  });

  test('a malformed request is answered with ERROR stage plan and nothing runs', async () => {
    const sock = await rawConnect(stateDir);
    sock.write(encodeFrame(FRAMES.REQUEST, encodeRecords([['VERSION', [1]], ['CWD', ['/']], ['ARGV', ['true']]])));
    const reply = await new Promise<Buffer>((r) => { const parts: Buffer[] = []; sock.on('data', (b: Buffer) => parts.push(b)); sock.on('close', () => r(Buffer.concat(parts))); });
    expect(reply[0]).toBe(FRAMES.ERROR);
    expect(reply.subarray(5).toString().split('\0')).toEqual(['plan', '22', 'exec pid missing']);
  });

  test('concurrent execs are bounded per container; the monitor leaks no fd', async () => {
    const fds = () => readdirSync(`/proc/${c.shimPid}/fd`).length;
    const before = fds();
    const res = await Promise.allSettled(Array.from({ length: 200 }, () => f.client.exec(req(['sh', '-c', 'sleep 2; echo hi']))));
    const ok = res.filter((x) => x.status === 'fulfilled' && x.value.stdout.toString() === 'hi\n').length;
    const refused = res.filter((x) => x.status === 'rejected' && isNodeletError(x.reason, 'ERR_EXEC_REFUSED')).length;
    expect(ok + refused).toBe(200);
    expect(ok).toBeLessThanOrEqual(128);
    expect(refused).toBeGreaterThan(0);
    await waitFor(() => helpersOf(c.shimPid).length === 0 || undefined);
    expect(fds()).toBe(before);
  });

  test('a state dir longer than sockaddr_un allows (108 bytes) still works', async () => {
    const plan = { ...f.plan({ argv: ['sleep', '1000'] }) };
    plan.stateDir = join(f.dir, 'd'.repeat(150));
    plan.logPath = join(plan.stateDir, 'container.log');
    expect(join(plan.stateDir, EXEC_SOCKET).length).toBeGreaterThan(108);
    const st = await f.client.start(plan);
    try {
      const r = await f.client.exec({ ...req(['echo', 'long path']), stateDir: plan.stateDir, pid: st.pid });
      expect(r.stdout.toString()).toBe('long path\n');
    } finally {
      process.kill(st.pid, 'SIGKILL');
      await f.client.waitExit(plan.stateDir);
    }
  });

  test('no zombie, no helper, nothing left after all of the above', async () => {
    await waitFor(() => helpersOf(c.shimPid).length === 0 || undefined);
    expect(zombiesOf(c.shimPid)).toEqual([]);
    expect(await f.client.shimAlive(stateDir)).toBe(true);
  });
});

function rawConnect(dir: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path: join(dir, EXEC_SOCKET) }, () => resolve(s));
    s.once('error', reject);
  });
}

function children(ppid: number): { pid: number; state: string; comm: string }[] {
  const out: { pid: number; state: string; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === ppid) out.push({ pid: Number(name), state: rest[0]!, comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')) });
    } catch {
      /* gone */
    }
  }
  return out;
}
const helpersOf = (shimPid: number) => children(shimPid).filter((p) => p.comm === 'nodelet-exec');
const zombiesOf = (shimPid: number) => children(shimPid).filter((p) => p.state === 'Z');

async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  for (const end = Date.now() + ms; ; ) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms`);
    await sleep(20);
  }
}

describe('the container exits while execs run', () => {
  const waitLoop = ['sh', '-c', 'while [ ! -e /tmp/stop ]; do sleep 0.02; done; exit 7'];

  test.each([
    ['its own pid namespace (the kernel ends the execs)', undefined],
    ['the host pid namespace (the shim ends the execs)', ['mnt', 'ipc', 'uts', 'net'] as const],
  ])('%s: the exit is recorded as it was, running execs end, new ones are refused', async (_name, nsTypes) => {
    rmSync(join(f.rootfs, 'tmp/stop'), { force: true }); // the rootfs is shared by the cases
    const plan = f.plan({ argv: waitLoop, ...(nsTypes ? { namespaces: nsTypes.map((type) => ({ type })) } : {}) });
    const st = await f.client.start(plan);
    const r = (argv: string[]) => ({ ...req(argv), stateDir: plan.stateDir, pid: st.pid });
    const long = await f.client.execStream(plan.stateDir, r(['sleep', '4253.5']));
    long.stdout.resume();
    long.stderr!.resume();
    // quick execs keep coming and going around the exit: none may be taken for the container
    let stop = false;
    const churn = Promise.all(Array.from({ length: 4 }, async () => {
      while (!stop) await f.client.exec(r(['true'])).catch(() => undefined);
    }));
    await sleep(100);
    expect((await f.client.exec(r(['touch', '/tmp/stop']))).exitCode).toBe(0);
    const exit = await f.client.waitExit(plan.stateDir);
    stop = true;
    await churn;
    expect(exit).toMatchObject({ status: 'exited', exitCode: 7, pid: st.pid });
    expect(exit.signal).toBeUndefined();
    expect(await long.exit).toEqual({ exitCode: 137, signal: 'SIGKILL' });
    await waitFor(async () => (await processesMentioning('4253.5')).length === 0 || undefined);
    expect(existsSync(join(plan.stateDir, EXEC_SOCKET))).toBe(false);
    const e = await f.client.exec(r(['true'])).catch((x: unknown) => x);
    expect(isNodeletError(e, 'ERR_CONTAINER_NOT_RUNNING')).toBe(true);
    await waitFor(async () => (await f.client.shimAlive(plan.stateDir)) === false || undefined);
  });
});
