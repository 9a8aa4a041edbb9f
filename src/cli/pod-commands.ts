// Pod verbs: `nodelet run` (foreground, no daemon), `nodelet daemon`, and the
// kubectl-like client verbs that talk to the daemon's API.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { GlobalsFn } from './globals.js';
import { configureLogging } from '../log.js';
import { registerClientCommands } from './client-commands.js';
import type { DaemonConfig } from '../daemon/daemon.js';
import { resolveFeatureGates } from '../node/feature-gates.js';

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function splitList(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter(Boolean);
}

// The defaults as kubelet/containerd have them (src/network/pod-network.ts, src/agent/setup.ts); kept literal so
// `--help` needs no import of the network or agent modules.
const CNI_CONF_HELP = 'CNI network configuration directory: the first *.conflist/*.conf/*.json in it is the pod network; the built-in one is written there when it has none (default /etc/cni/net.d)';
const CNI_BIN_HELP = 'CNI plugin directory, repeatable (default /opt/cni/bin, then Debian\'s /usr/lib/cni)';
const POD_LOG_HELP = 'container logs, kubelet\'s layout <dir>/<ns>_<pod>_<uid>/<container>/<restart>.log (default /var/log/pods)';
const LOG_LINK_HELP = 'symlinks <pod>_<ns>_<container>-<id>.log to the logs, for log shippers (default /var/log/containers; "" = none)';

export function registerPodCommands(program: Command, globals: GlobalsFn): void {
  program
    .command('run')
    .description('run the pods of a manifest in the foreground (no daemon): logs, state changes, exit code of the pod')
    .argument('<file>', 'Pod manifest (YAML or JSON; ConfigMaps and Secrets may come along)')
    .option('--cgroup-parent <path>', 'parent cgroup of the pods', '/nodelet')
    .option('--cni-conf-dir <dir>', CNI_CONF_HELP)
    .option('--cni-bin-dir <dir>', CNI_BIN_HELP, collect)
    .option('--pod-log-dir <dir>', POD_LOG_HELP)
    .option('--container-log-link-dir <dir>', LOG_LINK_HELP)
    .option('--pod-cidr <cidr>', 'subnet of the built-in pod network (default 10.244.0.0/16)')
    .option('--bridge-name <name>', 'bridge of the built-in pod network (default nodelet0)')
    .option('--backoff-initial <ms>', 'initial restart back-off in ms (default 10000; for tests)')
    .option('--backoff-max <ms>', 'maximum restart back-off in ms (default 300000; for tests)')
    .option('--allowed-unsafe-sysctls <list>', 'comma-separated unsafe sysctls or prefixes (kernel.msg*,net.core.somaxconn) pods may set, as kubelet\'s flag')
    .option('--seccomp-default', 'RuntimeDefault seccomp for containers whose pod sets no profile (kubelet\'s seccompDefault)')
    .option('--pod-max-pids <n>', 'pids.max of each pod\'s cgroup, as kubelet\'s flag (default -1: no limit)')
    .option('-d, --detach', 'hand the pods to the running daemon instead (see --socket)')
    .option('--socket <path>', 'daemon socket for --detach (default $NODELET_SOCKET or /run/nodelet/nodelet.sock)')
    .option('-q, --quiet', 'print only the containers\' logs')
    .option('--retry <n>', 'pull attempts of an image before giving up (with kubelet\'s back-off between them; 0 = keep trying)', '3')
    .action(async (file: string, o: Record<string, any>) => {
      const g = globals();
      // the foreground view is the pod's own output: the agent's info logs only with an explicit --log-level
      if (program.getOptionValueSource('logLevel') !== 'cli') configureLogging({ level: 'warn' });
      if (o.detach) {
        const { applyFile } = await import('./client-commands.js');
        await applyFile(o.socket, file);
        return;
      }
      const { runPods } = await import('./pod-run.js');
      const code = await runPods({
        file, root: g.root, runRoot: g.runRoot, layerLimits: g.layerLimits, cgroupParent: o.cgroupParent, cniConfDir: o.cniConfDir, cniBinDirs: o.cniBinDir,
        podLogDir: o.podLogDir, containerLogLinkDir: o.containerLogLinkDir,
        podCidr: o.podCidr, bridgeName: o.bridgeName, quiet: o.quiet, pullAttempts: parseRetry(o.retry), allowedUnsafeSysctls: splitList(o.allowedUnsafeSysctls), seccompDefault: !!o.seccompDefault, podPidsLimit: parsePodMaxPids(o.podMaxPids),
        backoff: o.backoffInitial || o.backoffMax ? { initialMs: o.backoffInitial ? Number(o.backoffInitial) : undefined, maxMs: o.backoffMax ? Number(o.backoffMax) : undefined } : undefined,
      });
      process.exitCode = code;
    });

  program
    .command('daemon')
    .description('run the node agent: static pods from --manifest-dir, the API on --socket')
    .option('--config <file>', 'config file (YAML; keys: root, runRoot, manifestDir, socket, cgroupParent, cniConfDir, cniBinDirs, podLogDir, containerLogLinkDir, podCidr, bridgeName, maxParallelPulls, rescanMs, allowedUnsafeSysctls, seccompDefault, podPidsLimit, ...)')
    .option('--manifest-dir <dir>', 'static pod manifests (default /etc/nodelet/manifests)')
    .option('--socket <path>', 'API socket (default /run/nodelet/nodelet.sock)')
    .option('--cgroup-parent <path>', 'parent cgroup of the pods (default /nodelet)')
    .option('--cni-conf-dir <dir>', CNI_CONF_HELP)
    .option('--cni-bin-dir <dir>', CNI_BIN_HELP, collect)
    .option('--pod-log-dir <dir>', POD_LOG_HELP)
    .option('--container-log-link-dir <dir>', LOG_LINK_HELP)
    .option('--pod-cidr <cidr>', 'subnet of the built-in pod network')
    .option('--bridge-name <name>', 'bridge of the built-in pod network')
    .option('--max-parallel-pulls <n>', 'concurrent layer downloads')
    .option('--allowed-unsafe-sysctls <list>', 'comma-separated unsafe sysctls or prefixes (kernel.msg*,net.core.somaxconn) pods may set, as kubelet\'s flag')
    .option('--seccomp-default', 'RuntimeDefault seccomp for containers whose pod sets no profile (kubelet\'s seccompDefault)')
    .option('--pod-max-pids <n>', 'pids.max of each pod\'s cgroup, as kubelet\'s flag (default -1: no limit)')
    .option('--backoff-initial <ms>', 'initial restart back-off in ms (default 10000; for tests)')
    .option('--backoff-max <ms>', 'maximum restart back-off in ms (default 300000; for tests)')
    .option('--rescan <ms>', 'manifest directory rescan interval (default 20000)')
    .option('--container-log-max-size <bytes>', 'rotate a container log at this size (default 10485760)')
    .option('--container-log-max-files <n>', 'log files kept per container (default 5)')
    .option('--kubeconfig <file>', 'cluster mode: join the API server of this kubeconfig as a node (its user: CN=system:node:<name>, O=system:nodes)')
    .option('--node-name <name>', 'cluster mode: the Node\'s name (default: the host name)')
    .option('--node-ip <ip>', 'cluster mode: the InternalIP to report (default: the address of the default route)')
    .option('--max-pods <n>', 'pods this node admits (default 110; standalone too, as kubelet)')
    .option('--kube-reserved <list>', 'resources reserved for the node agent, taken off allocatable for admission, e.g. cpu=100m,memory=256Mi')
    .option('--system-reserved <list>', 'resources reserved for the system, taken off allocatable for admission, e.g. cpu=100m,memory=256Mi')
    .option('--node-status-update-frequency <ms>', 'cluster mode: node status period in ms (default 10000)')
    .option('--kubelet-port <port>', 'cluster mode: port of the kubelet API (logs, exec, stats for the API server; default 10250, 0 = off)')
    .option('--kubelet-address <ip>', 'cluster mode: address the kubelet API binds (default 0.0.0.0)')
    .option('--client-ca-file <file>', 'cluster mode: CA bundle for the kubelet API\'s client certificates (default: the kubeconfig\'s cluster CA)')
    .option('--feature-gates <list>', 'cluster mode: kubelet feature gates, NAME=BOOL,... (known: ExtendWebSocketsToKubelet, default true)')
    .action(async (o: Record<string, any>) => {
      const g = globals();
      const { Daemon, loadConfigFile } = await import('../daemon/daemon.js');
      const defaultConfig = '/etc/nodelet/config.yaml';
      const file = o.config ?? (fs.existsSync(defaultConfig) ? defaultConfig : undefined);
      const fc: Partial<DaemonConfig> = file ? loadConfigFile(file) : {};
      const rootSet = program.getOptionValueSource('root') === 'cli';
      const runRootSet = program.getOptionValueSource('runRoot') === 'cli';
      const cfg: DaemonConfig = {
        root: rootSet || !fc.root ? g.root : fc.root,
        runRoot: runRootSet || !fc.runRoot ? g.runRoot : fc.runRoot,
        layerLimits: g.layerLimits,
        manifestDir: o.manifestDir ?? fc.manifestDir ?? '/etc/nodelet/manifests',
        socket: o.socket ?? fc.socket ?? '/run/nodelet/nodelet.sock',
        cgroupParent: o.cgroupParent ?? fc.cgroupParent ?? '/nodelet',
        cniConfDir: o.cniConfDir ?? fc.cniConfDir,
        cniBinDirs: o.cniBinDir ?? fc.cniBinDirs,
        podLogDir: o.podLogDir ?? fc.podLogDir,
        containerLogLinkDir: o.containerLogLinkDir ?? fc.containerLogLinkDir,
        podCidr: o.podCidr ?? fc.podCidr,
        bridgeName: o.bridgeName ?? fc.bridgeName,
        maxParallelPulls: o.maxParallelPulls ? Number(o.maxParallelPulls) : fc.maxParallelPulls,
        rescanMs: o.rescan ? Number(o.rescan) : fc.rescanMs,
        allowedUnsafeSysctls: splitList(o.allowedUnsafeSysctls) ?? fc.allowedUnsafeSysctls,
        seccompDefault: o.seccompDefault ?? fc.seccompDefault,
        podPidsLimit: o.podMaxPids !== undefined ? parsePodMaxPids(o.podMaxPids) : fc.podPidsLimit,
        logMaxBytes: o.containerLogMaxSize ? Number(o.containerLogMaxSize) : undefined,
        logMaxFiles: o.containerLogMaxFiles ? Number(o.containerLogMaxFiles) : undefined,
        kubeconfig: o.kubeconfig ?? fc.kubeconfig,
        nodeName: o.nodeName ?? fc.nodeName,
        nodeIP: o.nodeIp ?? fc.nodeIP,
        maxPods: o.maxPods ? Number(o.maxPods) : fc.maxPods,
        kubeReserved: parseResourceList('--kube-reserved', o.kubeReserved) ?? fc.kubeReserved,
        systemReserved: parseResourceList('--system-reserved', o.systemReserved) ?? fc.systemReserved,
        nodeStatusUpdateMs: o.nodeStatusUpdateFrequency ? Number(o.nodeStatusUpdateFrequency) : undefined,
        kubeletPort: o.kubeletPort !== undefined ? parsePort('--kubelet-port', o.kubeletPort) : fc.kubeletPort,
        kubeletAddress: o.kubeletAddress ?? fc.kubeletAddress,
        clientCAFile: o.clientCaFile ?? fc.clientCAFile,
        featureGates: resolveFeatureGates(o.featureGates, fc.featureGates),
        backoff: o.backoffInitial || o.backoffMax ? { initialMs: o.backoffInitial ? Number(o.backoffInitial) : undefined, maxMs: o.backoffMax ? Number(o.backoffMax) : undefined } : undefined,
      };
      const d = await Daemon.start(cfg);
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          process.stderr.write(`nodelet daemon: ${sig}, stopping (containers keep running)\n`);
          resolve();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      await d.stop();
    });

  registerClientCommands(program);
}

function parsePodMaxPids(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1 || n === 0) throw new Error(`--pod-max-pids: "${v}" is not a number of processes (-1 = no limit)`);
  return n;
}

function parseRetry(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--retry: "${v}" is not a number of attempts (0 = keep trying)`);
  return n;
}

function parsePort(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag}: "${v}" is not a port (0-65535)`);
  return n;
}

/** kubelet's `cpu=100m,memory=256Mi` resource lists. */
function parseResourceList(flag: string, v: string | undefined): Record<string, string> | undefined {
  if (!v) return undefined;
  const out: Record<string, string> = {};
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-z0-9.\/-]+)=(.+)$/i.exec(part);
    if (!m) throw new Error(`${flag}: "${part}" is not NAME=QUANTITY (e.g. cpu=100m,memory=256Mi)`);
    out[m[1]!] = m[2]!;
  }
  return out;
}
