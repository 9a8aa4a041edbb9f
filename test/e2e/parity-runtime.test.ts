// kubelet v1.36 / containerd v2 parity seen through the daemon's pod status: the resolved identity
// (status.containerStatuses[].user.linux) with supplementalGroupsPolicy Merge and Strict, hostNetwork
// pods' podIP(s) and POD_IP being the node's, OOMKilled when a worker is the OOM victim, and a
// node-critical static pod's oom_score_adj; pod-level spec.resources (PodLevelResources, on in v1.36): the pod
// cgroup's limits, containers without limits held to them, QoS class, downward API. Real CLI, runtime, cgroups (run
// as root in `unshare --net`).
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { BUSYBOX, makeEnv, type Env } from './helpers.js';
import { api, cstatus, startDaemon, stopAndClean, waitPod, type DaemonHandle } from './daemon-helpers.js';
import { primaryIPv4Sync } from '../../src/node/host-info.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
afterEach(async () => {
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

const post = async (yaml: string) => {
  const r = await api(daemon!.socket, 'POST', '/api/v1/namespaces/default/pods', yaml, 'application/yaml');
  expect(r.status, r.body).toBe(201);
};
const done = (p: any) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

describe('parity with kubelet/containerd (runtime)', () => {
  it('supplementary groups (Merge, Strict) in `id` and status.containerStatuses[].user; hostNetwork podIP(s) = POD_IP = the node\'s', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    // the e2e busybox image's /etc/group lists app (1000) in no group: the /etc/group part of Merge is
    // checked in test/integration/runtime/parity.test.ts (a rootfs whose group "extra" lists app)
    await post(`
apiVersion: v1
kind: Pod
metadata: { name: merge }
spec:
  restartPolicy: Never
  hostNetwork: true
  securityContext: { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], fsGroup: 5000 }
  containers:
    - name: main
      image: ${BUSYBOX}
      env:
        - { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
        - { name: POD_IPS, valueFrom: { fieldRef: { fieldPath: status.podIPs } } }
      command: ["sh", "-c", "echo \\"$(id) ip=$POD_IP ips=$POD_IPS\\" > /dev/termination-log"]
`);
    await post(`
apiVersion: v1
kind: Pod
metadata: { name: strict }
spec:
  restartPolicy: Never
  securityContext: { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], supplementalGroupsPolicy: Strict }
  containers:
    - name: main
      image: ${BUSYBOX}
      command: ["sh", "-c", "id > /dev/termination-log"]
`);
    const node = primaryIPv4Sync();
    const merge = await waitPod(daemon.socket, 'merge', done);
    const m = cstatus(merge, 'main');
    expect(m.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(m.state.terminated.message.trim()).toBe(`uid=1000(app) gid=3000 groups=3000,4000,5000 ip=${node} ips=${node}`);
    expect(m.user).toEqual({ linux: { uid: 1000, gid: 3000, supplementalGroups: [3000, 4000, 5000] } });
    expect(merge.status).toMatchObject({ podIP: node, podIPs: [{ ip: node }], hostIP: node, hostIPs: [{ ip: node }] });

    const strict = await waitPod(daemon.socket, 'strict', done);
    const s = cstatus(strict, 'main');
    expect(s.state.terminated.message.trim()).toBe('uid=1000(app) gid=3000 groups=3000,4000');
    expect(s.user).toEqual({ linux: { uid: 1000, gid: 3000, supplementalGroups: [3000, 4000] } });
  });

  it('a worker OOM-killed while the main process exits 3 → terminated reason OOMKilled, exitCode 3; node-critical static pod oom_score_adj', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    await post(`
apiVersion: v1
kind: Pod
metadata: { name: oom }
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: ${BUSYBOX}
      resources: { limits: { memory: 32Mi } }
      command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1; exit 3"]
`);
    // a Burstable pod that is node-critical (a pod of this node's own sources is static for kubelet's IsCriticalPod)
    await post(`
apiVersion: v1
kind: Pod
metadata: { name: critical }
spec:
  priorityClassName: system-node-critical
  containers:
    - name: main
      image: ${BUSYBOX}
      resources: { requests: { memory: 1Mi } }
      command: ["sh", "-c", "cat /proc/self/oom_score_adj > /dev/termination-log; exit 0"]
  restartPolicy: Never
`);
    const oom = await waitPod(daemon.socket, 'oom', done);
    const v2 = fs.statfsSync('/sys/fs/cgroup').type === 0x63677270;
    // on cgroup v2 memory.oom.group kills the whole container: 137
    expect(cstatus(oom, 'main').state.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: v2 ? 137 : 3 });
    const crit = await waitPod(daemon.socket, 'critical', done);
    // -997, raised to the daemon's own value when it lacks CAP_SYS_RESOURCE (the Burstable formula would give 999)
    const capEff = BigInt('0x' + /^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
    const own = Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
    const want = (capEff & (1n << 24n)) !== 0n ? -997 : Math.max(-997, own);
    expect(cstatus(crit, 'main').state.terminated.message.trim()).toBe(String(want));
  });

  it('pod-level spec.resources: the pod cgroup has the pod limits, containers without limits get them, QoS from them, downward API, OOMKilled', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    // limits only: the API server's defaulting makes them the requests too, so Guaranteed (v1.36 GetPodQOS)
    await post(`
apiVersion: v1
kind: Pod
metadata: { name: plr }
spec:
  restartPolicy: Never
  resources: { limits: { memory: 64Mi, cpu: 500m } }
  containers:
    - name: main
      image: ${BUSYBOX}
      command: ["sleep", "3600"]
    - name: hog
      image: ${BUSYBOX}
      command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"]
    - name: dapi
      image: ${BUSYBOX}
      env:
        - { name: MEM, valueFrom: { resourceFieldRef: { resource: limits.memory, divisor: 1Mi } } }
        - { name: CPU, valueFrom: { resourceFieldRef: { resource: limits.cpu, divisor: 1m } } }
      command: ["sh", "-c", "echo $MEM $CPU > /dev/termination-log"]
`);
    // a memory limit only (and a request): Burstable, no cpu quota
    await post(`
apiVersion: v1
kind: Pod
metadata: { name: plr-burstable }
spec:
  restartPolicy: Never
  resources: { requests: { memory: 32Mi }, limits: { memory: 64Mi } }
  containers:
    - name: main
      image: ${BUSYBOX}
      command: ["sleep", "3600"]
`);
    const v2 = fs.statfsSync('/sys/fs/cgroup').type === 0x63677270;
    const rd = (ctrl: string, cg: string, file: string) => fs.readFileSync(v2 ? `/sys/fs/cgroup${cg}/${file}` : `/sys/fs/cgroup/${ctrl}${cg}/${file}`, 'utf8').trim();
    const mem = (cg: string) => rd('memory', cg, v2 ? 'memory.max' : 'memory.limit_in_bytes');
    const quota = (cg: string) => (v2 ? rd('cpu', cg, 'cpu.max') : `${rd('cpu', cg, 'cpu.cfs_quota_us')} ${rd('cpu', cg, 'cpu.cfs_period_us')}`);
    const weight = (cg: string) => rd('cpu', cg, v2 ? 'cpu.weight' : 'cpu.shares');
    const id = (p: any, name: string) => String(cstatus(p, name).containerID).replace(/^nodelet:\/\//, '');

    const p = await waitPod(daemon.socket, 'plr', (x) => !!cstatus(x, 'main')?.state?.running && !!cstatus(x, 'hog')?.state?.terminated && !!cstatus(x, 'dapi')?.state?.terminated);
    expect(p.status.qosClass).toBe('Guaranteed');
    // the container's own cgroup has the pod-level limit (kubelet's getMemoryLimit), so the 100 MiB dd dies there
    expect(cstatus(p, 'hog').state.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
    expect(cstatus(p, 'dapi').state.terminated).toMatchObject({ reason: 'Completed', exitCode: 0 });
    expect(cstatus(p, 'dapi').state.terminated.message.trim()).toBe('64 500');
    const podCg = `${env.cgroupParent}/pod${p.metadata.uid}`; // Guaranteed: directly under the parent
    expect(mem(podCg)).toBe(String(64 * 2 ** 20));
    expect(quota(podCg)).toBe('50000 100000');
    expect(weight(podCg)).toBe(v2 ? '20' : '512'); // MilliCPUToShares(500m request) = 512
    const mainCg = `${podCg}/${id(p, 'main')}`;
    expect(mem(mainCg)).toBe(String(64 * 2 ** 20));
    expect(quota(mainCg)).toBe('50000 100000');
    expect(weight(mainCg)).toBe(v2 ? '20' : '512'); // no cpu request: shares from the (pod-level) cpu limit

    const b = await waitPod(daemon.socket, 'plr-burstable', (x) => !!cstatus(x, 'main')?.state?.running);
    expect(b.status.qosClass).toBe('Burstable');
    const bCg = `${env.cgroupParent}/burstable/pod${b.metadata.uid}`;
    expect(mem(bCg)).toBe(String(64 * 2 ** 20));
    expect(quota(bCg)).toBe(v2 ? 'max 100000' : '-1 100000');
    expect(weight(bCg)).toBe(v2 ? '1' : '2'); // no cpu request anywhere
    expect(mem(`${bCg}/${id(b, 'main')}`)).toBe(String(64 * 2 ** 20));
  });
});
