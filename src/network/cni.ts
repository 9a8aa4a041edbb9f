// CNI 1.0.0 invocation (the libcni role): exec plugin binaries with the CNI_*
// environment and the config on stdin, chain plugins in order for ADD/CHECK and
// in reverse for DEL, parse results and errors.

import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { failedPrecondition, internal, NodeletError } from '../errors.js';
import { computePluginStdin, parseCniError, supportsCheck, type CniPortMapping, type NetworkConfList } from './cni-config.js';

export type CniCommand = 'ADD' | 'CHECK' | 'DEL' | 'VERSION';

export interface RuntimeConf {
  containerId: string;
  /** Path of the network namespace; '' on DEL when it is already gone. */
  netns: string;
  ifName: string;
  args: string;
  portMappings?: CniPortMapping[];
}

export interface CniExecOptions {
  binDirs: string[];
  /** PATH given to plugins (default pluginSearchPath()). */
  searchPath?: string;
  timeoutMs?: number;
}

/** Locate a plugin binary in the configured directories (CNI_PATH order). */
export async function findPlugin(type: string, binDirs: string[]): Promise<string> {
  for (const d of binDirs) {
    const p = join(d, type);
    try {
      await access(p, fsConstants.X_OK);
      return p;
    } catch {
      /* next directory */
    }
  }
  throw failedPrecondition('ERR_CNI_PLUGIN_NOT_FOUND', `CNI plugin "${type}" not found in ${binDirs.join(', ')}: install it (Debian: containernetworking-plugins) or set the CNI bin directories`, {
    details: { plugin: type, binDirs },
  });
}

interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * PATH for plugins: the agent's, plus the sbin directories a service manager's
 * minimal PATH may lack (portmap and bridge exec iptables / ip6tables).
 */
export function pluginSearchPath(envPath = process.env.PATH): string {
  const dirs = (envPath ?? '').split(':').filter((d) => d !== '');
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(':');
}

function execPlugin(path: string, env: Record<string, string>, stdin: string, timeoutMs: number, searchPath: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], {
      env: { ...process.env, PATH: searchPath, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // EPIPE if the plugin exits early: its exit status tells
    child.on('close', (exitCode, signal) =>
      resolve({ exitCode, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(stdin);
  });
}

/** Run one plugin; returns its parsed stdout (or undefined if empty). */
export async function invokePlugin(
  opts: CniExecOptions,
  list: NetworkConfList,
  pluginIndex: number,
  command: CniCommand,
  rt: RuntimeConf,
  prevResult: unknown,
): Promise<unknown> {
  const plugin = list.plugins[pluginIndex]!;
  const path = await findPlugin(plugin.type, opts.binDirs);
  const stdin = JSON.stringify(computePluginStdin(list, plugin, prevResult, { portMappings: rt.portMappings }));
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_ARGS: rt.args,
    CNI_PATH: opts.binDirs.join(':'),
  };
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const started = Date.now();
  const r = await execPlugin(path, env, stdin, timeoutMs, opts.searchPath ?? pluginSearchPath()).catch((e: unknown) => {
    throw internal('ERR_CNI_PLUGIN_EXEC_FAILED', `Cannot run CNI plugin "${plugin.type}" (${path}): ${(e as Error).message}`, { cause: e, details: { plugin: plugin.type, path } });
  });
  if (r.signal === 'SIGKILL' && Date.now() - started >= timeoutMs) {
    throw new NodeletError('DeadlineExceeded', 'ERR_CNI_PLUGIN_TIMEOUT', `CNI plugin "${plugin.type}" ${command} for sandbox ${rt.containerId} on network "${list.name}" did not finish within ${timeoutMs} ms and was killed`, {
      details: { plugin: plugin.type, command, timeoutMs, stderr: r.stderr.slice(0, 2000) },
    });
  }
  if (r.exitCode !== 0) {
    throw parseCniError({ plugin: plugin.type, command, network: list.name, sandboxId: rt.containerId, ...r });
  }
  const text = r.stdout.trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw internal('ERR_CNI_RESULT_INVALID', `CNI plugin "${plugin.type}" ${command} on network "${list.name}" printed a result that is not JSON: ${text.slice(0, 200)}`, {
      cause: e,
      details: { plugin: plugin.type, command },
    });
  }
}

/** ADD: plugins in order, each gets the previous result; returns the final result. */
export async function addNetworkList(opts: CniExecOptions, list: NetworkConfList, rt: RuntimeConf): Promise<unknown> {
  let prev: unknown;
  for (let i = 0; i < list.plugins.length; i++) prev = await invokePlugin(opts, list, i, 'ADD', rt, prev);
  return prev;
}

/** CHECK: plugins in order with the cached ADD result as prevResult. */
export async function checkNetworkList(opts: CniExecOptions, list: NetworkConfList, rt: RuntimeConf, cached: unknown): Promise<void> {
  if (!supportsCheck(list.cniVersion)) {
    throw failedPrecondition('ERR_CNI_CHECK_UNSUPPORTED', `Network "${list.name}" uses CNI version ${list.cniVersion}, which does not support CHECK (needs 0.4.0 or later)`);
  }
  if (list.disableCheck) return;
  for (let i = 0; i < list.plugins.length; i++) {
    try {
      await invokePlugin(opts, list, i, 'CHECK', rt, cached);
    } catch (e) {
      if (isPortmapV6CheckBug(list.plugins[i]!.type, e, cached)) continue;
      throw e;
    }
  }
}

/**
 * portmap up to v1.2 checks its IPv6 chain even for an IPv4-only pod and fails
 * ("could not check ipv6 dnat", containernetworking/plugins#819). The IPv4
 * rules were checked before that point, so for a pod without IPv6 it is a pass.
 */
export function isPortmapV6CheckBug(type: string, e: unknown, cached: unknown): boolean {
  if (type !== 'portmap' || !(e instanceof NodeletError)) return false;
  const msg = e.details.cniMsg;
  if (typeof msg !== 'string' || !msg.startsWith('could not check ipv6 dnat')) return false;
  const ips = ((cached ?? {}) as { ips?: { address?: string }[] }).ips ?? [];
  return !ips.some((ip) => typeof ip.address === 'string' && ip.address.includes(':'));
}

/**
 * DEL: plugins in reverse order with the cached ADD result (if any) as prevResult.
 * Unlike libcni, a failing plugin does not stop the others (DEL is idempotent, and
 * a rollback must release what the earlier plugins allocated); the first error is thrown.
 */
export async function delNetworkList(opts: CniExecOptions, list: NetworkConfList, rt: RuntimeConf, cached: unknown): Promise<void> {
  let first: unknown;
  for (let i = list.plugins.length - 1; i >= 0; i--) {
    try {
      await invokePlugin(opts, list, i, 'DEL', rt, cached);
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}
