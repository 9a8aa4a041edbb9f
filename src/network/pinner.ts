// Namespace pinning without a pause process (CRI-O's pinns idea).
//
// A throwaway util-linux `unshare --net=FILE --ipc=FILE --uts=FILE hostname NAME`
// creates the namespaces in a child process and bind-mounts /proc/<pid>/ns/* onto
// the files, so they outlive it. Node's event-loop thread never calls
// unshare(2)/setns(2). Unpinning is unmountAll (src/sys/mounts.ts) + unlink, idempotent.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeletError, failedPrecondition, invalidArgument, internal } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { FS_MAGIC, statfs } from '../sys/ffi.js';
import { unmountAll } from '../sys/mounts.js';
import type { NamespacePinner, PinnedNamespaces, PinRequest } from './types.js';

export interface NamespacePinnerOptions {
  logger?: Logger;
  /** The util-linux unshare binary (default: found in /usr/bin, /bin). */
  unshareBin?: string;
  /** Command that sets the hostname, the name is appended (default: hostname, or busybox hostname). */
  hostnameCmd?: string[];
  /** Timeout for the helper process, ms (default 10 s). */
  timeoutMs?: number;
}

type NsKind = 'net' | 'ipc' | 'uts';
const KINDS: readonly NsKind[] = ['net', 'ipc', 'uts'];

/** RFC 1123 hostname as kubelet accepts it for pod hostnames (≤ 63 per label, ≤ 64 total: HOST_NAME_MAX). */
export function validateHostname(name: string): void {
  if (name.length === 0 || name.length > 64 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(name)) {
    throw invalidArgument('ERR_POD_HOSTNAME_INVALID', `Invalid pod hostname "${name}": it must be an RFC 1123 name of at most 64 characters (letters, digits, '-', '.')`, {
      details: { field: 'hostname', value: name },
    });
  }
}

/** Pure: the unshare argv for a pin request (files are <dir>/<kind>). */
export function computeUnshareArgs(req: PinRequest, hostnameCmd: string[]): { files: Partial<Record<NsKind, string>>; args: string[] } {
  const files: Partial<Record<NsKind, string>> = {};
  const args: string[] = [];
  for (const k of KINDS) {
    if (!req[k]) continue;
    files[k] = join(req.dir, k);
    args.push(`--${k}=${files[k]}`);
  }
  const sysctls = Object.entries(req.sysctls ?? {});
  if (sysctls.length > 0) {
    // One shell inside the new namespaces writes /proc/sys: /proc/sys/net and the IPC
    // sysctls show the namespaces of the writing task; kernel/hostname is the UTS one.
    const pairs = [...(req.hostname !== undefined ? ['kernel/hostname', req.hostname] : []), ...sysctls.flat()];
    args.push('--', '/bin/sh', '-c', SYSCTL_SCRIPT, 'nodelet-pin', ...pairs);
  } else {
    args.push('--', ...(req.hostname !== undefined ? [...hostnameCmd, req.hostname] : ['true']));
  }
  return { files, args };
}

/** Writes each (path, value) pair of its arguments to /proc/sys/<path>; the first failure names the sysctl. */
const SYSCTL_SCRIPT = 'while [ $# -gt 1 ]; do printf %s "$2" > "/proc/sys/$1" || { echo "cannot set sysctl $1 to $2" >&2; exit 1; }; shift 2; done';

function findBin(candidates: string[]): string | undefined {
  return candidates.find((p) => existsSync(p));
}

function isNsfs(path: string): boolean {
  try {
    return statfs(path).type === FS_MAGIC.NSFS;
  } catch {
    return false;
  }
}

/** Unmount every mount stacked on `path` (src/sys/mounts.ts unmountAll: busy ones detached) and unlink it. Idempotent. */
export async function unpinFile(path: string): Promise<void> {
  unmountAll(path);
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function run(bin: string, args: string[], timeoutMs: number): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr: stderr.trim() }));
  });
}

class UnsharePinner implements NamespacePinner {
  private readonly log: Logger;
  private readonly unshareBin: string | undefined;
  private readonly hostnameCmd: string[] | undefined;
  private readonly timeoutMs: number;

  constructor(opts: NamespacePinnerOptions) {
    this.log = opts.logger ?? getLogger('network.pinner');
    this.unshareBin = opts.unshareBin ?? findBin(['/usr/bin/unshare', '/bin/unshare']);
    const hostname = findBin(['/usr/bin/hostname', '/bin/hostname']);
    const busybox = findBin(['/usr/bin/busybox', '/bin/busybox']);
    this.hostnameCmd = opts.hostnameCmd ?? (hostname ? [hostname] : busybox ? [busybox, 'hostname'] : undefined);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async pin(req: PinRequest): Promise<PinnedNamespaces> {
    if (!req.net && !req.ipc && !req.uts) {
      throw invalidArgument('ERR_PIN_NOTHING', `Nothing to pin in ${req.dir}: request at least one of net, ipc, uts`);
    }
    if (req.hostname !== undefined) {
      if (!req.uts) throw invalidArgument('ERR_PIN_HOSTNAME_WITHOUT_UTS', `Cannot set hostname "${req.hostname}" without a new UTS namespace (uts: true)`);
      validateHostname(req.hostname);
    }
    for (const key of Object.keys(req.sysctls ?? {})) {
      if (!/^[a-z0-9][-_a-z0-9.]*(\/[a-z0-9][-_a-z0-9.]*)+$/.test(key) || key.split('/').some((c) => c === '..' || c === '.'))
        throw invalidArgument('ERR_SYSCTL_INVALID', `sysctl path "${key}" is not a path under /proc/sys`);
      const needs = key.startsWith('net/') ? 'net' : 'ipc';
      if (!req[needs]) throw invalidArgument('ERR_SYSCTL_NOT_NAMESPACED', `sysctl ${key} needs a new ${needs} namespace for the pod (it would change the host's)`);
    }
    if (!this.unshareBin) {
      throw failedPrecondition('ERR_UNSHARE_NOT_FOUND', 'util-linux "unshare" was not found in /usr/bin or /bin: install util-linux to pin pod namespaces');
    }
    if (req.hostname !== undefined && !this.hostnameCmd) {
      throw failedPrecondition('ERR_HOSTNAME_BIN_NOT_FOUND', 'No "hostname" binary (hostname or busybox) found to set the pod hostname: install one');
    }
    const { files, args } = computeUnshareArgs(req, this.hostnameCmd ?? []);
    const paths = Object.values(files) as string[];
    await mkdir(req.dir, { recursive: true, mode: 0o755 });

    const created: string[] = [];
    const started = performance.now();
    try {
      for (const p of paths) {
        if (isNsfs(p)) {
          throw new NodeletError('AlreadyExists', 'ERR_NAMESPACE_ALREADY_PINNED', `A namespace is already pinned at ${p}: unpin it first`, { details: { path: p } });
        }
        // The bind-mount target must exist (O_EXCL not used: a stale empty file from a crash is reused).
        created.push(p);
        await (await open(p, 'w', 0o444)).close();
      }
      const r = await run(this.unshareBin, args, this.timeoutMs);
      if (r.code !== 0) {
        throw internal('ERR_NAMESPACE_PIN_FAILED', `Pinning namespaces in ${req.dir} failed: unshare ${args.join(' ')} exited ${r.code ?? r.signal}${r.stderr ? `: ${r.stderr}` : ''}`, {
          details: { dir: req.dir, exitCode: r.code, signal: r.signal, stderr: r.stderr },
        });
      }
      for (const p of paths) {
        if (!isNsfs(p)) throw internal('ERR_NAMESPACE_PIN_FAILED', `Pinning namespaces in ${req.dir} failed: ${p} is not a namespace mount after unshare`);
      }
    } catch (e) {
      for (const p of created) {
        await unpinFile(p).catch((ce) => this.log.warn('cleanup of a failed pin failed', { path: p, err: ce }));
      }
      throw e;
    }
    this.log.debug('namespaces pinned', { dir: req.dir, ms: +(performance.now() - started).toFixed(2), hostname: req.hostname });
    return { ...files };
  }

  async unpin(ns: PinnedNamespaces): Promise<void> {
    const errors: unknown[] = [];
    for (const k of KINDS) {
      const p = ns[k];
      if (p === undefined) continue;
      try {
        await unpinFile(p);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) {
      throw internal('ERR_NAMESPACE_UNPIN_FAILED', `Unpinning namespaces ${Object.values(ns).join(', ')} failed: ${errors.map((e) => (e as Error).message).join('; ')}`, {
        cause: errors[0],
      });
    }
  }
}

export function createNamespacePinner(opts: NamespacePinnerOptions = {}): NamespacePinner {
  return new UnsharePinner(opts);
}
