// Wires the subsystems into a NodeAgent: ImageService, cgroups, namespace
// pinner + CNI, NodeletRuntime (re-adopting whatever runs), VolumeManager.
// Shared by `nodelet run` (foreground) and `nodelet daemon`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentImages } from './images.js';
import { createCgroupManager } from '../cgroups/index.js';
import { createNamespacePinner, createPodNetwork } from '../network/index.js';
import { NodeletRuntime } from '../runtime/runtime.js';
import { VolumeManager } from '../volumes/manager.js';
import type { BackoffOptions } from '../pod/backoff.js';
import { NodeAgent, type NodeAgentDeps } from './node-agent.js';
import { localAdmitter } from '../node/local-admission.js';
import { SysctlAllowlist } from '../pod/sysctls.js';
import type { LayerLimits } from '../snapshot/index.js';

export interface AgentConfig {
  root: string;
  runRoot: string;
  cgroupParent?: string;
  cniConfDir?: string;
  cniBinDirs?: string[];
  podCidr?: string;
  bridgeName?: string;
  maxParallelPulls?: number;
  /** --max-layer-size / --image-min-free: bounds checked while a layer unpacks */
  layerLimits?: LayerLimits;
  backoff?: BackoffOptions;
  resyncMs?: number;
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** Pod log root, kubelet's layout <dir>/<ns>_<pod>_<uid>/<container>/<n>.log (--pod-log-dir); default /var/log/pods */
  podLogDir?: string;
  /** Symlinks <pod>_<ns>_<container>-<id>.log for log shippers (--container-log-link-dir); default /var/log/containers, '' = none */
  containerLogLinkDir?: string;
  /** kubelet --seccomp-default: RuntimeDefault when a pod sets no seccomp profile */
  seccompDefault?: boolean;
  /** kubelet --pod-max-pids: pids.max of each pod's cgroup; -1 (default) none */
  podPidsLimit?: number;
  /** kubelet --allowed-unsafe-sysctls: names or prefixes ending in * */
  allowedUnsafeSysctls?: string[];
  /** the node's name (events, downward API spec.nodeName); default the host name */
  nodeName?: string;
  /** status.hostIP(s) of the pods (--node-ip); default the primary IPv4 */
  hostIPs?: string[];
  /** node-level admission (cluster mode: resources against the Node's allocatable); default: against this host's (src/node/local-admission.ts) */
  admit?: NodeAgentDeps['admit'];
  /** --max-pods, --kube-reserved, --system-reserved: the allocatable the default admission uses */
  maxPods?: number;
  kubeReserved?: Record<string, string>;
  systemReserved?: Record<string, string>;
}

/** kubelet's container log locations (the pod log root, and the symlinks log shippers read). */
export const DEFAULT_POD_LOG_DIR = '/var/log/pods';
export const DEFAULT_CONTAINER_LOG_LINK_DIR = '/var/log/containers';

/** images/build/ of this checkout (dist/agent → ../../images/build; src/agent too). */
export const BUILTIN_IMAGES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../images/build');

/**
 * Import a built-in image (localhost/nodelet/NAME:TAG) from images/build when
 * it exists there, through ImageService.import like `nodelet image import`:
 * blobs verified into the content store, layers applied to the snapshot store.
 */
export async function importBuiltin(images: AgentImages, ref: string, dir = BUILTIN_IMAGES_DIR): Promise<boolean> {
  let index: Record<string, { refName: string }>;
  try {
    index = JSON.parse(fs.readFileSync(path.join(dir, 'images.json'), 'utf8'));
  } catch {
    return false;
  }
  const norm = (r: string) => r.replace(/^docker\.io\//, '');
  for (const [name, v] of Object.entries(index)) {
    if (norm(v.refName) === norm(ref)) {
      await (await images.full()).import(path.join(dir, name), v.refName);
      return true;
    }
  }
  return false;
}

export async function createAgent(cfg: AgentConfig): Promise<{ agent: NodeAgent; runtime: NodeletRuntime; images: AgentImages; cgroups: Awaited<ReturnType<typeof createCgroupManager>>; close(): Promise<void> }> {
  const sysctls = new SysctlAllowlist(cfg.allowedUnsafeSysctls ?? []); // refuse a bad pattern before creating anything
  fs.mkdirSync(cfg.root, { recursive: true, mode: 0o711 });
  fs.mkdirSync(cfg.runRoot, { recursive: true, mode: 0o711 });
  const images = new AgentImages({ root: cfg.root, maxConcurrentDownloads: cfg.maxParallelPulls, layerLimits: cfg.layerLimits });
  const cgroups = await createCgroupManager({ parent: cfg.cgroupParent ?? '/nodelet' });
  const network = createPodNetwork({
    stateDir: path.join(cfg.runRoot, 'cni'),
    cniConfDir: cfg.cniConfDir,
    cniBinDirs: cfg.cniBinDirs,
    subnet: cfg.podCidr,
    bridgeName: cfg.bridgeName,
  });
  const runtime = await NodeletRuntime.open({ runRoot: path.join(cfg.runRoot, 'runtime'), root: cfg.root, images, cgroups, pinner: createNamespacePinner({}), network });
  const volumes = new VolumeManager({ root: cfg.root });
  const admit = cfg.admit ?? (await localAdmitter({
    rootDir: cfg.root, nodeName: cfg.nodeName,
    status: { ...(cfg.maxPods ? { maxPods: cfg.maxPods } : {}), ...(cfg.kubeReserved ? { kubeReserved: cfg.kubeReserved } : {}), ...(cfg.systemReserved ? { systemReserved: cfg.systemReserved } : {}) },
  }));
  const agent = new NodeAgent({ root: cfg.root, runRoot: cfg.runRoot, runtime, images, volumes, importBuiltin: (ref) => importBuiltin(images, ref), backoff: cfg.backoff, resyncMs: cfg.resyncMs, logMaxBytes: cfg.logMaxBytes, logMaxFiles: cfg.logMaxFiles, podLogDir: cfg.podLogDir || DEFAULT_POD_LOG_DIR, containerLogLinkDir: cfg.containerLogLinkDir ?? DEFAULT_CONTAINER_LOG_LINK_DIR, sysctls, seccompDefault: cfg.seccompDefault, podPidsLimit: cfg.podPidsLimit, nodeName: cfg.nodeName, admit, hostIPs: cfg.hostIPs });
  return {
    agent, runtime, images, cgroups,
    async close() {
      await agent.close();
      await runtime.close();
    },
  };
}
