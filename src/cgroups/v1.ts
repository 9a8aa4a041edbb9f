// cgroup v1 (legacy, and the v1 half of a hybrid host) driver: the same
// cgroup path under each controller's hierarchy (memory, cpu, cpuacct, pids,
// freezer; cpu and cpuacct may share one mount). Swap (memory.memsw.*) is left alone.

import { failedPrecondition, NodeletError, internal } from '../errors.js';
import type { QosClass } from '../cri/types.js';
import type { CgroupLimits, CgroupManager, CgroupStats } from './types.js';
import { CgroupFs, parseFlatKeyed, parseSingle } from './cgroup-fs.js';
import { cpuSharesFromMilli } from './qos.js';
import { ancestorsOf, cgroupPath, cgroupPathUnder, computeEmptyParentCandidates, computePodPath, computeV1LimitWrites, readSelfCgroups, rmdirIfEmpty, sleep, validateLimits } from './common.js';
import { killQuiet, type KillOptions } from './v2.js';

export const V1_REQUIRED = ['memory', 'cpu'];
export const V1_OPTIONAL = ['cpuacct', 'pids', 'freezer'];

export class CgroupV1Manager implements CgroupManager {
  readonly version = 'v1' as const;
  /** controller → adapter over its hierarchy */
  readonly controllers: Record<string, CgroupFs>;
  /** one adapter per distinct hierarchy (cpu,cpuacct co-mounted → one) */
  readonly hierarchies: CgroupFs[];

  constructor(
    readonly parent: string,
    mounts: Record<string, string>,
    /** layout.mountRoots: which cgroup each mount shows (a cgroup namespace or bind may show a subtree) */
    private readonly mountRoots?: Record<string, string>,
  ) {
    const missing = V1_REQUIRED.filter((c) => !mounts[c]);
    if (missing.length > 0) {
      throw failedPrecondition('ERR_CGROUP_CONTROLLER_MISSING', `cgroup v1 controllers ${missing.join(', ')} are not mounted (found: ${Object.keys(mounts).join(', ') || 'none'}); mount them under /sys/fs/cgroup`);
    }
    const byDir = new Map<string, CgroupFs>();
    this.controllers = {};
    for (const c of [...V1_REQUIRED, ...V1_OPTIONAL]) {
      const dir = mounts[c];
      if (!dir) continue;
      let fs = byDir.get(dir);
      if (!fs) byDir.set(dir, (fs = new CgroupFs(dir)));
      this.controllers[c] = fs;
    }
    this.hierarchies = [...byDir.values()];
  }

  get memory(): CgroupFs {
    return this.controllers.memory;
  }

  podPath(podUid: string, qos: QosClass): string {
    return computePodPath(this.parent, podUid, qos);
  }

  private checkUnderParent(path: string): string {
    return cgroupPathUnder(this.parent, path);
  }

  async create(path: string, limits: CgroupLimits): Promise<void> {
    const p = this.checkUnderParent(path);
    validateLimits(limits);
    const made: CgroupFs[] = [];
    const bestEffort = `${this.parent}/besteffort`;
    for (const fs of this.hierarchies) {
      for (const a of ancestorsOf(p)) {
        // kubelet gives the BestEffort tier the minimum cpu.shares (2).
        if (a !== '/' && fs.mkdir(a) && a === bestEffort && fs === this.controllers.cpu) fs.write(a, 'cpu.shares', String(cpuSharesFromMilli(0)));
      }
      if (fs.mkdir(p)) made.push(fs);
    }
    try {
      this.apply(p, limits);
    } catch (e) {
      for (const fs of made) fs.rmdir(p);
      throw e;
    }
  }

  async update(path: string, limits: CgroupLimits): Promise<void> {
    const p = this.checkUnderParent(path);
    validateLimits(limits);
    if (!this.exists(p)) throw new NodeletError('NotFound', 'ERR_CGROUP_NOT_FOUND', `cgroup ${JSON.stringify(p)} does not exist; create it first`);
    this.apply(p, limits);
  }

  private apply(p: string, limits: CgroupLimits): void {
    for (const w of computeV1LimitWrites(limits)) {
      const fs = this.controllers[w.controller];
      if (!fs) continue; // pids not mounted: no pids.max
      try {
        fs.write(p, w.file, w.value);
      } catch (e) {
        throw new NodeletError('InvalidArgument', 'ERR_CGROUP_LIMIT_APPLY', `cannot set ${w.file}=${w.value} on cgroup ${JSON.stringify(p)}`, { cause: e, details: { cgroup: p, file: w.file, value: w.value } });
      }
    }
  }

  procsFiles(path: string): string[] {
    const p = this.checkUnderParent(path);
    return this.hierarchies.map((fs) => fs.file(p, 'cgroup.procs'));
  }

  /** The file holding the oom_kill counter the shim reads at exit (kernel ≥ 4.13). */
  oomCounterFile(path: string): string {
    return this.memory.file(cgroupPath(path), 'memory.oom_control');
  }

  /**
   * This cgroup's own memory events: `oom` is memory.failcnt (times its own
   * limit was hit: v1 has no OOM-only counter), `oomKill` the oom_kill field
   * of memory.oom_control (kernel >= 4.13, hierarchical).
   */
  async memoryEvents(path: string): Promise<{ oom: number; oomKill: number }> {
    const p = cgroupPath(path);
    const oom = parseFlatKeyed(this.memory.read(p, 'memory.oom_control'));
    return { oom: parseSingle(this.memory.read(p, 'memory.failcnt')) ?? 0, oomKill: oom.oom_kill ?? 0 };
  }

  exists(path: string): boolean {
    return this.memory.exists(cgroupPath(path));
  }

  async pids(path: string): Promise<number[]> {
    const p = cgroupPath(path);
    const seen = new Set<number>();
    for (const fs of this.hierarchies) {
      const walk = (q: string) => {
        for (const pid of fs.procs(q)) seen.add(pid);
        for (const c of fs.children(q)) walk(`${q}/${c}`);
      };
      if (fs.exists(p)) walk(p);
    }
    return [...seen];
  }

  async killAll(path: string, opts: KillOptions = {}): Promise<void> {
    const p = this.checkUnderParent(path);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const fz = this.controllers.freezer?.exists(p, 'freezer.state') ? this.controllers.freezer : undefined;
    let delay = 2;
    for (;;) {
      const pids = await this.pids(p);
      if (pids.length === 0) return;
      // Like runc: freeze so nothing forks between listing and killing, SIGKILL
      // every pid, thaw (a frozen task dies once thawed).
      if (fz) await this.freeze(fz, p, 500);
      try {
        for (const pid of await this.pids(p)) killQuiet(pid);
      } finally {
        if (fz) fz.write(p, 'freezer.state', 'THAWED');
      }
      if (Date.now() > deadline) {
        throw internal('ERR_CGROUP_KILL_TIMEOUT', `processes in cgroup ${JSON.stringify(p)} survived SIGKILL for ${timeoutMs} ms (pids ${pids.join(' ')}); are they in uninterruptible sleep (D state)?`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  /** Ask the freezer to freeze and wait (bounded) until it reports FROZEN; false if it did not in time. */
  private async freeze(fz: CgroupFs, p: string, waitMs: number): Promise<boolean> {
    fz.write(p, 'freezer.state', 'FROZEN');
    const end = Date.now() + waitMs;
    for (;;) {
      if ((fz.read(p, 'freezer.state') ?? '').trim() === 'FROZEN') return true;
      if (Date.now() > end) return false;
      await sleep(1);
    }
  }

  async remove(path: string): Promise<void> {
    const p = this.checkUnderParent(path);
    if ((await this.pids(p)).length > 0) await this.killAll(p);
    for (const fs of this.hierarchies) await removeTree(fs, p);
  }

  removeEmptyParents(): void {
    const self = readSelfCgroups(this.mountRoots);
    for (const fs of this.hierarchies) {
      // the agent's own cgroup in this hierarchy (cpu,cpuacct share one: any of its controllers names it)
      const names = Object.keys(this.controllers).filter((c) => this.controllers[c] === fs);
      const own = names.map((c) => self[c]).find((p) => p !== undefined && p !== '/');
      rmdirIfEmpty(fs, computeEmptyParentCandidates(this.parent, own));
    }
  }

  async stats(path: string): Promise<CgroupStats> {
    const p = cgroupPath(path);
    if (!this.exists(p)) throw new NodeletError('NotFound', 'ERR_CGROUP_NOT_FOUND', `cgroup ${JSON.stringify(p)} does not exist`);
    const usage = parseSingle(this.memory.read(p, 'memory.usage_in_bytes')) ?? 0;
    const mstat = parseFlatKeyed(this.memory.read(p, 'memory.stat'));
    const inactive = mstat.total_inactive_file ?? mstat.inactive_file ?? 0;
    const oom = parseFlatKeyed(this.memory.read(p, 'memory.oom_control'));
    const acct = this.controllers.cpuacct;
    const pidsFs = this.controllers.pids;
    return {
      cpuUsageNanos: acct ? (parseSingle(acct.read(p, 'cpuacct.usage')) ?? 0) : 0,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: Math.max(0, usage - inactive),
      pids: pidsFs ? (parseSingle(pidsFs.read(p, 'pids.current')) ?? 0) : 0,
      oomKills: oom.oom_kill ?? 0,
    };
  }
}

/** rmdir leaf-first; EBUSY right after the last task exits is retried briefly. */
async function removeTree(fs: CgroupFs, p: string): Promise<void> {
  if (!fs.exists(p)) return;
  for (const c of fs.children(p)) await removeTree(fs, `${p}/${c}`);
  for (let i = 0; ; i++) {
    const r = fs.rmdir(p);
    if (r !== 'busy') return;
    if (i >= 40) throw new NodeletError('Unavailable', 'ERR_CGROUP_BUSY', `cgroup ${JSON.stringify(p)} (${fs.dir(p)}) stays busy; are processes still in it?`);
    await sleep(25);
  }
}
