// cgroup v2 (unified) driver: one hierarchy; controllers enabled down the path
// through cgroup.subtree_control; processes only in leaves.

import { failedPrecondition, NodeletError, internal } from '../errors.js';
import { getLogger } from '../log.js';
import type { QosClass } from '../cri/types.js';
import type { CgroupLimits, CgroupManager, CgroupStats } from './types.js';
import { CgroupFs, parseFlatKeyed, parseSingle } from './cgroup-fs.js';
import { cpuWeightFromMilli } from './qos.js';
import { ancestorsOf, cgroupPath, cgroupPathUnder, computeEmptyParentCandidates, computePodPath, computeV2LimitWrites, readSelfCgroups, rmdirIfEmpty, sleep, validateLimits } from './common.js';

const log = getLogger('cgroups.v2');

/** Controllers nodelet needs (required) and uses when present. */
export const V2_REQUIRED = ['cpu', 'memory', 'pids'];
export const V2_OPTIONAL = ['io'];

/** Pure: which controllers to enable in a cgroup given what it has and what is enabled. */
export function computeControllersToEnable(available: string[], enabled: string[]): { enable: string[]; missing: string[] } {
  const want = [...V2_REQUIRED, ...V2_OPTIONAL.filter((c) => available.includes(c))];
  const missing = V2_REQUIRED.filter((c) => !available.includes(c));
  return { enable: want.filter((c) => available.includes(c) && !enabled.includes(c)), missing };
}

const words = (s: string | null) => (s ?? '').split(/\s+/).filter((w) => w !== '');

export interface KillOptions {
  /** total time to wait for the cgroup to empty (default 10 s) */
  timeoutMs?: number;
}

export class CgroupV2Manager implements CgroupManager {
  readonly version = 'v2' as const;

  constructor(
    readonly parent: string,
    readonly fs: CgroupFs,
    /** layout.mountRoots: which cgroup the mount shows (a cgroup namespace or bind may show a subtree) */
    private readonly mountRoots?: Record<string, string>,
  ) {}

  podPath(podUid: string, qos: QosClass): string {
    return computePodPath(this.parent, podUid, qos);
  }

  private checkUnderParent(path: string): string {
    return cgroupPathUnder(this.parent, path);
  }

  /** Enable the controllers we need in `path`'s subtree_control (skipping ones already on). */
  private enableControllers(path: string): void {
    const available = words(this.fs.read(path, 'cgroup.controllers'));
    const enabled = words(this.fs.read(path, 'cgroup.subtree_control'));
    const { enable, missing } = computeControllersToEnable(available, enabled);
    if (missing.length > 0) {
      throw failedPrecondition('ERR_CGROUP_CONTROLLER_MISSING', `cgroup v2 controllers ${missing.join(', ')} are not available in ${JSON.stringify(path)} (${this.fs.file(path, 'cgroup.controllers')} lists: ${available.join(' ') || 'none'}); enable them in the parent's cgroup.subtree_control or boot with them`);
    }
    if (enable.length === 0) return;
    try {
      this.fs.write(path, 'cgroup.subtree_control', enable.map((c) => '+' + c).join(' '));
    } catch {
      // One at a time to find which one the kernel refuses; optional ones may fail.
      for (const c of enable) {
        try {
          this.fs.write(path, 'cgroup.subtree_control', '+' + c);
        } catch (e2) {
          if (V2_REQUIRED.includes(c)) {
            throw failedPrecondition('ERR_CGROUP_CONTROLLER_ENABLE', `cannot enable the ${c} controller in ${JSON.stringify(path)} (a cgroup with processes cannot delegate controllers: no-internal-process rule)`, { cause: e2 });
          }
          log.warn('optional controller not enabled', { cgroup: path, controller: c, error: e2 });
        }
      }
    }
  }

  async create(path: string, limits: CgroupLimits): Promise<void> {
    const p = this.checkUnderParent(path);
    validateLimits(limits);
    const ancestors = ancestorsOf(p);
    for (const a of ancestors) {
      // kubelet gives the BestEffort tier the minimum CPU weight (shares 2).
      if (a !== '/' && this.fs.mkdir(a) && a === `${this.parent}/besteffort`) this.fs.write(a, 'cpu.weight', String(cpuWeightFromMilli(0)));
      this.enableControllers(a);
    }
    const created = this.fs.mkdir(p);
    try {
      this.apply(p, limits);
      // Containers (children of a pod cgroup) are OOM-killed as a whole, as
      // kubelet does on v2 (memory.oom.group=1, kernel >= 4.19).
      if (isContainerPath(this.parent, p) && this.fs.exists(p, 'memory.oom.group')) this.fs.write(p, 'memory.oom.group', '1');
    } catch (e) {
      if (created) this.fs.rmdir(p);
      throw e;
    }
  }

  async update(path: string, limits: CgroupLimits): Promise<void> {
    const p = this.checkUnderParent(path);
    validateLimits(limits);
    if (!this.fs.exists(p)) throw new NodeletError('NotFound', 'ERR_CGROUP_NOT_FOUND', `cgroup ${JSON.stringify(p)} does not exist; create it first`);
    this.apply(p, limits);
  }

  private apply(p: string, limits: CgroupLimits): void {
    for (const w of computeV2LimitWrites(limits)) {
      if (w.optional && !this.fs.exists(p, w.file)) continue;
      try {
        this.fs.write(p, w.file, w.value);
      } catch (e) {
        throw new NodeletError('InvalidArgument', 'ERR_CGROUP_LIMIT_APPLY', `cannot set ${w.file}=${w.value} on cgroup ${JSON.stringify(p)}`, { cause: e, details: { cgroup: p, file: w.file, value: w.value } });
      }
    }
  }

  procsFiles(path: string): string[] {
    return [this.fs.file(this.checkUnderParent(path), 'cgroup.procs')];
  }

  /** The file holding the oom_kill counter the shim reads at exit. */
  oomCounterFile(path: string): string {
    return this.fs.file(cgroupPath(path), 'memory.events');
  }

  /**
   * This cgroup's own OOM events: `oom` counts the times its own memory.max
   * fired (a pod-limit OOM does not count in the container), `oomKill` the
   * processes killed in it or below (memory.events, hierarchical).
   */
  async memoryEvents(path: string): Promise<{ oom: number; oomKill: number }> {
    const ev = parseFlatKeyed(this.fs.read(cgroupPath(path), 'memory.events'));
    return { oom: ev.oom ?? 0, oomKill: ev.oom_kill ?? 0 };
  }

  exists(path: string): boolean {
    return this.fs.exists(cgroupPath(path));
  }

  async pids(path: string): Promise<number[]> {
    const p = cgroupPath(path);
    const out: number[] = [];
    const walk = (q: string) => {
      out.push(...this.fs.procs(q));
      for (const c of this.fs.children(q)) walk(`${q}/${c}`);
    };
    if (this.fs.exists(p)) walk(p);
    return out;
  }

  private populated(p: string): boolean {
    const ev = parseFlatKeyed(this.fs.read(p, 'cgroup.events'));
    return ev.populated === undefined ? false : ev.populated !== 0;
  }

  async killAll(path: string, opts: KillOptions = {}): Promise<void> {
    const p = this.checkUnderParent(path);
    if (!this.fs.exists(p)) return;
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    const hasKill = this.fs.exists(p, 'cgroup.kill');
    let delay = 2;
    for (;;) {
      if (!this.populated(p) && (await this.pids(p)).length === 0) return;
      if (hasKill) {
        this.fs.write(p, 'cgroup.kill', '1');
      } else {
        // kernel < 5.14: freeze, SIGKILL everything, thaw (frozen tasks die on thaw).
        const canFreeze = this.fs.exists(p, 'cgroup.freeze');
        if (canFreeze) this.fs.write(p, 'cgroup.freeze', '1');
        for (const pid of await this.pids(p)) killQuiet(pid);
        if (canFreeze) this.fs.write(p, 'cgroup.freeze', '0');
      }
      if (Date.now() > deadline) {
        throw internal('ERR_CGROUP_KILL_TIMEOUT', `processes in cgroup ${JSON.stringify(p)} survived SIGKILL for ${opts.timeoutMs ?? 10_000} ms (pids ${(await this.pids(p)).join(' ')}); are they in uninterruptible sleep (D state)?`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  async remove(path: string): Promise<void> {
    const p = this.checkUnderParent(path);
    if (!this.fs.exists(p)) return;
    for (const c of this.fs.children(p)) await this.remove(`${p}/${c}`);
    if (this.populated(p) || this.fs.procs(p).length > 0) await this.killAll(p);
    for (let i = 0; ; i++) {
      const r = this.fs.rmdir(p);
      if (r !== 'busy') return;
      if (i >= 40) throw new NodeletError('Unavailable', 'ERR_CGROUP_BUSY', `cgroup ${JSON.stringify(p)} stays busy after its processes were killed; retry later`);
      await sleep(25);
    }
  }

  removeEmptyParents(): void {
    rmdirIfEmpty(this.fs, computeEmptyParentCandidates(this.parent, readSelfCgroups(this.mountRoots)['']));
  }

  async stats(path: string): Promise<CgroupStats> {
    const p = cgroupPath(path);
    if (!this.fs.exists(p)) throw new NodeletError('NotFound', 'ERR_CGROUP_NOT_FOUND', `cgroup ${JSON.stringify(p)} does not exist`);
    const cpu = parseFlatKeyed(this.fs.read(p, 'cpu.stat'));
    const usage = parseSingle(this.fs.read(p, 'memory.current')) ?? 0;
    const mstat = parseFlatKeyed(this.fs.read(p, 'memory.stat'));
    const inactive = mstat.inactive_file ?? 0;
    const events = parseFlatKeyed(this.fs.read(p, 'memory.events'));
    return {
      cpuUsageNanos: (cpu.usage_usec ?? 0) * 1000,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: Math.max(0, usage - inactive),
      pids: parseSingle(this.fs.read(p, 'pids.current')) ?? 0,
      oomKills: events.oom_kill ?? 0,
    };
  }
}

/** A container's cgroup sits right under a pod cgroup: <parent>[/burstable|/besteffort]/pod<uid>/<id>. */
export function isContainerPath(parent: string, p: string): boolean {
  const rest = p.slice(parent.length).split('/').filter(Boolean);
  if (!p.startsWith(parent + '/')) return false;
  if (rest[0] === 'burstable' || rest[0] === 'besteffort') rest.shift();
  return rest.length === 2 && /^pod./.test(rest[0]);
}

export function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
