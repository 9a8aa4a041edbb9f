// `nodelet daemon`: the long-running node agent. Config file + flags, pod
// recovery from <root>/pods/ and the runtime's state (containers keep
// running across a daemon restart), static pods from a manifest directory
// (kubelet's file source: add/change/remove a file → create/replace/delete
// its pods; fs.watch plus a periodic rescan), and the API on a unix socket.
import fs from 'node:fs';
import YAML from 'yaml';
import { getLogger } from '../log.js';
import { createAgent, type AgentConfig } from '../agent/setup.js';
import type { NodeAgent } from '../agent/node-agent.js';
import { ApiServer } from '../api/server.js';
import { FileSource } from '../agent/file-source.js';
import { ClusterMode, defaultNodeName } from '../cluster/cluster.js';
import { reapRunOrphans } from '../agent/run-owner.js';
import type { FeatureGates } from '../node/feature-gates.js';

const log = getLogger('daemon');

export interface DaemonConfig extends AgentConfig {
  manifestDir?: string;
  socket: string;
  /** Rescan interval of the manifest dir (ms), default 20 s (kubelet's fileCheckFrequency). */
  rescanMs?: number;
  /** Cluster mode: the kubeconfig of this node's identity (CN=system:node:<name>). */
  kubeconfig?: string;
  /** Cluster mode: the Node's name (default the host name) and InternalIP (default detected). */
  nodeName?: string;
  nodeIP?: string;
  /** --max-pods, --kube-reserved, --system-reserved (kubelet's flags): the allocatable pods are admitted against. */
  maxPods?: number;
  kubeReserved?: Record<string, string>;
  systemReserved?: Record<string, string>;
  /** Cluster mode: node status and lease periods (ms), for tests. */
  nodeStatusUpdateMs?: number;
  leaseRenewMs?: number;
  /** Cluster mode: the kubelet server (src/kubelet): --kubelet-port (default 10250, 0 = none), --kubelet-address (default 0.0.0.0), --client-ca-file */
  kubeletPort?: number;
  kubeletAddress?: string;
  clientCAFile?: string;
  /** Cluster mode: --feature-gates / featureGates (src/node/feature-gates.ts); ExtendWebSocketsToKubelet=false: not declared */
  featureGates?: FeatureGates;
}

/** Config file keys (YAML/JSON), camelCase like a KubeletConfiguration. */
export function loadConfigFile(file: string): Partial<DaemonConfig> {
  const text = fs.readFileSync(file, 'utf8');
  const doc = YAML.parse(text) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file}: the config must be a mapping`);
  const known = ['root', 'runRoot', 'manifestDir', 'socket', 'cgroupParent', 'cniConfDir', 'cniBinDirs', 'podCidr', 'bridgeName', 'maxParallelPulls', 'rescanMs', 'allowedUnsafeSysctls', 'seccompDefault', 'podPidsLimit', 'podLogDir', 'containerLogLinkDir',
    'kubeconfig', 'nodeName', 'nodeIP', 'maxPods', 'kubeReserved', 'systemReserved', 'kubeletPort', 'kubeletAddress', 'clientCAFile', 'featureGates'];
  for (const k of Object.keys(doc)) if (!known.includes(k)) throw new Error(`${file}: unknown config key "${k}" (known: ${known.join(', ')})`);
  return doc as Partial<DaemonConfig>;
}

export class Daemon {
  private constructor(
    readonly cfg: DaemonConfig,
    readonly agent: NodeAgent,
    private readonly api: ApiServer,
    private readonly files: FileSource | undefined,
    private readonly closeAgent: () => Promise<void>,
    readonly cluster: ClusterMode | undefined,
  ) {}

  static async start(cfg: DaemonConfig): Promise<Daemon> {
    let cluster: ClusterMode | undefined;
    const nodeName = cfg.kubeconfig ? (cfg.nodeName ?? defaultNodeName()) : cfg.nodeName;
    // kubelet's node-level admission runs against the Node's allocatable once cluster mode knows it;
    // standalone, against this host's (createAgent's default)
    const { agent, close } = await createAgent({ ...cfg, nodeName, ...(cfg.nodeIP ? { hostIPs: [cfg.nodeIP] } : {}), ...(cfg.kubeconfig ? { admit: (pod, admitted) => cluster?.admit(pod, admitted) } : {}) });
    // 1. Recover pods persisted by a previous daemon (their containers kept running).
    const recovered = agent.recover();
    if (recovered.length) log.info('recovered pods', { count: recovered.length });
    // Pods left by a `nodelet run` that is gone (SIGKILL) are removed, with a warning (src/agent/run-owner.ts).
    reapRunOrphans(agent, (line) => log.warn(line), { root: cfg.root });
    // 2. API: pods created through it belong to the 'api' source.
    const api = new ApiServer({ agent, socket: cfg.socket, source: agent.config.source('api'), node: { name: nodeName, rootDir: cfg.root, nodeIP: cfg.nodeIP } });
    await api.listen();
    // 3. Static pods: the manifest directory is the 'file' source.
    let files: FileSource | undefined;
    if (cfg.manifestDir) {
      files = new FileSource({
        dir: cfg.manifestDir,
        source: agent.config.source('file'),
        lookup: (ns, name) => agent.findPod(ns, name)?.pod.metadata.uid,
        rescanMs: cfg.rescanMs,
        ...(cfg.kubeconfig ? { nodeName } : {}),
      });
      files.start();
    }
    // 4. Cluster mode: the node registers with the API server and takes the pods bound to it.
    if (cfg.kubeconfig) {
      cluster = await ClusterMode.start(agent, {
        kubeconfig: cfg.kubeconfig, nodeName, nodeIP: cfg.nodeIP, root: cfg.root,
        statusConfig: { ...(cfg.maxPods ? { maxPods: cfg.maxPods } : {}), ...(cfg.kubeReserved ? { kubeReserved: cfg.kubeReserved } : {}), ...(cfg.systemReserved ? { systemReserved: cfg.systemReserved } : {}) },
        nodeStatusUpdateMs: cfg.nodeStatusUpdateMs, leaseRenewMs: cfg.leaseRenewMs,
        kubeletPort: cfg.kubeletPort, kubeletAddress: cfg.kubeletAddress, clientCAFile: cfg.clientCAFile, featureGates: cfg.featureGates,
      });
    }
    log.info('nodelet daemon ready', { socket: cfg.socket, manifestDir: cfg.manifestDir, root: cfg.root, runRoot: cfg.runRoot, ...(cluster ? { node: cluster.nodeName, server: cluster.client.server } : {}) });
    return new Daemon(cfg, agent, api, files, close, cluster);
  }

  /** Stop serving; containers keep running (a new daemon re-adopts them). */
  async stop(): Promise<void> {
    await this.cluster?.stop();
    this.files?.stop();
    await this.api.close();
    await this.closeAgent();
  }
}
