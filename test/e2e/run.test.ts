// `nodelet run`: exit codes, logs, restart policies, init containers,
// termination messages, Ctrl-C teardown, bad manifests — the real CLI,
// runtime, cgroups and CNI. Leaves nothing behind (checked after each pod).
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX, leftovers, makeEnv, run, start, writeManifest, type Env } from './helpers.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

function runArgs(e: Env, file: string): string[] {
  return [...e.globals, 'run', ...e.nodeFlags, file];
}

describe('nodelet run', () => {
  it('runs examples/job.yaml to completion: logs prefixed, exit 0, nothing left', async () => {
    env = makeEnv();
    const r = await run(runArgs(env, path.resolve('examples/job.yaml')));
    expect(r.stderr).toMatch(/pod\/job: Succeeded/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[main] hello from job');
    expect(r.stdout).toContain('[main] done');
    expect(r.stderr).toMatch(/main: Terminated: Completed \(exit code 0\)/);
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('exits with the failed container\'s code (restartPolicy Never) and reports termination messages from the file, the default path too', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'fail.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: failing }
spec:
  restartPolicy: Never
  containers:
    - name: ok
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo fine"]
    - name: bad
      image: ${BUSYBOX}
      terminationMessagePath: /tmp/why
      command: ["sh", "-c", "echo going down; echo disk on fire > /tmp/why; exit 7"]
    - name: dflt
      image: ${BUSYBOX}
      securityContext: { runAsUser: 1000, readOnlyRootFilesystem: true }
      command: ["sh", "-c", "echo written as uid 1000 > /dev/termination-log"]
`);
    const r = await run(runArgs(env, f));
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('[bad] going down');
    expect(r.stdout).toContain('[ok] fine');
    expect(r.stderr).toMatch(/bad: Terminated: Error \(exit code 7\): disk on fire/);
    // the default /dev/termination-log is a host file bound over the container's /dev (kubelet's), writable by any uid
    expect(r.stderr).toMatch(/dflt: Terminated: Completed \(exit code 0\): written as uid 1000/);
    expect(r.stderr).toMatch(/pod\/failing: Failed/);
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('FallbackToLogsOnError takes the message from the last log lines', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'fallback.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: fallback }
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: ${BUSYBOX}
      terminationMessagePolicy: FallbackToLogsOnError
      command: ["sh", "-c", "echo first; echo last words >&2; exit 2"]
`);
    const r = await run(runArgs(env, f));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/c: Terminated: Error \(exit code 2\): first\nlast words/);
  });

  it('OnFailure restarts a failing container with growing back-off until it succeeds', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'retry.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: retry }
spec:
  restartPolicy: OnFailure
  volumes: [{ name: state, emptyDir: {} }]
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "n=$(cat /s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /s/n; echo attempt $n; [ $n -ge 3 ]"]
      volumeMounts: [{ name: state, mountPath: /s }]
`);
    const t0 = Date.now();
    const r = await run(runArgs(env, f));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[c\] attempt 1[\s\S]*\[c\] attempt 2[\s\S]*\[c\] attempt 3/);
    // kubelet's rule: the first restart is immediate, the second waits the initial back-off (0.5 s here, shown rounded)
    expect(r.stderr).toMatch(/restarts=1[\s\S]*Waiting: CrashLoopBackOff \(back-off 1s restarting failed container=c pod=retry_default/);
    expect(r.stderr).toMatch(/Terminated: Completed \(exit code 0\) restarts=2/);
    expect(Date.now() - t0).toBeGreaterThan(500);
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('runs init containers in order before the app container; a failing init container fails the pod (Never)', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'init.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: init }
spec:
  restartPolicy: Never
  volumes: [{ name: w, emptyDir: {} }]
  initContainers:
    - { name: one, image: ${BUSYBOX}, command: ["sh", "-c", "echo one >> /w/order"], volumeMounts: [{ name: w, mountPath: /w }] }
    - { name: two, image: ${BUSYBOX}, command: ["sh", "-c", "echo two >> /w/order"], volumeMounts: [{ name: w, mountPath: /w }] }
  containers:
    - { name: app, image: ${BUSYBOX}, command: ["sh", "-c", "echo app >> /w/order; cat /w/order"], volumeMounts: [{ name: w, mountPath: /w }] }
`);
    const r = await run(runArgs(env, f));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[app] one\n[app] two\n[app] app');
    const bad = writeManifest(env, 'init-bad.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: init-bad }
spec:
  restartPolicy: Never
  initContainers:
    - { name: broken, image: ${BUSYBOX}, command: ["sh", "-c", "echo nope; exit 4"] }
  containers:
    - { name: app, image: ${BUSYBOX}, command: ["sh", "-c", "echo should not run"] }
`);
    const r2 = await run(runArgs(env, bad));
    expect(r2.code).toBe(4);
    expect(r2.stdout).not.toContain('should not run');
    expect(r2.stderr).toMatch(/pod\/init-bad: Failed/);
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('Ctrl-C (SIGINT) stops a running pod gracefully, runs preStop and leaves nothing behind', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'sleep.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: sleeper }
spec:
  terminationGracePeriodSeconds: 5
  containers:
    - name: main
      image: ${BUSYBOX}
      command: ["testprog", "sleep", "inf"]
    - name: web
      image: ${BUSYBOX}
      command: ["testprog", "serve-http", "8080"]
      readinessProbe: { httpGet: { port: 8080, path: / }, periodSeconds: 1 }
      lifecycle:
        preStop: { exec: { command: ["testprog", "write", "/tmp/x", "bye"] } }
`);
    const p = start(runArgs(env, f));
    await p.waitFor(/\[main\] sleeping/);
    await p.waitFor(/web: Running \(ready\)/);
    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toContain('[main] got SIGTERM');
    expect(r.stderr).not.toMatch(/FailedPreStopHook/);
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('rejects a bad manifest with the field path and creates nothing', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'bad.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: Bad_Name }
spec:
  restartPolicy: Sometimes
  containers:
    - name: c
      image: ${BUSYBOX}
      livenessProbe: { exec: { command: ["true"] }, tcpSocket: { port: 80 } }
`);
    const r = await run(runArgs(env, f));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('metadata.name');
    expect(r.stderr).toContain('spec.restartPolicy');
    expect(r.stderr).toContain('spec.containers[0].livenessProbe');
    expect(fs.existsSync(env.runRoot)).toBe(false);
    expect(fs.existsSync(env.root)).toBe(false);
  });
  it('hostnameOverride is the pod\'s hostname, /etc/hostname and its /etc/hosts name (before spec.hostname); with hostNetwork it is refused', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'override.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: named }
spec:
  restartPolicy: Never
  hostname: custom-host
  hostnameOverride: override.example.host
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo uts=$(hostname) file=$(cat /etc/hostname); grep -c 'override.example.host$' /etc/hosts; grep -c custom-host /etc/hosts; true"]
`);
    const r = await run(runArgs(env, f));
    expect(r.stderr).toMatch(/pod\/named: Succeeded/);
    expect(r.stdout).toContain('[c] uts=override.example.host file=override.example.host');
    expect(r.stdout).toMatch(/\[c\] 1\n\[c\] 0\n/); // the pod IP's line names the override only
    expect(leftovers(env).join('\n')).toBe('');
    const h = writeManifest(env, 'override-hostnet.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: hostnet }
spec:
  restartPolicy: Never
  hostNetwork: true
  hostnameOverride: override-host
  containers: [{ name: c, image: ${BUSYBOX}, command: ["true"] }]
`);
    const bad = await run(runArgs(env, h));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.hostnameOverride');
    expect(bad.stderr).toContain('may not be specified when hostNetwork is true');
  });

  it('applies pod sysctls in the pod\'s namespaces; an unsafe one is rejected (SysctlForbidden) unless the node allows it', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'sysctl.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: tuned }
spec:
  restartPolicy: Never
  securityContext:
    sysctls:
      - { name: net.ipv4.ip_local_port_range, value: "20000 20100" }
      - { name: net.core.somaxconn, value: "777" }
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo range $(cat /proc/sys/net/ipv4/ip_local_port_range); echo somaxconn $(cat /proc/sys/net/core/somaxconn)"]
`);
    const refused = await run(runArgs(env, f));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('SysctlForbidden: Pod was rejected: forbidden sysctl: "net.core.somaxconn" not allowlisted');
    expect(refused.stderr).toMatch(/pod\/tuned: Failed \(SysctlForbidden\)/);
    expect(leftovers(env).join('\n')).toBe('');

    const hostRange = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const ok = await run([...env.globals, 'run', ...env.nodeFlags, '--allowed-unsafe-sysctls', 'net.core.*', f]);
    expect(ok.stderr).toMatch(/pod\/tuned: Succeeded/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\[c\] range 20000\s+20100/);
    expect(ok.stdout).toContain('[c] somaxconn 777');
    expect(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).toBe(hostRange);
    expect(leftovers(env).join('\n')).toBe('');
  });
  it('an image that cannot be pulled: after --retry attempts with back-off the run gives up with the last error, nothing left', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'nopull.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: nopull }
spec:
  restartPolicy: Never
  containers:
    - { name: c, image: 127.0.0.1:1/nodelet/missing:v1 }
`);
    const t0 = Date.now();
    const r = await run([...env.globals, 'run', ...env.nodeFlags, '--backoff-initial', '200', '--backoff-max', '400', '--retry', '3', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: pod/nopull c: giving up on image "127.0.0.1:1/nodelet/missing:v1" after 3 pull attempts (--retry): ');
    expect(r.stderr).toMatch(/giving up[^\n]*127\.0\.0\.1:1[^\n]*(ECONNREFUSED|connection refused|connect)/i); // the pull's own last error
    expect(r.stderr.match(/Waiting: ErrImagePull/g)?.length).toBe(3);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(leftovers(env).join('\n')).toBe('');
    const bad = await run([...env.globals, 'run', ...env.nodeFlags, '--retry', 'x', f]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--retry: "x" is not a number of attempts');
  });
  it('--pod-max-pids bounds the pod\'s processes (a fork loop cannot take the node\'s pids); a bad value is refused', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'forks.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: forks }
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo spawned $i; kill $(jobs -p); exit 0"]
`);
    // 16 pids for the pod (its shell and pod-init count): the 40 sleeps cannot all start, the shell gives up
    const limited = await run([...env.globals, 'run', ...env.nodeFlags, '--pod-max-pids', '16', f]);
    expect(limited.code).not.toBe(0);
    expect(limited.stdout + limited.stderr).toMatch(/can't fork/);
    expect(limited.stdout).not.toContain('spawned 40');
    const free = await run(runArgs(env, f)); // no limit by default (kubelet's -1)
    expect(free.code).toBe(0);
    expect(free.stdout).toContain('[c] spawned 40');
    expect(leftovers(env).join('\n')).toBe('');
    const bad = await run([...env.globals, 'run', ...env.nodeFlags, '--pod-max-pids', '0', f]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--pod-max-pids: "0" is not a number of processes');
  });

  it('a pod that does not fit this host is Failed with kubelet\'s OutOfmemory before anything is created', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'huge.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: huge }
spec:
  restartPolicy: Never
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["true"], resources: { requests: { memory: 1000Gi } } }
`);
    const r = await run(runArgs(env, f));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/OutOfmemory: Pod was rejected: Node didn't have enough resource: memory, requested: 1073741824000, used: 0, capacity: \d+/);
    expect(r.stderr).toMatch(/pod\/huge: Failed \(OutOfmemory\)/);
    expect(leftovers(env).join('\n')).toBe('');
  });
  it('an AppArmor profile this host cannot enforce, and hostUsers: false, are rejected by name, never run in silence', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'apparmor.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: armored }
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["true"]
      securityContext:
        appArmorProfile: { type: RuntimeDefault }
`);
    const refused = await run(runArgs(env, f));
    expect(refused.code).toBe(1);
    // this kernel has no AppArmor module (docs/cgroups.md, the machines measured); on one with it nodelet says it applies no profiles
    const why = fs.existsSync('/sys/module/apparmor') ? 'nodelet does not apply AppArmor profiles (container "c" asks for RuntimeDefault)' : 'AppArmor is not enabled on the host';
    expect(refused.stderr).toContain(`AppArmor: Pod was rejected: Cannot enforce AppArmor: ${why}`);
    expect(refused.stderr).toMatch(/pod\/armored: Failed \(AppArmor\)/);
    expect(leftovers(env).join('\n')).toBe('');
    const userns = writeManifest(env, 'userns.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: mapped }
spec:
  restartPolicy: Never
  hostUsers: false
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["true"] }
`);
    const r = await run(runArgs(env, userns));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pod\/mapped: Failed \(UserNamespacesUnsupported\)/);
    expect(r.stderr).toContain('hostUsers: false asks for a user namespace per pod');
    expect(leftovers(env).join('\n')).toBe('');
  });
  it('--seccomp-default confines a pod that sets no profile (RuntimeDefault), as kubelet\'s seccompDefault', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'seccomp.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: confined }
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "grep '^Seccomp:' /proc/self/status"]
`);
    const plain = await run(runArgs(env, f));
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/\[c\] Seccomp:\s+0/);
    const def = await run([...env.globals, 'run', ...env.nodeFlags, '--seccomp-default', f]);
    expect(def.code).toBe(0);
    expect(def.stdout).toMatch(/\[c\] Seccomp:\s+2/);
    expect(leftovers(env).join('\n')).toBe('');
  });
  it('activeDeadlineSeconds: the pod is killed when it runs past it and fails with DeadlineExceeded', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'deadline.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: bounded }
spec:
  activeDeadlineSeconds: 2
  terminationGracePeriodSeconds: 1
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo working; exec sleep 100"] }
`);
    const r = await run(runArgs(env, f)); // without the deadline this would sleep past the test's timeout
    expect(r.stdout).toContain('[c] working');
    expect(r.stderr).toContain('DeadlineExceeded: Pod was active on the node longer than the specified deadline');
    expect(r.stderr).toMatch(/pod\/bounded: Failed \(DeadlineExceeded\)/);
    expect(r.code).not.toBe(0);
    expect(leftovers(env).join('\n')).toBe('');
  });
});
