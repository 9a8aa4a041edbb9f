import { describe, expect, it } from 'vitest';
import { NodeletError } from '../../../src/errors.js';
import {
  computeCniArgs,
  computeDefaultConfList,
  computeHostPortConflicts,
  computeLoopbackConfList,
  computePluginStdin,
  computePortMappings,
  parseAddResult,
  parseCniError,
  parseNetworkConfig,
  pickConfFile,
  supportsCheck,
  validateSubnet,
} from '../../../src/network/cni-config.js';
import { isPortmapV6CheckBug, pluginSearchPath } from '../../../src/network/cni.js';
import { computeUnshareArgs, validateHostname } from '../../../src/network/pinner.js';

describe('default network configuration', () => {
  it('is a bridge (no masquerade, hairpin, gateway) with host-local IPAM and portmap', () => {
    const c = computeDefaultConfList({ name: 'nodelet', bridgeName: 'nodelet0', subnet: '10.244.0.0/16', ipamDataDir: '/run/nodelet/cni/ipam' });
    expect(c).toEqual({
      cniVersion: '1.0.0',
      name: 'nodelet',
      plugins: [
        {
          type: 'bridge',
          bridge: 'nodelet0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: '/run/nodelet/cni/ipam' },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
    expect(computeLoopbackConfList()).toEqual({ cniVersion: '1.0.0', name: 'cni-loopback', plugins: [{ type: 'loopback' }] });
  });

  it('validates the subnet', () => {
    expect(() => validateSubnet('10.254.3.0/24')).not.toThrow();
    for (const bad of ['10.254.3.0', '10.256.0.0/16', '10.0.0.0/31', 'fd00::/64', 'x']) {
      expect(() => validateSubnet(bad), bad).toThrow(/Invalid pod subnet/);
    }
  });
});

describe('parseNetworkConfig', () => {
  it('accepts a conflist', () => {
    const c = parseNetworkConfig(JSON.stringify({ cniVersion: '0.4.0', name: 'n', plugins: [{ type: 'bridge' }, { type: 'portmap' }] }), '/x/10.conflist');
    expect(c.name).toBe('n');
    expect(c.cniVersion).toBe('0.4.0');
    expect(c.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
  });

  it('wraps a single .conf into a list', () => {
    const c = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'bridge', bridge: 'b0' }), '/x/10.conf');
    expect(c).toEqual({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'bridge', bridge: 'b0' }] });
  });

  it('names the file in every error', () => {
    const cases: [string, string, RegExp][] = [
      ['{not json', '/etc/a.conflist', /not valid JSON/],
      ['[]', '/etc/a.conflist', /expected a JSON object/],
      ['{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}', '/etc/a.conflist', /missing "name"/],
      ['{"name":"n","plugins":[]}', '/etc/a.conflist', /non-empty array/],
      ['{"name":"n"}', '/etc/a.conflist', /needs a "plugins" array/],
      ['{"name":"n","plugins":[{"bridge":"x"}]}', '/etc/a.conflist', /plugins\[0\] has no "type"/],
      ['{"name":"n","plugins":[{"type":"../../bin/sh"}]}', '/etc/a.conflist', /is not a plugin name/],
    ];
    for (const [text, file, re] of cases) {
      let err: unknown;
      try {
        parseNetworkConfig(text, file);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(NodeletError);
      expect((err as NodeletError).code).toBe('ERR_CNI_CONFIG_INVALID');
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(re);
    }
  });

  it('picks the first config file in sorted order', () => {
    expect(pickConfFile(['99-z.conflist', 'README', '10-b.conf', '10-a.json', '00-x.conf.bak'])).toBe('10-a.json');
    expect(pickConfFile(['README'])).toBeUndefined();
  });
});

describe('runtime values', () => {
  it('CNI_ARGS as kubelet passes them', () => {
    expect(computeCniArgs({ podNamespace: 'default', podName: 'web', sandboxId: 'abc', podUid: 'u-1' })).toBe(
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1',
    );
  });

  it('port mappings: only hostPorts, lowercase protocol, hostIP when set', () => {
    expect(
      computePortMappings([
        { containerPort: 80, hostPort: 8080, protocol: 'TCP' },
        { containerPort: 53, hostPort: 5353, protocol: 'UDP', hostIP: '127.0.0.1' },
        { containerPort: 9090, hostPort: 0, protocol: 'TCP' },
      ]),
    ).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    ]);
  });

  it('hostPort conflicts: same port and protocol on overlapping host IPs, or twice in one pod', () => {
    const tcp = (hostPort: number, hostIP?: string) => ({ hostPort, containerPort: 80, protocol: 'tcp', ...(hostIP ? { hostIP } : {}) });
    const others = [
      { sandboxId: 'a', portMappings: [tcp(8080), { hostPort: 53, containerPort: 53, protocol: 'udp' }] },
      { sandboxId: 'b', portMappings: [tcp(9090, '127.0.0.1')] },
    ];
    expect(computeHostPortConflicts([tcp(8081), { hostPort: 8080, containerPort: 1, protocol: 'udp' }, tcp(53), tcp(9090, '10.0.0.1')], others)).toEqual([]);
    expect(computeHostPortConflicts([tcp(8080, '127.0.0.1')], others)).toEqual([{ hostPort: 8080, protocol: 'tcp', hostIP: '127.0.0.1', sandboxId: 'a' }]);
    expect(computeHostPortConflicts([tcp(9090)], others)).toEqual([{ hostPort: 9090, protocol: 'tcp', sandboxId: 'b' }]);
    expect(computeHostPortConflicts([tcp(7000), tcp(7000, '0.0.0.0')], [])).toEqual([{ hostPort: 7000, protocol: 'tcp', hostIP: '0.0.0.0' }]);
  });

  it('plugin stdin: list name and version, prevResult, runtimeConfig only for declared capabilities', () => {
    const list = { cniVersion: '1.0.0', name: 'net1', plugins: [{ type: 'bridge', cniVersion: '0.3.1' }, { type: 'portmap', capabilities: { portMappings: true } }] };
    const pms = [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }];
    const bridge = computePluginStdin(list, list.plugins[0]!, undefined, { portMappings: pms });
    expect(bridge).toEqual({ type: 'bridge', cniVersion: '1.0.0', name: 'net1' });
    const pm = computePluginStdin(list, list.plugins[1]!, { ips: [] }, { portMappings: pms });
    expect(pm).toEqual({ type: 'portmap', capabilities: { portMappings: true }, cniVersion: '1.0.0', name: 'net1', prevResult: { ips: [] }, runtimeConfig: { portMappings: pms } });
    expect(computePluginStdin(list, list.plugins[1]!, undefined, { portMappings: [] })).not.toHaveProperty('runtimeConfig');
  });

  it('plugin PATH keeps the agent PATH first and adds the sbin directories', () => {
    expect(pluginSearchPath('/opt/x:/usr/bin')).toBe('/opt/x:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin');
    expect(pluginSearchPath('')).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it('CHECK support by version', () => {
    expect(supportsCheck('1.0.0')).toBe(true);
    expect(supportsCheck('0.4.0')).toBe(true);
    expect(supportsCheck('0.3.1')).toBe(false);
  });
});

describe('results and errors', () => {
  it('takes the pod IPs from the container interface of a 1.0.0 result', () => {
    const result = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'nodelet0', mac: 'aa' }, { name: 'veth1', mac: 'bb' }, { name: 'eth0', mac: 'cc', sandbox: '/run/x/net' }],
      ips: [
        { address: '10.244.0.5/16', gateway: '10.244.0.1', interface: 2 },
        { address: '10.99.0.1/16', interface: 0 },
      ],
    };
    expect(parseAddResult(result, 'eth0')).toEqual({ ips: ['10.244.0.5'], gateway: '10.244.0.1' });
  });

  it('reads 0.2.0 results', () => {
    expect(parseAddResult({ ip4: { ip: '10.1.0.2/24', gateway: '10.1.0.1' } }, 'eth0')).toEqual({ ips: ['10.1.0.2'], gateway: '10.1.0.1' });
    expect(parseAddResult(undefined, 'eth0')).toEqual({ ips: [] });
  });

  it('turns a plugin error into a NodeletError naming the plugin, with code, msg and details', () => {
    const e = parseCniError({
      plugin: 'bridge',
      command: 'ADD',
      network: 'nodelet',
      sandboxId: 'sb1',
      exitCode: 1,
      signal: null,
      stdout: JSON.stringify({ cniVersion: '1.0.0', code: 7, msg: 'bad bridge', details: 'bridge name too long' }),
      stderr: '',
    });
    expect(e.code).toBe('ERR_CNI_PLUGIN_FAILED');
    expect(e.category).toBe('InvalidArgument');
    expect(e.message).toBe('CNI plugin "bridge" ADD failed for sandbox sb1 on network "nodelet": bad bridge; bridge name too long (CNI error 7: invalid network config)');
    expect(e.details).toMatchObject({ plugin: 'bridge', cniCode: 7, cniMsg: 'bad bridge', cniDetails: 'bridge name too long' });
  });

  it('falls back to stderr when the plugin printed no JSON', () => {
    const e = parseCniError({ plugin: 'x', command: 'DEL', network: 'n', sandboxId: 's', exitCode: 2, signal: null, stdout: '', stderr: 'segfault\n' });
    expect(e.message).toBe('CNI plugin "x" DEL failed for sandbox s on network "n": segfault');
    const k = parseCniError({ plugin: 'x', command: 'ADD', network: 'n', sandboxId: 's', exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '' });
    expect(k.message).toContain('exited SIGKILL');
  });

  it('recognises only the portmap IPv6 CHECK bug for IPv4-only pods', () => {
    const err = parseCniError({ plugin: 'portmap', command: 'CHECK', network: 'n', sandboxId: 's', exitCode: 1, signal: null, stdout: '{"code":999,"msg":"could not check ipv6 dnat: chain CNI-DN-1 not found"}', stderr: '' });
    expect(isPortmapV6CheckBug('portmap', err, { ips: [{ address: '10.0.0.2/24' }] })).toBe(true);
    expect(isPortmapV6CheckBug('portmap', err, { ips: [{ address: 'fd00::2/64' }] })).toBe(false);
    expect(isPortmapV6CheckBug('bridge', err, { ips: [] })).toBe(false);
    const other = parseCniError({ plugin: 'portmap', command: 'CHECK', network: 'n', sandboxId: 's', exitCode: 1, signal: null, stdout: '{"code":999,"msg":"could not check ipv4 dnat"}', stderr: '' });
    expect(isPortmapV6CheckBug('portmap', other, { ips: [] })).toBe(false);
  });
});

describe('namespace pin plan', () => {
  it('unshare arguments bind each requested namespace to <dir>/<kind> and set the hostname', () => {
    expect(computeUnshareArgs({ dir: '/run/p', net: true, ipc: true, uts: true, hostname: 'web' }, ['/usr/bin/hostname'])).toEqual({
      files: { net: '/run/p/net', ipc: '/run/p/ipc', uts: '/run/p/uts' },
      args: ['--net=/run/p/net', '--ipc=/run/p/ipc', '--uts=/run/p/uts', '--', '/usr/bin/hostname', 'web'],
    });
    expect(computeUnshareArgs({ dir: '/run/p', net: true, ipc: false, uts: false }, ['/usr/bin/hostname'])).toEqual({
      files: { net: '/run/p/net' },
      args: ['--net=/run/p/net', '--', 'true'],
    });
  });

  it('with sysctls, one shell inside the namespaces writes the hostname and each /proc/sys file', () => {
    const { args } = computeUnshareArgs({ dir: '/run/p', net: true, ipc: true, uts: true, hostname: 'web', sysctls: { 'net/core/somaxconn': '1024', 'kernel/shm_rmid_forced': '1' } }, ['/usr/bin/hostname']);
    expect(args.slice(0, 5)).toEqual(['--net=/run/p/net', '--ipc=/run/p/ipc', '--uts=/run/p/uts', '--', '/bin/sh']);
    expect(args.slice(7)).toEqual(['nodelet-pin', 'kernel/hostname', 'web', 'net/core/somaxconn', '1024', 'kernel/shm_rmid_forced', '1']);
  });

  it('validates hostnames', () => {
    expect(() => validateHostname('web-0.example')).not.toThrow();
    for (const bad of ['', '-a', 'a_b', 'a'.repeat(65), 'x y']) expect(() => validateHostname(bad), bad).toThrow(/Invalid pod hostname/);
  });
});
