// Pure helpers shared by both drivers: path validation, the QoS layout,
// /proc/self/cgroup parsing and the refusal of the agent's own cgroup, and the
// limit → file writes deciders (data, applied by the drivers).

import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { invalidArgument, failedPrecondition } from '../errors.js';
import type { QosClass } from '../cri/types.js';
import type { CgroupLimits } from './types.js';
import type { CgroupFs } from './cgroup-fs.js';
import { cpuQuotaFromMilli, cpuSharesFromMilli, cpuWeightFromMilli, QUOTA_PERIOD_US } from './qos.js';

const SEGMENT = /^[A-Za-z0-9_.:@+-]+$/;

/** Validate and normalise an absolute cgroup path ("/nodelet/pod1"). */
export function cgroupPath(path: string, what = 'cgroup path'): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw invalidArgument('ERR_CGROUP_PATH_INVALID', `${what} ${JSON.stringify(path)} must be absolute (e.g. "/nodelet")`);
  }
  const segs = path.split('/').filter((s) => s !== '');
  for (const s of segs) {
    if (s === '.' || s === '..' || !SEGMENT.test(s) || s.length > 255) {
      throw invalidArgument('ERR_CGROUP_PATH_INVALID', `${what} ${JSON.stringify(path)} has an invalid component ${JSON.stringify(s)} (letters, digits and _.:@+- only)`);
    }
  }
  return '/' + segs.join('/');
}

/** A valid cgroup path at or below `parent` (a manager never touches anything else). */
export function cgroupPathUnder(parent: string, path: string): string {
  const p = cgroupPath(path);
  if (p !== parent && !p.startsWith(parent + '/')) {
    throw failedPrecondition('ERR_CGROUP_OUTSIDE_PARENT', `cgroup ${JSON.stringify(p)} is outside nodelet's parent ${JSON.stringify(parent)}; nodelet only manages cgroups below its parent`);
  }
  return p;
}

/** Proper ancestors of a path, root first: "/a/b/c" → ["/", "/a", "/a/b"]. */
export function ancestorsOf(path: string): string[] {
  const segs = path.split('/').filter((s) => s !== '');
  const out = ['/'];
  for (let i = 1; i < segs.length; i++) out.push('/' + segs.slice(0, i).join('/'));
  return out;
}

export function isWithin(path: string, base: string): boolean {
  return base === '/' || path === base || path.startsWith(base + '/');
}

/** kubelet's cgroupfs layout: Guaranteed under parent, others under burstable/ or besteffort/. */
export function computePodPath(parent: string, podUid: string, qos: QosClass): string {
  if (!podUid || !SEGMENT.test(podUid) || podUid === '.' || podUid === '..') {
    throw invalidArgument('ERR_CGROUP_POD_UID_INVALID', `pod uid ${JSON.stringify(podUid)} cannot name a cgroup (letters, digits and _.:@+- only)`);
  }
  const tier = qos === 'Guaranteed' ? '' : qos === 'Burstable' ? '/burstable' : qos === 'BestEffort' ? '/besteffort' : null;
  if (tier === null) throw invalidArgument('ERR_CGROUP_QOS_INVALID', `unknown QoS class ${JSON.stringify(qos)}`);
  return posix.join(parent, tier.slice(1), `pod${podUid}`);
}

/** /proc/self/cgroup → { "0::" or controller name → path }; the v2 entry is keyed "". */
export function parseProcCgroup(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, , ctrls, path] = m;
    if (ctrls === '') out[''] = path;
    else for (const c of ctrls.split(',')) out[c] = path;
  }
  return out;
}

/**
 * Refuse a parent equal to, inside, or containing the agent's own cgroup in a
 * hierarchy we write to (unless the agent sits in the root cgroup there): that
 * cgroup is not ours (on this machine it belongs to the machine) and on v2 a
 * cgroup with processes cannot get children with controllers.
 */
export function checkParentAgainstSelf(parent: string, selfPaths: Record<string, string>, keys: string[]): void {
  for (const k of keys) {
    const self = selfPaths[k];
    if (self === undefined || self === '/') continue;
    if (isWithin(parent, self) || isWithin(self, parent)) {
      const where = k === '' ? 'the unified (v2) hierarchy' : `the ${k} hierarchy`;
      throw failedPrecondition(
        'ERR_CGROUP_PARENT_IS_SELF',
        `cgroup parent ${JSON.stringify(parent)} overlaps nodelet's own cgroup ${JSON.stringify(self)} in ${where}; nodelet never writes to the cgroup it runs in: choose a parent outside it (e.g. "/nodelet")`,
        { details: { parent, self, hierarchy: k || 'unified' } },
      );
    }
  }
}

export interface LimitWrite {
  controller: 'memory' | 'cpu' | 'pids';
  file: string;
  value: string;
  /** only written when the file exists (e.g. memory.swap.max without swap accounting) */
  optional?: boolean;
}

/** CPU request for shares/weight: kubelet uses the limit when only a limit is set. */
function effectiveCpuRequest(l: CgroupLimits): number | undefined {
  if ((l.cpuRequestMilli === undefined || l.cpuRequestMilli === 0) && l.cpuLimitMilli !== undefined && l.cpuLimitMilli > 0) return l.cpuLimitMilli;
  return l.cpuRequestMilli;
}

export function validateLimits(l: CgroupLimits): void {
  for (const [k, v] of Object.entries(l)) {
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw invalidArgument('ERR_CGROUP_LIMIT_INVALID', `cgroup limit ${k}=${String(v)} must be a non-negative integer`);
    }
  }
  if (l.memoryMaxBytes !== undefined && l.memoryMaxBytes < 4096) {
    throw invalidArgument('ERR_CGROUP_LIMIT_INVALID', `memory limit ${l.memoryMaxBytes} bytes is below one page; use at least 4096`);
  }
}

/**
 * cgroup v2 files for a set of limits. Every knob is written (undefined →
 * the kernel's unlimited default) so update() can also lift a limit.
 * With a memory limit, swap is turned off (memory.swap.max 0) as kubelet does
 * when swap is not allowed.
 */
export function computeV2LimitWrites(l: CgroupLimits): LimitWrite[] {
  const mem = l.memoryMaxBytes;
  const quota = l.cpuLimitMilli ? cpuQuotaFromMilli(l.cpuLimitMilli, QUOTA_PERIOD_US) : 0;
  return [
    { controller: 'memory', file: 'memory.max', value: mem !== undefined ? String(mem) : 'max' },
    { controller: 'memory', file: 'memory.swap.max', value: mem !== undefined ? '0' : 'max', optional: true },
    { controller: 'cpu', file: 'cpu.max', value: `${quota > 0 ? quota : 'max'} ${QUOTA_PERIOD_US}` },
    { controller: 'cpu', file: 'cpu.weight', value: String(cpuWeightFromMilli(effectiveCpuRequest(l))) },
    { controller: 'pids', file: 'pids.max', value: l.pidsMax !== undefined ? String(l.pidsMax) : 'max' },
  ];
}

/** cgroup v1 files for a set of limits (swap, memsw.*, is left alone). */
export function computeV1LimitWrites(l: CgroupLimits): LimitWrite[] {
  const quota = l.cpuLimitMilli ? cpuQuotaFromMilli(l.cpuLimitMilli, QUOTA_PERIOD_US) : 0;
  return [
    { controller: 'memory', file: 'memory.limit_in_bytes', value: l.memoryMaxBytes !== undefined ? String(l.memoryMaxBytes) : '-1' },
    { controller: 'cpu', file: 'cpu.shares', value: String(cpuSharesFromMilli(effectiveCpuRequest(l))) },
    { controller: 'cpu', file: 'cpu.cfs_period_us', value: String(QUOTA_PERIOD_US) },
    { controller: 'cpu', file: 'cpu.cfs_quota_us', value: quota > 0 ? String(quota) : '-1' },
    { controller: 'pids', file: 'pids.max', value: l.pidsMax !== undefined ? String(l.pidsMax) : 'max' },
  ];
}

/**
 * Pure: what removeEmptyParents may rmdir, in order (tiers before the parent),
 * leaving out any path that is, contains or sits inside `self` (the agent's
 * own cgroup in that hierarchy; "/" or undefined = no restriction).
 */
export function computeEmptyParentCandidates(parent: string, self?: string): string[] {
  const p = cgroupPath(parent, 'cgroup parent');
  if (p === '/') return [];
  return [`${p}/besteffort`, `${p}/burstable`, p].filter((c) => self === undefined || self === '/' || (!isWithin(c, self) && !isWithin(self, c)));
}

/**
 * Pure: /proc/<pid>/cgroup paths (the hierarchy's view, as the kernel prints them for our cgroup namespace)
 * → paths under the mounts nodelet reads and writes (layout.mountRoots: the cgroup each mount shows). A path
 * under its mount's root becomes relative to it ("/machine.slice/libpod-x/a" with root "/machine.slice/libpod-x"
 * → "/a"); a path outside what the mount shows is dropped (nothing under the mount can be it or contain it).
 */
export function mapToMounts(paths: Record<string, string>, mountRoots: Record<string, string> | undefined): Record<string, string> {
  if (!mountRoots) return paths;
  const out: Record<string, string> = {};
  for (const [k, p] of Object.entries(paths)) {
    const root = mountRoots[k] ?? '/';
    if (root === '/') out[k] = p;
    else if (p === root) out[k] = '/';
    else if (p.startsWith(root + '/')) out[k] = p.slice(root.length);
  }
  return out;
}

/** /proc/self/cgroup of this process, parsed and mapped onto the mounts (empty if unreadable). */
export function readSelfCgroups(mountRoots?: Record<string, string>): Record<string, string> {
  try {
    return mapToMounts(parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8')), mountRoots);
  } catch {
    return {};
  }
}

/** rmdir each candidate that exists with no child cgroups and no tasks (rmdir only; busy ones stay). */
export function rmdirIfEmpty(fs: CgroupFs, candidates: string[]): void {
  for (const c of candidates) {
    if (!fs.exists(c) || fs.children(c).length > 0 || fs.procs(c).length > 0) continue;
    fs.rmdir(c); // 'busy': something moved in meanwhile; left alone
  }
}

export { sleep } from '../sys/proc.js';
