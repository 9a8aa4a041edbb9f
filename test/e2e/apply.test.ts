// `nodelet apply -f` of a pod that exists, as kubectl against an API server:
// a changed image is `configured` and the container restarts with it, an
// unchanged manifest is `unchanged`, a change Kubernetes does not allow on a
// pod fails with the API server's message; PUT/PATCH on the API; kinds
// nodelet does not run (Deployment...) are errors for apply and run; a static pod
// file's such document is logged and ignored.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX, TESTPROG, makeEnv, run, waitUntil, writeManifest, type Env } from './helpers.js';
import { api, cstatus, getPod, startDaemon, stopAndClean, waitPod, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
afterEach(async () => {
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

/** The same command runs in both images: no command, the args go to the entrypoint (testprog image) or PATH (busybox). */
const web = (image: string, extra = '', labels = '{ app: web }') => `
apiVersion: v1
kind: Pod
metadata: { name: web, labels: ${labels} }
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      image: ${image}
      args: ["sleep", "1000"]
${extra}`;

describe('nodelet apply -f of an existing pod', () => {
  it('configured: a new image restarts the container with it; unchanged; a forbidden change fails with the API server\'s message', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const sock = ['--socket', daemon.socket];
    const apply = (file: string) => run([...env!.globals, 'apply', ...sock, '-f', file]);
    const v1 = writeManifest(env, 'v1.yaml', web(BUSYBOX));
    expect((await apply(v1)).stdout).toBe('pod/web created\n');
    const first = await waitPod(daemon.socket, 'web', (p) => cstatus(p, 'main')?.state?.running);
    const again = await apply(v1);
    expect(again.stdout).toBe('pod/web unchanged\n');
    expect(again.code).toBe(0);

    // the image (and a label): configured; kubelet kills the container and starts it again with the new image
    const v2 = writeManifest(env, 'v2.yaml', web(TESTPROG, '', '{ app: web, version: "2" }'));
    const r2 = await apply(v2);
    expect(r2.stderr).toBe('');
    expect(r2.stdout).toBe('pod/web configured\n');
    expect(r2.code).toBe(0);
    const updated = await waitPod(daemon.socket, 'web', (p) => cstatus(p, 'main')?.image === TESTPROG && cstatus(p, 'main')?.state?.running, 30_000);
    expect(updated.metadata.uid).toBe(first.metadata.uid);
    expect(updated.metadata.labels).toEqual({ app: 'web', version: '2' });
    expect(updated.spec.containers[0].image).toBe(TESTPROG);
    expect(cstatus(updated, 'main').containerID).not.toBe(cstatus(first, 'main').containerID);
    expect(cstatus(updated, 'main').restartCount).toBe(1);
    await waitUntil(async () => (await run([...env!.globals, 'logs', ...sock, 'web'])).stdout.includes('sleeping 1000'), 10_000, 'the testprog container\'s log');
    expect((await apply(v2)).stdout).toBe('pod/web unchanged\n');

    // anything else: refused with the API server's wording, non-zero exit, the pod as it was
    const v3 = writeManifest(env, 'v3.yaml', web(TESTPROG, `      ports: [{ containerPort: 8080 }]`, '{ app: web, version: "2" }'));
    const r3 = await apply(v3);
    expect(r3.code).toBe(1);
    expect(r3.stdout).toBe('');
    expect(r3.stderr).toMatch(
      /^The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than `spec\.containers\[\*\]\.image`,`spec\.initContainers\[\*\]\.image`,`spec\.activeDeadlineSeconds`,`spec\.tolerations` \(only additions to existing tolerations\),`spec\.terminationGracePeriodSeconds` \(allow it to be set to 1 if it was previously negative\)\n/,
    );
    expect(r3.stderr).toContain('\n- spec.containers[0].ports: <unset>\n+ spec.containers[0].ports: [{"containerPort":8080,"protocol":"TCP"}]\n');
    const after = await getPod(daemon.socket, 'web');
    expect(after.spec.containers[0].ports).toBeUndefined();
    expect(cstatus(after, 'main').containerID).toBe(cstatus(updated, 'main').containerID);
  });

  it('the API: PUT validates like the API server (422 Invalid + causes, 409 on a stale resourceVersion); PATCH takes a JSON merge patch', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const s = daemon.socket;
    expect((await api(s, 'POST', '/api/v1/namespaces/default/pods', web(BUSYBOX), 'application/yaml')).status).toBe(201);
    const pod = await waitPod(s, 'web', (p) => cstatus(p, 'main')?.state?.running);
    const url = '/api/v1/namespaces/default/pods/web';
    const { status: _status, ...spec } = pod;

    const bad = await api(s, 'PUT', url, JSON.stringify({ ...spec, spec: { ...spec.spec, restartPolicy: 'Never' } }));
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Invalid', code: 422, details: { name: 'web', kind: 'Pod', causes: [{ reason: 'FieldValueForbidden', field: 'spec' }] } });
    expect(bad.json.message).toMatch(/^Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than /);
    expect(bad.json.details.causes[0].message).toMatch(/^Forbidden: pod updates may not change fields other than [^]*\+ spec\.restartPolicy: "Never"/);

    const stale = await api(s, 'PUT', url, JSON.stringify({ ...spec, metadata: { ...spec.metadata, resourceVersion: '1' } }));
    expect(stale.status).toBe(409);
    expect(stale.json.reason).toBe('Conflict');

    const ok = await api(s, 'PUT', url, JSON.stringify({ ...spec, metadata: { ...spec.metadata, labels: { app: 'web', put: 'yes' } } }));
    expect(ok.status).toBe(200);
    expect(ok.json.metadata.labels).toEqual({ app: 'web', put: 'yes' });
    expect(ok.json.metadata.annotations['kubernetes.io/config.source']).toBe('api'); // kept: the node's own

    const patched = await api(s, 'PATCH', url, JSON.stringify({ metadata: { labels: { put: null, patch: 'yes' } }, spec: { activeDeadlineSeconds: 3600 } }), 'application/merge-patch+json');
    expect(patched.status).toBe(200);
    expect(patched.json.metadata.labels).toEqual({ app: 'web', patch: 'yes' });
    expect(patched.json.spec.activeDeadlineSeconds).toBe(3600);
    const raise = await api(s, 'PATCH', url, JSON.stringify({ spec: { activeDeadlineSeconds: 7200 } }), 'application/merge-patch+json');
    expect(raise.status).toBe(422);
    expect(raise.json.message).toBe('Pod "web" is invalid: spec.activeDeadlineSeconds: Invalid value: 7200: must be less than or equal to previous value');
    const strategic = await api(s, 'PATCH', url, '{}', 'application/strategic-merge-patch+json');
    expect(strategic.status).toBe(415);
    expect((await api(s, 'PUT', '/api/v1/namespaces/default/pods/nope', JSON.stringify(spec))).status).toBe(404);
    // the running container was never touched by all this
    expect(cstatus(await getPod(s, 'web'), 'main').containerID).toBe(cstatus(pod, 'main').containerID);
  });
});

describe('kinds nodelet does not run', () => {
  const deployment = `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { a: b }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: c, image: x }] }
`;
  const message = (file: string) => `${file}: document 2: kind "Deployment" (apps/v1) is not supported by nodelet: only Pod, ConfigMap and Secret — run it on a cluster`;

  it('apply and run refuse a Deployment, naming the kind and the document; nothing is created', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'deploy.yaml', deployment);
    const r = await run([...env.globals, 'run', ...env.nodeFlags, f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message(f));
    expect(fs.existsSync(env.root)).toBe(false);

    daemon = await startDaemon(env);
    const a = await run([...env.globals, 'apply', '--socket', daemon.socket, '-f', f]);
    expect(a.code).toBe(1);
    expect(a.stdout).toBe('');
    expect(a.stderr).toContain(message(f));
    expect((await api(daemon.socket, 'GET', '/api/v1/pods')).json.items).toEqual([]);
  });

  it('static pods: the daemon logs the Deployment document and ignores it, as kubelet does; the file\'s pod runs', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const d = daemon;
    fs.writeFileSync(path.join(d.manifestDir, 'mixed.yaml'), `${deployment}---
apiVersion: v1
kind: Pod
metadata: { name: static-web }
spec:
  terminationGracePeriodSeconds: 1
  containers: [{ name: c, image: ${BUSYBOX}, command: ["testprog", "sleep", "inf"] }]
`);
    await waitUntil(() => /document 2: kind Deployment \(apps\/v1\) is not supported by nodelet/.test(d.proc.stderr()), 10_000, `the daemon's log:\n${d.proc.stderr()}`);
    await waitPod(d.socket, 'static-web', (p) => cstatus(p, 'c')?.state?.running, 30_000);
  });
});
