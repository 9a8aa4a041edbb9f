// Both ways the shim puts a container into its cgroups before exec:
// v1 hierarchies (a `tasks` file beside cgroup.procs): the child moves itself by
// writing "0" to each `tasks` file (no global threadgroup lock, no RCU grace period);
// cgroup v2 (no `tasks`): the shim writes the pid to cgroup.procs while the child
// makes its mounts, and the child waits for the go-ahead before exec (and before a
// new cgroup namespace, whose root is the cgroup it is in).
import { afterEach, beforeEach, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeFixture, runToExit, sleep, streamText, type Fixture } from './util.js';

const V1 = ['memory', 'pids', 'cpu'].map((c) => `/sys/fs/cgroup/${c}`);
const V2 = '/sys/fs/cgroup/unified';
let f: Fixture;
let name: string;
let dirs: string[];
beforeEach(async () => {
  f = await makeFixture();
  for (const d of [...V1, V2]) if (!existsSync(join(d, 'cgroup.procs'))) throw new Error(`this test needs the cgroup hierarchy ${d} (hybrid host)`);
  name = `nodelet-test-${randomBytes(4).toString('hex')}`;
  dirs = [...V1, V2].map((d) => join(d, name));
  for (const d of dirs) await mkdir(d);
});
afterEach(async () => {
  await f.cleanup();
  for (const d of dirs) {
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(d);
        break;
      } catch {
        await sleep(20);
      }
    }
  }
});

test('v1: the container is in every planned hierarchy and its pids limit applies to the exec\'d program', async () => {
  const v1 = dirs.slice(0, 3);
  await writeFile(join(v1[1]!, 'pids.max'), '1');
  const { state, log } = await runToExit(f, { argv: ['sh', '-c', 'cat /proc/self/cgroup; true'], cgroupProcsFiles: v1.map((d) => join(d, 'cgroup.procs')) });
  // sh itself is the one process pids.max allows: `cat` cannot be forked
  expect(streamText(log, 'stdout')).not.toMatch(/memory:/);
  expect(streamText(log, 'stderr')).toMatch(/fork/i);
  expect(state.exitCode).not.toBe(0);
  await writeFile(join(v1[1]!, 'pids.max'), 'max');
  const again = await runToExit(f, { argv: ['cat', '/proc/self/cgroup'], cgroupProcsFiles: v1.map((d) => join(d, 'cgroup.procs')) });
  const text = streamText(again.log, 'stdout');
  for (const c of ['memory', 'pids', 'cpu']) expect(text).toMatch(new RegExp(`^\\d+:${c}(,[a-z_]+)*:/${name}$`, 'm'));
});

test('v2: the shim places the child (cgroup.procs) before it execs', async () => {
  const { state, log } = await runToExit(f, { argv: ['cat', '/proc/self/cgroup'], cgroupProcsFiles: [join(dirs[3]!, 'cgroup.procs')] });
  expect(state.exitCode).toBe(0);
  expect(streamText(log, 'stdout')).toMatch(new RegExp(`^0::/${name}$`, 'm'));
});

test('v2: a new cgroup namespace is created only after the placement', async () => {
  const plan = f.plan({ argv: ['cat', '/proc/self/cgroup'], cgroupProcsFiles: [join(dirs[3]!, 'cgroup.procs')] });
  plan.namespaces = [...plan.namespaces, { type: 'cgroup' }];
  await f.client.start(plan);
  const state = await f.client.waitExit(plan.stateDir);
  expect(state.exitCode).toBe(0);
  expect(streamText(await readFile(plan.logPath, 'utf8'), 'stdout')).toMatch(/^0::\/$/m);
});

test('a child that fails before the go-ahead (mounts overlap the placement) reports its own error', async () => {
  for (const procs of [join(dirs[3]!, 'cgroup.procs'), join(dirs[0]!, 'cgroup.procs')]) {
    const plan = f.plan({ cgroupProcsFiles: [procs], oomScoreAdj: 1000 });
    plan.mounts = [...plan.mounts, { source: '/nonexistent-src', target: '/x', fstype: 'bind', flags: 0x1000, mkdir: 'dir' }];
    const e = await f.client.start(plan).then(() => undefined, (err: unknown) => err as { details?: Record<string, unknown> });
    expect(e?.details).toMatchObject({ stage: 'mount', errnoName: 'ENOENT' });
  }
});
