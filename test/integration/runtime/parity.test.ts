// kubelet v1.36 / containerd v2 parity of the runtime on the real kernel: oom_score_adj by QoS
// (GetContainerOOMScoreAdjust, node-critical, sidecars), OOMKilled when a worker is the OOM
// victim, supplementary groups (containerd's WithAdditionalGIDs / Strict) and the reported user.
// Run inside `unshare --net` as root.
import fs from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerConfig, makeFixture, podConfig, type Fixture } from './fixture.js';
import type { ContainerConfig, ContainerExitEvent, PodSandboxConfig } from '../../../src/runtime/types.js';

let f: Fixture;
beforeAll(async () => { f = await makeFixture(); });
afterAll(async () => { await f?.teardown(); });

const sh = (script: string) => ['/bin/sh', '-c', script];
/** Without CAP_SYS_RESOURCE the kernel refuses to go below our own value: the runtime raises it to that (documented). */
const ownAdj = Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
const hasSysResource = (BigInt('0x' + /^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) & (1n << 24n)) !== 0n;
const floor = (v: number) => (hasSysResource ? v : Math.max(v, ownAdj));

async function withPod(cfg: Partial<PodSandboxConfig>, fn: (sb: string) => Promise<void>): Promise<void> {
  const sb = await f.rt.runPodSandbox(podConfig(cfg));
  try { await fn(sb); } finally { await f.rt.removePodSandbox(sb); }
}

async function adjOf(sb: string, over: Partial<ContainerConfig>): Promise<number> {
  const c = await f.rt.createContainer(sb, containerConfig(f, 'adj', ['sleep', '1000'], over));
  await f.rt.startContainer(c);
  const pid = (await f.rt.containerStatus(c)).pid!;
  const v = Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
  await f.rt.removeContainer(c);
  return v;
}

describe('oom_score_adj as kubelet sets it (read from /proc/<container pid>/oom_score_adj)', () => {
  const cap = os.totalmem();
  it('BestEffort 1000; Burstable 1000 - 1000*request/capacity; tiny request → 999', async () => {
    await withPod({ qosClass: 'BestEffort' }, async (sb) => { expect(await adjOf(sb, {})).toBe(1000); });
    await withPod({ qosClass: 'Burstable' }, async (sb) => {
      const req = Math.floor(cap / 10);
      expect(await adjOf(sb, { resources: { memoryRequestBytes: req } })).toBe(1000 - Math.floor((1000 * req) / cap)); // kubelet: 1000 - (1000*req)/cap in int64
      expect(await adjOf(sb, { resources: { memoryRequestBytes: 1 } })).toBe(999);
    });
  });
  it('Guaranteed and node-critical pods -997 (raised to the daemon\'s own value without CAP_SYS_RESOURCE)', async () => {
    await withPod({ qosClass: 'Guaranteed' }, async (sb) => { expect(await adjOf(sb, {})).toBe(floor(-997)); });
    await withPod({ qosClass: 'Burstable' }, async (sb) => {
      // before: a node-critical Burstable pod got the Burstable formula (999 for this request)
      expect(await adjOf(sb, { resources: { memoryRequestBytes: 1 }, oomScore: { nodeCritical: true } })).toBe(floor(-997));
    });
  });
  it('a sidecar never scores above the regular container with the smallest request', async () => {
    await withPod({ qosClass: 'Burstable' }, async (sb) => {
      const regular = Math.floor(cap / 4);
      const want = Math.trunc(1000 - (1000 * regular) / cap);
      expect(await adjOf(sb, { resources: { memoryRequestBytes: 1 }, oomScore: { sidecarMinRegularMemoryRequestBytes: regular } })).toBe(want);
    });
  });
});

describe('OOMKilled as containerd reports it', () => {
  it('a worker is OOM-killed, the main process exits 3 → reason OOMKilled, exit code 3', async () => {
    await withPod({ qosClass: 'Burstable' }, async (sb) => {
      // the child allocates past the limit and is killed; the shell then exits with its own code
      const c = await f.rt.createContainer(sb, containerConfig(f, 'worker-oom', sh('dd if=/dev/zero of=/dev/null bs=128M count=1; exit 3'), { resources: { memoryLimitBytes: 32 * 1024 * 1024 } }));
      const seen = new Promise<ContainerExitEvent>((resolve) => f.rt.onContainerExit((e) => { if (e.containerId === c) resolve(e); }));
      await f.rt.startContainer(c);
      const ev = await seen;
      // cgroup v2 kills the whole container on OOM (memory.oom.group 1, kubelet's default): then 137
      const code = f.cgroups.version === 'v2' ? 137 : 3;
      expect(ev.status).toMatchObject({ state: 'exited', exitCode: code, reason: 'OOMKilled', oomKilled: true, oomScope: 'container' });
    });
  });
});

describe('supplementary groups as containerd builds them', () => {
  const run = async (sb: string, sec: Partial<ContainerConfig['security']>) => {
    const c = await f.rt.createContainer(sb, containerConfig(f, 'id', ['sleep', '1000'], {}, sec));
    await f.rt.startContainer(c);
    const r = await f.rt.execSync(c, ['id'], { timeoutMs: 10_000 });
    const pid = (await f.rt.containerStatus(c)).pid!;
    const groups = /^Groups:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim();
    const st = await f.rt.containerStatus(c);
    await f.rt.removeContainer(c);
    return { id: r.stdout.toString().trim(), groups, user: st.user };
  };
  it('Merge (default): primary gid + /etc/group groups of the user + supplementalGroups (fsGroup included)', async () => {
    await withPod({}, async (sb) => {
      const r = await run(sb, { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000, 5000] });
      expect(r.id).toBe('uid=1000(app) gid=3000 groups=2000(extra),3000,4000,5000');
      expect(r.groups).toBe('2000 3000 4000 5000');
      expect(r.user).toEqual({ linux: { uid: 1000, gid: 3000, supplementalGroups: [2000, 3000, 4000, 5000] } });
    });
  });
  it('Strict: no groups from the image\'s /etc/group', async () => {
    await withPod({}, async (sb) => {
      const r = await run(sb, { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], supplementalGroupsPolicy: 'Strict' });
      expect(r.id).toBe('uid=1000(app) gid=3000 groups=3000,4000');
      expect(r.user).toEqual({ linux: { uid: 1000, gid: 3000, supplementalGroups: [3000, 4000] } });
    });
  });
  it('root: the primary gid is in the list', async () => {
    await withPod({}, async (sb) => {
      const r = await run(sb, {});
      expect(r.groups).toBe('0');
      expect(r.user).toEqual({ linux: { uid: 0, gid: 0, supplementalGroups: [0] } });
    });
  });
});
