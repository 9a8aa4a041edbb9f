// Both drivers against temp directories. The v2 one runs over a tiny fake of
// the kernel's cgroup2 rules (a child's cgroup.controllers = its parent's
// subtree_control; "+x" writes merge), enough to check order and refusals.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupV1Manager, CgroupV2Manager, createCgroupManager } from '../../../src/cgroups/index.js';
import { CgroupFs, type CgroupWrite } from '../../../src/cgroups/cgroup-fs.js';
import { computeV1LimitWrites, computeV2LimitWrites } from '../../../src/cgroups/common.js';
import { isNodeletError } from '../../../src/errors.js';

class FakeCgroup2Fs extends CgroupFs {
  override mkdir(path: string): boolean {
    const made = super.mkdir(path);
    if (made) {
      const parent = path.slice(0, path.lastIndexOf('/')) || '/';
      writeFileSync(this.file(path, 'cgroup.controllers'), readFileSync(this.file(parent, 'cgroup.subtree_control'), 'utf8'));
      writeFileSync(this.file(path, 'cgroup.subtree_control'), '');
      writeFileSync(this.file(path, 'memory.swap.max'), 'max\n');
      writeFileSync(this.file(path, 'memory.oom.group'), '0\n');
    }
    return made;
  }
  override write(path: string, name: string, value: string): void {
    if (name !== 'cgroup.subtree_control') return super.write(path, name, value);
    this.onWrite?.({ file: this.file(path, name), value });
    const avail = readFileSync(this.file(path, 'cgroup.controllers'), 'utf8').split(/\s+/);
    const cur = new Set(readFileSync(this.file(path, name), 'utf8').split(/\s+/).filter(Boolean));
    for (const tok of value.split(' ')) {
      const c = tok.slice(1);
      if (!avail.includes(c)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      if (tok[0] === '+') cur.add(c);
      else cur.delete(c);
    }
    writeFileSync(this.file(path, name), [...cur].join(' '));
  }
}

let dir = '';
beforeEach(() => {
  dir = mkdtempSync('/dev/shm/nodelet-test-');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const read = (...p: string[]) => readFileSync(join(dir, ...p), 'utf8').trim();

describe('limit deciders', () => {
  it('v2: every knob, swap off with a memory limit, weight straight from the request', () => {
    expect(computeV2LimitWrites({ memoryMaxBytes: 64 << 20, cpuLimitMilli: 500, cpuRequestMilli: 250, pidsMax: 100 }).map((w) => `${w.file}=${w.value}`)).toEqual([
      'memory.max=67108864', 'memory.swap.max=0', 'cpu.max=50000 100000', 'cpu.weight=10', 'pids.max=100',
    ]);
    expect(computeV2LimitWrites({}).map((w) => `${w.file}=${w.value}`)).toEqual(['memory.max=max', 'memory.swap.max=max', 'cpu.max=max 100000', 'cpu.weight=1', 'pids.max=max']);
    // only a limit: the request defaults to it (kubelet)
    expect(computeV2LimitWrites({ cpuLimitMilli: 1000 }).find((w) => w.file === 'cpu.weight')!.value).toBe('39');
  });
  it('v1: shares, period then quota, -1 for unlimited', () => {
    expect(computeV1LimitWrites({ memoryMaxBytes: 1 << 20, cpuLimitMilli: 200, cpuRequestMilli: 100 }).map((w) => `${w.file}=${w.value}`)).toEqual([
      'memory.limit_in_bytes=1048576', 'cpu.shares=102', 'cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=20000', 'pids.max=max',
    ]);
    expect(computeV1LimitWrites({}).map((w) => w.value)).toEqual(['-1', '2', '100000', '-1', 'max']);
  });
});

describe('CgroupV2Manager over a fake cgroup2 root', () => {
  function v2(): { m: CgroupV2Manager; writes: CgroupWrite[] } {
    writeFileSync(join(dir, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc');
    writeFileSync(join(dir, 'cgroup.subtree_control'), 'memory');
    const fs = new FakeCgroup2Fs(dir);
    const writes: CgroupWrite[] = [];
    fs.onWrite = (w) => writes.push({ file: w.file.slice(dir.length), value: w.value });
    return { m: new CgroupV2Manager('/nodelet', fs), writes };
  }

  it('pod paths by QoS class (kubelet cgroupfs layout)', () => {
    const { m } = v2();
    expect(m.podPath('u1', 'Guaranteed')).toBe('/nodelet/podu1');
    expect(m.podPath('u1', 'Burstable')).toBe('/nodelet/burstable/podu1');
    expect(m.podPath('u1', 'BestEffort')).toBe('/nodelet/besteffort/podu1');
    expect(() => m.podPath('../x', 'Burstable')).toThrow(/pod uid/);
  });

  it('enables controllers root-first down to the leaf parent, skipping enabled ones; limits on the leaf', async () => {
    const { m, writes } = v2();
    const pod = m.podPath('abc', 'Burstable');
    await m.create(`${pod}/ctr1`, { memoryMaxBytes: 1 << 24, cpuLimitMilli: 250, cpuRequestMilli: 100, pidsMax: 50 });
    expect(writes.filter((w) => w.file.endsWith('subtree_control'))).toEqual([
      { file: '/cgroup.subtree_control', value: '+cpu +pids +io' },
      { file: '/nodelet/cgroup.subtree_control', value: '+cpu +memory +pids +io' },
      { file: '/nodelet/burstable/cgroup.subtree_control', value: '+cpu +memory +pids +io' },
      { file: '/nodelet/burstable/podabc/cgroup.subtree_control', value: '+cpu +memory +pids +io' },
    ]);
    const leaf = ['nodelet', 'burstable', 'podabc', 'ctr1'];
    expect(read(...leaf, 'cgroup.subtree_control')).toBe(''); // processes live in leaves
    expect(read(...leaf, 'memory.max')).toBe('16777216');
    expect(read(...leaf, 'memory.swap.max')).toBe('0');
    expect(read(...leaf, 'cpu.max')).toBe('25000 100000');
    expect(read(...leaf, 'cpu.weight')).toBe('4');
    expect(read(...leaf, 'pids.max')).toBe('50');
    expect(read(...leaf, 'memory.oom.group')).toBe('1'); // a container dies whole on OOM
    expect(read('nodelet', 'burstable', 'podabc', 'memory.oom.group')).toBe('0'); // a pod does not
    expect(m.procsFiles(`${pod}/ctr1`)).toEqual([join(dir, ...leaf, 'cgroup.procs')]);
    expect(m.oomCounterFile(`${pod}/ctr1`)).toBe(join(dir, ...leaf, 'memory.events'));

    // second create: nothing left to enable; update lifts the memory limit
    writes.length = 0;
    await m.create(`${pod}/ctr2`, {});
    expect(writes.filter((w) => w.file.endsWith('subtree_control'))).toEqual([]);
    await m.update(`${pod}/ctr1`, { cpuRequestMilli: 1000 });
    expect(read(...leaf, 'memory.max')).toBe('max');
    expect(read(...leaf, 'memory.swap.max')).toBe('max');
    expect(read(...leaf, 'cpu.weight')).toBe('39');
    // tiers: BestEffort gets weight 1 when first created; Burstable is left at the kernel default
    await m.create(m.podPath('be', 'BestEffort'), {});
    expect(read('nodelet', 'besteffort', 'cpu.weight')).toBe('1');
    expect(existsSync(join(dir, 'nodelet', 'burstable', 'cpu.weight'))).toBe(false);
  });

  it('a required controller missing at the root is a clear error', async () => {
    writeFileSync(join(dir, 'cgroup.controllers'), 'cpu pids');
    writeFileSync(join(dir, 'cgroup.subtree_control'), '');
    const m = new CgroupV2Manager('/nodelet', new FakeCgroup2Fs(dir));
    await expect(m.create('/nodelet/x', {})).rejects.toThrow(/memory are not available/);
  });

  it('refuses paths outside the parent and invalid limits, leaving nothing behind', async () => {
    const { m } = v2();
    await expect(m.create('/elsewhere/x', {})).rejects.toMatchObject({ code: 'ERR_CGROUP_OUTSIDE_PARENT' });
    expect(() => m.procsFiles('/nodelet2/x')).toThrow(/outside nodelet's parent/);
    await expect(m.remove('/')).rejects.toMatchObject({ code: 'ERR_CGROUP_OUTSIDE_PARENT' });
    await expect(m.create('/nodelet/../x', {})).rejects.toMatchObject({ code: 'ERR_CGROUP_PATH_INVALID' });
    await expect(m.create('/nodelet/x', { memoryMaxBytes: -5 })).rejects.toMatchObject({ code: 'ERR_CGROUP_LIMIT_INVALID' });
    expect(existsSync(join(dir, 'nodelet', 'x'))).toBe(false);
    await expect(m.update('/nodelet/nope', {})).rejects.toMatchObject({ code: 'ERR_CGROUP_NOT_FOUND' });
    await expect(m.remove('/nodelet/nope')).resolves.toBeUndefined(); // idempotent
  });

  it('stats parse the v2 files', async () => {
    const { m } = v2();
    await m.create('/nodelet/s', {});
    const f = (n: string, v: string) => writeFileSync(join(dir, 'nodelet', 's', n), v);
    f('cpu.stat', 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_throttled 3\n');
    f('memory.current', '10000\n');
    f('memory.stat', 'anon 6000\nfile 4000\ninactive_file 2500\nactive_file 1500\n');
    f('memory.events', 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n');
    f('pids.current', '7\n');
    expect(await m.stats('/nodelet/s')).toEqual({ cpuUsageNanos: 1_500_000, memoryUsageBytes: 10000, memoryWorkingSetBytes: 7500, pids: 7, oomKills: 1 });
    expect(await m.memoryEvents('/nodelet/s')).toEqual({ oom: 2, oomKill: 1 });
  });
});

describe('CgroupV1Manager over fake hierarchies', () => {
  function v1(): CgroupV1Manager {
    const mounts: Record<string, string> = {};
    for (const d of ['memory', 'cpu,cpuacct', 'pids']) mkdirSync(join(dir, d));
    for (const c of ['memory', 'pids']) mounts[c] = join(dir, c);
    mounts.cpu = mounts.cpuacct = join(dir, 'cpu,cpuacct');
    return new CgroupV1Manager('/nodelet', mounts);
  }

  it('creates the path in each hierarchy once and writes limits to the right one', async () => {
    const m = v1();
    expect(m.hierarchies.length).toBe(3);
    await m.create('/nodelet/podp/c', { memoryMaxBytes: 1 << 26, cpuLimitMilli: 1500, cpuRequestMilli: 500, pidsMax: 64 });
    expect(read('memory', 'nodelet', 'podp', 'c', 'memory.limit_in_bytes')).toBe(String(1 << 26));
    expect(read('cpu,cpuacct', 'nodelet', 'podp', 'c', 'cpu.shares')).toBe('512');
    expect(read('cpu,cpuacct', 'nodelet', 'podp', 'c', 'cpu.cfs_quota_us')).toBe('150000');
    expect(read('cpu,cpuacct', 'nodelet', 'podp', 'c', 'cpu.cfs_period_us')).toBe('100000');
    expect(read('pids', 'nodelet', 'podp', 'c', 'pids.max')).toBe('64');
    expect(existsSync(join(dir, 'memory', 'nodelet', 'podp', 'c', 'memory.memsw.limit_in_bytes'))).toBe(false);
    expect(m.procsFiles('/nodelet/podp/c').sort()).toEqual(
      ['cpu,cpuacct', 'memory', 'pids'].map((d) => join(dir, d, 'nodelet', 'podp', 'c', 'cgroup.procs')).sort(),
    );
    expect(m.oomCounterFile('/nodelet/podp/c')).toBe(join(dir, 'memory', 'nodelet', 'podp', 'c', 'memory.oom_control'));
  });

  it('stats parse the v1 files', async () => {
    const m = v1();
    await m.create('/nodelet/s', {});
    writeFileSync(join(dir, 'memory', 'nodelet', 's', 'memory.usage_in_bytes'), '9000\n');
    writeFileSync(join(dir, 'memory', 'nodelet', 's', 'memory.stat'), 'cache 100\ninactive_file 1\ntotal_inactive_file 4000\n');
    writeFileSync(join(dir, 'memory', 'nodelet', 's', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    writeFileSync(join(dir, 'cpu,cpuacct', 'nodelet', 's', 'cpuacct.usage'), '123456789\n');
    writeFileSync(join(dir, 'pids', 'nodelet', 's', 'pids.current'), '3\n');
    expect(await m.stats('/nodelet/s')).toEqual({ cpuUsageNanos: 123456789, memoryUsageBytes: 9000, memoryWorkingSetBytes: 5000, pids: 3, oomKills: 2 });
    writeFileSync(join(dir, 'memory', 'nodelet', 's', 'memory.failcnt'), '5\n');
    expect(await m.memoryEvents('/nodelet/s')).toEqual({ oom: 5, oomKill: 2 });
  });

  it('needs memory and cpu', () => {
    expect(() => new CgroupV1Manager('/nodelet', { pids: '/x' })).toThrow(/memory, cpu are not mounted/);
  });
});

describe('createCgroupManager', () => {
  const hostSelf = '9:name=systemd:/\n8:pids:/\n4:memory:/process_api/e936\n1:cpu:/\n0::/\n';
  function fakeV1(): void {
    for (const d of ['memory', 'cpu', 'cpuacct', 'pids']) mkdirSync(join(dir, d));
  }

  it('the own-cgroup rule works in the mounts\' coordinates (host cgroup namespace in a container)', async () => {
    fakeV1();
    // every controller mount shows /machine.slice/ctr; we run in its /ci child
    const roots = { memory: '/machine.slice/ctr', cpu: '/machine.slice/ctr', cpuacct: '/machine.slice/ctr', pids: '/machine.slice/ctr' };
    const layout = { version: 'v1' as const, hybrid: false, v1Controllers: Object.fromEntries(Object.keys(roots).map((c) => [c, join(dir, c)])), mountRoots: roots };
    const self = '4:memory:/machine.slice/ctr/ci\n3:pids:/machine.slice/ctr\n1:cpu,cpuacct:/machine.slice/ctr\n';
    // /ci under the mount is our own memory cgroup, though /proc/self/cgroup never says "/ci"
    const err = await createCgroupManager({ parent: '/ci/nodelet', layout, procSelfCgroup: self }).catch((e: unknown) => e);
    expect(isNodeletError(err, 'ERR_CGROUP_PARENT_IS_SELF'), String(err)).toBe(true);
    expect((err as Error).message).toContain('"/ci"');
    // a host path that only looks like ours is not refused, and a sibling of /ci is fine
    expect((await createCgroupManager({ parent: '/machine.slice/ctr/ci', layout, procSelfCgroup: self })).version).toBe('v1');
    expect((await createCgroupManager({ parent: '/nodelet', layout, procSelfCgroup: self })).version).toBe('v1');
  });

  it('refuses a parent equal to, inside or containing its own cgroup', async () => {
    fakeV1();
    for (const parent of ['/process_api/e936', '/process_api/e936/nodelet', '/process_api']) {
      const err = await createCgroupManager({ parent, mountRoot: dir, procSelfCgroup: hostSelf }).catch((e: unknown) => e);
      expect(isNodeletError(err, 'ERR_CGROUP_PARENT_IS_SELF'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/memory hierarchy/);
    }
    await expect(createCgroupManager({ parent: '/', mountRoot: dir, procSelfCgroup: hostSelf })).rejects.toMatchObject({ code: 'ERR_CGROUP_PARENT_ROOT' });
    await expect(createCgroupManager({ parent: 'nodelet', mountRoot: dir, procSelfCgroup: hostSelf })).rejects.toMatchObject({ code: 'ERR_CGROUP_PATH_INVALID' });
    // a sibling is fine; being in the root cgroup of cpu/pids does not forbid anything
    const m = await createCgroupManager({ parent: '/nodelet', mountRoot: dir, procSelfCgroup: hostSelf });
    expect(m.version).toBe('v1');
    expect(m.parent).toBe('/nodelet');
  });

  it('v2: refuses the unified cgroup it runs in', async () => {
    writeFileSync(join(dir, 'cgroup.controllers'), 'cpu memory pids');
    const self = '0::/system.slice/nodelet.service\n';
    await expect(createCgroupManager({ parent: '/system.slice/nodelet.service/pods', mountRoot: dir, procSelfCgroup: self })).rejects.toMatchObject({ code: 'ERR_CGROUP_PARENT_IS_SELF' });
    const m = await createCgroupManager({ parent: '/nodelet/', mountRoot: dir, procSelfCgroup: self });
    expect(m.version).toBe('v2');
    expect(m.parent).toBe('/nodelet');
  });
});

describe('isContainerPath', () => {
  it('only a direct child of a pod cgroup under the parent', async () => {
    const { isContainerPath } = await import('../../../src/cgroups/v2.js');
    expect(isContainerPath('/nodelet', '/nodelet/podu/c1')).toBe(true);
    expect(isContainerPath('/nodelet', '/nodelet/burstable/podu/c1')).toBe(true);
    expect(isContainerPath('/nodelet', '/nodelet/besteffort/podu/pod-init')).toBe(true);
    expect(isContainerPath('/nodelet', '/nodelet/burstable/podu')).toBe(false);
    expect(isContainerPath('/nodelet', '/nodelet/podu')).toBe(false);
    expect(isContainerPath('/podman', '/podman/x')).toBe(false);
    expect(isContainerPath('/nodelet', '/other/podu/c1')).toBe(false);
  });
});

describe('removeEmptyParents (QoS tiers and the parent, rmdir only)', () => {
  /** cgroupfs rmdir: succeeds with the interface files inside, EBUSY with a child cgroup (a directory). */
  function cgroupLikeRmdir(fs: CgroupFs): void {
    fs.rmdir = (p: string) => {
      if (!existsSync(fs.dir(p))) return 'missing';
      if (fs.children(p).length > 0) return 'busy';
      rmSync(fs.dir(p), { recursive: true, force: true });
      return 'removed';
    };
  }

  it('v2: removes empty tiers then the parent; a tier with a pod, or a cgroup with tasks, stays', async () => {
    writeFileSync(join(dir, 'cgroup.controllers'), 'cpu memory pids');
    writeFileSync(join(dir, 'cgroup.subtree_control'), '');
    const fs = new FakeCgroup2Fs(dir);
    cgroupLikeRmdir(fs);
    const m = new CgroupV2Manager('/nodelet', fs);
    await m.create(m.podPath('a', 'Burstable'), {});
    await m.create(m.podPath('b', 'BestEffort'), {});
    mkdirSync(join(dir, 'other')); // outside the parent: never touched
    m.removeEmptyParents();
    // burstable holds a pod: it and the parent stay; besteffort too
    expect(existsSync(join(dir, 'nodelet', 'burstable'))).toBe(true);
    expect(existsSync(join(dir, 'nodelet'))).toBe(true);
    await m.remove(m.podPath('a', 'Burstable'));
    m.removeEmptyParents();
    expect(existsSync(join(dir, 'nodelet', 'burstable'))).toBe(false);
    expect(existsSync(join(dir, 'nodelet', 'besteffort'))).toBe(true);
    await m.remove(m.podPath('b', 'BestEffort'));
    writeFileSync(join(dir, 'nodelet', 'besteffort', 'cgroup.procs'), '4242\n'); // a task in the tier itself
    m.removeEmptyParents();
    expect(existsSync(join(dir, 'nodelet', 'besteffort'))).toBe(true);
    writeFileSync(join(dir, 'nodelet', 'besteffort', 'cgroup.procs'), '');
    m.removeEmptyParents();
    expect(existsSync(join(dir, 'nodelet'))).toBe(false);
    expect(existsSync(join(dir, 'other'))).toBe(true);
    m.removeEmptyParents(); // idempotent
  });

  it('v1: every hierarchy, and never the cgroup this process runs in', async () => {
    const mounts: Record<string, string> = {};
    for (const d of ['memory', 'cpu,cpuacct', 'pids']) mkdirSync(join(dir, d));
    for (const c of ['memory', 'pids']) mounts[c] = join(dir, c);
    mounts.cpu = mounts.cpuacct = join(dir, 'cpu,cpuacct');
    const m = new CgroupV1Manager('/nodelet', mounts);
    for (const h of m.hierarchies) cgroupLikeRmdir(h);
    await m.create(m.podPath('p', 'BestEffort'), {});
    await m.create('/nodelet/burstable', {});
    m.removeEmptyParents();
    for (const d of ['memory', 'cpu,cpuacct', 'pids']) expect(existsSync(join(dir, d, 'nodelet', 'besteffort', 'podp'))).toBe(true);
    await m.remove(m.podPath('p', 'BestEffort'));
    m.removeEmptyParents();
    for (const d of ['memory', 'cpu,cpuacct', 'pids']) expect(existsSync(join(dir, d, 'nodelet'))).toBe(false);

    // a manager whose parent is this process's own memory cgroup (the machine's process_api/... here)
    const own = readFileSync('/proc/self/cgroup', 'utf8').match(/^\d+:memory:(.+)$/m)?.[1];
    if (!own || own === '/') return; // the memory cgroup is the root here: nothing to protect
    const m2 = new CgroupV1Manager(own, mounts);
    for (const h of m2.hierarchies) cgroupLikeRmdir(h);
    for (const d of ['memory', 'cpu,cpuacct', 'pids']) mkdirSync(join(dir, d, own), { recursive: true });
    m2.removeEmptyParents();
    expect(existsSync(join(dir, 'memory', own))).toBe(true); // our own cgroup in that hierarchy: never removed
    expect(existsSync(join(dir, 'pids', own))).toBe(false); // elsewhere we are in the root: removed
  });
});
