// Cluster mode against a real control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler v1.36 on 127.0.0.1 in this test's
// network namespace): real `nodelet daemon --kubeconfig` processes join as
// nodes and run what kube-scheduler binds to them; kubectl (v1.36) drives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { makeEnv, leftovers, leakedProcesses, removeCgroup, run, waitUntil, BUSYBOX, type Env } from './helpers.js';
import { startDaemon, type DaemonHandle } from './daemon-helpers.js';

let cp: ControlPlane;
const envs: Env[] = [];
const envOf = new Map<string, Env>();
const daemons: DaemonHandle[] = [];

beforeAll(async () => {
  cp = await startControlPlane({ env: { NODE_MONITOR_GRACE_PERIOD: '16s' } });
}, 600_000);

afterAll(async () => {
  // the workloads go first (a stopped daemon leaves its containers running, by design)
  for (const e of envs) fs.rmSync(path.join(e.dir, 'manifests', 'static.yaml'), { force: true });
  await cp?.kubectl(['delete', 'deployments,jobs,pods', '--all', '--wait=true', '--timeout=60s']).catch(() => undefined);
  // every pod torn down by its node: no mount, cgroup, state, veth left (the shims are gone too)
  const leaks: string[] = [];
  for (const e of envs) {
    await waitUntil(() => leftovers(e, { daemon: true }).filter((l) => !l.startsWith('process')).length === 0 || undefined, 60_000, `pods of ${e.dir} gone`).catch(() => undefined);
    leaks.push(...leftovers(e, { daemon: true }).filter((l) => !l.startsWith('process')));
  }
  for (const d of daemons) await d.stop().catch(() => undefined);
  await cp?.down();
  for (const e of envs) {
    removeCgroup(e.cgroupParent);
    fs.rmSync(e.dir, { recursive: true, force: true });
  }
  expect(leaks).toEqual([]);
}, 240_000);

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
  envOf.set(name, env);
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

  it('node admission: a pod bound to the node that does not fit is Failed with OutOfmemory and kubelet\'s message, never started', async () => {
    await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: huge }
spec:
  nodeName: node-a
  containers:
    - { name: c, image: ${BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sleep, '3600'], resources: { requests: { memory: 1000Gi } } }
`);
    const p = await waitUntil(async () => {
      const x = await json(['get', 'pod', 'huge']);
      return x.status?.phase === 'Failed' ? x : undefined;
    }, 30_000, 'huge Failed');
    expect(p.status.reason).toBe('OutOfmemory');
    expect(p.status.message).toMatch(/^Pod was rejected: Node didn't have enough resource: memory, requested: 1073741824000, used: \d+, capacity: \d+$/);
    expect(p.status.containerStatuses?.[0]?.state?.running).toBeUndefined();
    await kubectl(['delete', 'pod', 'huge', '--wait=true']);
  }, 60_000);

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

describe('static pods in a cluster', () => {
  it('a static pod gets a mirror pod (<name>-<node>, owned by the Node) with its status; removing the file removes both', async () => {
    const env = envOf.get('node-a')!;
    const file = path.join(env.dir, 'manifests', 'static.yaml');
    fs.writeFileSync(file, `apiVersion: v1
kind: Pod
metadata: { name: stat, labels: { tier: static } }
spec:
  terminationGracePeriodSeconds: 1
  containers: [{ name: c, image: ${BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'while true; do sleep 1; done'] }]
`);
    const mirror = await waitUntil(async () => {
      const p = await json(['get', 'pod', 'stat-node-a']).catch(() => undefined);
      return p?.status?.phase === 'Running' ? p : undefined;
    }, 60_000, 'mirror pod Running').catch((err) => {
      console.error(daemons[0]!.proc.stderr().split('\n').filter((l) => /mirror|static|warn|error/.test(l)).slice(-20).join('\n'));
      throw err;
    });
    expect(mirror.metadata.annotations['kubernetes.io/config.mirror']).toBeTruthy();
    expect(mirror.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Node', name: 'node-a', controller: true })]);
    expect(mirror.spec.nodeName).toBe('node-a');
    // deleted by a user: the node puts it back
    await kubectl(['delete', 'pod', 'stat-node-a', '--wait=true']);
    await waitUntil(async () => (await json(['get', 'pod', 'stat-node-a']).catch(() => undefined))?.metadata?.uid !== mirror.metadata.uid || undefined, 30_000, 'mirror re-created');
    fs.rmSync(file);
    await waitUntil(async () => (await cp.kubectl(['get', 'pod', 'stat-node-a'])).code !== 0 || undefined, 60_000, 'mirror pod gone');
  }, 180_000);
});

describe('API objects, identities and more nodes', () => {
  it('a ConfigMap update reaches a mounted volume; the projected service-account token passes a TokenReview; the Services’ env is set', async () => {
    await kubectl(['create', 'configmap', 'conf', '--from-literal=greeting=v1']);
    // enableServiceLinks (the default): the namespace's Services with a cluster IP, besides kubernetes
    await kubectl(['create', 'service', 'clusterip', 'web-svc', '--tcp=8765:8080']);
    await kubectl(['create', 'service', 'clusterip', 'headless-svc', '--clusterip=None']);
    const webIP = (await kubectl(['get', 'service', 'web-svc', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: reader }
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{ name: conf, configMap: { name: conf } }]
  containers:
    - name: c
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'while true; do sleep 1; done']
      volumeMounts: [{ name: conf, mountPath: /conf }]
`);
    await kubectl(['wait', '--for=condition=Ready', 'pod/reader', '--timeout=60s']);
    const kexec = (cmd: string) => kubectlExec('reader', cmd);
    expect((await kexec('cat /conf/greeting')).trim()).toBe('v1');
    await kubectl(['create', 'configmap', 'conf', '--from-literal=greeting=v2', '--dry-run=client', '-o', 'yaml'], undefined).then((y) => kubectl(['apply', '-f', '-'], y));
    await waitUntil(async () => (await kexec('cat /conf/greeting')).trim() === 'v2' || undefined, 60_000, 'configmap update in the volume');
    // the kube-api-access-* volume the ServiceAccount admission added: a real token, the CA and the namespace
    const token = (await kexec('cat /var/run/secrets/kubernetes.io/serviceaccount/token')).trim();
    expect((await kexec('cat /var/run/secrets/kubernetes.io/serviceaccount/namespace')).trim()).toBe('default');
    expect(await kexec('cat /var/run/secrets/kubernetes.io/serviceaccount/ca.crt')).toContain('BEGIN CERTIFICATE');
    const review = JSON.parse(await kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } })));
    expect(review.status.authenticated).toBe(true);
    expect(review.status.user.username).toBe('system:serviceaccount:default:default');
    expect(review.status.user.extra['authentication.kubernetes.io/pod-name']).toEqual(['reader']);
    const env = await kexec('env');
    expect(env).toMatch(/^KUBERNETES_SERVICE_HOST=10\.0\.0\.1$/m);
    expect(env).toMatch(/^KUBERNETES_SERVICE_PORT=\d+$/m);
    const line = (l: string) => new RegExp(`^${l.replace(/[.[\]]/g, '\\$&')}$`, 'm');
    expect(env).toMatch(line(`WEB_SVC_SERVICE_HOST=${webIP}`));
    expect(env).toMatch(/^WEB_SVC_SERVICE_PORT_8765_8080=8765$/m);
    expect(env).toMatch(line(`WEB_SVC_PORT_8765_TCP=tcp://${webIP}:8765`));
    expect(env).not.toMatch(/^HEADLESS_SVC_/m);
    await kubectl(['delete', 'pod', 'reader', '--wait=true']);
    await kubectl(['delete', 'service', 'web-svc', 'headless-svc']);
  }, 180_000);

  it('a missing ConfigMap keeps a container in CreateContainerConfigError (env) or the pod in ContainerCreating (volume) until it appears', async () => {
    await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: wants-env }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'echo $V; while true; do sleep 1; done']
      env: [{ name: V, valueFrom: { configMapKeyRef: { name: later, key: v } } }]
---
apiVersion: v1
kind: Pod
metadata: { name: wants-vol }
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{ name: l, configMap: { name: later } }]
  containers:
    - { name: c, image: ${BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'while true; do sleep 1; done'], volumeMounts: [{ name: l, mountPath: /l }] }
`);
    const waiting = async (name: string) => (await json(['get', 'pod', name])).status?.containerStatuses?.[0]?.state?.waiting?.reason;
    await waitUntil(async () => (await waiting('wants-env')) === 'CreateContainerConfigError' || undefined, 30_000, 'wants-env CreateContainerConfigError');
    await waitUntil(async () => (await waiting('wants-vol')) === 'ContainerCreating' || undefined, 30_000, 'wants-vol ContainerCreating');
    await kubectl(['create', 'configmap', 'later', '--from-literal=v=arrived']);
    await kubectl(['wait', '--for=condition=Ready', 'pod/wants-env', 'pod/wants-vol', '--timeout=60s']);
    expect((await kubectlExec('wants-vol', 'cat /l/v')).trim()).toBe('arrived');
    expect((await kubectlExec('wants-env', 'echo $V')).trim()).toBe('arrived');
    await kubectl(['delete', 'pod', 'wants-env', 'wants-vol', '--wait=true']);
  }, 120_000);

  it('two nodelet nodes are Ready and the scheduler spreads pods over them', async () => {
    await startNode('node-b', ['--pod-cidr', '10.241.7.0/24', '--bridge-name', 'nltb7']);
    await waitUntil(async () => ready(await json(['get', 'node', 'node-b']).catch(() => undefined)) === 'True' || undefined, 30_000, 'node-b Ready');
    await kubectl(['apply', '-f', '-'], `
apiVersion: apps/v1
kind: Deployment
metadata: { name: spread }
spec:
  replicas: 4
  selector: { matchLabels: { app: spread } }
  template:
    metadata: { labels: { app: spread } }
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: { matchLabels: { app: spread } } }]
      containers: [{ name: c, image: ${BUSYBOX}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'while true; do sleep 1; done'] }]
`);
    await kubectl(['rollout', 'status', 'deployment/spread', '--timeout=90s']);
    const nodes = (await json(['get', 'pods', '-l', 'app=spread'])).items.map((p: any) => p.spec.nodeName).sort();
    expect(nodes).toEqual(['node-a', 'node-a', 'node-b', 'node-b']);
  }, 180_000);

  it('kill -9 of a daemon: the Node goes NotReady, its containers keep running; restarted, it is Ready with the same containers and restart counts', async () => {
    const before = (await json(['get', 'pods', '-l', 'app=spread', '--field-selector', 'spec.nodeName=node-b'])).items;
    const b = daemons.at(-1)!;
    const env = envOf.get('node-b')!;
    const pids = containerPids(env).filter((p) => p !== b.proc.child.pid);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    b.proc.child.kill('SIGKILL');
    await b.proc.done;
    await waitUntil(async () => ready(await json(['get', 'node', 'node-b'])) === 'Unknown' || undefined, 60_000, 'node-b NotReady (Unknown)');
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow(); // nothing of ours killed them
    const kc = await cp.nodeKubeconfig('node-b');
    const again = await startDaemon(env, ['--kubeconfig', kc, '--node-name', 'node-b', '--node-status-update-frequency', '2000', '--pod-cidr', '10.241.7.0/24', '--bridge-name', 'nltb7']);
    daemons.push(again);
    await waitUntil(async () => ready(await json(['get', 'node', 'node-b'])) === 'True' || undefined, 60_000, 'node-b Ready again');
    try {
      await kubectl(['rollout', 'status', 'deployment/spread', '--timeout=60s']);
    } catch (err) {
      console.error(await kubectl(['get', 'pods', '-o', 'yaml']), again.proc.stderr().slice(-6000));
      throw err;
    }
    const after = (await json(['get', 'pods', '-l', 'app=spread', '--field-selector', 'spec.nodeName=node-b'])).items;
    const ids = (ps: any[]) => ps.map((p) => `${p.metadata.uid}:${p.status.containerStatuses[0].containerID}:${p.status.containerStatuses[0].restartCount}`).sort();
    expect(ids(after)).toEqual(ids(before));
    expect(containerPids(env).filter((p) => p !== again.proc.child.pid).sort()).toEqual([...pids].sort());
  }, 240_000);
});

/** Run a command in a pod through its node's local API (this file's nodes share a loopback address, which the
 * API server does not proxy to; test/e2e/kubelet-api.test.ts covers kubectl exec through the API server). */
async function kubectlExec(pod: string, cmd: string): Promise<string> {
  const p = await json(['get', 'pod', pod]);
  const env = envOf.get(p.spec.nodeName)!;
  const r = await run([...env.globals, 'exec', '--socket', path.join(env.dir, 'nodelet.sock'), pod, '--', 'sh', '-c', cmd]);
  if (r.code !== 0) throw new Error(`exec ${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** pids of the containers (shim children) of a node's env. */
function containerPids(env: Env): number[] {
  return leakedProcesses(env.dir);
}

