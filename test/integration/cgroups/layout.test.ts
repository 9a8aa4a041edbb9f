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
