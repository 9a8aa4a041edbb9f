// The shim places the container in its cgroups before it runs, and reports
// an OOM kill (memory.oom_control oom_kill counter, cgroup v1 on this host).
import { afterEach, beforeEach, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeFixture, runToExit, sleep, streamText, type Fixture } from './util.js';

const MEMROOT = '/sys/fs/cgroup/memory';
let f: Fixture;
let cg: string;
beforeEach(async () => {
  f = await makeFixture();
  if (!existsSync(join(MEMROOT, 'memory.oom_control'))) throw new Error(`this test needs the cgroup v1 memory controller at ${MEMROOT}`);
  cg = join(MEMROOT, `nodelet-test-${randomBytes(4).toString('hex')}`);
  await mkdir(cg);
});
afterEach(async () => {
  await f.cleanup();
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(cg);
      break;
    } catch {
      await sleep(20); // the killed container is still leaving
    }
  }
});

test('the container runs in the planned cgroup from its first instruction', async () => {
  const { state, log } = await runToExit(f, { argv: ['cat', '/proc/self/cgroup'], cgroupProcsFiles: [join(cg, 'cgroup.procs')] });
  expect(state.exitCode).toBe(0);
  expect(streamText(log, 'stdout')).toMatch(new RegExp(`memory:/${cg.split('/').pop()}`));
});

test('an allocation past memory.limit_in_bytes is reported as oomKilled', async () => {
  await writeFile(join(cg, 'memory.limit_in_bytes'), String(16 << 20));
  await writeFile(join(cg, 'memory.memsw.limit_in_bytes'), String(16 << 20)).catch(() => {}); // no swap accounting: fine
  const { state } = await runToExit(f, {
    argv: ['sh', '-c', 'head -c 200000000 /dev/zero | tail -c 199999999 > /dev/null'],
    cgroupProcsFiles: [join(cg, 'cgroup.procs')],
    oomCounterFile: join(cg, 'memory.oom_control'),
  });
  expect(state.oomKilled).toBe(true);
  expect(await readFile(join(cg, 'memory.oom_control'), 'utf8')).toMatch(/oom_kill [1-9]/);
});

test('a normal exit in a limited cgroup is not oomKilled', async () => {
  await writeFile(join(cg, 'memory.limit_in_bytes'), String(64 << 20));
  const { state } = await runToExit(f, {
    argv: ['true'],
    cgroupProcsFiles: [join(cg, 'cgroup.procs')],
    oomCounterFile: join(cg, 'memory.oom_control'),
  });
  expect(state).toMatchObject({ exitCode: 0, oomKilled: false });
});

test('a new cgroup namespace is rooted at the container cgroup; exec joins the cgroups', async () => {
  const { DEFAULT_CAPS } = await import('../../helpers/shim-plan.js');
  const plan = f.plan({ argv: ['sleep', '1000'], cgroupProcsFiles: [join(cg, 'cgroup.procs')] });
  plan.namespaces = [...plan.namespaces, { type: 'cgroup' }];
  const s = await f.client.start(plan);
  try {
    const inside = await f.client.exec({
      stateDir: plan.stateDir, pid: s.pid, cgroupProcsFiles: [join(cg, 'cgroup.procs')], argv: ['cat', '/proc/self/cgroup'], env: [], cwd: '/',
      uid: 0, gid: 0, additionalGids: [], capabilities: DEFAULT_CAPS, noNewPrivs: true,
    });
    expect(inside.stdout.toString()).toMatch(/^\d+:memory:\/$/m); // the container's cgroup is its root
    const procs = (await readFile(join(cg, 'cgroup.procs'), 'utf8')).trim().split('\n');
    expect(procs).toEqual([String(s.pid)]); // the exec is gone again
    // only the exec'd process joins: the shim's helper stays out (a cgroup kill must not take it)
    const running = await f.client.execStream(plan.stateDir, {
      pid: s.pid, cgroupProcsFiles: [join(cg, 'cgroup.procs')], argv: ['sleep', '1000'], env: [], cwd: '/',
      uid: 0, gid: 0, additionalGids: [], capabilities: DEFAULT_CAPS, noNewPrivs: true,
    });
    const during = (await readFile(join(cg, 'cgroup.procs'), 'utf8')).trim().split('\n').map(Number);
    expect(during.sort()).toEqual([s.pid, running.pid].sort());
    running.stdout.resume();
    running.stderr!.resume();
    running.kill();
    expect(await running.exit).toEqual({ exitCode: 137, signal: 'SIGKILL' });
  } finally {
    process.kill(s.pid, 'SIGKILL');
    await f.client.waitExit(plan.stateDir);
  }
});
