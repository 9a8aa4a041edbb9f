// CNI pod networking with Debian's real plugins (bridge, host-local, loopback,
// portmap) inside the test's private network namespace. Every test uses a
// unique bridge nlt<rand> and subnet 10.254.x.0/24; no route off the machine,
// no masquerade of pod traffic; everything created is removed.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeletError } from '../../../src/errors.js';
import { createNamespacePinner, createPodNetwork, type PinnedNamespaces, type PodNetworkRequest } from '../../../src/network/index.js';
import { makeTestDir } from '../../helpers/rootfs.js';
import {
  assertPrivateNetns,
  fetchFromHere,
  fetchFromNetns,
  iptablesRules,
  linkExists,
  linksOnBridge,
  mountsUnder,
  rand,
  startServer,
  stopProcess,
  testSubnet,
} from './helpers.js';

const CNI_BIN = '/usr/lib/cni';
let dir: string;
const bridge = `nlt${rand(4)}`;
const { subnet, prefix } = testSubnet();
const pinner = createNamespacePinner();
let network: ReturnType<typeof createPodNetwork>;
const pods: { req: PodNetworkRequest; ns: PinnedNamespaces; net: ReturnType<typeof createPodNetwork> }[] = [];
const procs: ChildProcess[] = [];
let iptablesBefore: string[];

beforeAll(async () => {
  expect(process.getuid?.(), 'CNI tests need root').toBe(0);
  assertPrivateNetns();
  for (const p of ['bridge', 'host-local', 'loopback', 'portmap']) expect(existsSync(join(CNI_BIN, p)), `${CNI_BIN}/${p} (containernetworking-plugins)`).toBe(true);
  dir = await makeTestDir();
  iptablesBefore = iptablesRules();
  network = createPodNetwork({ stateDir: join(dir, 'cni'), cniConfDir: join(dir, 'net.d'), cniBinDirs: [CNI_BIN], subnet, bridgeName: bridge });
});

afterEach(async () => {
  for (const p of procs.splice(0)) await stopProcess(p);
  for (const p of pods.splice(0)) {
    await p.net.tearDown(p.req).catch(() => {});
    await pinner.unpin(p.ns).catch(() => {});
  }
});

afterAll(async () => {
  if (iptablesBefore === undefined) return; // beforeAll refused to run
  try {
    // the bridge stays after the last pod (like cri-o); the test removes its own
    if (linkExists(bridge)) execFileSync('ip', ['link', 'del', bridge]);
    // portmap's shared top-level chains (CNI-HOSTPORT-*) stay too; remove the ones this file added
    const added = iptablesRules().filter((l) => !iptablesBefore.includes(l));
    for (const l of added.filter((l) => l.startsWith('-A '))) execFileSync('iptables', ['-t', 'nat', '-D', ...splitRule(l.slice(3))]);
    for (const l of added.filter((l) => l.startsWith(':'))) execFileSync('iptables', ['-t', 'nat', '-X', l.slice(1).split(' ')[0]!]);
    expect(iptablesRules()).toEqual(iptablesBefore);
    expect(mountsUnder(dir)).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Split an iptables-save rule into argv (handles "quoted \"strings\""). */
function splitRule(rule: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(rule); m; m = re.exec(rule)) out.push(m[1] !== undefined ? m[1].replace(/\\"/g, '"') : m[2]!);
  return out;
}

async function makePod(name: string, opts: { portMappings?: PodNetworkRequest['portMappings']; net?: ReturnType<typeof createPodNetwork> } = {}) {
  const ns = await pinner.pin({ dir: join(dir, 'pods', name), net: true, ipc: false, uts: true, hostname: name });
  const req: PodNetworkRequest = {
    sandboxId: `sb-${name}-${rand()}`,
    podName: name,
    podNamespace: 'default',
    podUid: `uid-${rand()}`,
    netnsPath: ns.net!,
    portMappings: opts.portMappings ?? [],
  };
  const entry = { req, ns, net: opts.net ?? network };
  pods.push(entry);
  return entry;
}

const ipamFiles = () => readdir(join(dir, 'cni', 'ipam', 'nodelet')).then((f) => f.filter((x) => x.startsWith(prefix))).catch(() => [] as string[]);
const freePort = () => 20000 + Math.floor(Math.random() * 20000);

describe('PodNetwork (CNI bridge + host-local + portmap)', () => {
  it('two pods get distinct IPs on the bridge, reach each other, and the host reaches them', async () => {
    const a = await makePod('alpha');
    const b = await makePod('beta');
    // in parallel, on a bridge that does not exist yet
    const [ra, rb] = await Promise.all([network.setUp(a.req), network.setUp(b.req)]);
    // a repeated ADD (retry) returns the same result and leaves the pod as it was
    expect(await network.setUp(a.req)).toEqual(ra);
    expect(ra.interfaceName).toBe('eth0');
    expect(ra.ips).toHaveLength(1);
    expect(ra.ips[0]!.startsWith(prefix)).toBe(true);
    expect(rb.ips[0]!.startsWith(prefix)).toBe(true);
    expect(ra.ips[0]).not.toBe(rb.ips[0]);
    expect(ra.gateway).toBe(`${prefix}1`);
    expect(linksOnBridge(bridge)).toHaveLength(2);
    expect((await ipamFiles()).sort()).toEqual([...ra.ips, ...rb.ips].sort());
    // inside: lo is up, eth0 holds the IP, the default route goes to the bridge
    const addrs = execFileSync('nsenter', [`--net=${a.ns.net}`, 'ip', '-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
    expect(addrs).toMatch(/\blo\s+inet 127\.0\.0\.1\/8/);
    expect(addrs).toContain(`eth0    inet ${ra.ips[0]}/24`);
    const routes = execFileSync('nsenter', [`--net=${a.ns.net}`, 'ip', '-4', 'route'], { encoding: 'utf8' });
    expect(routes).toContain(`default via ${prefix}1 dev eth0`);

    const port = freePort();
    procs.push(await startServer(b.ns.net!, port, 'beta'));
    expect(fetchFromNetns(a.ns.net!, rb.ips[0]!, port)).toBe('hello from beta');
    expect(await fetchFromHere(rb.ips[0]!, port)).toBe('hello from beta');
    // pod-local loopback works too
    expect(fetchFromNetns(b.ns.net!, '127.0.0.1', port)).toBe('hello from beta');
  });

  it('hostPort through portmap: reachable on 127.0.0.1 and the bridge IP; DEL removes veth, IP, rules and cache', async () => {
    const hostPort = freePort();
    const containerPort = freePort();
    const p = await makePod('ported', { portMappings: [{ containerPort, hostPort, protocol: 'TCP' }, { containerPort: 9, hostPort: 0, protocol: 'TCP' }] });
    const r = await network.setUp(p.req);
    const ip = r.ips[0]!;
    const withPod = iptablesRules();
    expect(withPod.some((l) => l.includes(`--to-destination ${ip}:${containerPort}`))).toBe(true);
    expect(withPod.some((l) => l.includes(`id: \\"${p.req.sandboxId}\\"`))).toBe(true);
    // no masquerade of pod traffic (only portmap's hairpin/localhost mark-based rule)
    expect(withPod.filter((l) => l.includes('MASQUERADE'))).toEqual(['-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE']);

    procs.push(await startServer(p.ns.net!, containerPort, 'ported'));
    expect(await fetchFromHere(`${prefix}1`, hostPort)).toBe('hello from ported');
    expect(await fetchFromHere('127.0.0.1', hostPort)).toBe('hello from ported');
    // what makes 127.0.0.1 work: portmap enables route_localnet on the bridge (and SNATs localhost)
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, 'utf8').trim()).toBe('1');
    await network.check(p.req);

    const veths = linksOnBridge(bridge);
    expect(veths).toHaveLength(1);
    await network.tearDown(p.req);
    expect(linkExists(veths[0]!)).toBe(false);
    expect(await ipamFiles()).toEqual([]);
    const after = iptablesRules();
    expect(after.filter((l) => l.includes(ip) || l.includes(p.req.sandboxId) || l.includes('CNI-DN-'))).toEqual([]);
    // only portmap's shared top-level chains may remain, as with kubelet + portmap
    expect(after.filter((l) => !iptablesBefore.includes(l)).every((l) => /CNI-HOSTPORT-(DNAT|SNAT|MASQ|SETMARK)/.test(l) && !l.includes('DNAT --to'))).toBe(true);
    expect(existsSync(join(dir, 'cni', 'results', `${p.req.sandboxId}.json`))).toBe(false);
    await network.tearDown(p.req); // idempotent
    await expect(fetchFromHere('127.0.0.1', hostPort, 500)).rejects.toThrow();
  });

  it('DEL works after the network namespace is gone', async () => {
    const p = await makePod('gone');
    const r = await network.setUp(p.req);
    expect(await ipamFiles()).toEqual(r.ips);
    const veth = linksOnBridge(bridge)[0]!;
    await pinner.unpin(p.ns);
    await network.tearDown(p.req);
    expect(await ipamFiles()).toEqual([]);
    for (let i = 0; i < 50 && linkExists(veth); i++) await new Promise((res) => setTimeout(res, 50)); // netns cleanup is asynchronous in the kernel
    expect(linkExists(veth)).toBe(false);
  });

  it('a hostPort already used by another pod is refused with a clear error; the first pod keeps it', async () => {
    const hostPort = freePort();
    const first = await makePod('first', { portMappings: [{ containerPort: 80, hostPort, protocol: 'TCP' }] });
    const second = await makePod('second', { portMappings: [{ containerPort: 81, hostPort, protocol: 'TCP' }] });
    const r1 = await network.setUp(first.req);
    const err = await network.setUp(second.req).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_HOSTPORT_CONFLICT');
    expect((err as Error).message).toContain(`${hostPort}/tcp is used by sandbox ${first.req.sandboxId}`);
    expect(linksOnBridge(bridge)).toHaveLength(1);
    expect(await ipamFiles()).toEqual(r1.ips);
    procs.push(await startServer(first.ns.net!, 80, 'first'));
    expect(await fetchFromHere('127.0.0.1', hostPort)).toBe('hello from first');
  });

  it('operations on one sandbox are serialised: setUp racing tearDown leaves nothing', async () => {
    const p = await makePod('racer');
    const [r] = await Promise.all([network.setUp(p.req), network.tearDown(p.req)]);
    expect(r.ips).toHaveLength(1);
    expect(linksOnBridge(bridge)).toEqual([]);
    expect(await ipamFiles()).toEqual([]);
  });

  it('DEL without a cached result (crash after ADD) still removes veth, IP and port rules', async () => {
    const rulesBefore = iptablesRules();
    const hostPort = freePort();
    const p = await makePod('nocache', { portMappings: [{ containerPort: 80, hostPort, protocol: 'TCP' }] });
    const r = await network.setUp(p.req);
    expect(iptablesRules().some((l) => l.includes(`--to-destination ${r.ips[0]}:80`))).toBe(true);
    await rm(join(dir, 'cni', 'results', `${p.req.sandboxId}.json`));
    await network.tearDown(p.req);
    expect(linksOnBridge(bridge)).toEqual([]);
    expect(await ipamFiles()).toEqual([]);
    expect(iptablesRules().filter((l) => !rulesBefore.includes(l) && !/^(:CNI-HOSTPORT-|-A (PREROUTING|OUTPUT|POSTROUTING|CNI-HOSTPORT-(MASQ|SETMARK)) )/.test(l))).toEqual([]);
  });

  it('CHECK passes for a healthy pod and fails, naming the plugin, when its interface is gone', async () => {
    const p = await makePod('checked');
    await network.setUp(p.req);
    await network.check(p.req);
    execFileSync('nsenter', [`--net=${p.ns.net}`, 'ip', 'link', 'del', 'eth0']);
    const err = await network.check(p.req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeletError);
    expect((err as NodeletError).code).toBe('ERR_CNI_PLUGIN_FAILED');
    expect((err as Error).message).toMatch(/^CNI plugin "bridge" CHECK failed for sandbox sb-checked-/);
    await network.tearDown(p.req);
    await expect(network.check(p.req)).rejects.toMatchObject({ code: 'ERR_CNI_NOT_SET_UP' });
  });

  it('a missing plugin binary fails ADD with a clear error and leaves nothing behind', async () => {
    const confDir = join(dir, 'net.d-missing');
    await mkdir(confDir);
    await writeFile(
      join(confDir, '10-x.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'nodelet', plugins: [{ type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(dir, 'cni', 'ipam') } }, { type: 'nlt-missing-plugin' }] }),
    );
    const net = createPodNetwork({ stateDir: join(dir, 'cni'), cniConfDir: confDir, cniBinDirs: [CNI_BIN] });
    const p = await makePod('missing', { net });
    const err = await net.setUp(p.req).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_PLUGIN_NOT_FOUND');
    expect((err as Error).message).toContain('"nlt-missing-plugin"');
    // rolled back: no veth, no IP, no cache
    expect(linksOnBridge(bridge)).toEqual([]);
    expect(await ipamFiles()).toEqual([]);
    expect(existsSync(join(dir, 'cni', 'results', `${p.req.sandboxId}.json`))).toBe(false);
  });

  it('a failing plugin later in the chain rolls back what the earlier ones did', async () => {
    const bin = join(dir, 'fakebin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'nlt-fail'), '#!/bin/sh\ncat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\necho \'{"cniVersion":"1.0.0","code":11,"msg":"refusing on purpose"}\'\nexit 1\n');
    await chmod(join(bin, 'nlt-fail'), 0o755);
    const confDir = join(dir, 'net.d-fail');
    await mkdir(confDir);
    await writeFile(
      join(confDir, '10-x.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'nodelet', plugins: [{ type: 'bridge', bridge, isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(dir, 'cni', 'ipam') } }, { type: 'nlt-fail' }] }),
    );
    const net = createPodNetwork({ stateDir: join(dir, 'cni'), cniConfDir: confDir, cniBinDirs: [bin, CNI_BIN] });
    const p = await makePod('rollback', { net });
    const err = await net.setUp(p.req).catch((e: unknown) => e);
    expect((err as Error).message).toContain('CNI plugin "nlt-fail" ADD failed');
    expect(linksOnBridge(bridge)).toEqual([]);
    expect(await ipamFiles()).toEqual([]);
    const inside = execFileSync('nsenter', [`--net=${p.ns.net}`, 'ip', '-o', 'link', 'show'], { encoding: 'utf8' });
    expect(inside).not.toContain('eth0');
  });

  it('a broken config file is named in the error', async () => {
    const confDir = join(dir, 'net.d-broken');
    await mkdir(confDir);
    await writeFile(join(confDir, '00-broken.conflist'), '{"cniVersion": "1.0.0", "name": "x", "plugins": {}}');
    const net = createPodNetwork({ stateDir: join(dir, 'cni'), cniConfDir: confDir, cniBinDirs: [CNI_BIN] });
    const p = await makePod('broken', { net });
    const err = await net.setUp(p.req).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_CONFIG_INVALID');
    expect((err as Error).message).toContain(join(confDir, '00-broken.conflist'));
  });

  it('a hostPort that cannot be honoured is an error, not silence', async () => {
    const confDir = join(dir, 'net.d-noportmap');
    await mkdir(confDir);
    await writeFile(
      join(confDir, '10-x.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'nodelet', plugins: [{ type: 'bridge', bridge, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(dir, 'cni', 'ipam') } }] }),
    );
    const noPortmap = createPodNetwork({ stateDir: join(dir, 'cni'), cniConfDir: confDir, cniBinDirs: [CNI_BIN] });
    const p = await makePod('noportmap', { net: noPortmap, portMappings: [{ containerPort: 80, hostPort: freePort(), protocol: 'TCP' }] });
    const err = await noPortmap.setUp(p.req).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_HOSTPORT_UNSUPPORTED');
    expect((err as Error).message).toMatch(/no plugin in CNI network "nodelet" .* has the portMappings capability/);

    // portmap configured but no iptables in the plugins' PATH
    const noIptables = createPodNetwork({ stateDir: join(dir, 'cni'), cniConfDir: join(dir, 'net.d'), cniBinDirs: [CNI_BIN], searchPath: join(dir, 'empty-path') });
    const err2 = await noIptables.setUp(p.req).catch((e: unknown) => e);
    expect((err2 as NodeletError).code).toBe('ERR_HOSTPORT_UNSUPPORTED');
    expect((err2 as Error).message).toContain('"iptables"');
    expect(linksOnBridge(bridge)).toEqual([]);
  });

  it('20 pin/setUp/tearDown/unpin cycles leave no veth, IP, rule, cache entry or mount (measured)', async () => {
    const rulesBefore = iptablesRules();
    const t = { pin: [] as number[], up: [] as number[], down: [] as number[], unpin: [] as number[] };
    for (let i = 0; i < 20; i++) {
      let t0 = performance.now();
      const ns = await pinner.pin({ dir: join(dir, 'cycle', String(i)), net: true, ipc: true, uts: true, hostname: `cycle-${i}` });
      t.pin.push(performance.now() - t0);
      const req: PodNetworkRequest = { sandboxId: `cycle-${i}-${rand()}`, podName: 'cycle', podNamespace: 'default', podUid: 'u', netnsPath: ns.net!, portMappings: [{ containerPort: 80, hostPort: 30000 + i, protocol: 'TCP' }] };
      t0 = performance.now();
      await network.setUp(req);
      t.up.push(performance.now() - t0);
      t0 = performance.now();
      await network.tearDown(req);
      t.down.push(performance.now() - t0);
      t0 = performance.now();
      await pinner.unpin(ns);
      t.unpin.push(performance.now() - t0);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(1);
    console.log(`median ms: pin ${med(t.pin)}, CNI ADD (lo+bridge+portmap) ${med(t.up)}, CNI DEL ${med(t.down)}, unpin ${med(t.unpin)}`);
    expect(linksOnBridge(bridge)).toEqual([]);
    expect(await ipamFiles()).toEqual([]);
    expect(await readdir(join(dir, 'cni', 'results'))).toEqual([]);
    expect(mountsUnder(join(dir, 'cycle'))).toEqual([]);
    expect(iptablesRules().filter((l) => !rulesBefore.includes(l))).toEqual([]);
  });

  it('refuses a namespace that is not pinned', async () => {
    const p = await makePod('unpinned');
    await pinner.unpin(p.ns);
    await expect(network.setUp(p.req)).rejects.toMatchObject({ code: 'ERR_NETNS_NOT_FOUND' });
  });
});
