import { describe, expect, it } from 'vitest';
import { compactOverlayData, computeMountPlan, mountPointsIn } from '../../../src/sys/mounts.js';
import { computeMounts, keyDirName } from '../../../src/snapshot/store.js';
import { MS } from '../../../src/sys/ffi.js';

describe('computeMountPlan', () => {
  it('splits flags from data', () => {
    expect(computeMountPlan({ type: 'overlay', source: 'overlay', options: ['ro', 'index=off', 'lowerdir=/a:/b'] })).toEqual({ flags: MS.RDONLY, data: 'index=off,lowerdir=/a:/b' });
    expect(computeMountPlan({ type: 'bind', source: '/x', options: ['rbind', 'ro', 'nosuid'] })).toEqual({ flags: MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID, data: '' });
    expect(computeMountPlan({ type: 'tmpfs', source: 'tmpfs', options: ['ro', 'rw', 'size=1m'] })).toEqual({ flags: 0, data: 'size=1m' });
  });
});

describe('mountPointsIn (mountsUnder)', () => {
  let id = 20;
  const line = (mp: string) => `${id++} 1 0:${id} / ${mp} rw,relatime shared:1 - tmpfs tmpfs rw`;
  const info = (...mps: string[]) => mps.map(line).join('\n') + '\n';
  it('unescapes mountinfo octal escapes', () => {
    expect(mountPointsIn(info('/v/my\\040vol', '/v/tab\\011x', '/v/back\\134slash'), '/v')).toEqual(['/v/back\\slash', '/v/tab\tx', '/v/my vol']);
    expect(mountPointsIn(info('/v/my\\040vol'), '/v/my vol')).toEqual(['/v/my vol']);
  });
  it('stops at the path boundary: /a holds /a and /a/b, not /ab; a trailing slash is the same target', () => {
    const text = info('/', '/a', '/ab', '/a/b', '/abc/d', '/b/a');
    expect(mountPointsIn(text, '/a')).toEqual(['/a/b', '/a']);
    expect(mountPointsIn(text, '/a/')).toEqual(['/a/b', '/a']);
    expect(mountPointsIn(text, '/ab')).toEqual(['/ab']);
    expect(mountPointsIn(text, '/a/b/c')).toEqual([]);
  });
  it('latest first: a mount stacked over its parent comes off before the one it hides', () => {
    // /v/a, then /v/a/b inside it, then a second mount on /v/a hiding /v/a/b: unmounting by path in this
    // order takes each off in turn (a longest-path-first order would try /v/a/b while it is hidden)
    expect(mountPointsIn(info('/v', '/v/a', '/v/a/b', '/v/a'), '/v/a')).toEqual(['/v/a', '/v/a/b', '/v/a']);
    expect(mountPointsIn('', '/v')).toEqual([]);
  });
});

describe('compactOverlayData', () => {
  it('leaves short data alone', () => {
    expect(compactOverlayData('lowerdir=/a/l/X:/a/l/Y,upperdir=/a/u,workdir=/a/w')).toEqual({ data: 'lowerdir=/a/l/X:/a/l/Y,upperdir=/a/u,workdir=/a/w' });
  });
  it('rewrites long data relative to the common parent', () => {
    const root = '/var/lib/nodelet/snapshots';
    const lowers = Array.from({ length: 150 }, (_, i) => `${root}/l/L${String(i).padStart(7, '0')}`);
    const data = `index=off,lowerdir=${lowers.join(':')},upperdir=${root}/active/k/upper,workdir=${root}/active/k/work`;
    expect(data.length).toBeGreaterThan(4096);
    const c = compactOverlayData(data);
    expect(c.chdir).toBe(root);
    expect(c.data.length).toBeLessThan(4096);
    expect(c.data).toMatch(/^index=off,lowerdir=l\/L0000000:l\/L0000001:/);
    expect(c.data).toContain(',upperdir=active/k/upper,workdir=active/k/work');
  });
});

describe('computeMounts', () => {
  const dir = '/s/active/k';
  it('overlay: layers top first plus upper/work', () => {
    expect(computeMounts({ driver: 'overlay', readonly: false, lowers: ['/s/l/B', '/s/l/A'], dir, indexOff: true })).toEqual([
      { type: 'overlay', source: 'overlay', options: ['index=off', 'lowerdir=/s/l/B:/s/l/A', 'upperdir=/s/active/k/upper', 'workdir=/s/active/k/work'] },
    ]);
  });
  it('overlay read-only views: lowers only, a bind for one layer or none', () => {
    expect(computeMounts({ driver: 'overlay', readonly: true, lowers: ['/s/l/B', '/s/l/A'], dir, indexOff: false })).toEqual([{ type: 'overlay', source: 'overlay', options: ['ro', 'lowerdir=/s/l/B:/s/l/A'] }]);
    expect(computeMounts({ driver: 'overlay', readonly: true, lowers: ['/s/l/A'], dir, indexOff: false })).toEqual([{ type: 'bind', source: '/s/l/A', options: ['rbind', 'ro'] }]);
    expect(computeMounts({ driver: 'overlay', readonly: true, lowers: [], dir, indexOff: false })).toEqual([{ type: 'bind', source: '/s/active/k/empty', options: ['rbind', 'ro'] }]);
  });
  it('overlay with no layers binds the upper dir', () => {
    expect(computeMounts({ driver: 'overlay', readonly: false, lowers: [], dir, indexOff: true })).toEqual([{ type: 'bind', source: '/s/active/k/upper', options: ['rbind', 'rw'] }]);
  });
  it('copy: a bind of the private copy, or a read-only bind of the chain', () => {
    expect(computeMounts({ driver: 'copy', readonly: false, lowers: ['/s/chains/x/fs'], dir, indexOff: true })).toEqual([{ type: 'bind', source: '/s/active/k/fs', options: ['rbind', 'rw'] }]);
    expect(computeMounts({ driver: 'copy', readonly: true, lowers: ['/s/chains/x/fs'], dir, indexOff: true })).toEqual([{ type: 'bind', source: '/s/chains/x/fs', options: ['rbind', 'ro'] }]);
  });
  it('key dir names are fixed-length hex, safe in mount options', () => {
    expect(keyDirName('ns_pod:ctr,with,commas')).toMatch(/^[0-9a-f]{20}$/);
    expect(keyDirName('a')).not.toBe(keyDirName('b'));
  });
});
