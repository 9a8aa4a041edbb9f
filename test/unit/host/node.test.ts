// The host-side inputs of the pod core: resolv.conf reading and the config builders that fill them in.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { hostAllocatable, readHostResolvConf } from '../../../src/host/node.js';
import { containerConfigForHost, sandboxConfigForHost } from '../../../src/host/pod-config.js';
import { applyDefaults } from '../../../src/pod/manifest.js';
import type { ImageRecord } from '../../../src/image/types.js';

const dir = mkdtempSync('/dev/shm/nodelet-test-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('host inputs', () => {
  it('readHostResolvConf parses the given file; a missing one is empty', () => {
    const f = join(dir, 'resolv.conf');
    writeFileSync(f, '# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.1 ; comment\nsearch a.example b.example\noptions ndots:2 edns0\n');
    // not /etc/resolv.conf: the systemd-resolved upstream is not consulted
    expect(readHostResolvConf(f)).toEqual({ nameservers: ['127.0.0.53', '192.0.2.1'], searches: ['a.example', 'b.example'], options: ['ndots:2', 'edns0'] });
    expect(readHostResolvConf(join(dir, 'none'))).toEqual({ nameservers: [], searches: [], options: [] });
  });
  it('sandboxConfigForHost: the given resolv.conf, else the host; the node hostname for hostNetwork', () => {
    const p = applyDefaults({ metadata: { name: 'web' }, spec: { hostNetwork: true, dnsPolicy: 'Default', containers: [{ name: 'a', image: 'x' }] } });
    const host = { nameservers: ['192.0.2.53'], searches: [], options: [] };
    const s = sandboxConfigForHost(p, { hostResolvConf: host });
    expect(s.dns).toEqual(host);
    expect(s.hostname).toBe(hostname());
    expect(sandboxConfigForHost(p, { hostResolvConf: host, nodeHostname: 'n1' }).hostname).toBe('n1');
    expect(sandboxConfigForHost(p).dns!.nameservers.length).toBeLessThanOrEqual(3);
  });
  it('containerConfigForHost: node allocatable for resourceFieldRef limits, subPaths resolved on disk', () => {
    const vol = join(dir, 'vol');
    const p = applyDefaults({
      metadata: { name: 'web' },
      spec: {
        containers: [{ name: 'a', image: 'x', command: ['sh'], env: [{ name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }], volumeMounts: [{ name: 'v', mountPath: '/d', subPath: 'sub/dir' }] }],
        volumes: [{ name: 'v', emptyDir: {} }],
      },
    });
    const image = { id: 'sha256:x', config: {} } as unknown as ImageRecord;
    mkdirSync(vol);
    const { config } = containerConfigForHost({ pod: p, container: p.spec.containers[0]!, image, attempt: 0, podLogsDir: '/l', volumePaths: { v: vol }, objects: { configMaps: [], secrets: [] } });
    expect(config.env).toContain(`MEM=${hostAllocatable().memoryBytes}`);
    expect(config.mounts[0]).toMatchObject({ hostPath: join(vol, 'sub/dir'), containerPath: '/d' });
  });
});
