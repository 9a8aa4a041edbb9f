import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decideLocalStorageEviction, diskUsage, formatBytes, hasLocalStorageLimits, measurePod } from '../../../src/agent/eviction.js';
import type { Pod } from '../../../src/pod/api-types.js';

const MiB = 1024 ** 2;
function pod(spec: Partial<Pod['spec']>): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', uid: 'u1' }, spec: { containers: [{ name: 'c', image: 'i' }], ...spec } } as Pod;
}

describe('local storage eviction decisions (kubelet localStorageEviction)', () => {
  it('an emptyDir over its sizeLimit, with kubelet\'s message; at the limit or Memory-backed: no', () => {
    const p = pod({ volumes: [{ name: 'scratch', emptyDir: { sizeLimit: '1Mi' } }, { name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] });
    expect(hasLocalStorageLimits(p)).toBe(true);
    expect(decideLocalStorageEviction(p, { volumes: { scratch: MiB }, containers: {} })).toBeUndefined();
    expect(decideLocalStorageEviction(p, { volumes: { scratch: MiB + 4096, mem: 10 * MiB }, containers: {} })).toBe('Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ');
    expect(decideLocalStorageEviction(p, { volumes: { mem: 10 * MiB }, containers: {} })).toBeUndefined();
  });

  it('the pod total against the sum of the container limits comes before a container\'s own', () => {
    const p = pod({
      volumes: [{ name: 'd', emptyDir: {} }],
      containers: [
        { name: 'a', image: 'i', resources: { limits: { 'ephemeral-storage': '1Mi' } } },
        { name: 'b', image: 'i', resources: { limits: { 'ephemeral-storage': '2Mi' } } },
      ],
    });
    // a alone is over its 1Mi, the pod (2.5 MiB) is under 3Mi
    expect(decideLocalStorageEviction(p, { volumes: { d: 0 }, containers: { a: { rootfs: MiB, logs: MiB / 2 }, b: { rootfs: 0, logs: 0 } } })).toBe(
      'Container a exceeded its local ephemeral storage limit "1Mi". ',
    );
    // the emptyDir counts towards the pod's total: 3.5 MiB > 3Mi
    expect(decideLocalStorageEviction(p, { volumes: { d: 3 * MiB }, containers: { a: { rootfs: 0, logs: MiB / 2 }, b: { rootfs: 0, logs: 0 } } })).toBe(
      'Pod ephemeral local storage usage exceeds the total limit of containers 3Mi. ',
    );
    expect(decideLocalStorageEviction(p, { volumes: { d: MiB }, containers: { a: { rootfs: MiB / 2, logs: 0 } } })).toBeUndefined();
  });

  it('no limits, nothing to check', () => {
    expect(hasLocalStorageLimits(pod({ volumes: [{ name: 'd', emptyDir: {} }] }))).toBe(false);
    expect(decideLocalStorageEviction(pod({}), { volumes: {}, containers: { c: { rootfs: 1e12, logs: 1e12 } } })).toBeUndefined();
  });

  it('formats byte sums as resource.Quantity prints BinarySI', () => {
    expect(formatBytes(3 * MiB)).toBe('3Mi');
    expect(formatBytes(1536)).toBe('1536');
    expect(formatBytes(2 * 1024 ** 3)).toBe('2Gi');
  });
});

describe('disk usage', () => {
  it('counts allocated blocks, hardlinks once, and a missing dir as 0', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-du-'));
    try {
      const base = diskUsage(d);
      fs.writeFileSync(path.join(d, 'a'), Buffer.alloc(256 * 1024, 1));
      fs.mkdirSync(path.join(d, 'sub'));
      fs.linkSync(path.join(d, 'a'), path.join(d, 'sub', 'hard'));
      const used = diskUsage(d);
      expect(used - base).toBeGreaterThanOrEqual(256 * 1024);
      expect(used - base).toBeLessThan(2 * 256 * 1024); // the hardlink is not counted twice
      // a sparse file takes no blocks
      const fd = fs.openSync(path.join(d, 'sparse'), 'w');
      fs.ftruncateSync(fd, 100 * MiB);
      fs.closeSync(fd);
      expect(diskUsage(d) - used).toBeLessThan(MiB);
      expect(diskUsage(path.join(d, 'nope'))).toBe(0);
      const p = pod({ volumes: [{ name: 'v', emptyDir: { sizeLimit: '1Ki' } }] });
      const m = measurePod({ pod: p, volumePaths: { v: d }, containers: [{ name: 'c', logPath: path.join(d, 'sub', '0.log') }] });
      expect(m.volumes.v).toBe(diskUsage(d));
      expect(m.containers.c!.logs).toBe(diskUsage(path.join(d, 'sub')));
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
