// The CLI as kubectl and podman users expect it, against the real bundled CLI: logs (--since,
// --since-time, --all-containers, -l, --prefix, the "Defaulted container" note), exec (the note;
// -it gives TERM=xterm, checked through a pty), describe pod laid out as kubectl's, errors that point
// the right way (EACCES → sudo; no daemon → how to start it), `nodelet run` printing the pod IP and
// how to reach a hostPort, --quiet (the containers' logs only), `nodelet ps`.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { BUSYBOX, CLI, leftovers, makeEnv, run, sleep, start, waitUntil, writeManifest, type Env } from './helpers.js';
import { api, startDaemon, stopAndClean, waitPod, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
afterEach(async () => {
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

const PODS = `
apiVersion: v1
kind: Pod
metadata: { name: multi, labels: { app: ux } }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - { name: a, image: ${BUSYBOX}, command: ["sh", "-c", "echo a1; echo a2; exec sleep 1000"], env: [{ name: MODE, value: test }] }
    - { name: b, image: ${BUSYBOX}, command: ["sh", "-c", "echo b1; exec sleep 1000"] }
---
apiVersion: v1
kind: Pod
metadata: { name: single, labels: { app: ux } }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo old; sleep 4; echo new; exec sleep 1000"] }
---
apiVersion: v1
kind: Pod
metadata: { name: other, labels: { app: not-ux } }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - { name: o, image: ${BUSYBOX}, command: ["sh", "-c", "echo other; exec sleep 1000"] }
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

describe('client verbs as kubectl', () => {
  it('logs: default container note, --all-containers, -l, --prefix, --since, --since-time; exec note and TERM; describe; errors', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const sock = ['--socket', daemon.socket];
    // --socket right after the verb (after `--` it would be exec's command)
    const cli = (verb: string, ...args: string[]) => run([...env!.globals, verb, ...sock, ...args]);
    for (const doc of PODS.split('\n---\n')) expect((await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', doc, 'application/yaml')).status).toBe(201);
    for (const n of ['multi', 'single', 'other']) await waitPod(daemon.socket, n, (p) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c: any) => c.ready));

    // a multi-container pod without -c: its first container, and kubectl's note on stderr
    await waitUntil(async () => (await cli('logs', 'multi')).stdout === 'a1\na2\n', 10_000, 'logs of a');
    const l1 = await cli('logs', 'multi');
    expect(l1.code).toBe(0);
    expect(l1.stderr).toBe('Defaulted container "a" out of: a, b\n');
    expect((await cli('logs', 'pod/multi', '-c', 'b')).stdout).toBe('b1\n');

    // --all-containers: every container, each line prefixed as kubectl --prefix
    const all = await cli('logs', 'multi', '--all-containers');
    expect(all.stdout).toBe('[pod/multi/a] a1\n[pod/multi/a] a2\n[pod/multi/b] b1\n');
    expect(all.stderr).toBe('');

    // -f over several containers: followed at once, each line prefixed
    const fol = start([...env.globals, 'logs', ...sock, '-f', '--all-containers', 'multi']);
    await fol.waitFor(/\[pod\/multi\/a\] a2\n[\s\S]*\[pod\/multi\/b\] b1\n|\[pod\/multi\/b\] b1\n[\s\S]*\[pod\/multi\/a\] a2\n/);
    fol.child.kill('SIGTERM');
    await fol.done;
    const tooMany = await cli('logs', '-f', '--all-containers', '--max-log-requests=1', 'multi');
    expect(tooMany.stderr).toBe('error: you are attempting to follow 2 log streams, but maximum allowed concurrency is 1, use --max-log-requests to increase the limit\n');

    // -l: every pod matching (not "other"), with --prefix
    await waitUntil(async () => (await cli('logs', 'single')).stdout.includes('new'), 15_000, 'the "new" line');
    const sel = await cli('logs', '-l', 'app=ux', '--prefix');
    expect(sel.code).toBe(0);
    expect(sel.stdout).toBe('[pod/multi/a] a1\n[pod/multi/a] a2\n[pod/single/c] old\n[pod/single/c] new\n');
    expect(sel.stderr).toBe('Defaulted container "a" out of: a, b\n');
    expect((await cli('logs', '-l', 'app in (ux),app!=ux')).stderr).toBe('No resources found in default namespace.\n');

    // --since: "old" is 4 s older than "new", which just appeared
    const since = await cli('logs', 'single', '--since=3s');
    expect(since.stdout).toBe('new\n');
    expect((await cli('logs', 'single', '--since=1h')).stdout).toBe('old\nnew\n');
    // --since-time: from the timestamp of "new"
    const ts = (await cli('logs', 'single', '--timestamps')).stdout.split('\n').find((l) => l.endsWith(' new'))!.split(' ')[0]!;
    expect((await cli('logs', 'single', `--since-time=${ts}`)).stdout).toBe('new\n');
    const badSince = await cli('logs', 'single', '--since=5');
    expect(badSince.code).toBe(1);
    expect(badSince.stderr).toMatch(/invalid duration "5" \(missing unit/);
    const badTime = await cli('logs', 'single', '--since-time=yesterday');
    expect(badTime.stderr).toBe(`error: --since-time only accepts times matching RFC3339, eg '2006-01-02T15:04:05Z', got "yesterday"\n`);

    // exec: the same note; -it: TERM=xterm in the command's environment (through a pty: script(1))
    const x = await cli('exec', 'multi', '--', 'sh', '-c', 'echo in-$MODE');
    expect(x.stdout).toBe('in-test\n');
    expect(x.stderr).toBe('Defaulted container "a" out of: a, b\n');
    const plain = await cli('exec', 'multi', '-c', 'a', '--', 'sh', '-c', 'echo "TERM=[$TERM]"');
    expect(plain.stdout).not.toContain('TERM=[xterm]');
    const cmd = [process.execPath, CLI, ...env.globals, 'exec', '-it', ...sock, 'multi', '-c', 'a', '--', 'sh', '-c', 'echo "TERM=[$TERM] tty=$(tty)"'].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const pty = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 20_000 });
    expect(pty.stdout).toMatch(/TERM=\[xterm\] tty=\/dev\/pts\/\d+/);
    expect(pty.status).toBe(0);

    // describe pod, laid out as kubectl's
    const d = await run([...env.globals, 'describe', 'pod', 'multi', ...sock]);
    expect(d.code).toBe(0);
    const out = d.stdout;
    expect(out).toMatch(/^Name:\s+multi\nNamespace:\s+default\n/);
    expect(out).toMatch(/\nStart Time:\s+(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n/);
    expect(out).toMatch(/\nLabels:\s+app=ux\n/);
    expect(out).toMatch(/\nStatus:\s+Running\nIP:\s+10\.\d+\.\d+\.\d+\nIPs:\n  IP:\s+10\.\d+\.\d+\.\d+\n/);
    expect(out).toMatch(/\nContainers:\n  a:\n    Container ID:\s+\S+\n    Image:\s+localhost\/nodelet\/busybox:v1\n    Image ID:\s+\S*\n    Port:\s+<none>\n    Host Port:\s+<none>\n    Command:\n      sh\n      -c\n      echo a1; echo a2; exec sleep 1000\n    State:\s+Running\n      Started:\s+\w{3}, /);
    expect(out).toMatch(/\n    Ready:\s+True\n    Restart Count:\s+0\n    Environment:\n      MODE:\s+test\n    Mounts:\s+<none>\n  b:\n/);
    expect(out).toMatch(/\nConditions:\n  Type\s+Status\n/);
    expect(out).toMatch(/\nVolumes:\s+<none>\nQoS Class:\s+BestEffort\nNode-Selectors:\s+<none>\nTolerations:\s+\S/);
    expect(out).toMatch(/\nEvents:\n  Type    Reason +Age +From +Message\n  ----    ------ +---- +---- +-------\n  Normal  \w+ +\d+s +nodelet +\S/);

    // errors that point the right way
    const gone = await run([...env.globals, 'get', 'pods', '--socket', path.join(env.dir, 'none.sock')]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`error: cannot connect to the nodelet daemon at ${path.join(env.dir, 'none.sock')} (ENOENT): it is not running; start it with "sudo nodelet daemon" (or "sudo systemctl start nodelet"), or point --socket or $NODELET_SOCKET at its socket\n`);
    const S = daemon.socket;
    for (const argv of [['get', 'pods', '--socket', S], ['logs', '--socket', S, 'multi'], ['exec', '--socket', S, 'multi', '--', 'true']]) {
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...argv], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`error: permission denied on ${daemon.socket}: the nodelet API is root-only; try sudo nodelet ${argv.join(' ')}\n`);
    }
  });
});

describe('nodelet run and ps as podman', () => {
  it('prints the pod IP and how to reach a hostPort; ps lists the run pods of this root while they run', async () => {
    env = makeEnv();
    const port = await freePort();
    const f = writeManifest(env, 'web.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: web }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo serving; exec sleep 1000"]
      ports: [{ containerPort: 80, hostPort: ${port} }]
`);
    const before = await run([...env.globals, 'ps']);
    expect(before.stdout).toBe('');
    expect(before.stderr).toMatch(/^No pods started by "nodelet run" on /);
    const r = start([...env.globals, 'run', ...env.nodeFlags, f]);
    const ipLine = await r.waitFor(/pod\/web: Running, IP 10\.\d+\.\d+\.\d+\n/, 30_000);
    expect(ipLine).toBeTruthy();
    await r.waitFor(new RegExp(`pod/web: port 80 → 127\\.0\\.0\\.1:${port}`));
    await r.waitFor(/\[c\] serving/);
    const ps = await run([...env.globals, 'ps']);
    expect(ps.stdout).toMatch(new RegExp(`^NAME\\s+NAMESPACE\\s+STATUS\\s+OWNER PID\\s+AGE\\nweb\\s+default\\s+Running\\s+${r.child.pid}\\s+\\d+s\\n$`));
    expect((await run([...env.globals, 'ps', '-q'])).stdout).toBe('web\n');
    r.child.kill('SIGINT');
    const done = await r.done;
    expect(done.code).toBe(130);
    expect((await run([...env.globals, 'ps'])).stdout).toBe('');
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('--quiet prints the containers\' logs, nothing else (warnings included)', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'q.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: q }
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo quiet-line; echo to-stderr >&2"]
      resources: { limits: { ephemeral-storage: 1Gi } }
`);
    const r = await run([...env.globals, 'run', '--quiet', ...env.nodeFlags, f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('[main] quiet-line\n');
    // all that is left on stderr is the container's stderr
    expect(r.stderr.trimEnd().split('\n')).toEqual(['[main] to-stderr']);
    const loud = await run([...env.globals, 'run', ...env.nodeFlags, f]);
    expect(loud.stderr).toMatch(/pod\/q: Succeeded/);
    expect(loud.stderr).toMatch(/warning: Pod "q"/);
    await sleep(0);
    expect(leftovers(env).join('\n')).toBe('');
  });
});


