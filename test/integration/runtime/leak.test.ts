// 200 create/start/stop/remove cycles of a `true` container leave no mounts,
// cgroups, state directories, writable layers or open fds in this process.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { containerConfig, makeFixture, mountsUnder, podConfig, type Fixture } from './fixture.js';

let f: Fixture;
beforeAll(async () => { f = await makeFixture(); });
afterAll(async () => { await f?.teardown(); });

const fds = () => fs.readdirSync('/proc/self/fd').length;
const cgroupChildren = (f: Fixture, cg: string) =>
  f.cgroups.procsFiles(cg).flatMap((p) => fs.readdirSync(path.dirname(p), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name));

it('200 cycles leak nothing', async () => {
  const sb = await f.rt.runPodSandbox(podConfig({ hostNetwork: true }));
  const podCg = (await f.rt.podSandboxStatus(sb)).cgroupPath;
  const exited = new Map<string, () => void>();
  f.rt.onContainerExit((e) => exited.get(e.containerId)?.());
  const cycle = async (i: number) => {
    const id = await f.rt.createContainer(sb, containerConfig(f, `c${i}`, ['true']));
    const done = new Promise<void>((r) => exited.set(id, r));
    await f.rt.startContainer(id);
    await done;
    exited.delete(id);
    expect((await f.rt.containerStatus(id)).exitCode).toBe(0);
    await f.rt.stopContainer(id, 0);
    await f.rt.removeContainer(id);
  };
  await cycle(-1); // warm-up: lazily opened files (koffi, cgroup manager) are not leaks
  const mountsBefore = mountsUnder(f.dir); // everything this runtime mounts lives under the test dir
  const fdsBefore = fds();
  const t0 = Date.now();
  for (let i = 0; i < 200; i++) await cycle(i);
  const ms = Date.now() - t0;
  console.log(`200 cycles in ${ms} ms (${(ms / 200).toFixed(1)} ms each)`);
  expect(mountsUnder(f.dir)).toEqual(mountsBefore);
  expect(mountsUnder(path.join(f.runRoot, 'containers'))).toEqual([]);
  expect(fds()).toBe(fdsBefore);
  expect(cgroupChildren(f, podCg)).toEqual([]);
  expect(fs.readdirSync(path.join(f.runRoot, 'containers'))).toEqual([]);
  expect(f.images.keys()).toEqual([]);
  expect(await f.rt.listContainers()).toEqual([]);
  await f.rt.removePodSandbox(sb);
  expect(mountsUnder(f.runRoot)).toEqual([]);
  expect(f.cgroups.exists(podCg)).toBe(false);
});
