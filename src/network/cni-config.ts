// Pure CNI (spec 1.0.0) deciders: network configuration lists, the per-plugin
// stdin config, CNI_ARGS, result and error parsing. No I/O here.

import { invalidArgument, NodeletError } from '../errors.js';
import type { PortMapping } from '../cri/types.js';

export const CNI_VERSION = '1.0.0';

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}

/** A network configuration list (a single .conf is normalised into one). */
export interface NetworkConfList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
}

export interface DefaultConfOptions {
  name: string;
  bridgeName: string;
  subnet: string;
  ipamDataDir: string;
}

/** The built-in default: a bridge with host-local IPAM, no masquerade, plus portmap. */
export function computeDefaultConfList(o: DefaultConfOptions): NetworkConfList {
  return {
    cniVersion: CNI_VERSION,
    name: o.name,
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridgeName,
        isGateway: true,
        ipMasq: false, // never masquerade: pod traffic does not leave the machine
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: o.subnet }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: o.ipamDataDir,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function computeLoopbackConfList(): NetworkConfList {
  return { cniVersion: CNI_VERSION, name: 'cni-loopback', plugins: [{ type: 'loopback' }] };
}

/** IPv4 CIDR check for the configurable pod subnet. */
export function validateSubnet(subnet: string): void {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  const ok = m !== null && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) >= 8 && Number(m[5]) <= 30;
  if (!ok) {
    throw invalidArgument('ERR_POD_SUBNET_INVALID', `Invalid pod subnet "${subnet}": expected an IPv4 CIDR with a prefix length from 8 to 30, e.g. 10.244.0.0/16`, {
      details: { field: 'subnet', value: subnet },
    });
  }
}

function bad(file: string, why: string): NodeletError {
  return invalidArgument('ERR_CNI_CONFIG_INVALID', `Invalid CNI network configuration ${file}: ${why} (fix or remove the file)`, { details: { file } });
}

/** Parse a .conflist / .conf / .json file's text; errors name the file. */
export function parseNetworkConfig(text: string, file: string): NetworkConfList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(file, 'expected a JSON object');
  const o = raw as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') throw bad(file, 'missing "name"');
  if (o.cniVersion !== undefined && typeof o.cniVersion !== 'string') throw bad(file, '"cniVersion" must be a string');
  const cniVersion = (o.cniVersion as string | undefined) ?? '0.1.0';
  let plugins: unknown;
  if (o.plugins !== undefined) {
    plugins = o.plugins;
    if (!Array.isArray(plugins) || plugins.length === 0) throw bad(file, '"plugins" must be a non-empty array');
  } else if (file.endsWith('.conflist')) {
    throw bad(file, 'a .conflist needs a "plugins" array');
  } else {
    // a single-plugin .conf: the whole object is the plugin config
    const { name: _n, cniVersion: _v, ...rest } = o;
    plugins = [rest];
  }
  (plugins as unknown[]).forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof (p as PluginConf).type !== 'string' || (p as PluginConf).type === '') {
      throw bad(file, `plugins[${i}] has no "type"`);
    }
    if (/[/\\]/.test((p as PluginConf).type) || (p as PluginConf).type.startsWith('.')) throw bad(file, `plugins[${i}].type "${(p as PluginConf).type}" is not a plugin name`);
  });
  return { cniVersion, name: o.name, ...(o.disableCheck === true ? { disableCheck: true } : {}), plugins: plugins as PluginConf[] };
}

/** Pick the network config like kubelet/cri-o: first of the sorted .conflist/.conf/.json files. */
export function pickConfFile(names: string[]): string | undefined {
  return names.filter((n) => /\.(conflist|conf|json)$/.test(n)).sort()[0];
}

export interface CniArgsInput {
  podNamespace: string;
  podName: string;
  sandboxId: string;
  podUid: string;
}

/** CNI_ARGS as kubelet / cri-o pass them. */
export function computeCniArgs(a: CniArgsInput): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${a.podNamespace};K8S_POD_NAME=${a.podName};K8S_POD_INFRA_CONTAINER_ID=${a.sandboxId};K8S_POD_UID=${a.podUid}`;
}

export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

/** runtimeConfig.portMappings: only ports with a hostPort, protocol lowercase (as cri-o/kubelet). */
export function computePortMappings(pms: PortMapping[]): CniPortMapping[] {
  return pms
    .filter((p) => p.hostPort > 0)
    .map((p) => ({
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: p.protocol.toLowerCase(),
      ...(p.hostIP && p.hostIP !== '' ? { hostIP: p.hostIP } : {}),
    }));
}

const anyIP = (ip: string | undefined) => ip === undefined || ip === '' || ip === '0.0.0.0' || ip === '::';

/**
 * hostPorts of `wanted` already taken by another sandbox (or twice in `wanted`):
 * same protocol and port, and the same host IP or either side on all addresses.
 */
export function computeHostPortConflicts(
  wanted: CniPortMapping[],
  others: { sandboxId: string; portMappings: CniPortMapping[] }[],
): { hostPort: number; protocol: string; hostIP?: string; sandboxId?: string }[] {
  const clash = (a: CniPortMapping, b: CniPortMapping) =>
    a.hostPort === b.hostPort && a.protocol === b.protocol && (anyIP(a.hostIP) || anyIP(b.hostIP) || a.hostIP === b.hostIP);
  const out: { hostPort: number; protocol: string; hostIP?: string; sandboxId?: string }[] = [];
  wanted.forEach((w, i) => {
    const self = wanted.slice(0, i).find((x) => clash(x, w));
    if (self) out.push({ hostPort: w.hostPort, protocol: w.protocol, ...(w.hostIP ? { hostIP: w.hostIP } : {}) });
    for (const o of others) {
      if (o.portMappings.some((x) => clash(x, w))) out.push({ hostPort: w.hostPort, protocol: w.protocol, ...(w.hostIP ? { hostIP: w.hostIP } : {}), sandboxId: o.sandboxId });
    }
  });
  return out;
}

/**
 * The stdin config of one plugin in a list (libcni buildOneConfig): cniVersion and
 * name from the list, prevResult when chained, runtimeConfig only for the
 * capabilities the plugin declares.
 */
export function computePluginStdin(
  list: NetworkConfList,
  plugin: PluginConf,
  prevResult: unknown,
  runtime: { portMappings?: CniPortMapping[] },
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (prevResult !== undefined && prevResult !== null) out.prevResult = prevResult;
  const rc: Record<string, unknown> = {};
  if (plugin.capabilities?.portMappings === true && runtime.portMappings && runtime.portMappings.length > 0) rc.portMappings = runtime.portMappings;
  if (Object.keys(rc).length > 0) out.runtimeConfig = rc;
  return out;
}

/** CHECK exists from spec 0.4.0 on. */
export function supportsCheck(version: string): boolean {
  const [maj, min] = version.split('.').map(Number);
  return (maj ?? 0) > 0 || (min ?? 0) >= 4;
}

export interface ParsedResult {
  ips: string[];
  gateway?: string;
}

/** Pod IPs from an ADD result (0.3.x/0.4.0/1.0.0 `ips`, or 0.1/0.2 `ip4`/`ip6`). */
export function parseAddResult(result: unknown, ifName: string): ParsedResult {
  const r = (result ?? {}) as {
    interfaces?: { name?: string; sandbox?: string }[];
    ips?: { address?: string; gateway?: string; interface?: number }[];
    ip4?: { ip?: string; gateway?: string };
    ip6?: { ip?: string; gateway?: string };
  };
  const ips: string[] = [];
  let gateway: string | undefined;
  if (Array.isArray(r.ips)) {
    for (const ip of r.ips) {
      if (typeof ip.address !== 'string') continue;
      if (typeof ip.interface === 'number' && Array.isArray(r.interfaces)) {
        const itf = r.interfaces[ip.interface];
        // keep addresses on the container's interface (the one with a sandbox)
        if (itf && (itf.sandbox === undefined || itf.sandbox === '') && itf.name !== ifName) continue;
      }
      ips.push(ip.address.split('/')[0]!);
      gateway ??= ip.gateway;
    }
  } else {
    for (const v of [r.ip4, r.ip6]) {
      if (v && typeof v.ip === 'string') {
        ips.push(v.ip.split('/')[0]!);
        gateway ??= v.gateway;
      }
    }
  }
  return { ips, ...(gateway !== undefined ? { gateway } : {}) };
}

/** Well-known CNI error codes (spec "Error" section). */
const CNI_ERROR_NAMES: Record<number, string> = {
  1: 'incompatible CNI version',
  2: 'unsupported field in network configuration',
  3: 'container unknown or does not exist',
  4: 'invalid necessary environment variables',
  5: 'I/O failure',
  6: 'failed to decode content',
  7: 'invalid network config',
  11: 'try again later',
};

export interface CniErrorInput {
  plugin: string;
  command: string;
  network: string;
  sandboxId: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A failed plugin run → NodeletError naming the plugin, with the CNI code/msg/details. */
export function parseCniError(i: CniErrorInput): NodeletError {
  let code: number | undefined;
  let msg: string | undefined;
  let details: string | undefined;
  try {
    const e = JSON.parse(i.stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.code === 'number') code = e.code;
    if (typeof e.msg === 'string') msg = e.msg;
    if (typeof e.details === 'string' && e.details !== '') details = e.details;
  } catch {
    /* not JSON: fall back to stderr/stdout text */
  }
  const text = msg ?? (i.stderr || i.stdout || `exited ${i.exitCode ?? i.signal}`).trim().slice(0, 2000);
  const codeText = code !== undefined ? ` (CNI error ${code}${CNI_ERROR_NAMES[code] ? `: ${CNI_ERROR_NAMES[code]}` : ''})` : '';
  const category = code === 11 ? 'Unavailable' : code === 7 || code === 2 || code === 1 ? 'InvalidArgument' : 'Internal';
  return new NodeletError(
    category,
    'ERR_CNI_PLUGIN_FAILED',
    `CNI plugin "${i.plugin}" ${i.command} failed for sandbox ${i.sandboxId} on network "${i.network}": ${text}${details ? `; ${details}` : ''}${codeText}`,
    {
      details: {
        plugin: i.plugin,
        command: i.command,
        network: i.network,
        sandboxId: i.sandboxId,
        cniCode: code,
        cniMsg: msg,
        cniDetails: details,
        exitCode: i.exitCode,
        signal: i.signal,
        stderr: i.stderr.slice(0, 2000),
      },
    },
  );
}
