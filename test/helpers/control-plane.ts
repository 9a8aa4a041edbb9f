// Test fixture: a real Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler v1.36) on 127.0.0.1, started by
// `scripts/control-plane up` inside the caller's network namespace.
//
// API (stable; other suites code against it):
//
//   import { startControlPlane, type ControlPlane } from '../../helpers/control-plane.js';
//
//   let cp: ControlPlane;
//   beforeAll(async () => { cp = await startControlPlane(); }, 1_800_000); // a first run may build Kubernetes
//   afterAll(async () => { await cp?.down(); });
//
//   interface ControlPlane {
//     dir: string;              // state dir ($CONTROL_PLANE_DIR): certs, logs, pids
//     kubeconfig: string;       // admin kubeconfig (O=system:masters)
//     binDir: string;           // kube-apiserver, kubectl (v1.36), etcd ...
//     server: string;           // https://127.0.0.1:<port>
//     caFile: string;           // cluster CA certificate (PEM file)
//     etcdUrl: string;          // http://127.0.0.1:<port> (plain HTTP; e.g. to compact and provoke 410 Gone)
//     kubectl(args: string[], opts?: { kubeconfig?: string; input?: string; timeoutMs?: number; cwd?: string })
//       : Promise<{ code: number; stdout: string; stderr: string }>;   // never throws on exit code
//     nodeKubeconfig(name: string): Promise<string>;  // CN=system:node:<name>, O=system:nodes
//     down(): Promise<void>;    // idempotent; KEEP=1 in the env keeps the state dir
//   }
//
//   startControlPlane(opts?: { env?: Record<string, string> })
//     env is passed to `scripts/control-plane up`, e.g. { NODE_MONITOR_GRACE_PERIOD: '20s' }.
//
// Start it once per test file (beforeAll). It fails loudly (throws, with the
// build or component log tail) when the binaries cannot be built or a
// component does not come up — it never skips. If the test process dies
// without afterAll, the script's watchdog (CONTROL_PLANE_OWNER_PID = this
// process) takes the control plane down within ~2 s.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const controlPlaneScript = path.join(repoRoot, 'scripts', 'control-plane');

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ControlPlane {
  dir: string;
  kubeconfig: string;
  binDir: string;
  server: string;
  caFile: string;
  etcdUrl: string;
  kubectl(args: string[], opts?: { kubeconfig?: string; input?: string; timeoutMs?: number; cwd?: string }): Promise<KubectlResult>;
  nodeKubeconfig(name: string): Promise<string>;
  down(): Promise<void>;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 0, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', ...(opts.cwd ? { cwd: opts.cwd } : {}) },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
        let code = 0;
        if (e) code = typeof e.code === 'number' ? e.code : e.killed ? 124 : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (e && typeof e.code !== 'number' ? `\n${e.message}` : '') });
      },
    );
    child.stdin?.on('error', () => undefined); // EPIPE: the command exited without reading its input
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Parses `export K=V` lines (values may be single-quoted). */
function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2];
    if (v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1).replace(/'\\''/g, "'");
    else if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

export async function startControlPlane(opts: { env?: Record<string, string> } = {}): Promise<ControlPlane> {
  const env: NodeJS.ProcessEnv = { ...process.env, CONTROL_PLANE_OWNER_PID: String(process.pid), ...opts.env };
  delete env.CONTROL_PLANE_DIR; // always a fresh state dir per fixture
  // CONTROL_PLANE_OWNER_PID: the script's watchdog runs `down` if this test process dies without afterAll
  // First run on a machine may build Kubernetes (minutes); the script waits on the build lock.
  const up = await run(controlPlaneScript, ['up'], { env, timeoutMs: 3_600_000 });
  const upEnv = parseEnv(up.stdout);
  const dir = upEnv.CONTROL_PLANE_DIR;
  if (up.code !== 0 || !dir) {
    if (dir) await run(controlPlaneScript, ['down'], { env: { ...env, CONTROL_PLANE_DIR: dir } });
    throw new Error(
      `scripts/control-plane up failed (exit ${up.code}); the cluster tests cannot run without a control plane.\n` +
        `stdout:\n${up.stdout}\nstderr:\n${up.stderr}`,
    );
  }
  const cpEnv: NodeJS.ProcessEnv = { ...env, CONTROL_PLANE_DIR: dir };
  const envOut = await run(controlPlaneScript, ['env'], { env: cpEnv });
  if (envOut.code !== 0) throw new Error(`scripts/control-plane env failed: ${envOut.stderr}`);
  const vars = parseEnv(envOut.stdout);
  const kubeconfig = vars.KUBECONFIG;
  const binDir = vars.CONTROL_PLANE_BIN;
  const server = vars.CONTROL_PLANE_SERVER;
  const caFile = path.join(dir, 'pki', 'ca.crt');
  if (!kubeconfig || !binDir || !server) throw new Error(`scripts/control-plane env printed no KUBECONFIG/CONTROL_PLANE_BIN/CONTROL_PLANE_SERVER:\n${envOut.stdout}`);
  readFileSync(kubeconfig); // throws if missing
  const etcdPort = /^etcd_client_port=(\d+)$/m.exec(readFileSync(path.join(dir, 'ports'), 'utf8'))?.[1];
  if (!etcdPort) throw new Error(`no etcd_client_port in ${dir}/ports`);
  const kubectlPath = path.join(binDir, 'kubectl');
  let downed: Promise<void> | undefined;

  return {
    dir,
    kubeconfig,
    binDir,
    server,
    caFile,
    etcdUrl: `http://127.0.0.1:${etcdPort}`,
    kubectl: (args, o = {}) =>
      run(kubectlPath, args, {
        env: { ...cpEnv, KUBECONFIG: o.kubeconfig ?? kubeconfig, PATH: `${binDir}:${process.env.PATH ?? ''}` },
        input: o.input,
        timeoutMs: o.timeoutMs ?? 60_000,
        cwd: o.cwd,
      }),
    nodeKubeconfig: async (name) => {
      const r = await run(controlPlaneScript, ['node-kubeconfig', name], { env: cpEnv });
      if (r.code !== 0) throw new Error(`scripts/control-plane node-kubeconfig ${name} failed (exit ${r.code}): ${r.stderr}`);
      return r.stdout.trim();
    },
    down: () =>
      (downed ??= (async () => {
        const r = await run(controlPlaneScript, ['down'], { env: cpEnv, timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`scripts/control-plane down failed (exit ${r.code}): ${r.stderr}`);
      })()),
  };
}
