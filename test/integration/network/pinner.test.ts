// Namespace pinning against the real kernel (root): unshare + nsfs bind mounts.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeletError } from '../../../src/errors.js';
import { createNamespacePinner, type PinnedNamespaces } from '../../../src/network/index.js';
import { makeTestDir } from '../../helpers/rootfs.js';
import { mountsUnder } from './helpers.js';

let dir: string;
const pinned: PinnedNamespaces[] = [];
const pinner = createNamespacePinner();

beforeAll(async () => {
  expect(process.getuid?.(), 'namespace pinning needs root').toBe(0);
  dir = await makeTestDir();
});
afterEach(async () => {
  for (const ns of pinned.splice(0)) await pinner.unpin(ns);
});
afterAll(async () => {
  if (!dir) return;
  const left = mountsUnder(dir);
  for (const l of left) execFileSync('umount', ['-l', l.split(' ')[4]!]);
  await rm(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

const nsenter = (args: string[]) => execFileSync('nsenter', args, { encoding: 'utf8' }).trim();
const inode = (p: string) => statSync(p).ino;

describe('NamespacePinner', () => {
  it('pins new net, ipc and uts namespaces with the hostname set, and unpins them without trace', async () => {
    const pod = join(dir, 'pod-a');
    const ns = await pinner.pin({ dir: pod, net: true, ipc: true, uts: true, hostname: 'web-0' });
    pinned.push(ns);
    expect(ns).toEqual({ net: join(pod, 'net'), ipc: join(pod, 'ipc'), uts: join(pod, 'uts') });
    // bind mounts of nsfs, distinct from ours
    expect(mountsUnder(pod).map((l) => l.split(' ')[4]).sort()).toEqual([ns.ipc, ns.net, ns.uts]);
    for (const k of ['net', 'ipc', 'uts'] as const) {
      expect(inode(ns[k]!), k).not.toBe(inode(`/proc/self/ns/${k}`));
    }
    // the new net namespace has only a loopback device
    const links = nsenter([`--net=${ns.net}`, 'ip', '-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]!.trim());
    expect(links).toEqual(['lo']);
    expect(nsenter([`--uts=${ns.uts}`, 'hostname'])).toBe('web-0');
    expect(execFileSync('hostname', { encoding: 'utf8' }).trim()).not.toBe('web-0');

    await pinner.unpin(ns);
    pinned.pop();
    expect(mountsUnder(pod)).toEqual([]);
    for (const p of Object.values(ns)) expect(existsSync(p), p).toBe(false);
    await pinner.unpin(ns); // idempotent
  });

  it('writes namespaced sysctls inside the new namespaces only; a bad one fails and leaves nothing pinned', async () => {
    const pod = join(dir, 'pod-sysctl');
    const hostRange = execFileSync('cat', ['/proc/sys/net/ipv4/ip_local_port_range'], { encoding: 'utf8' }).trim();
    const ns = await pinner.pin({
      dir: pod, net: true, ipc: true, uts: true, hostname: 'tuned',
      sysctls: { 'net/ipv4/ip_local_port_range': '20000 20100', 'kernel/shm_rmid_forced': '1', 'net/core/somaxconn': '777' },
    });
    pinned.push(ns);
    const inNs = (f: string) => nsenter([`--net=${ns.net}`, `--ipc=${ns.ipc}`, 'cat', `/proc/sys/${f}`]).replace(/\s+/g, ' ');
    expect(inNs('net/ipv4/ip_local_port_range')).toBe('20000 20100');
    expect(inNs('kernel/shm_rmid_forced')).toBe('1');
    expect(inNs('net/core/somaxconn')).toBe('777');
    expect(nsenter([`--uts=${ns.uts}`, 'hostname'])).toBe('tuned');
    expect(execFileSync('cat', ['/proc/sys/net/ipv4/ip_local_port_range'], { encoding: 'utf8' }).trim()).toBe(hostRange);

    const bad = join(dir, 'pod-sysctl-bad');
    const err = await pinner.pin({ dir: bad, net: true, ipc: false, uts: false, sysctls: { 'net/core/no_such_sysctl': '1' } }).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_NAMESPACE_PIN_FAILED');
    expect((err as Error).message).toContain('cannot set sysctl net/core/no_such_sysctl to 1');
    expect(mountsUnder(bad)).toEqual([]);
    expect(existsSync(join(bad, 'net'))).toBe(false);
    const notNs = await pinner.pin({ dir: bad, net: false, ipc: true, uts: false, sysctls: { 'net/core/somaxconn': '1' } }).catch((e: unknown) => e);
    expect((notNs as NodeletError).code).toBe('ERR_SYSCTL_NOT_NAMESPACED');
  });

  it('pins only what is asked', async () => {
    const ns = await pinner.pin({ dir: join(dir, 'pod-b'), net: true, ipc: false, uts: false });
    pinned.push(ns);
    expect(Object.keys(ns)).toEqual(['net']);
    expect(mountsUnder(join(dir, 'pod-b'))).toHaveLength(1);
  });

  it('two pods get different namespaces', async () => {
    const a = await pinner.pin({ dir: join(dir, 'pod-c'), net: true, ipc: true, uts: false });
    pinned.push(a);
    const b = await pinner.pin({ dir: join(dir, 'pod-d'), net: true, ipc: true, uts: false });
    pinned.push(b);
    expect(inode(a.net!)).not.toBe(inode(b.net!));
    expect(inode(a.ipc!)).not.toBe(inode(b.ipc!));
  });

  it('refuses to pin over a pinned namespace and leaves the first one intact', async () => {
    const pod = join(dir, 'pod-e');
    const ns = await pinner.pin({ dir: pod, net: true, ipc: false, uts: false });
    pinned.push(ns);
    const before = inode(ns.net!);
    const err = await pinner.pin({ dir: pod, net: true, ipc: false, uts: false }).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_NAMESPACE_ALREADY_PINNED');
    expect(inode(ns.net!)).toBe(before);
    expect(mountsUnder(pod)).toHaveLength(1);
  });

  it('leaves nothing pinned when the command inside the new namespaces fails', async () => {
    const failing = createNamespacePinner({ hostnameCmd: ['/bin/false'] });
    const pod = join(dir, 'pod-f');
    const err = await failing.pin({ dir: pod, net: true, ipc: true, uts: true, hostname: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeletError);
    expect((err as NodeletError).code).toBe('ERR_NAMESPACE_PIN_FAILED');
    expect((err as Error).message).toContain(pod);
    expect(mountsUnder(pod)).toEqual([]);
    for (const k of ['net', 'ipc', 'uts']) expect(existsSync(join(pod, k))).toBe(false);
  });

  it('rejects bad requests before touching anything', async () => {
    const pod = join(dir, 'pod-g');
    await expect(pinner.pin({ dir: pod, net: false, ipc: false, uts: false })).rejects.toMatchObject({ code: 'ERR_PIN_NOTHING' });
    await expect(pinner.pin({ dir: pod, net: true, ipc: false, uts: true, hostname: 'bad_name' })).rejects.toMatchObject({ code: 'ERR_POD_HOSTNAME_INVALID' });
    await expect(pinner.pin({ dir: pod, net: true, ipc: false, uts: false, hostname: 'ok' })).rejects.toMatchObject({ code: 'ERR_PIN_HOSTNAME_WITHOUT_UTS' });
    expect(existsSync(pod)).toBe(false);
  });

  it('costs a few milliseconds per pin (measured)', async () => {
    const times: number[] = [];
    const unpinTimes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const ns = await pinner.pin({ dir: join(dir, `bench-${i}`), net: true, ipc: true, uts: true, hostname: `bench-${i}` });
      const t1 = performance.now();
      await pinner.unpin(ns);
      unpinTimes.push(performance.now() - t1);
      times.push(t1 - t0);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`pin (net+ipc+uts+hostname) median ${median(times).toFixed(2)} ms, unpin median ${median(unpinTimes).toFixed(2)} ms over ${times.length}`);
    expect(median(times)).toBeLessThan(100);
    expect(mountsUnder(dir)).toEqual([]);
  });
});
