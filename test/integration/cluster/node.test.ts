// The node side of cluster mode (src/node) against the real v1.36 control plane
// of scripts/control-plane: NodeController registers a Node with a node
// identity (CN=system:node:<name>, under NodeRestriction), keeps its status,
// and LeaseController renews its Lease. Everything talks to 127.0.0.1 only.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClient, type HttpKubeClient } from '../../../src/kube/client.js';
import { isForbidden } from '../../../src/kube/errors.js';
import type { KubeClient, KubeObject, ResourceRef } from '../../../src/kube/types.js';
import { configureLogging, type Logger } from '../../../src/log.js';
import { NodeController, NODES, NODES_STATUS } from '../../../src/node/controller.js';
import { podStatusPatch } from '../../../src/node/patch.js';
import { goArch, parseMeminfo, readHostInfo, statfsStats, type HostInfo } from '../../../src/node/host-info.js';
import { LeaseController } from '../../../src/node/lease.js';
import { formatIntegerQuantity } from '../../../src/node/quantity-format.js';
import type { LeaseObject, NodeObject } from '../../../src/node/types.js';
import { startControlPlane, type ControlPlane } from '../../helpers/control-plane.js';

const nodeName = `nodelet-${process.pid}`;
let cp: ControlPlane;
let nodeClient: HttpKubeClient;
let root: string;
const problems: string[] = [];
const calls: string[] = [];

/** A logger that keeps warnings and errors for the assertions. */
const logger: Logger = {
  debug() {},
  info() {},
  warn(msg, f) {
    problems.push(`warn ${msg} ${JSON.stringify(f ?? {})}`);
  },
  error(msg, f) {
    problems.push(`error ${msg} ${JSON.stringify(f ?? {})}`);
  },
  child() {
    return logger;
  },
};

/** The client, recording each write it makes. */
function recording(client: KubeClient): KubeClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'create' || prop === 'update' || prop === 'patch' || prop === 'get') {
          const ref = args[0] as { resource: string; subresource?: string };
          calls.push(`${String(prop)} ${ref.resource}${ref.subresource ? '/' + ref.subresource : ''}`);
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function kubectlJson<T>(args: string[]): Promise<T> {
  const r = await cp.kubectl([...args, '-o', 'json']);
  expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const readyOf = (n: NodeObject) => n.status?.conditions?.find((c) => c.type === 'Ready');

let host: HostInfo;
let nodeCtl: NodeController;
let leaseCtl: LeaseController;

beforeAll(async () => {
  configureLogging({ level: 'error' });
  cp = await startControlPlane();
  nodeClient = createKubeClient(await cp.nodeKubeconfig(nodeName));
  root = mkdtempSync(path.join(os.tmpdir(), 'nodelet-node-'));
}, 1_800_000);

afterAll(async () => {
  await leaseCtl?.stop();
  await nodeCtl?.stop();
  await nodeClient?.close();
  await cp?.down();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('NodeController + LeaseController against kube-apiserver v1.36', () => {
  it('registers a Node that kubectl shows with its capacity, nodeInfo, addresses and Ready=True', async () => {
    const client = recording(nodeClient);
    const readHost = () => readHostInfo({ rootDir: root, hostname: nodeName });
    host = await readHost();
    nodeCtl = new NodeController({ client, nodeName, readHost, logger }).start();
    leaseCtl = new LeaseController({ client, nodeName, nodeUid: () => nodeCtl.nodeUid, logger }).start();
    const uid = await nodeCtl.onReady;
    expect(uid).toMatch(/^[0-9a-f-]{36}$/);

    const node = await kubectlJson<NodeObject>(['get', 'node', nodeName]);
    expect(node.metadata.uid).toBe(uid);
    expect(node.metadata.labels).toMatchObject({
      'kubernetes.io/hostname': nodeName,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': goArch(),
      'beta.kubernetes.io/os': 'linux',
      'beta.kubernetes.io/arch': goArch(),
    });
    expect(node.metadata.annotations).toMatchObject({ 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' });

    const memTotal = parseMeminfo(readFileSync('/proc/meminfo', 'utf8')).MemTotal!;
    const fs = await statfsStats(root);
    const s = node.status!;
    const bin = (n: number) => formatIntegerQuantity(BigInt(n), 'BinarySI');
    expect(s.capacity).toMatchObject({
      cpu: String(os.availableParallelism()),
      memory: bin(memTotal),
      pods: '110',
      'ephemeral-storage': bin(fs.capacityBytes),
    });
    expect(s.capacity!.memory).toMatch(/^\d+(Ki|Mi|Gi)$/);
    expect(s.allocatable).toMatchObject({
      cpu: String(os.availableParallelism()),
      memory: bin(memTotal - 100 * 1024 * 1024),
      pods: '110',
      'ephemeral-storage': bin(fs.capacityBytes - Math.trunc(fs.capacityBytes * Math.fround(0.1))),
    });
    expect(s.nodeInfo).toMatchObject({
      kubeletVersion: 'v1.36.3',
      containerRuntimeVersion: 'nodelet://0.1.0',
      operatingSystem: 'linux',
      architecture: goArch(),
      kernelVersion: os.release(),
      osImage: host.osImage,
      machineID: host.machineID,
      systemUUID: host.systemUUID,
      bootID: host.bootID,
      kubeProxyVersion: '',
    });
    expect(s.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
    expect(s.addresses).toEqual([
      { type: 'InternalIP', address: host.nodeIP },
      { type: 'Hostname', address: nodeName },
    ]);
    const external = Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal);
    if (external.length === 0) expect(host.nodeIP).toBe('127.0.0.1'); // the test's netns has only lo
    expect(s.conditions!.map((c) => [c.type, c.status])).toEqual([
      ['MemoryPressure', 'False'],
      ['DiskPressure', 'False'],
      ['PIDPressure', 'False'],
      ['Ready', 'True'],
    ]);
    expect(readyOf(node)).toMatchObject({ reason: 'KubeletReady', message: 'kubelet is posting ready status' });

    const table = await cp.kubectl(['get', 'node', nodeName, '--no-headers']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${nodeName}\\s+Ready\\s+<none>\\s+\\S+\\s+v1\\.36\\.3\\s*$`));
  }, 120_000);

  it('renews the Lease (holder, 40 s, owner = the Node) every 10 s', async () => {
    const lease0 = await until('the lease', async () => {
      const r = await cp.kubectl(['get', 'lease', '-n', 'kube-node-lease', nodeName, '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as LeaseObject) : undefined;
    });
    expect(lease0.spec).toMatchObject({ holderIdentity: nodeName, leaseDurationSeconds: 40 });
    expect(lease0.spec!.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease0.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeCtl.nodeUid }]);
    const t0 = Date.parse(lease0.spec!.renewTime!);
    const lease1 = await until(
      'a renewal',
      async () => {
        const l = await kubectlJson<LeaseObject>(['get', 'lease', '-n', 'kube-node-lease', nodeName]);
        return Date.parse(l.spec!.renewTime!) > t0 ? l : undefined;
      },
      20_000,
    );
    const dt = Date.parse(lease1.spec!.renewTime!) - t0;
    expect(dt).toBeGreaterThanOrEqual(9_000);
    expect(dt).toBeLessThan(12_000);
    expect(leaseCtl.lease?.metadata.resourceVersion).toBeTruthy();
  }, 60_000);

  it('sends no status patch while nothing but heartbeats changes (no churn against the server)', async () => {
    const before = calls.filter((c) => c === 'patch nodes/status').length;
    const gets = calls.filter((c) => c === 'get nodes').length;
    await new Promise((r) => setTimeout(r, 21_000));
    expect(calls.filter((c) => c === 'get nodes').length - gets).toBeGreaterThanOrEqual(2);
    expect(calls.filter((c) => c === 'patch nodes/status').length).toBe(before);
  }, 60_000);

  it('Ready follows the runtime: NotReady with the reason, then Ready again, with transition times', async () => {
    nodeCtl.setRuntimeReady(false, 'container runtime is down');
    const down = await until('NotReady', async () => {
      const n = await kubectlJson<NodeObject>(['get', 'node', nodeName]);
      return readyOf(n)?.status === 'False' ? n : undefined;
    }, 10_000);
    expect(readyOf(down)).toMatchObject({ reason: 'KubeletNotReady', message: 'container runtime is down' });
    const table = await cp.kubectl(['get', 'node', nodeName, '--no-headers']);
    expect(table.stdout).toMatch(/\sNotReady\s/);
    await new Promise((r) => setTimeout(r, 1_100)); // a new second for the transition time
    nodeCtl.setRuntimeReady(true);
    const up = await until('Ready', async () => {
      const n = await kubectlJson<NodeObject>(['get', 'node', nodeName]);
      return readyOf(n)?.status === 'True' ? n : undefined;
    }, 10_000);
    expect(Date.parse(readyOf(up)!.lastTransitionTime!)).toBeGreaterThan(Date.parse(readyOf(down)!.lastTransitionTime!));
  }, 60_000);

  it('reports images as an atomic list', async () => {
    nodeCtl.setImages([
      { names: ['registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a', 'registry.k8s.io/pause:3.10'], sizeBytes: 320_000 },
      { names: ['docker.io/library/busybox:1.36'], sizeBytes: 4_400_000 },
    ]);
    nodeCtl.wake();
    const n = await until('images', async () => {
      const x = await kubectlJson<NodeObject>(['get', 'node', nodeName]);
      return x.status?.images?.length ? x : undefined;
    }, 15_000);
    expect(n.status!.images).toEqual([
      { names: ['docker.io/library/busybox:1.36'], sizeBytes: 4_400_000 },
      { names: ['registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a', 'registry.k8s.io/pause:3.10'], sizeBytes: 320_000 },
    ]);
    nodeCtl.setImages([{ names: ['docker.io/library/busybox:1.36'], sizeBytes: 4_400_000 }]);
    nodeCtl.wake();
    await until('one image', async () => {
      const x = await kubectlJson<NodeObject>(['get', 'node', nodeName]);
      return x.status?.images?.length === 1 ? x : undefined;
    }, 15_000);
  }, 60_000);

  it('a restarted controller adopts the Node, reconciles its labels and replaces changed addresses', async () => {
    await nodeCtl.stop();
    const uid = nodeCtl.nodeUid;
    const label = await cp.kubectl(['label', 'node', nodeName, '--overwrite', 'kubernetes.io/hostname=stale', 'team=a']);
    expect(label.code, label.stderr).toBe(0);
    nodeCtl = new NodeController({
      client: recording(nodeClient),
      nodeName,
      readHost: () => readHostInfo({ rootDir: root, hostname: nodeName, nodeIP: '127.0.0.2' }),
      logger,
    }).start();
    expect(await nodeCtl.onReady).toBe(uid);
    const n = await kubectlJson<NodeObject>(['get', 'node', nodeName]);
    expect(n.metadata.labels).toMatchObject({ 'kubernetes.io/hostname': nodeName, team: 'a' });
    expect(n.status!.addresses).toEqual([
      { type: 'InternalIP', address: '127.0.0.2' },
      { type: 'Hostname', address: nodeName },
    ]);
  }, 60_000);

  it('pod status patches (podStatusPatch) apply on the server as intended: merge by key, atomic container statuses', async () => {
    const pods: ResourceRef = { group: '', version: 'v1', resource: 'pods', namespace: 'default' };
    const podsStatus: ResourceRef = { ...pods, subresource: 'status' };
    type PodObj = KubeObject & { status?: Record<string, unknown> };
    const name = `patch-${process.pid}`;
    const body = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        nodeName,
        automountServiceAccountToken: false,
        containers: ['a', 'b'].map((c) => ({ name: c, image: 'registry.k8s.io/pause:3.10' })),
      },
    };
    // the default ServiceAccount appears once kube-controller-manager has run
    const created = await until('the pod', async () => {
      const r = await cp.kubectl(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(body) });
      return r.code === 0 ? (JSON.parse(r.stdout) as PodObj) : undefined;
    });
    const uid = created.metadata.uid!;
    const t = '2026-12-03T07:40:00Z';
    const cs = (c: string, running: boolean) => ({
      name: c,
      ready: running,
      started: running,
      restartCount: 0,
      lastState: {}, // the server always returns it (a struct without omitempty): without it every sync resends the list
      image: 'registry.k8s.io/pause:3.10',
      imageID: 'registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a',
      ...(running ? { containerID: `nodelet://${c}1`, state: { running: { startedAt: t } } } : { state: { waiting: { reason: 'ContainerCreating' } } }),
    });
    const cond = (type: string, status: string) => ({ type, status, lastProbeTime: null, lastTransitionTime: t });
    const hostIP = host?.nodeIP ?? '127.0.0.1';
    const s1 = {
      phase: 'Pending',
      qosClass: 'BestEffort',
      hostIP,
      hostIPs: [{ ip: hostIP }],
      startTime: t,
      conditions: [cond('PodReadyToStartContainers', 'False'), cond('Initialized', 'True'), cond('Ready', 'False'), cond('ContainersReady', 'False'), cond('PodScheduled', 'True')],
      containerStatuses: [cs('a', false), cs('b', false)],
    };
    const s2 = {
      ...s1,
      phase: 'Running',
      podIP: '10.244.0.7',
      podIPs: [{ ip: '10.244.0.7' }],
      conditions: [cond('PodReadyToStartContainers', 'True'), cond('Initialized', 'True'), cond('Ready', 'False'), cond('ContainersReady', 'False'), cond('PodScheduled', 'True')],
      containerStatuses: [cs('a', true), cs('b', false)],
    };
    const s3 = { ...s2, containerStatuses: [cs('a', true), cs('b', true)], conditions: s2.conditions.map((c) => (c.type === 'Ready' || c.type === 'ContainersReady' ? cond(c.type, 'True') : c)) };
    let current = (await nodeClient.get<PodObj>(pods, name)).status ?? {};
    for (const next of [s1, s2, s3]) {
      const { patch, unchanged } = podStatusPatch(uid, current, next);
      expect(unchanged).toBe(false);
      const updated = await nodeClient.patch<PodObj>(podsStatus, name, 'strategic', patch);
      current = updated.status!;
      expect(current).toMatchObject(next);
      expect((current.conditions as unknown[]).length).toBe(next.conditions.length);
      expect((current.containerStatuses as { name: string }[]).map((c) => c.name)).toEqual(['a', 'b']);
    }
    expect(podStatusPatch(uid, current, s3).unchanged).toBe(true);
    // the UID precondition holds: a patch for another incarnation of the pod is refused
    const wrong = podStatusPatch('00000000-0000-0000-0000-000000000000', current, { ...s3, phase: 'Failed' });
    const err = await nodeClient.patch(podsStatus, name, 'strategic', wrong.patch).then(() => undefined, (e: unknown) => e);
    expect(err).toBeDefined();
    await cp.kubectl(['delete', 'pod', name, '--grace-period=0', '--force']);
  }, 90_000);

  it('NodeRestriction accepted everything we sent; a node identity may not touch another Node', async () => {
    expect(problems).toEqual([]);
    const other = `other-${process.pid}`;
    const created = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: other } }) });
    expect(created.code, created.stderr).toBe(0);
    const err = await nodeClient
      .patch(NODES_STATUS, other, 'strategic', { status: { conditions: [{ type: 'Ready', status: 'True' }] } })
      .then(() => undefined, (e: unknown) => e);
    expect(isForbidden(err), String(err)).toBe(true);
    const own = await nodeClient.get<NodeObject>(NODES, nodeName);
    expect(own.metadata.name).toBe(nodeName);
    await cp.kubectl(['delete', 'node', other]);
  }, 60_000);
});
