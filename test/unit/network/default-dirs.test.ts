// The ecosystem's default directories, and the built-in network written (and said, once) only when the
// configuration directory has none.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCniPodNetwork, DEFAULT_CNI_BIN_DIRS, DEFAULT_CNI_CONF_DIR } from '../../../src/network/pod-network.js';
import { DEFAULT_CONTAINER_LOG_LINK_DIR, DEFAULT_POD_LOG_DIR } from '../../../src/agent/setup.js';
import { containerLogLinkFor, podLogsDirFor } from '../../../src/pod/container-config.js';
import type { Logger } from '../../../src/log.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nodelet-default-dirs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const l: Logger & { lines: string[] } = {
    lines,
    debug: () => undefined,
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
    child: () => l,
  };
  return l;
}

describe('defaults', () => {
  it('are kubelet/containerd\'s', () => {
    expect(DEFAULT_CNI_CONF_DIR).toBe('/etc/cni/net.d');
    expect(DEFAULT_CNI_BIN_DIRS).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(DEFAULT_POD_LOG_DIR).toBe('/var/log/pods');
    expect(DEFAULT_CONTAINER_LOG_LINK_DIR).toBe('/var/log/containers');
  });
  it('log paths have kubelet\'s names', () => {
    const pod = { metadata: { name: 'web', namespace: 'prod', uid: '1234-5678' }, spec: { containers: [] } } as never;
    expect(podLogsDirFor('/var/log/pods', pod)).toBe('/var/log/pods/prod_web_1234-5678');
    expect(containerLogLinkFor('/var/log/containers', pod, 'nginx', 'abc123')).toBe('/var/log/containers/web_prod_nginx-abc123.log');
    const long = { metadata: { name: 'p'.repeat(200), namespace: 'default', uid: 'u' }, spec: { containers: [] } } as never;
    const name = path.basename(containerLogLinkFor('/l', long, 'c'.repeat(63), 'f'.repeat(64)));
    expect(name.length).toBe(255); // ext4's limit, as kubelet cuts it
    expect(name.endsWith('.log')).toBe(true);
  });
});

describe('the built-in network', () => {
  it('is written only when the directory has no configuration, and said once naming the file', async () => {
    const conf = path.join(dir, 'net.d');
    const log = recorder();
    const net = createCniPodNetwork({ stateDir: path.join(dir, 'state'), cniConfDir: conf, logger: log });
    const a = await net.loadConfig();
    const b = await net.loadConfig();
    expect(a.file).toBe(path.join(conf, '10-nodelet.conflist'));
    expect(b.file).toBe(a.file);
    expect(log.lines).toEqual([`info no CNI network configuration in ${conf}: wrote the built-in default ${a.file}`]);
  });
  it('is not written when a configuration exists', async () => {
    const conf = path.join(dir, 'mine.d');
    const log = recorder();
    mkdirSync(conf);
    writeFileSync(path.join(conf, '87-podman-bridge.conflist'), JSON.stringify({ cniVersion: '0.4.0', name: 'podman', plugins: [{ type: 'bridge', bridge: 'cni-podman0' }] }));
    const net = createCniPodNetwork({ stateDir: path.join(dir, 'state2'), cniConfDir: conf, logger: log });
    expect((await net.loadConfig()).config.name).toBe('podman');
    expect(readdirSync(conf)).toEqual(['87-podman-bridge.conflist']);
    expect(log.lines).toEqual([]);
  });
});
