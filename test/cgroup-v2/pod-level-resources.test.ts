// Pod-level spec.resources on pure cgroup v2 (run inside ../shared/vm/run by scripts/test): the sandbox and
// container configs built from a Pod (src/pod/container-config.ts) through the real runtime, read back from
// the v2 files: the pod cgroup's memory.max / cpu.max / cpu.weight, a container without limits held to the
// pod-level ones, and a 100 MiB allocation OOM-killed. The same pod on this host's v1 is test/e2e/parity-runtime.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { containerConfig, makeFixture, type Fixture } from '../integration/runtime/fixture.js';
import { applyDefaults } from '../../src/pod/defaults.js';
import { buildContainerConfig, buildSandboxConfig } from '../../src/pod/container-config.js';
import type { Pod } from '../../src/pod/api-types.js';
import type { ContainerExitEvent } from '../../src/runtime/types.js';

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(async () => {
  await f?.teardown();
});

it('pod-level limits: memory.max / cpu.max of the pod cgroup, containers without limits get them, OOMKilled', async () => {
  const pod = applyDefaults({
    metadata: { name: 'plr', namespace: 'default' },
    spec: {
      restartPolicy: 'Never',
      resources: { limits: { memory: '64Mi', cpu: '500m' } },
      containers: [{ name: 'main', image: 'test/busybox' }, { name: 'hog', image: 'test/busybox' }],
    },
  } as Pod);
  const sbConfig = buildSandboxConfig(pod, { hostResolvConf: { nameservers: [], searches: [], options: [] }, nodeHostname: 'node' });
  expect(sbConfig.qosClass).toBe('Guaranteed');
  const resourcesOf = (name: string) =>
    buildContainerConfig({
      pod, container: pod.spec.containers.find((c) => c.name === name)!, image: f.images.record, attempt: 0, podLogsDir: f.dir, volumePaths: {},
      objects: { configMaps: [], secrets: [] }, nodeAllocatable: { cpuMilli: 1000, memoryBytes: 2 ** 30 }, subPathResolver: () => { throw new Error('none'); },
    }).config.resources;
  const sb = await f.rt.runPodSandbox(sbConfig);
  try {
    const podCg = (await f.rt.podSandboxStatus(sb)).cgroupPath;
    expect(podCg).toBe(`${f.cgroupParent}/pod${pod.metadata.uid}`);
    const rd = (cg: string, file: string) => fs.readFileSync(path.join('/sys/fs/cgroup', cg, file), 'utf8').trim();
    expect(rd(podCg, 'memory.max')).toBe(String(64 * 2 ** 20));
    expect(rd(podCg, 'cpu.max')).toBe('50000 100000');
    expect(rd(podCg, 'cpu.weight')).toBe('20'); // 500m request → shares 512 → weight 20

    const main = await f.rt.createContainer(sb, containerConfig(f, 'main', ['sleep', '1000'], { resources: resourcesOf('main') }));
    await f.rt.startContainer(main);
    expect(rd(`${podCg}/${main}`, 'memory.max')).toBe(String(64 * 2 ** 20));
    expect(rd(`${podCg}/${main}`, 'cpu.max')).toBe('50000 100000');
    expect(rd(`${podCg}/${main}`, 'cpu.weight')).toBe('20');

    const hog = await f.rt.createContainer(sb, containerConfig(f, 'hog', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1'], { resources: resourcesOf('hog') }));
    const seen = new Promise<ContainerExitEvent>((resolve) => f.rt.onContainerExit((e) => { if (e.containerId === hog) resolve(e); }));
    await f.rt.startContainer(hog);
    expect((await seen).status).toMatchObject({ exitCode: 137, reason: 'OOMKilled', oomKilled: true });
  } finally {
    await f.rt.removePodSandbox(sb);
  }
});
