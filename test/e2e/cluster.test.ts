// Cluster mode against a real control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler v1.36 on 127.0.0.1 in this test's
// network namespace): real `nodelet daemon --kubeconfig` processes join as
// nodes and run what kube-scheduler binds to them; kubectl (v1.36) drives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { makeEnv, leftovers, removeCgroup, waitUntil, BUSYBOX, type Env } from './helpers.js';
import { startDaemon, type DaemonHandle } from './daemon-helpers.js';

let cp: ControlPlane;
const envs: Env[] = [];
const daemons: DaemonHandle[] = [];

beforeAll(async () => {
  cp = await startControlPlane({ env: { NODE_MONITOR_GRACE_PERIOD: '16s' } });
}, 600_000);

afterAll(async () => {
  for (const d of daemons) await d.stop().catch(() => undefined);
  await cp?.down();
  for (const e of envs) {
    removeCgroup(e.cgroupParent);
    fs.rmSync(e.dir, { recursive: true, force: true });
  }
}, 120_000);

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}
async function json(args: string[]): Promise<any> {
  return JSON.parse(await kubectl([...args, '-o', 'json']));
}
async function startNode(name: string, extra: string[] = []): Promise<{ env: Env; daemon: DaemonHandle }> {
  const env = makeEnv();
  envs.push(env);
  const kc = await cp.nodeKubeconfig(name);
  const daemon = await startDaemon(env, ['--kubeconfig', kc, '--node-name', name, '--node-status-update-frequency', '2000', ...extra]);
  daemons.push(daemon);
  return { env, daemon };
}
const ready = (n: any) => n?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status;

describe('nodelet as a node of a real cluster', () => {
  let a: { env: Env; daemon: DaemonHandle };

  it('registers the Node with kubelet status and goes Ready; its Lease renews', async () => {
    a = await startNode('node-a');
    const node = await waitUntil(async () => {
      const n = await json(['get', 'node', 'node-a']).catch(() => undefined);
      return ready(n) === 'True' ? n : undefined;
    }, 30_000, 'node-a Ready');
    expect(node.status.nodeInfo.kubeletVersion).toBe('v1.36.3');
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^nodelet:\/\//);
    expect(node.status.nodeInfo.operatingSystem).toBe('linux');
    expect(Number(node.status.capacity.pods)).toBe(110);
    expect(node.status.addresses).toEqual(expect.arrayContaining([{ type: 'Hostname', address: 'node-a' }]));
    expect(node.metadata.labels['kubernetes.io/hostname']).toBe('node-a');
    const l1 = await waitUntil(() => json(['get', 'lease', '-n', 'kube-node-lease', 'node-a']).catch(() => undefined), 20_000, 'node-a lease');
    expect(l1.spec.holderIdentity).toBe('node-a');
    expect(l1.metadata.ownerReferences[0]).toMatchObject({ kind: 'Node', name: 'node-a', uid: node.metadata.uid });
    await waitUntil(async () => (await json(['get', 'lease', '-n', 'kube-node-lease', 'node-a'])).spec.renewTime !== l1.spec.renewTime, 25_000, 'lease renewal');
  }, 120_000);

  it('runs a Deployment of 3 replicas to Available; a deleted pod is replaced while the old one stops gracefully', async () => {
    await kubectl(['apply', '-f', '-'], `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 3
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: web
          image: ${BUSYBOX}
          imagePullPolicy: IfNotPresent
          command: [sh, -c, 'trap "echo bye; exit 0" TERM; while true; do sleep 0.2; done']
          readinessProbe: { exec: { command: [sh, -c, 'true'] }, periodSeconds: 1 }
`);
    await kubectl(['rollout', 'status', 'deployment/web', '--timeout=90s']);
    const d = await json(['get', 'deployment', 'web']);
    expect(d.status.availableReplicas).toBe(3);
    const pods = (await json(['get', 'pods', '-l', 'app=web'])).items;
    expect(pods.length).toBe(3);
    for (const p of pods) {
      expect(p.spec.nodeName).toBe('node-a');
      expect(p.status.phase).toBe('Running');
      expect(p.status.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(p.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
      expect(p.status.conditions.find((c: any) => c.type === 'PodScheduled').status).toBe('True'); // the scheduler's, kept
    }
    const victim = pods[0].metadata.name;
    await kubectl(['delete', 'pod', victim, '--wait=true', '--timeout=60s']);
    await kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s']);
    const after = (await json(['get', 'pods', '-l', 'app=web'])).items.map((p: any) => p.metadata.name);
    expect(after).not.toContain(victim);
    expect(after.length).toBe(3);
    // the old pod got SIGTERM and its events reached the API server
    const ev = (await json(['get', 'events', '--field-selector', `involvedObject.name=${victim}`])).items;
    expect(ev.some((e: any) => e.reason === 'Killing')).toBe(true);
    expect(ev.some((e: any) => e.reason === 'Started')).toBe(true);
    await kubectl(['delete', 'deployment', 'web', '--wait=true']);
    await waitUntil(async () => (await json(['get', 'pods', '-l', 'app=web'])).items.length === 0, 60_000, 'web pods gone');
  }, 240_000);

  it('runs a Job to completion and the job controller marks it Complete', async () => {
    await kubectl(['apply', '-f', '-'], `
apiVersion: batch/v1
kind: Job
metadata: { name: once }
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - { name: c, image: ${BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'echo done'] }
`);
    await kubectl(['wait', '--for=condition=Complete', 'job/once', '--timeout=90s']);
    const pods = (await json(['get', 'pods', '-l', 'job-name=once'])).items;
    expect(pods[0].status.phase).toBe('Succeeded');
    expect(pods[0].status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    await kubectl(['delete', 'job', 'once', '--cascade=foreground', '--wait=true']);
  }, 180_000);
});

afterAll(() => {
  for (const e of envs) {
    const left = leftovers(e, { daemon: true });
    if (left.length) console.warn(`leftovers in ${e.dir}: ${left.join(', ')}`);
  }
  void path;
});
