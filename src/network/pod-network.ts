// Pod networking through CNI: loopback + the configured network (the first
// config file in cniConfDir, or a built-in default written there), ADD result
// cached per sandbox for CHECK and DEL, like libcni / cri-o.

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { failedPrecondition, invalidArgument, internal, isNodeletError, NodeletError } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { FS_MAGIC, statfs } from '../sys/ffi.js';
import { writeFileAtomicAsync } from '../sys/atomic.js';
import { addNetworkList, checkNetworkList, delNetworkList, findPlugin, pluginSearchPath, type CniExecOptions, type RuntimeConf } from './cni.js';
import {
  computeCniArgs,
  computeDefaultConfList,
  computeHostPortConflicts,
  computeLoopbackConfList,
  computePortMappings,
  parseAddResult,
  parseNetworkConfig,
  pickConfFile,
  supportsCheck,
  validateSubnet,
  type NetworkConfList,
} from './cni-config.js';
import type { PodNetwork, PodNetworkRequest, PodNetworkResult } from './types.js';

export interface PodNetworkOptions {
  /** State directory, e.g. <runRoot>/cni: results/ cache and the default IPAM data dir. */
  stateDir: string;
  /** Default /etc/cni/net.d (kubelet's and containerd's) */
  cniConfDir?: string;
  /** Default ['/opt/cni/bin', '/usr/lib/cni'] (upstream's, then Debian's containernetworking-plugins) */
  cniBinDirs?: string[];
  /** Pod subnet of the built-in default network; default 10.244.0.0/16. */
  subnet?: string;
  /** Bridge of the built-in default network; default 'nodelet0'. */
  bridgeName?: string;
  /** Name of the built-in default network; default 'nodelet'. */
  networkName?: string;
  logger?: Logger;
  /** Per-plugin timeout, ms (default 120 s). */
  pluginTimeoutMs?: number;
  /** PATH for plugins and the iptables check (default: the agent's PATH plus the sbin directories). */
  searchPath?: string;
}

export const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';
export const DEFAULT_CNI_BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];
export const DEFAULT_POD_SUBNET = '10.244.0.0/16';
export const DEFAULT_BRIDGE = 'nodelet0';
export const DEFAULT_NETWORK_NAME = 'nodelet';
export const DEFAULT_CONF_FILE = '10-nodelet.conflist';
const IFNAME = 'eth0';
const HOSTPORT_LOCK = '\0hostports'; // not a valid sandbox id, so no clash with the per-sandbox locks

/** What we keep per sandbox after ADD (libcni's cache: config + result). */
interface CacheEntry {
  kind: 'nodelet-cni-result';
  version: 1;
  sandboxId: string;
  netnsPath: string;
  confFile: string;
  config: NetworkConfList;
  result: unknown;
  loopbackResult: unknown;
  portMappings: RuntimeConf['portMappings'];
}

/** A record under the state or config dir, written atomically (src/sys/atomic.ts), creating its directory. */
async function writeRecord(path: string, data: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFileAtomicAsync(path, data, { mode });
}

function isLiveNetns(path: string): boolean {
  try {
    return statfs(path).type === FS_MAGIC.NSFS;
  } catch {
    return false;
  }
}

function validateRequest(req: PodNetworkRequest): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(req.sandboxId)) {
    throw invalidArgument('ERR_SANDBOX_ID_INVALID', `Invalid sandbox id "${req.sandboxId}" for pod networking: use letters, digits, '_', '.', '-' (max 128)`, {
      details: { field: 'sandboxId' },
    });
  }
  for (const [field, v] of [['podName', req.podName], ['podNamespace', req.podNamespace], ['podUid', req.podUid]] as const) {
    if (/[;=\s]/.test(v)) throw invalidArgument('ERR_CNI_ARGS_INVALID', `Invalid ${field} "${v}" for CNI_ARGS: it must not contain ';', '=' or spaces`, { details: { field } });
  }
  for (const [i, p] of req.portMappings.entries()) {
    const okPort = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
    if (!okPort(p.hostPort) || !okPort(p.containerPort) || p.containerPort === 0) {
      throw invalidArgument('ERR_PORT_MAPPING_INVALID', `Invalid port mapping #${i} (containerPort ${p.containerPort}, hostPort ${p.hostPort}): ports must be integers 1-65535`, {
        details: { field: `portMappings[${i}]` },
      });
    }
  }
}

class CniPodNetwork implements PodNetwork {
  private readonly log: Logger;
  private readonly exec: CniExecOptions;
  private readonly confDir: string;
  private readonly resultsDir: string;
  private readonly defaults: { name: string; bridgeName: string; subnet: string; ipamDataDir: string };

  constructor(private readonly opts: PodNetworkOptions) {
    this.log = opts.logger ?? getLogger('network.cni');
    this.exec = { binDirs: opts.cniBinDirs ?? DEFAULT_CNI_BIN_DIRS, timeoutMs: opts.pluginTimeoutMs, searchPath: opts.searchPath ?? pluginSearchPath() };
    this.confDir = opts.cniConfDir ?? DEFAULT_CNI_CONF_DIR;
    this.resultsDir = join(opts.stateDir, 'results');
    const subnet = opts.subnet ?? DEFAULT_POD_SUBNET;
    validateSubnet(subnet);
    const bridgeName = opts.bridgeName ?? DEFAULT_BRIDGE;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridgeName)) {
      throw invalidArgument('ERR_BRIDGE_NAME_INVALID', `Invalid bridge name "${bridgeName}": at most 15 letters, digits, '_', '.', '-' (IFNAMSIZ)`);
    }
    this.defaults = { name: opts.networkName ?? DEFAULT_NETWORK_NAME, bridgeName, subnet, ipamDataDir: join(opts.stateDir, 'ipam') };
  }

  /** The first config file in confDir (sorted); writes the built-in default if there is none. */
  async loadConfig(): Promise<{ file: string; config: NetworkConfList }> {
    let names: string[] = [];
    try {
      names = await readdir(this.confDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    let name = pickConfFile(names);
    if (name === undefined) {
      name = DEFAULT_CONF_FILE;
      const conf = computeDefaultConfList(this.defaults);
      await writeRecord(join(this.confDir, name), JSON.stringify(conf, null, 2) + '\n');
      // said once: from now on the directory has a configuration, and it is the one used
      this.log.info(`no CNI network configuration in ${this.confDir}: wrote the built-in default ${join(this.confDir, name)}`, { file: join(this.confDir, name), subnet: this.defaults.subnet, bridge: this.defaults.bridgeName });
    }
    const file = join(this.confDir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw invalidArgument('ERR_CNI_CONFIG_INVALID', `Cannot read CNI network configuration ${file}: ${(e as Error).message}`, { cause: e, details: { file } });
    }
    return { file, config: parseNetworkConfig(text, file) };
  }

  private cachePath(sandboxId: string): string {
    return join(this.resultsDir, `${sandboxId}.json`);
  }

  private async readCache(sandboxId: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await readFile(this.cachePath(sandboxId), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const c = JSON.parse(text) as CacheEntry;
      if (c.kind === 'nodelet-cni-result' && c.version === 1) return c;
    } catch {
      /* fall through */
    }
    this.log.warn('ignoring a corrupt CNI result cache entry', { file: this.cachePath(sandboxId) });
    return undefined;
  }

  private runtimeConf(req: PodNetworkRequest, netns: string, ifName: string): RuntimeConf {
    return { containerId: req.sandboxId, netns, ifName, args: computeCniArgs(req), portMappings: computePortMappings(req.portMappings) };
  }

  /** A hostPort must be honoured or refused: never silently dropped. */
  private async checkHostPortSupport(config: NetworkConfList, file: string, rt: RuntimeConf): Promise<void> {
    if (!rt.portMappings || rt.portMappings.length === 0) return;
    const ports = rt.portMappings.map((p) => `${p.hostPort}/${p.protocol}`).join(', ');
    const pm = config.plugins.find((p) => p.capabilities?.portMappings === true);
    if (!pm) {
      throw failedPrecondition('ERR_HOSTPORT_UNSUPPORTED', `Cannot honour hostPort ${ports}: no plugin in CNI network "${config.name}" (${file}) has the portMappings capability (add {"type": "portmap", "capabilities": {"portMappings": true}})`, {
        details: { file, ports },
      });
    }
    await findPlugin(pm.type, this.exec.binDirs);
    if (pm.type === 'portmap') {
      if (!this.exec.searchPath!.split(':').some((d) => d !== '' && existsSync(join(d, 'iptables')))) {
        throw failedPrecondition('ERR_HOSTPORT_UNSUPPORTED', `Cannot honour hostPort ${ports}: the portmap CNI plugin needs "iptables", which is not in PATH or the sbin directories (install iptables)`, {
          details: { ports },
        });
      }
    }
  }

  /** Operations on one sandbox run one at a time (a setUp racing its tearDown would leak). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private serialize<T>(sandboxId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(sandboxId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(sandboxId, tail);
    void tail.then(() => {
      if (this.locks.get(sandboxId) === tail) this.locks.delete(sandboxId);
    });
    return run;
  }

  async setUp(req: PodNetworkRequest): Promise<PodNetworkResult> {
    validateRequest(req);
    return this.serialize(req.sandboxId, () => this.doSetUp(req));
  }

  async check(req: PodNetworkRequest): Promise<void> {
    validateRequest(req);
    return this.serialize(req.sandboxId, () => this.doCheck(req));
  }

  async tearDown(req: PodNetworkRequest): Promise<void> {
    validateRequest(req);
    return this.serialize(req.sandboxId, () => this.doTearDown(req));
  }

  private async doSetUp(req: PodNetworkRequest): Promise<PodNetworkResult> {
    if (!isLiveNetns(req.netnsPath)) {
      throw failedPrecondition('ERR_NETNS_NOT_FOUND', `Network namespace ${req.netnsPath} of sandbox ${req.sandboxId} is not a pinned namespace: pin it before setting up the network`, {
        details: { netnsPath: req.netnsPath },
      });
    }
    // A repeated ADD for a set-up sandbox (a retry) returns the cached result: a
    // second bridge ADD would fail on the existing eth0 and its rollback would tear the pod down.
    const existing = await this.readCache(req.sandboxId);
    if (existing && existing.netnsPath === req.netnsPath) {
      const parsed = parseAddResult(existing.result, IFNAME);
      if (parsed.ips.length > 0) return { ips: parsed.ips, ...(parsed.gateway !== undefined ? { gateway: parsed.gateway } : {}), interfaceName: IFNAME };
    }
    const { file, config } = await this.loadConfig();
    const rt = this.runtimeConf(req, req.netnsPath, IFNAME);
    await this.checkHostPortSupport(config, file, rt);
    if (!rt.portMappings || rt.portMappings.length === 0) return this.add(req, file, config, rt);
    // hostPorts: the conflict check and the ADD that takes them are one step for the whole node
    return this.serialize(HOSTPORT_LOCK, async () => {
      await this.checkHostPortConflicts(req.sandboxId, rt.portMappings!);
      return this.add(req, file, config, rt);
    });
  }

  private async checkHostPortConflicts(sandboxId: string, wanted: NonNullable<RuntimeConf['portMappings']>): Promise<void> {
    const others: { sandboxId: string; portMappings: NonNullable<RuntimeConf['portMappings']> }[] = [];
    let names: string[] = [];
    try {
      names = await readdir(this.resultsDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const n of names) {
      if (!n.endsWith('.json') || n === `${sandboxId}.json`) continue;
      const c = await this.readCache(n.slice(0, -5));
      if (c?.portMappings?.length) others.push({ sandboxId: c.sandboxId, portMappings: c.portMappings });
    }
    const conflicts = computeHostPortConflicts(wanted, others);
    if (conflicts.length > 0) {
      const what = conflicts
        .map((c) => `${c.hostIP ? `${c.hostIP}:` : ''}${c.hostPort}/${c.protocol} ${c.sandboxId ? `is used by sandbox ${c.sandboxId}` : 'is requested twice'}`)
        .join('; ');
      throw new NodeletError('AlreadyExists', 'ERR_HOSTPORT_CONFLICT', `Cannot honour the hostPorts of sandbox ${sandboxId}: ${what} (choose another hostPort)`, {
        details: { conflicts },
      });
    }
  }

  private async add(req: PodNetworkRequest, file: string, config: NetworkConfList, rt: RuntimeConf): Promise<PodNetworkResult> {
    const lo = computeLoopbackConfList();
    const loRt: RuntimeConf = { ...rt, ifName: 'lo', portMappings: undefined };
    const started = performance.now();
    let loopbackResult: unknown;
    let result: unknown;
    try {
      // lo and eth0 are independent: both ADDs run at once (go-cni's Setup does the same). Both
      // are awaited before a failure is handled, so the rollback sees every result there is.
      const [lr, r] = await Promise.allSettled([addNetworkList(this.exec, lo, loRt), addNetworkList(this.exec, config, rt)]);
      if (lr.status === 'fulfilled') loopbackResult = lr.value;
      if (r.status === 'fulfilled') result = r.value;
      if (lr.status === 'rejected') throw lr.reason;
      if (r.status === 'rejected') throw r.reason;
      const parsed = parseAddResult(result, IFNAME);
      if (parsed.ips.length === 0) {
        throw internal('ERR_CNI_NO_IP', `CNI network "${config.name}" (${file}) returned no IP address for sandbox ${req.sandboxId}`, { details: { result } });
      }
      const entry: CacheEntry = {
        kind: 'nodelet-cni-result',
        version: 1,
        sandboxId: req.sandboxId,
        netnsPath: req.netnsPath,
        confFile: file,
        config,
        result,
        loopbackResult,
        portMappings: rt.portMappings,
      };
      await writeRecord(this.cachePath(req.sandboxId), JSON.stringify(entry) + '\n', 0o600);
      this.log.info('pod network set up', { sandboxId: req.sandboxId, ips: parsed.ips, ms: +(performance.now() - started).toFixed(1) });
      return { ips: parsed.ips, ...(parsed.gateway !== undefined ? { gateway: parsed.gateway } : {}), interfaceName: IFNAME };
    } catch (e) {
      // Nothing half-done: undo whatever the chain did (plugins' DEL is idempotent).
      await this.delAll(req, { config, result, loopbackResult, portMappings: rt.portMappings }).catch((de) =>
        this.log.warn('rollback of a failed CNI ADD failed', { sandboxId: req.sandboxId, err: de }),
      );
      throw e;
    }
  }

  private async doCheck(req: PodNetworkRequest): Promise<void> {
    const cached = await this.readCache(req.sandboxId);
    if (!cached) {
      throw failedPrecondition('ERR_CNI_NOT_SET_UP', `No CNI result cached for sandbox ${req.sandboxId}: its network was not set up (or was torn down)`, {
        details: { sandboxId: req.sandboxId },
      });
    }
    if (!isLiveNetns(req.netnsPath)) {
      throw failedPrecondition('ERR_NETNS_NOT_FOUND', `Network namespace ${req.netnsPath} of sandbox ${req.sandboxId} is gone`, { details: { netnsPath: req.netnsPath } });
    }
    const rt = { ...this.runtimeConf(req, req.netnsPath, IFNAME), portMappings: cached.portMappings };
    await checkNetworkList(this.exec, computeLoopbackConfList(), { ...rt, ifName: 'lo', portMappings: undefined }, cached.loopbackResult);
    await checkNetworkList(this.exec, cached.config, rt, cached.result);
  }

  private async doTearDown(req: PodNetworkRequest): Promise<void> {
    const cached = await this.readCache(req.sandboxId);
    let entry: Pick<CacheEntry, 'config' | 'result' | 'loopbackResult' | 'portMappings'>;
    if (cached) {
      entry = cached;
    } else {
      // No cache (never set up, already torn down, or lost): DEL with the current config, no prevResult, like libcni.
      const { config } = await this.loadConfig();
      entry = { config, result: undefined, loopbackResult: undefined, portMappings: computePortMappings(req.portMappings) };
    }
    await this.delAll(req, entry);
    await unlink(this.cachePath(req.sandboxId)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  private async delAll(req: PodNetworkRequest, e: Pick<CacheEntry, 'config' | 'result' | 'loopbackResult' | 'portMappings'>): Promise<void> {
    // DEL must work when the namespace is already gone: CNI_NETNS is then empty and plugins clean host-side state only.
    const netns = isLiveNetns(req.netnsPath) ? req.netnsPath : '';
    const rt: RuntimeConf = { ...this.runtimeConf(req, netns, IFNAME), portMappings: e.portMappings };
    const prev = supportsCheck(e.config.cniVersion) ? e.result : undefined;
    let firstError: unknown;
    try {
      await delNetworkList(this.exec, e.config, rt, prev);
    } catch (err) {
      firstError = err;
    }
    try {
      await delNetworkList(this.exec, computeLoopbackConfList(), { ...rt, ifName: 'lo', portMappings: undefined }, e.loopbackResult);
    } catch (err) {
      firstError ??= err;
    }
    if (firstError !== undefined) {
      if (isNodeletError(firstError)) throw firstError;
      throw internal('ERR_CNI_DEL_FAILED', `CNI DEL for sandbox ${req.sandboxId} failed: ${(firstError as Error).message}`, { cause: firstError });
    }
  }
}

export function createPodNetwork(opts: PodNetworkOptions): PodNetwork {
  return new CniPodNetwork(opts);
}

/** For tests and the CLI: the concrete class with loadConfig(). */
export function createCniPodNetwork(opts: PodNetworkOptions): PodNetwork & { loadConfig(): Promise<{ file: string; config: NetworkConfList }> } {
  return new CniPodNetwork(opts);
}
