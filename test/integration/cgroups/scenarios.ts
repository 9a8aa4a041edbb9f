// Real-kernel checks shared by the v1 suite (this host) and the v2 suite (the
// VM): the same scenarios, reading the kernel's files back per version.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroupManager, detectCgroupLayout, type NodeletCgroupManager } from '../../../src/cgroups/index.js';

const BUSYBOX = '/usr/bin/busybox';

export interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start argv (busybox applet) inside the cgroup: the shell joins it, then execs. */
export function startIn(procsFiles: string[], argv: string[]): Started {
  const join_ = procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
  const child = spawn(BUSYBOX, ['sh', '-c', `${join_} && exec "$@"`, 'sh', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  (child as ChildProcess & { errText: () => string }).errText = () => err;
  return { child, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export function flat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

export function cgroupScenarios(version: 'v1' | 'v2'): void {
  describe(`cgroup ${version} driver on the real kernel`, () => {
    const parent = `/nodelet-test-${randomBytes(4).toString('hex')}`;
    const layout = detectCgroupLayout();
    let m: NodeletCgroupManager;
    const started: Started[] = [];
    /** The real file for a controller's knob of a cgroup. */
    const file = (ctrl: string, path: string, name: string) =>
      version === 'v2' ? join('/sys/fs/cgroup', path, name) : join(layout.v1Controllers[ctrl], path, name);
    const rd = (ctrl: string, path: string, name: string) => readFileSync(file(ctrl, path, name), 'utf8').trim();
    const hierarchyDirs = () => (version === 'v2' ? ['/sys/fs/cgroup'] : [...new Set(Object.values(layout.v1Controllers))]);

    beforeAll(async () => {
      expect(process.getuid?.()).toBe(0);
      expect(layout.version).toBe(version);
      m = await createCgroupManager({ parent });
      expect(m.version).toBe(version);
    });

    afterAll(async () => {
      for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
      if (m) await m.remove(parent);
      for (const d of hierarchyDirs()) expect(existsSync(join(d, parent)), `${d}${parent} left behind`).toBe(false);
    });

    it('creates pod and container cgroups with their limits', async () => {
      const pod = m.podPath('uid-limits', 'Burstable');
      expect(pod).toBe(`${parent}/burstable/poduid-limits`);
      await m.create(pod, { memoryMaxBytes: 256 << 20, cpuLimitMilli: 1000 });
      const ctr = `${pod}/c1`;
      await m.create(ctr, { memoryMaxBytes: 64 << 20, cpuLimitMilli: 250, cpuRequestMilli: 100, pidsMax: 42 });
      expect(m.exists(ctr)).toBe(true);
      if (version === 'v2') {
        for (const a of ['', parent, `${parent}/burstable`, pod]) {
          const enabled = rd('', a || '/', 'cgroup.subtree_control').split(' ');
          expect(enabled, `subtree_control of ${a || '/'}`).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids']));
        }
        expect(rd('', ctr, 'cgroup.subtree_control')).toBe('');
        expect(rd('memory', ctr, 'memory.max')).toBe(String(64 << 20));
        expect(rd('memory', ctr, 'memory.swap.max')).toBe('0');
        expect(rd('memory', pod, 'memory.max')).toBe(String(256 << 20));
        expect(rd('cpu', ctr, 'cpu.max')).toBe('25000 100000');
        expect(rd('cpu', ctr, 'cpu.weight')).toBe('4');
        expect(rd('pids', ctr, 'pids.max')).toBe('42');
        expect(rd('memory', ctr, 'memory.oom.group')).toBe('1');
        expect(rd('memory', pod, 'memory.oom.group')).toBe('0');
      } else {
        expect(rd('memory', ctr, 'memory.limit_in_bytes')).toBe(String(64 << 20));
        expect(rd('memory', pod, 'memory.limit_in_bytes')).toBe(String(256 << 20));
        expect(rd('cpu', ctr, 'cpu.cfs_quota_us')).toBe('25000');
        expect(rd('cpu', ctr, 'cpu.cfs_period_us')).toBe('100000');
        expect(rd('cpu', ctr, 'cpu.shares')).toBe('102');
        expect(rd('pids', ctr, 'pids.max')).toBe('42');
        // one cgroup.procs per hierarchy (memory, cpu, cpuacct, pids, freezer here)
        const dirs = new Set(['memory', 'cpu', 'cpuacct', 'pids', 'freezer'].filter((c) => layout.v1Controllers[c]).map((c) => layout.v1Controllers[c]));
        expect(m.procsFiles(ctr).sort()).toEqual([...dirs].map((d) => join(d, ctr, 'cgroup.procs')).sort());
      }
      await m.update(ctr, { memoryMaxBytes: 32 << 20, cpuRequestMilli: 1000 });
      expect(rd('memory', ctr, version === 'v2' ? 'memory.max' : 'memory.limit_in_bytes')).toBe(String(32 << 20));
      expect(rd('cpu', ctr, version === 'v2' ? 'cpu.weight' : 'cpu.shares')).toBe(version === 'v2' ? '39' : '1024');
      expect(rd('pids', ctr, 'pids.max')).toBe('max');
      // a pod limit below the container's is the kernel's business; a bad value is ours
      await expect(m.create(`${pod}/bad`, { pidsMax: 1.5 })).rejects.toMatchObject({ code: 'ERR_CGROUP_LIMIT_INVALID' });
      expect(m.exists(`${pod}/bad`)).toBe(false);
      // a container CPU limit above the pod's: v1 refuses it (cleanly), v2 caps it
      const over = m.create(`${pod}/over`, { cpuLimitMilli: 2000 });
      if (version === 'v1') {
        await expect(over).rejects.toMatchObject({ code: 'ERR_CGROUP_LIMIT_APPLY' });
        for (const d of hierarchyDirs()) expect(existsSync(join(d, pod, 'over')), `${d}${pod}/over`).toBe(false);
      } else {
        await over;
        expect(rd('cpu', `${pod}/over`, 'cpu.max')).toBe('200000 100000');
      }
    });

    it('holds a process, reports it, killAll empties the cgroup, remove leaves nothing', async () => {
      const ctr = `${m.podPath('uid-procs', 'BestEffort')}/c1`;
      await m.create(ctr, {});
      // the BestEffort tier gets the minimum CPU weight, as kubelet's
      expect(rd('cpu', `${parent}/besteffort`, version === 'v2' ? 'cpu.weight' : 'cpu.shares')).toBe(version === 'v2' ? '1' : '2');
      const s = startIn(m.procsFiles(ctr), ['sleep', '60']);
      started.push(s);
      await waitFor(async () => (await m.pids(ctr)).includes(s.child.pid!), 10_000, 'the sleep to join the cgroup');
      // the shell joined; wait for its exec so the new image's memory is charged here
      await waitFor(() => !readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8').includes('-c'), 10_000, 'the exec of sleep');
      await waitFor(async () => (await m.stats(ctr)).memoryUsageBytes > 0, 10_000, 'memory charged to the cgroup');
      const st = await m.stats(ctr);
      expect(st.pids).toBe(1);
      expect(st.memoryUsageBytes).toBeGreaterThan(0);
      expect(st.memoryWorkingSetBytes).toBeLessThanOrEqual(st.memoryUsageBytes);
      expect(st.oomKills).toBe(0);
      if (version === 'v2') expect(existsSync(file('', ctr, 'cgroup.kill'))).toBe(true); // killAll's v2 path
      await m.killAll(ctr);
      expect(await m.pids(ctr)).toEqual([]);
      expect((await s.exited).signal).toBe('SIGKILL');
      if (version === 'v2') expect(flat(rd('', ctr, 'cgroup.events')).populated).toBe(0);
      // remove kills leftovers itself, is idempotent and leaves no directory in any hierarchy
      const s2 = startIn(m.procsFiles(ctr), ['sleep', '60']);
      started.push(s2);
      await waitFor(async () => (await m.pids(ctr)).includes(s2.child.pid!), 10_000, 'the second sleep to join');
      await m.remove(m.podPath('uid-procs', 'BestEffort'));
      expect((await s2.exited).signal).toBe('SIGKILL');
      await m.remove(m.podPath('uid-procs', 'BestEffort'));
      expect(m.exists(ctr)).toBe(false);
      for (const d of hierarchyDirs()) expect(existsSync(join(d, parent, 'besteffort', 'poduid-procs'))).toBe(false);
    });

    it('a process allocating past memory limit is OOM-killed and counted', async () => {
      const pod = m.podPath('uid-oom', 'Burstable');
      const ctr = `${pod}/c1`;
      await m.create(pod, {});
      await m.create(ctr, { memoryMaxBytes: 24 << 20 });
      // dd's 96 MiB buffer is filled by read(): every page is touched
      const s = startIn(m.procsFiles(ctr), ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1']);
      started.push(s);
      const r = await s.exited;
      expect(r.signal).toBe('SIGKILL');
      expect((await m.stats(ctr)).oomKills).toBeGreaterThanOrEqual(1);
      const counter = flat(readFileSync(m.oomCounterFile(ctr), 'utf8'));
      expect(counter.oom_kill).toBeGreaterThanOrEqual(1);
      // the container's own limit fired: its own counters say so
      const ev = await m.memoryEvents(ctr);
      expect(ev.oom).toBeGreaterThanOrEqual(1);
      expect(ev.oomKill).toBeGreaterThanOrEqual(1);
      if (version === 'v2') expect(flat(rd('memory', ctr, 'memory.events')).oom).toBeGreaterThanOrEqual(1);
      else expect(Number(rd('memory', ctr, 'memory.failcnt'))).toBeGreaterThan(0);
      await m.remove(pod);
    });

    it('a pod limit OOM is told apart from a container limit OOM', async () => {
      const pod = m.podPath('uid-podoom', 'Burstable');
      const ctr = `${pod}/c1`;
      await m.create(pod, { memoryMaxBytes: 24 << 20 });
      await m.create(ctr, { memoryMaxBytes: 512 << 20 });
      const s = startIn(m.procsFiles(ctr), ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1']);
      started.push(s);
      expect((await s.exited).signal).toBe('SIGKILL');
      const podEv = await m.memoryEvents(pod);
      const ctrEv = await m.memoryEvents(ctr);
      expect(podEv.oom).toBeGreaterThanOrEqual(1);
      // v2 counts a kill in every ancestor of the victim; v1 only in the victim's own cgroup
      if (version === 'v2') expect(podEv.oomKill).toBeGreaterThanOrEqual(1);
      else expect(podEv.oomKill).toBe(0);
      expect(ctrEv.oom).toBe(0); // the container's own limit never fired
      expect(ctrEv.oomKill).toBeGreaterThanOrEqual(1); // but the victim was in it
      await m.remove(pod);
    });

    it('pids.max stops a fork bomb', async () => {
      const ctr = `${m.podPath('uid-pids', 'BestEffort')}/c1`;
      await m.create(ctr, { pidsMax: 8 });
      const s = startIn(m.procsFiles(ctr), ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; wait']);
      started.push(s);
      await waitFor(() => (flat(rd('pids', ctr, 'pids.events')).max ?? 0) > 0, 30_000, 'pids.events max > 0');
      const st = await m.stats(ctr);
      expect(st.pids).toBeLessThanOrEqual(8);
      expect(Number(rd('pids', ctr, 'pids.current'))).toBeLessThanOrEqual(8);
      await m.killAll(ctr);
      expect(await m.pids(ctr)).toEqual([]);
      await m.remove(m.podPath('uid-pids', 'BestEffort'));
    });

    it('a cpu limit throttles', async () => {
      const ctr = `${m.podPath('uid-cpu', 'Guaranteed')}/c1`;
      await m.create(ctr, { cpuLimitMilli: 50 });
      const s = startIn(m.procsFiles(ctr), ['sh', '-c', 'while :; do :; done']);
      started.push(s);
      await waitFor(() => flat(rd('cpu', ctr, 'cpu.stat')).nr_throttled > 0, 20_000, 'cpu.stat nr_throttled > 0');
      const st = await m.stats(ctr);
      expect(st.cpuUsageNanos).toBeGreaterThan(0);
      await m.remove(m.podPath('uid-cpu', 'Guaranteed'));
      expect((await s.exited).signal).toBe('SIGKILL');
    });

    it('removeEmptyParents removes the QoS tiers and the parent once no task or child is left', async () => {
      const parent2 = `${parent}-tiers`;
      const m2 = await createCgroupManager({ parent: parent2 });
      try {
        const ctr = `${m2.podPath('uid-tiers', 'Burstable')}/c1`;
        await m2.create(ctr, {});
        await m2.create(m2.podPath('uid-be', 'BestEffort'), {});
        const s = startIn(m2.procsFiles(ctr), ['sleep', '60']);
        started.push(s);
        await waitFor(async () => (await m2.pids(ctr)).includes(s.child.pid!), 10_000, 'the sleep to join');
        await m2.remove(m2.podPath('uid-be', 'BestEffort'));
        m2.removeEmptyParents();
        // besteffort is empty: gone; burstable holds a running pod: it and the parent stay
        for (const d of hierarchyDirs()) expect(existsSync(join(d, parent2, 'besteffort')), `${d}${parent2}/besteffort`).toBe(false);
        for (const f of m2.procsFiles(m2.podPath('uid-tiers', 'Burstable'))) expect(existsSync(f), f).toBe(true);
        await m2.killAll(ctr);
        await s.exited;
        await m2.remove(m2.podPath('uid-tiers', 'Burstable'));
        m2.removeEmptyParents();
        for (const d of hierarchyDirs()) expect(existsSync(join(d, parent2)), `${d}${parent2} left behind`).toBe(false);
        m2.removeEmptyParents(); // idempotent
      } finally {
        await m2.remove(parent2).catch(() => undefined);
      }
    });
  });
}
