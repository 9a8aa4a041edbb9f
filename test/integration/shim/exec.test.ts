// exec into a running container: output, exit code, identity, timeout leaves nothing behind.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ShimStartError, type ExecRequest, type ShimState } from '../../../src/runtime/shim/index.js';
import { DEFAULT_CAPS } from '../../helpers/shim-plan.js';
import { makeFixture, processesMentioning, type Fixture } from './util.js';

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

  test('exec into a pid that does not exist fails cleanly', async () => {
    const e = await f.client.exec(req(['true'], { pid: 0x3ffffff0 })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ShimStartError);
    expect((e as ShimStartError).details).toMatchObject({ stage: 'namespaces', errnoName: 'ENOENT' });
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
