import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  choosePrimaryIPv4,
  goArch,
  hugepageSizeName,
  parseDefaultRouteInterface,
  parseLoadavgTasks,
  parseMeminfo,
  parseOsRelease,
  readHostInfo,
} from '../../../src/node/host-info.js';
import { formatIntegerQuantity, formatMilliQuantity, quantitiesEqual, toNano } from '../../../src/node/quantity-format.js';
import { NODELET_VERSION } from '../../../src/version.js';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
`;

function iface(address: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4'): os.NetworkInterfaceInfo {
  return { address, family, internal, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', cidr: `${address}/24` } as os.NetworkInterfaceInfo;
}

describe('host-info parsers', () => {
  it('parses /proc/meminfo in bytes', () => {
    const m = parseMeminfo('MemTotal:       16318004 kB\nMemFree:  1000 kB\nMemAvailable:   12000000 kB\nHugePages_Total:       0\nSwapTotal:  0 kB\n');
    expect(m.MemTotal).toBe(16318004 * 1024);
    expect(m.MemAvailable).toBe(12000000 * 1024);
    expect(m.HugePages_Total).toBe(0);
    expect(m.SwapTotal).toBe(0);
  });

  it('takes PRETTY_NAME from os-release, unquoted', () => {
    expect(parseOsRelease('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(parseOsRelease("PRETTY_NAME='Alpine Linux v3.20'")).toBe('Alpine Linux v3.20');
    expect(parseOsRelease('PRETTY_NAME=Plain\n')).toBe('Plain');
    expect(parseOsRelease('ID=x\n')).toBeUndefined();
  });

  it('counts tasks from the 4th field of /proc/loadavg', () => {
    expect(parseLoadavgTasks('0.52 0.58 0.59 3/1234 56789\n')).toBe(1234);
    expect(parseLoadavgTasks('garbage')).toBeUndefined();
  });

  it('finds the default route interface with the lowest metric', () => {
    expect(parseDefaultRouteInterface(ROUTE)).toBe('eth0');
    expect(parseDefaultRouteInterface(ROUTE.split('\n').slice(0, 2).join('\n'))).toBeUndefined();
  });

  it('names architectures like GOARCH', () => {
    expect(goArch('x64')).toBe('amd64');
    expect(goArch('arm64')).toBe('arm64');
    expect(goArch('ia32')).toBe('386');
    expect(goArch('ppc64', 'LE')).toBe('ppc64le');
    expect(goArch('s390x')).toBe('s390x');
  });

  it('picks the default-route address, else the first non-internal IPv4, else 127.0.0.1', () => {
    const ifs = { lo: [iface('127.0.0.1', true)], eth0: [iface('fe80::1', false, 'IPv6'), iface('192.168.1.5')], eth1: [iface('10.0.0.7')] };
    expect(choosePrimaryIPv4(ifs, 'eth0')).toBe('192.168.1.5');
    // no usable default route: loopback, never whichever bridge happens to exist
    expect(choosePrimaryIPv4(ifs, 'eth9')).toBe('127.0.0.1');
    expect(choosePrimaryIPv4({ lo: [iface('127.0.0.1', true)], eth1: [iface('169.254.3.3'), iface('10.0.0.7')] })).toBe('127.0.0.1');
    expect(choosePrimaryIPv4({ lo: [iface('127.0.0.1', true)], eth1: [iface('169.254.3.3'), iface('10.0.0.7')] }, 'eth1')).toBe('10.0.0.7');
    expect(choosePrimaryIPv4({ lo: [iface('127.0.0.1', true)] })).toBe('127.0.0.1');
  });

  it('names huge page sizes as the resource suffix', () => {
    expect(hugepageSizeName(2048 * 1024)).toBe('2Mi');
    expect(hugepageSizeName(1048576 * 1024)).toBe('1Gi');
  });
});

describe('readHostInfo against a fake host root', () => {
  function fakeRoot(withUuid: boolean): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 'nodelet-host-'));
    const w = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text);
    };
    w('proc/meminfo', 'MemTotal: 2048000 kB\nMemFree: 100 kB\nMemAvailable: 1024000 kB\nSwapTotal: 4096 kB\n');
    w('proc/loadavg', '0.00 0.00 0.00 1/77 999\n');
    w('proc/sys/kernel/pid_max', '4194304\n');
    w('proc/sys/kernel/threads-max', '63000\n');
    w('proc/sys/kernel/random/boot_id', 'b00t-1d\n');
    w('proc/net/route', ROUTE);
    w('etc/os-release', 'PRETTY_NAME="Test OS 1"\n');
    w('var/lib/dbus/machine-id', 'dbusmachineid\n');
    if (withUuid) w('sys/class/dmi/id/product_uuid', 'UUID-1\n');
    w('sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages', '3\n');
    w('sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages', '0\n');
    return root;
  }

  it('reads every signal from the given roots', async () => {
    const root = fakeRoot(true);
    const seen: string[] = [];
    const info = await readHostInfo({
      rootDir: '/var/lib/nodelet',
      imageDir: '/var/lib/images',
      hostRoot: root,
      hostname: 'My-Host',
      cpuCount: () => 3,
      networkInterfaces: () => ({ lo: [iface('127.0.0.1', true)], eth0: [iface('192.168.7.9')] }),
      statfs: async (dir) => {
        seen.push(dir);
        return { capacityBytes: dir.includes('images') ? 2 : 1, availableBytes: 1, inodes: 10, inodesFree: 5 };
      },
    });
    expect(info).toMatchObject({
      hostname: 'my-host',
      nodeIP: '192.168.7.9',
      cpuCount: 3,
      memory: { totalBytes: 2048000 * 1024, availableBytes: 1024000 * 1024, swapTotalBytes: 4096 * 1024 },
      hugepages: { '2Mi': 3 * 2 * 1024 * 1024, '1Gi': 0 },
      pids: { max: 63000, running: 77 },
      osImage: 'Test OS 1',
      operatingSystem: 'linux',
      machineID: 'dbusmachineid',
      systemUUID: 'UUID-1',
      bootID: 'b00t-1d',
      kernelVersion: os.release(),
      architecture: goArch(),
    });
    expect(info.nodefs.capacityBytes).toBe(1);
    expect(info.imagefs.capacityBytes).toBe(2);
    expect(seen.sort()).toEqual(['/var/lib/images', '/var/lib/nodelet']);
  });

  it('falls back to the machine ID for systemUUID and honours --node-ip', async () => {
    const root = fakeRoot(false);
    writeFileSync(path.join(root, 'etc/machine-id'), 'etcmachineid\n');
    const info = await readHostInfo({ rootDir: os.tmpdir(), hostRoot: root, nodeIP: '10.9.8.7', networkInterfaces: () => ({}) });
    expect(info.machineID).toBe('etcmachineid');
    expect(info.systemUUID).toBe('etcmachineid');
    expect(info.nodeIP).toBe('10.9.8.7');
    expect(info.imagefs).toEqual(info.nodefs);
    expect(info.nodefs.capacityBytes).toBeGreaterThan(0); // the real statfs of the temp dir
  });

  it('rejects a --node-ip that is not IPv4', async () => {
    await expect(readHostInfo({ rootDir: os.tmpdir(), hostRoot: fakeRoot(false), nodeIP: 'nope' })).rejects.toMatchObject({ code: 'ERR_NODE_IP_INVALID' });
  });

  it('reads this host (smoke)', async () => {
    const info = await readHostInfo({ rootDir: os.tmpdir() });
    expect(info.cpuCount).toBeGreaterThan(0);
    expect(info.memory.totalBytes).toBeGreaterThan(0);
    expect(info.nodeIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });
});

describe('quantity formatting (apimachinery canonical form)', () => {
  it('prints BinarySI as whole powers of 1024 or plain numbers', () => {
    expect(formatIntegerQuantity(16318004n * 1024n, 'BinarySI')).toBe('16318004Ki');
    expect(formatIntegerQuantity(8n * 1024n ** 3n, 'BinarySI')).toBe('8Gi');
    expect(formatIntegerQuantity(1536n, 'BinarySI')).toBe('1536');
    expect(formatIntegerQuantity(1000n, 'BinarySI')).toBe('1k'); // below 1024: DecimalSI
    expect(formatIntegerQuantity(100n, 'BinarySI')).toBe('100');
    expect(formatIntegerQuantity(0n, 'BinarySI')).toBe('0');
    expect(formatIntegerQuantity(93478772582n, 'BinarySI')).toBe('93478772582');
  });

  it('prints DecimalSI with a multiple-of-3 exponent', () => {
    expect(formatIntegerQuantity(110, 'DecimalSI')).toBe('110');
    expect(formatIntegerQuantity(10000, 'DecimalSI')).toBe('10k');
    expect(formatIntegerQuantity(1500, 'DecimalSI')).toBe('1500');
    expect(formatMilliQuantity(4000)).toBe('4');
    expect(formatMilliQuantity(3900)).toBe('3900m');
    expect(formatMilliQuantity(0)).toBe('0');
  });

  it('compares quantities by value', () => {
    expect(quantitiesEqual('1Gi', '1073741824')).toBe(true);
    expect(quantitiesEqual('1', '1000m')).toBe(true);
    expect(quantitiesEqual('1', '1001m')).toBe(false);
    expect(toNano('1.5')).toBe(1_500_000_000n);
  });
});

describe('versions', () => {
  it('NODELET_VERSION is package.json version', () => {
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')) as { version: string };
    expect(NODELET_VERSION).toBe(pkg.version);
  });
});
