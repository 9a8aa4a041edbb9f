// CNI invocation against fake plugins (test doubles for the *plugin* binaries,
// written as small node scripts in a temp dir): env, stdin, chaining, errors.
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NodeletError } from '../../../src/errors.js';
import { addNetworkList, checkNetworkList, delNetworkList, findPlugin, type RuntimeConf } from '../../../src/network/cni.js';
import { computeDefaultConfList, type NetworkConfList } from '../../../src/network/cni-config.js';
import { createCniPodNetwork } from '../../../src/network/pod-network.js';
import { makeTestDir } from '../../helpers/rootfs.js';

const FAKE = `#!/usr/bin/env node
const fs = require('fs');
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
const env = {};
for (const k of ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']) env[k] = process.env[k];
fs.appendFileSync(process.env.NODELET_FAKE_CNI_LOG, JSON.stringify({ type: conf.type, env, conf }) + '\\n');
if (conf.fail) { process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', code: conf.fail.code, msg: conf.fail.msg, details: conf.fail.details })); process.exit(1); }
if (conf.hang) setInterval(() => {}, 1000);
else if (conf.garbage) { process.stdout.write('hello'); process.exit(0); }
else if (process.env.CNI_COMMAND === 'ADD') {
  const prev = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [{ name: process.env.CNI_IFNAME, sandbox: process.env.CNI_NETNS }], ips: [{ address: conf.addr || '10.9.0.2/24', interface: 0 }] };
  prev.chain = (prev.chain || []).concat(conf.type);
  process.stdout.write(JSON.stringify(prev));
}
`;

let dir: string;
let bin: string;
let log: string;
const rt: RuntimeConf = { containerId: 'sb-1', netns: '/run/x/net', ifName: 'eth0', args: 'IgnoreUnknown=1;K8S_POD_NAME=p', portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] };

async function calls(): Promise<{ type: string; env: Record<string, string>; conf: Record<string, unknown> }[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

beforeAll(async () => {
  dir = await makeTestDir();
  bin = join(dir, 'bin');
  await mkdir(bin);
  for (const name of ['fake-a', 'fake-b']) {
    await writeFile(join(bin, name), FAKE);
    await chmod(join(bin, name), 0o755);
  }
  log = join(dir, 'calls.log');
  process.env.NODELET_FAKE_CNI_LOG = log;
});
afterAll(async () => {
  delete process.env.NODELET_FAKE_CNI_LOG;
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await rm(log, { force: true });
});

const list = (over: Partial<NetworkConfList> = {}): NetworkConfList => ({
  cniVersion: '1.0.0',
  name: 'testnet',
  plugins: [{ type: 'fake-a', addr: '10.9.0.7/24' }, { type: 'fake-b', capabilities: { portMappings: true } }],
  ...over,
});

describe('CNI invocation', () => {
  it('ADD runs the chain in order with the CNI environment, stdin config and prevResult', async () => {
    const r = (await addNetworkList({ binDirs: ['/nonexistent', bin] }, list(), rt)) as { chain: string[]; ips: { address: string }[] };
    expect(r.chain).toEqual(['fake-a', 'fake-b']);
    expect(r.ips[0]!.address).toBe('10.9.0.7/24');
    const c = await calls();
    expect(c.map((x) => x.type)).toEqual(['fake-a', 'fake-b']);
    expect(c[0]!.env).toEqual({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'sb-1', CNI_NETNS: '/run/x/net', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p', CNI_PATH: `/nonexistent:${bin}` });
    expect(c[0]!.conf).toEqual({ type: 'fake-a', addr: '10.9.0.7/24', cniVersion: '1.0.0', name: 'testnet' });
    expect(c[1]!.conf.prevResult).toMatchObject({ chain: ['fake-a'] });
    expect(c[1]!.conf.runtimeConfig).toEqual({ portMappings: rt.portMappings });
  });

  it('DEL runs the chain in reverse with the cached result; CHECK in order', async () => {
    const cached = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.7/24' }] };
    await delNetworkList({ binDirs: [bin] }, list(), rt, cached);
    await checkNetworkList({ binDirs: [bin] }, list(), rt, cached);
    const c = await calls();
    expect(c.map((x) => `${x.env.CNI_COMMAND} ${x.type}`)).toEqual(['DEL fake-b', 'DEL fake-a', 'CHECK fake-a', 'CHECK fake-b']);
    for (const x of c) expect(x.conf.prevResult).toEqual(cached);
  });

  it('CHECK is refused for configs older than 0.4.0', async () => {
    await expect(checkNetworkList({ binDirs: [bin] }, list({ cniVersion: '0.3.1' }), rt, {})).rejects.toMatchObject({ code: 'ERR_CNI_CHECK_UNSUPPORTED' });
    expect(await calls()).toEqual([]);
  });

  it('a plugin error becomes ERR_CNI_PLUGIN_FAILED naming the plugin, and stops the chain', async () => {
    const l = list({ plugins: [{ type: 'fake-a', fail: { code: 11, msg: 'busy', details: 'lock held' } }, { type: 'fake-b' }] });
    const err = await addNetworkList({ binDirs: [bin] }, l, rt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeletError);
    expect((err as NodeletError).code).toBe('ERR_CNI_PLUGIN_FAILED');
    expect((err as NodeletError).category).toBe('Unavailable');
    expect((err as Error).message).toBe('CNI plugin "fake-a" ADD failed for sandbox sb-1 on network "testnet": busy; lock held (CNI error 11: try again later)');
    expect((await calls()).map((x) => x.type)).toEqual(['fake-a']);
  });

  it('a missing plugin binary is named with the directories searched', async () => {
    const l = list({ plugins: [{ type: 'fake-a' }, { type: 'nlt-no-such-plugin' }] });
    const err = await addNetworkList({ binDirs: [bin, '/opt/cni/bin'] }, l, rt).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_PLUGIN_NOT_FOUND');
    expect((err as Error).message).toBe(`CNI plugin "nlt-no-such-plugin" not found in ${bin}, /opt/cni/bin: install it (Debian: containernetworking-plugins) or set the CNI bin directories`);
    await expect(findPlugin('fake-b', [bin])).resolves.toBe(join(bin, 'fake-b'));
  });

  it('a plugin that hangs is killed at the timeout with a clear error', async () => {
    const t0 = Date.now();
    const err = await addNetworkList({ binDirs: [bin], timeoutMs: 300 }, list({ plugins: [{ type: 'fake-a', hang: true }] }), rt).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_PLUGIN_TIMEOUT');
    expect((err as Error).message).toContain('"fake-a" ADD for sandbox sb-1 on network "testnet" did not finish within 300 ms');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a plugin that cannot be executed is an error naming it', async () => {
    await writeFile(join(bin, 'fake-broken'), '#!/nonexistent/interpreter\n');
    await chmod(join(bin, 'fake-broken'), 0o755);
    const err = await addNetworkList({ binDirs: [bin] }, list({ plugins: [{ type: 'fake-broken' }] }), rt).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_PLUGIN_EXEC_FAILED');
    expect((err as Error).message).toContain(`Cannot run CNI plugin "fake-broken" (${join(bin, 'fake-broken')})`);
  });

  it('a result that is not JSON is an error naming the plugin', async () => {
    const err = await addNetworkList({ binDirs: [bin] }, list({ plugins: [{ type: 'fake-b', garbage: true }] }), rt).catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_RESULT_INVALID');
    expect((err as Error).message).toContain('"fake-b"');
  });
});

describe('network configuration loading', () => {
  it('writes the built-in default atomically when the directory has no config', async () => {
    const confDir = join(dir, 'net.d-empty');
    const net = createCniPodNetwork({ stateDir: join(dir, 'state'), cniConfDir: confDir, subnet: '10.254.9.0/24', bridgeName: 'nltunit' });
    const { file, config } = await net.loadConfig();
    expect(file).toBe(join(confDir, '10-nodelet.conflist'));
    const expected = computeDefaultConfList({ name: 'nodelet', bridgeName: 'nltunit', subnet: '10.254.9.0/24', ipamDataDir: join(dir, 'state', 'ipam') });
    expect(config).toEqual(expected);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(expected);
    expect(await readdir(confDir)).toEqual(['10-nodelet.conflist']);
    // an existing file is used as is, not overwritten
    const again = await createCniPodNetwork({ stateDir: join(dir, 'state'), cniConfDir: confDir, subnet: '10.254.10.0/24' }).loadConfig();
    expect(again.config).toEqual(expected);
  });

  it('uses the first config file in sorted order', async () => {
    const confDir = join(dir, 'net.d-two');
    await mkdir(confDir);
    await writeFile(join(confDir, '20-b.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'bridge' }] }));
    await writeFile(join(confDir, '10-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'ptp' }));
    const { file, config } = await createCniPodNetwork({ stateDir: join(dir, 'state'), cniConfDir: confDir }).loadConfig();
    expect(file).toBe(join(confDir, '10-a.conf'));
    expect(config).toEqual({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'ptp' }] });
  });

  it('a broken config is an error naming the file, not a silent fallback', async () => {
    const confDir = join(dir, 'net.d-bad');
    await mkdir(confDir);
    await writeFile(join(confDir, '10-bad.conflist'), '{"name": "x", "plugins": [');
    await writeFile(join(confDir, '20-good.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'bridge' }] }));
    const err = await createCniPodNetwork({ stateDir: join(dir, 'state'), cniConfDir: confDir }).loadConfig().catch((e: unknown) => e);
    expect((err as NodeletError).code).toBe('ERR_CNI_CONFIG_INVALID');
    expect((err as Error).message).toContain(join(confDir, '10-bad.conflist'));
  });

  it('rejects bad requests before doing anything', async () => {
    const net = createCniPodNetwork({ stateDir: join(dir, 'state-req'), cniConfDir: join(dir, 'net.d-req') });
    const req = { sandboxId: 'ok', podName: 'p', podNamespace: 'default', podUid: 'u', netnsPath: '/nonexistent', portMappings: [] };
    await expect(net.setUp({ ...req, sandboxId: '../evil' })).rejects.toMatchObject({ code: 'ERR_SANDBOX_ID_INVALID' });
    await expect(net.tearDown({ ...req, podName: 'a;b' })).rejects.toMatchObject({ code: 'ERR_CNI_ARGS_INVALID' });
    await expect(net.setUp({ ...req, portMappings: [{ containerPort: 0, hostPort: 80, protocol: 'TCP' }] })).rejects.toMatchObject({ code: 'ERR_PORT_MAPPING_INVALID' });
    await expect(net.setUp({ ...req, portMappings: [{ containerPort: 80, hostPort: 70000, protocol: 'TCP' }] })).rejects.toMatchObject({ code: 'ERR_PORT_MAPPING_INVALID' });
    await expect(net.setUp(req)).rejects.toMatchObject({ code: 'ERR_NETNS_NOT_FOUND' });
    await expect(net.check(req)).rejects.toMatchObject({ code: 'ERR_CNI_NOT_SET_UP' });
    expect(existsSync(join(dir, 'state-req'))).toBe(false);
    expect(existsSync(join(dir, 'net.d-req'))).toBe(false);
  });

  it('rejects a bad subnet or bridge name at construction', () => {
    expect(() => createCniPodNetwork({ stateDir: dir, subnet: '10.0.0.0' })).toThrow(/Invalid pod subnet/);
    expect(() => createCniPodNetwork({ stateDir: dir, bridgeName: 'a-very-long-bridge-name' })).toThrow(/Invalid bridge name/);
  });
});
