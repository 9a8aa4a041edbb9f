// detectCgroupLayout against what util-linux's findmnt (another reader of the same mount table) says about this
// machine: pure v2, v1, or hybrid (v1 controllers beside a cgroup2 mount) — whichever the host or CI container has.
import { expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { detectCgroupLayout } from '../../../src/cgroups/index.js';

const findmnt = (type: string) =>
  execFileSync('findmnt', ['-rn', '-t', type, '-o', 'TARGET,OPTIONS'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => {
    const [target, options] = l.split(' ');
    return { target: target!, options: options!.split(',') };
  }).filter((m) => m.target.startsWith('/sys/fs/cgroup'));

it('matches the cgroup mounts findmnt reports (v2, v1 or hybrid)', () => {
  const l = detectCgroupLayout();
  let v1: { target: string; options: string[] }[] = [];
  try {
    v1 = findmnt('cgroup');
  } catch {
    /* findmnt exits 1 when nothing matches */
  }
  const v2 = (() => {
    try {
      return findmnt('cgroup2');
    } catch {
      return [];
    }
  })();
  if (v2.some((m) => m.target === '/sys/fs/cgroup')) {
    expect(l).toMatchObject({ version: 'v2', hybrid: false, v2Root: '/sys/fs/cgroup' });
    return;
  }
  expect(l.version).toBe('v1');
  const unified = v2.find((m) => m.target === '/sys/fs/cgroup/unified');
  expect(l.hybrid).toBe(!!unified);
  if (unified) expect(l.v2Root).toBe('/sys/fs/cgroup/unified');
  // every controller nodelet uses, where findmnt says it is mounted
  for (const c of ['memory', 'cpu', 'cpuacct', 'pids']) {
    const m = v1.find((x) => x.options.includes(c));
    expect(m, `findmnt shows no v1 mount with the ${c} controller`).toBeDefined();
    expect(l.v1Controllers[c]).toBe(m!.target);
  }
});

it('a bind mount of a sub-cgroup (what a container with the host cgroup namespace sees) maps /proc/<pid>/cgroup onto it', async () => {
  const { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { spawn } = await import('node:child_process');
  const { randomBytes } = await import('node:crypto');
  const { mapToMounts, parseProcCgroup } = await import('../../../src/cgroups/common.js');
  const host = detectCgroupLayout();
  // the pids hierarchy on v1 (never the machine's memory cgroup), the unified one on v2
  const key = host.version === 'v2' ? '' : 'pids';
  const hierarchy = key === '' ? host.v2Root! : host.v1Controllers.pids!;
  const name = `/nodelet-test-${randomBytes(4).toString('hex')}`;
  const cg = join(hierarchy, name);
  const view = mkdtempSync('/dev/shm/nodelet-test-');
  const at = key === '' ? view : join(view, 'pids');
  mkdirSync(cg);
  mkdirSync(at, { recursive: true });
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((res, rej) => child.once('spawn', res).once('error', rej));
    writeFileSync(join(cg, 'cgroup.procs'), String(child.pid));
    execFileSync('mount', ['--bind', cg, at]);
    try {
      const l = detectCgroupLayout(view);
      if (key === '') expect(l).toMatchObject({ version: 'v2', v2Root: view, mountRoots: { '': name } });
      else expect(l).toMatchObject({ v1Controllers: { pids: at }, mountRoots: { pids: name } });
      const procView = parseProcCgroup(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8'));
      expect(procView[key]).toBe(name); // the kernel names the host path ...
      expect(mapToMounts(procView, l.mountRoots)[key]).toBe('/'); // ... which is the root of what the mount shows
    } finally {
      execFileSync('umount', [at]);
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(cg);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    rmSync(view, { recursive: true, force: true });
  }
});
