// One node of a real cluster for the kubelet e2e files (kubelet-api, kubelet-portforward, kubelet-spdy-exec):
// the v1.36 control plane on 127.0.0.1 of the test's own network namespace, the node's InternalIP on its lo,
// and a real `nodelet daemon --kubeconfig` serving the kubelet API on that IP. Also the small helpers those
// files share: freePort, sh, tmux / withTmux (kubectl in a real terminal), streamingRequests (the API server's metric), and
// the stdin reader pod that kubectl attach -i is tried on (attachablePod, attachToReader).
import { expect } from 'vitest';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { makeEnv, leftovers, removeCgroup, waitUntil, BUSYBOX, type Env } from './helpers.js';
import { startDaemon, type DaemonHandle } from './daemon-helpers.js';

/** A free TCP port on `host` (closed again at once). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A command's exit code and output; never rejects. */
export function sh(cmd: string, args: string[], input?: string, timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    c.stdin?.on('error', () => undefined); // EPIPE from a command that does not read its input
    c.stdin?.end(input ?? '');
  });
}

/** kubectl as the admin: its stdout, or an error with its stderr and the end of the daemon's. */
export type Kubectl = (args: string[], input?: string) => Promise<string>;

/** apiserver_websocket_streaming_requests_total for a subresource (exec, attach, portforward), by proxy_type */
export async function streamingRequests(kubectl: Kubectl, subresource: string): Promise<Record<string, number>> {
  const m = await kubectl(['get', '--raw', '/metrics']);
  const out: Record<string, number> = {};
  for (const x of m.matchAll(/^apiserver_websocket_streaming_requests_total\{([^}]*)\} (\d+)$/gm)) {
    if (!x[1]!.includes(`subresource="${subresource}"`)) continue;
    out[/proxy_type="([^"]+)"/.exec(x[1]!)![1]!] = Number(x[2]);
  }
  return out;
}

/** kubectl in a detached tmux session (a real terminal, 80x24): keys in, the screen out, the exit code at the end. */
export async function tmux(cp: ControlPlane, env: Env, args: string[]) {
  const sock = `nodelet-tmux-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const rc = path.join(env.dir, `${sock}.rc`);
  const t = (a: string[]) => sh('tmux', ['-L', sock, ...a]);
  const cmd = [path.join(cp.binDir, 'kubectl'), '--kubeconfig', cp.kubeconfig, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const started = await t(['-f', '/dev/null', 'new-session', '-d', '-s', 'k', '-x', '80', '-y', '24', `${cmd}; echo $? > ${rc}; sleep 600`]);
  if (started.code !== 0) throw new Error(`tmux: ${started.stderr}`);
  await t(['set-option', '-t', 'k', 'window-size', 'manual']);
  const screen = async () => (await t(['capture-pane', '-p', '-J', '-t', 'k', '-S', '-200'])).stdout.replace(/[ \t]+$/gm, '');
  return {
    /** the pane and its scrollback, trailing blanks trimmed */
    screen,
    keys: async (...k: string[]) => void (await t(['send-keys', '-t', 'k', ...k])),
    resize: async (cols: number, rows: number) => void (await t(['resize-window', '-t', 'k', '-x', String(cols), '-y', String(rows)])),
    until: (re: RegExp, what: string) =>
      waitUntil(async () => re.test(await screen()) || undefined, 20_000, what).catch(async (e) => {
        throw new Error(`${(e as Error).message}; screen:\n${await screen()}`);
      }),
    exitCode: () => waitUntil(() => (fs.existsSync(rc) ? Number(fs.readFileSync(rc, 'utf8').trim()) : undefined), 20_000, 'kubectl exited'),
    kill: () => void t(['kill-server']),
  };
}

export type Tmux = Awaited<ReturnType<typeof tmux>>;

/** `fn` with kubectl in a tmux session (see tmux), the session killed after it whatever happens (kubectl gone: an attach detached). */
export async function withTmux<T>(cp: ControlPlane, env: Env, args: string[], fn: (t: Tmux) => Promise<T>): Promise<T> {
  const t = await tmux(cp, env, args);
  try {
    return await fn(t);
  } finally {
    t.kill();
  }
}

/**
 * Pod "attachable" (restartPolicy Never): its container "reader" (stdin, stdinOnce) says "ready", then answers
 * each line it reads with got:<line> on stdout and err:<line> on stderr, and "stdin closed" at EOF. `more`: more
 * containers, YAML items of its `containers:`.
 */
export function attachablePod(more = ''): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: attachable }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: reader
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      stdin: true
      stdinOnce: true
      command: [sh, -c, 'echo ready; while read l; do echo "got:$l"; echo "err:$l" >&2; done; echo "stdin closed"']
${more}`;
}

/**
 * `kubectl attach -i` to attachablePod's reader once it is ready: the lines go in, stdout and stderr come back
 * apart, kubectl's EOF closes the container's stdin (stdinOnce) and the reader exits. `logs`: the kubectl args
 * that read the reader's log. Returns that log's lines after.
 */
export async function attachToReader(n: ClusterNode, logs: string[]): Promise<string[]> {
  await waitUntil(async () => (await n.kubectl(logs)).includes('ready') || undefined, 20_000, 'reader ready');
  const r = await n.cp.kubectl(['attach', '-i', 'attachable', '-c', 'reader'], { input: 'one\ntwo\n', timeoutMs: 60_000 });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('got:one\ngot:two\n');
  expect(r.stdout).not.toContain('ready'); // attach sees the output from then on
  expect(r.stderr).toContain('err:one\nerr:two\n');
  await waitUntil(async () => (await n.json(['get', 'pod', 'attachable'])).status.containerStatuses.find((c: any) => c.name === 'reader')?.state?.terminated || undefined, 30_000, 'reader exited');
  const logged = (await n.kubectl(logs)).split('\n');
  expect(logged.filter((l) => !l.startsWith('err:'))).toEqual(['ready', 'got:one', 'got:two', 'stdin closed', '']);
  return logged;
}

export interface ClusterNodeOptions {
  /** the Node's name */
  node: string;
  /**
   * The node's InternalIP, put on lo of the test's network namespace. Not 127.0.0.1: kube-apiserver's
   * nodes/<n>/proxy refuses addresses that are not global unicast ("address not allowed",
   * pkg/registry/core/node/strategy.go).
   */
  ip: string;
  /** the test file, for the message that says how to run it in a network namespace of its own */
  testFile: string;
  /** more flags for the first daemon (after the fixture's own) */
  daemonFlags?: string[];
  /** the daemon logs at debug level */
  debug?: boolean;
}

export interface ClusterNode {
  /** Puts the IP on lo, starts the control plane and the daemon, waits for the Node to be Ready (the file's beforeAll). */
  start(): Promise<void>;
  /** (cp, env, daemon and kubeletPort are there once start() has got that far) */
  readonly cp: ControlPlane;
  readonly env: Env;
  /** the daemon running now (restartDaemon replaces it) */
  readonly daemon: DaemonHandle;
  readonly kubeletPort: number;
  kubectl: Kubectl;
  /** kubectl … -o json, parsed */
  json(args: string[]): Promise<any>;
  /** Stops the daemon (if it still runs) and starts a new one with the fixture's flags and `extraFlags` (not the first daemon's daemonFlags). */
  restartDaemon(extraFlags?: string[]): Promise<DaemonHandle>;
  /**
   * Deletes every pod, waits for what they leave behind, stops the daemon, takes the control plane down and
   * removes the env, as far as start() got; returns what was left behind (expect it to be []). `afterDaemonStop`
   * adds the file's own checks while the env is still there.
   */
  teardown(opts?: { afterDaemonStop?: () => string[] }): Promise<string[]>;
}

/**
 * One node of a cluster, started by start(): create it at the top of the file, start() in beforeAll, teardown()
 * in afterAll (also after a start() that failed half-way). Only ever inside the test's own network namespace
 * (unshare --net), never on the host's lo.
 */
export function clusterNode(opts: ClusterNodeOptions): ClusterNode {
  let cp: ControlPlane | undefined;
  let env: Env | undefined;
  let daemon: DaemonHandle | undefined;
  let kubeletPort: number | undefined;
  const started = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`cluster node ${opts.node}: no ${what} (start() has not got that far)`);
    return x;
  };

  const kubectl: Kubectl = async (args, input) => {
    const r = await started(cp, 'control plane').kubectl(args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code}: ${r.stderr}\n--- daemon:\n${daemon?.proc.stderr().slice(-3000)}`);
    return r.stdout;
  };
  const json = async (args: string[]) => JSON.parse(await kubectl([...args, '-o', 'json']));

  const launch = async (extra: string[]): Promise<DaemonHandle> => {
    const kc = await started(cp, 'control plane').nodeKubeconfig(opts.node);
    daemon = await startDaemon(started(env, 'env'), ['--kubeconfig', kc, '--node-name', opts.node, '--node-ip', opts.ip, '--node-status-update-frequency', '2000',
      '--kubelet-port', String(started(kubeletPort, 'kubelet port')), '--kubelet-address', opts.ip, ...extra]);
    return daemon;
  };

  return {
    async start() {
      // (a fresh network namespace has lo and nothing else)
      if (Object.keys(os.networkInterfaces()).some((i) => i !== 'lo'))
        throw new Error(`run this test inside its own network namespace: unshare --net -- bash -c 'ip link set lo up && exec npx vitest run ${opts.testFile}'`);
      const ip = await sh('ip', ['addr', 'replace', `${opts.ip}/32`, 'dev', 'lo']);
      if (ip.code !== 0) throw new Error(`ip addr add ${opts.ip} dev lo: ${ip.stderr}`);
      cp = await startControlPlane();
      // (scripts/control-plane binds the API server's kubelet client to system:kubelet-api-admin, as kubeadm does;
      // without that every kubectl logs/exec would be 403 from the node)
      env = makeEnv();
      if (opts.debug) env.globals = env.globals.map((g) => (g === 'warn' ? 'debug' : g));
      kubeletPort = await freePort(opts.ip);
      await launch(opts.daemonFlags ?? []);
      await waitUntil(async () => (await json(['get', 'node', opts.node]).catch(() => undefined))?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True' || undefined, 40_000, `${opts.node} Ready`);
    },
    get cp() { return started(cp, 'control plane'); },
    get env() { return started(env, 'env'); },
    get daemon() { return started(daemon, 'daemon'); },
    get kubeletPort() { return started(kubeletPort, 'kubelet port'); },
    kubectl, json,
    async restartDaemon(extraFlags = []) {
      await daemon?.stop();
      return launch(extraFlags);
    },
    async teardown({ afterDaemonStop } = {}) {
      await cp?.kubectl(['delete', 'pods', '--all', '--wait=true', '--timeout=60s']).catch(() => undefined);
      let leaks: string[] = [];
      const e = env;
      if (e) {
        await waitUntil(() => leftovers(e, { daemon: true }).filter((l) => !l.startsWith('process')).length === 0 || undefined, 60_000, 'pods gone').catch(() => undefined);
        leaks = leftovers(e, { daemon: true }).filter((l) => !l.startsWith('process'));
      }
      await daemon?.stop().catch(() => undefined);
      if (e && afterDaemonStop) leaks.push(...afterDaemonStop());
      await cp?.down();
      if (e) {
        removeCgroup(e.cgroupParent);
        fs.rmSync(e.dir, { recursive: true, force: true });
      }
      return leaks;
    },
  };
}
