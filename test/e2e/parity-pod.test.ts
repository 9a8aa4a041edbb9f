// kubelet v1.36 parity through the real `nodelet run` (runtime, volumes, probes): env fileKeyRef read from
// an emptyDir written by an init container, YAML 1.1 octal modes as kubectl reads them, unknown fields as
// strict decoding errors (nothing created), and an HTTP readiness probe redirected to another host:
// Ready with a ProbeWarning event. Per-container restartPolicy and restartPolicyRules (KEP-5307, on in v1.36):
// a rule restarts a Never container on its exit code, OnFailure restarts under a Never pod, a Never init
// container fails an Always pod.
import { afterEach, describe, expect, it } from 'vitest';
import { BUSYBOX, leftovers, makeEnv, run, writeManifest, type Env } from './helpers.js';

/** `nodelet run` with a 200-400 ms restart back-off: the restart-rule cases restart once or twice. */
const runQuickBackoff = (e: Env, file: string) => run([...e.globals, 'run', ...e.nodeFlags, '--backoff-initial', '200', '--backoff-max', '400', file]);

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('parity with kubelet v1.36 (nodelet run)', () => {
  it('fileKeyRef: values from an env file an init container wrote; defaultMode 0644 / items mode 0400 are octal', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'envfile.yaml', `
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { k: v }
---
apiVersion: v1
kind: Pod
metadata: { name: envfile }
spec:
  restartPolicy: Never
  volumes:
    - { name: config, emptyDir: {} }
    - { name: cm, configMap: { name: cfg, defaultMode: 0644, items: [{ key: k, path: k, mode: 0400 }] } }
    - { name: cm2, configMap: { name: cfg, defaultMode: 0o640 } }
  initContainers:
    - name: setup
      image: ${BUSYBOX}
      command: ["sh", "-c", "printf \\"DB_HOST='db.local'\\\\nMULTI='a\\\\nb' # note\\\\n\\" > /config/app.env"]
      volumeMounts: [{ name: config, mountPath: /config }]
  containers:
    - name: c
      image: ${BUSYBOX}
      env:
        - { name: DB_HOST, valueFrom: { fileKeyRef: { volumeName: config, path: app.env, key: DB_HOST } } }
        - { name: MULTI, valueFrom: { fileKeyRef: { volumeName: config, path: app.env, key: MULTI } } }
        - { name: OPT, valueFrom: { fileKeyRef: { volumeName: config, path: app.env, key: NOPE, optional: true } } }
      command: ["sh", "-c", "echo host=$DB_HOST multi=$(echo \\"$MULTI\\" | tr '\\\\n' +) opt=\${OPT-unset}; echo mode=$(stat -L -c %a /cm/k) mode2=$(stat -L -c %a /cm2/k)"]
      volumeMounts: [{ name: cm, mountPath: /cm }, { name: cm2, mountPath: /cm2 }]
`);
    const r = await run([...env.globals, 'run', ...env.nodeFlags, f]);
    expect(r.stderr).toMatch(/pod\/envfile: Succeeded/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[c] host=db.local multi=a+b+ opt=unset');
    expect(r.stdout).toContain('[c] mode=400 mode2=640');
    expect(leftovers(env).join('\n')).toBe('');
  }, 60_000);

  it('unknown fields are strict decoding errors with their path; nothing is created', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'typo.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: typo }
spec:
  restartPolicy: Never
  volumes: [{ name: d, emptyDir: { mode: 01777 } }]
  containers:
    - { name: c, image: ${BUSYBOX}, comand: ["true"] }
`);
    const r = await run([...env.globals, 'run', ...env.nodeFlags, f], 30_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('strict decoding error: unknown field "spec.volumes[0].emptyDir.mode"');
    expect(r.stderr).toContain('strict decoding error: unknown field "spec.containers[0].comand"');
    expect(leftovers(env).join('\n')).toBe('');
  }, 40_000);

  it('an HTTP readiness probe redirected to another host: Ready, with a ProbeWarning event', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'redirect.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: redirect }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: web
      image: ${BUSYBOX}
      command: ["sh", "-c", "end=$(($(date +%s)+4)); while [ $(date +%s) -lt $end ]; do printf 'HTTP/1.1 302 Found\\r\\nLocation: http://elsewhere.invalid/\\r\\nContent-Length: 4\\r\\nConnection: close\\r\\n\\r\\ngone' | nc -l -p 8080 -w 1 >/dev/null; done; exit 0"]
      readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 }
`);
    const r = await run([...env.globals, 'run', ...env.nodeFlags, f], 40_000);
    expect(r.stderr).toMatch(/pod\/redirect: Succeeded/);
    expect(r.stderr).toMatch(/ProbeWarning.*Readiness probe warning: Probe terminated redirects, Response body: gone/);
    // (no "not Unhealthy" here: the one-connection-at-a-time nc server can miss a probe; the unit test checks it)
    expect(leftovers(env).join('\n')).toBe('');
  }, 60_000);

  it('restartPolicyRules: a Never container (Never pod) restarted on exit code 42 only, then Succeeded', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'rules.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: rules }
spec:
  restartPolicy: Never
  volumes: [{ name: state, emptyDir: {} }]
  containers:
    - name: c
      image: ${BUSYBOX}
      restartPolicy: Never
      restartPolicyRules:
        - action: Restart
          exitCodes: { operator: In, values: [42] }
      command: ["sh", "-c", "n=$(cat /s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /s/n; echo attempt $n; [ $n -ge 2 ] || exit 42"]
      volumeMounts: [{ name: state, mountPath: /s }]
`);
    const r = await runQuickBackoff(env, f);
    expect(r.stderr).toMatch(/pod\/rules: Succeeded/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[c\] attempt 1[\s\S]*\[c\] attempt 2/);
    expect(r.stdout).not.toContain('attempt 3');
    expect(r.stderr).toMatch(/Terminated: Completed \(exit code 0\) restarts=1/);
    expect(leftovers(env).join('\n')).toBe('');
  }, 60_000);

  it('restartPolicyRules: an exit code no rule matches falls back to the container restartPolicy (Never): Failed, no restart', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'rules-miss.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: rules-miss }
spec:
  restartPolicy: Always
  containers:
    - name: c
      image: ${BUSYBOX}
      restartPolicy: Never
      restartPolicyRules: [{ action: Restart, exitCodes: { operator: In, values: [42] } }]
      command: ["sh", "-c", "echo once; exit 7"]
`);
    const r = await runQuickBackoff(env, f);
    expect(r.stderr).toMatch(/pod\/rules-miss: Failed/);
    expect(r.code).toBe(7);
    expect(r.stdout.match(/\[c\] once/g)?.length).toBe(1);
    expect(leftovers(env).join('\n')).toBe('');
  }, 60_000);

  it('a container restartPolicy OnFailure in a Never pod restarts after exit 1', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'onfailure.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: onfailure }
spec:
  restartPolicy: Never
  volumes: [{ name: state, emptyDir: {} }]
  containers:
    - name: c
      image: ${BUSYBOX}
      restartPolicy: OnFailure
      command: ["sh", "-c", "n=$(cat /s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /s/n; echo attempt $n; [ $n -ge 2 ]"]
      volumeMounts: [{ name: state, mountPath: /s }]
`);
    const r = await runQuickBackoff(env, f);
    expect(r.stderr).toMatch(/pod\/onfailure: Succeeded/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[c\] attempt 1[\s\S]*\[c\] attempt 2/);
    expect(r.stderr).toMatch(/Terminated: Completed \(exit code 0\) restarts=1/);
    expect(leftovers(env).join('\n')).toBe('');
  }, 60_000);

  it('an init container with restartPolicy Never fails a pod with restartPolicy Always; the app never runs', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'init-never.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: init-never }
spec:
  restartPolicy: Always
  initContainers:
    - { name: setup, image: ${BUSYBOX}, restartPolicy: Never, command: ["sh", "-c", "echo setup; exit 3"] }
  containers:
    - { name: app, image: ${BUSYBOX}, command: ["sh", "-c", "echo should not run; sleep 30"] }
`);
    const r = await runQuickBackoff(env, f);
    expect(r.stderr).toMatch(/pod\/init-never: Failed/);
    expect(r.code).toBe(3);
    expect(r.stdout.match(/\[setup\] setup/g)?.length).toBe(1);
    expect(r.stdout).not.toContain('should not run');
    expect(leftovers(env).join('\n')).toBe('');
  }, 60_000);
});
