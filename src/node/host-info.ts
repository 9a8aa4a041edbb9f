// The host signals a node reports to the API server (what kubelet gets from
// cAdvisor and its stats providers): CPUs, memory, the root filesystem, pids,
// kernel/OS identity, and the node's primary IPv4 address. Parsers are pure
// and exported for tests; `readHostInfo` does the reading, with every root
// (/proc, /sys, /etc) parameterised so tests can point it at a temp dir.

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { invalidArgument, unavailable } from '../errors.js';

export interface FsStats {
  /** bytes: blocks * bsize */
  capacityBytes: number;
  /** bytes available to unprivileged users: bavail * bsize */
  availableBytes: number;
  inodes: number;
  inodesFree: number;
}

export interface HostInfo {
  hostname: string;
  /** the node's primary IPv4 address (InternalIP) */
  nodeIP: string;
  cpuCount: number;
  memory: {
    /** MemTotal */
    totalBytes: number;
    /** MemAvailable */
    availableBytes: number;
    /** SwapTotal */
    swapTotalBytes: number;
  };
  /** pre-allocated huge pages, bytes per page size: { '2Mi': 0, '1Gi': 0 } */
  hugepages: Record<string, number>;
  /** the filesystem of the node's root dir (kubelet's nodefs) */
  nodefs: FsStats;
  /** the filesystem holding images (kubelet's imagefs); same as nodefs when one fs */
  imagefs: FsStats;
  pids: {
    /** min(kernel.pid_max, kernel.threads-max) */
    max: number;
    /** tasks in use (4th field of /proc/loadavg: running/total → total) */
    running: number;
  };
  kernelVersion: string;
  osImage: string;
  operatingSystem: 'linux';
  /** Go's GOARCH naming: amd64, arm64, arm, 386, ppc64le, s390x, riscv64 … */
  architecture: string;
  machineID: string;
  /** /sys/class/dmi/id/product_uuid when readable, else the machine ID */
  systemUUID: string;
  bootID: string;
}

export interface ReadHostInfoOptions {
  /** the node's state dir (--root): its filesystem is nodefs */
  rootDir: string;
  /** where images live; default rootDir */
  imageDir?: string;
  /** --node-ip: reported as InternalIP instead of the detected address */
  nodeIP?: string;
  /** --hostname-override */
  hostname?: string;
  /** the host's / (tests point it at a temp dir holding proc/, sys/, etc/ …); default "/" */
  hostRoot?: string;
  /** hooks for tests */
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  cpuCount?: () => number;
  statfs?: (dir: string) => Promise<FsStats>;
}

// ---------------------------------------------------------------- pure parsers

/** /proc/meminfo → bytes for the keys present (values are in kB). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (!m) continue;
    const n = Number(m[2]);
    out[m[1]!] = /kB\s*$/.test(line) ? n * 1024 : n;
  }
  return out;
}

/** /etc/os-release → PRETTY_NAME (unquoted), or undefined. */
export function parseOsRelease(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*PRETTY_NAME=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[1]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    return v.replace(/\\(["'\\$`])/g, '$1');
  }
  return undefined;
}

/** /proc/loadavg "0.00 0.01 0.05 1/123 4567" → total tasks (123). */
export function parseLoadavgTasks(text: string): number | undefined {
  const f = text.trim().split(/\s+/)[3];
  const m = f && /^\d+\/(\d+)$/.exec(f);
  return m ? Number(m[1]) : undefined;
}

/** /proc/net/route → the interface of the IPv4 default route (lowest metric). */
export function parseDefaultRouteInterface(text: string): string | undefined {
  let best: { iface: string; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = f;
    const up = (parseInt(flags!, 16) & 0x1) !== 0;
    if (dest === '00000000' && mask === '00000000' && up) {
      const mt = Number(metric);
      if (!best || mt < best.metric) best = { iface: iface!, metric: mt };
    }
  }
  return best?.iface;
}

/** Node's process.arch → Go's GOARCH. */
export function goArch(arch: string = process.arch, endianness: 'BE' | 'LE' = os.endianness()): string {
  switch (arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return endianness === 'LE' ? 'ppc64le' : 'ppc64';
    case 'mips':
      return endianness === 'LE' ? 'mipsle' : 'mips';
    case 'mipsel':
      return 'mipsle';
    default:
      return arch; // arm, arm64, s390x, riscv64, loong64
  }
}

/**
 * The node's primary IPv4: the address of the default route's interface; with
 * no default route (a network namespace with only lo and our own pod bridges)
 * 127.0.0.1, so the address stays the same when pod bridges come and go.
 * `--node-ip` overrides it.
 */
export function choosePrimaryIPv4(ifaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>, defaultIface?: string): string {
  const v4 = (list: os.NetworkInterfaceInfo[] | undefined) =>
    (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.'));
  if (defaultIface) {
    const a = v4(ifaces[defaultIface])[0];
    if (a) return a.address;
  }
  return '127.0.0.1';
}

/** The primary IPv4 of this host now (choosePrimaryIPv4 over the live interfaces and /proc/net/route). */
export function primaryIPv4Sync(): string {
  let route: string | undefined;
  try {
    route = readFileSync('/proc/net/route', 'utf8');
  } catch {
    route = undefined;
  }
  return choosePrimaryIPv4(os.networkInterfaces(), route === undefined ? undefined : parseDefaultRouteInterface(route));
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

// ---------------------------------------------------------------- I/O

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function readNumber(file: string): Promise<number | undefined> {
  const t = await readText(file);
  if (t === undefined) return undefined;
  const n = Number(t.trim());
  return Number.isFinite(n) ? n : undefined;
}

export async function statfsStats(dir: string): Promise<FsStats> {
  try {
    const s = await fsp.statfs(dir);
    return {
      capacityBytes: s.blocks * s.bsize,
      availableBytes: s.bavail * s.bsize,
      inodes: s.files,
      inodesFree: s.ffree,
    };
  } catch (e) {
    throw unavailable('ERR_HOST_STATFS', `cannot statfs ${dir} for the node's ephemeral-storage: ${(e as Error).message}`, {
      cause: e,
      details: { path: dir },
    });
  }
}

async function readHugepages(sysDir: string): Promise<Record<string, number>> {
  const dir = path.join(sysDir, 'kernel', 'mm', 'hugepages');
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return {};
  }
  const out: Record<string, number> = {};
  for (const n of names) {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (!m) continue;
    const sizeKb = Number(m[1]);
    const count = (await readNumber(path.join(dir, n, 'nr_hugepages'))) ?? 0;
    out[hugepageSizeName(sizeKb * 1024)] = count * sizeKb * 1024;
  }
  return out;
}

/** 2097152 → "2Mi", 1073741824 → "1Gi" (the suffix of hugepages-<size>). */
export function hugepageSizeName(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti'];
  let v = bytes;
  let i = 0;
  while (v % 1024 === 0 && v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v}${units[i]}`;
}

export async function readHostInfo(opts: ReadHostInfoOptions): Promise<HostInfo> {
  const hostRoot = opts.hostRoot ?? '/';
  const proc = path.join(hostRoot, 'proc');
  const sys = path.join(hostRoot, 'sys');
  const etc = path.join(hostRoot, 'etc');
  if (opts.nodeIP !== undefined && !IPV4.test(opts.nodeIP)) {
    throw invalidArgument('ERR_NODE_IP_INVALID', `--node-ip ${JSON.stringify(opts.nodeIP)} is not an IPv4 address`, {
      details: { nodeIP: opts.nodeIP },
    });
  }
  const statfs = opts.statfs ?? statfsStats;
  const imageDir = opts.imageDir ?? opts.rootDir;

  const [meminfoText, osRelease, osReleaseLib, loadavg, pidMax, threadsMax, machineId, dbusMachineId, bootId, productUuid, route, nodefs, imagefs, hugepages] =
    await Promise.all([
      readText(path.join(proc, 'meminfo')),
      readText(path.join(etc, 'os-release')),
      readText(path.join(hostRoot, 'usr', 'lib', 'os-release')),
      readText(path.join(proc, 'loadavg')),
      readNumber(path.join(proc, 'sys', 'kernel', 'pid_max')),
      readNumber(path.join(proc, 'sys', 'kernel', 'threads-max')),
      readText(path.join(etc, 'machine-id')),
      readText(path.join(hostRoot, 'var', 'lib', 'dbus', 'machine-id')),
      readText(path.join(proc, 'sys', 'kernel', 'random', 'boot_id')),
      readText(path.join(sys, 'class', 'dmi', 'id', 'product_uuid')),
      readText(path.join(proc, 'net', 'route')),
      statfs(opts.rootDir),
      imageDir === opts.rootDir ? undefined : statfs(imageDir),
      readHugepages(sys),
    ]);

  const mem = parseMeminfo(meminfoText ?? '');
  if (mem.MemTotal === undefined) {
    throw unavailable('ERR_HOST_MEMINFO', `cannot read MemTotal from ${path.join(proc, 'meminfo')}`);
  }
  const maxCandidates = [pidMax, threadsMax].filter((n): n is number => n !== undefined);
  const ifaces = (opts.networkInterfaces ?? os.networkInterfaces)();
  const hostname = (opts.hostname ?? os.hostname()).trim().toLowerCase();
  const machineID = (machineId ?? dbusMachineId ?? '').trim();
  const uuid = productUuid?.trim();
  const osImageFromEtc = osRelease === undefined ? undefined : parseOsRelease(osRelease);

  return {
    hostname,
    nodeIP: opts.nodeIP ?? choosePrimaryIPv4(ifaces, route === undefined ? undefined : parseDefaultRouteInterface(route)),
    cpuCount: (opts.cpuCount ?? os.availableParallelism)(),
    memory: {
      totalBytes: mem.MemTotal,
      availableBytes: mem.MemAvailable ?? mem.MemFree ?? 0,
      swapTotalBytes: mem.SwapTotal ?? 0,
    },
    hugepages,
    nodefs,
    imagefs: imagefs ?? nodefs,
    pids: {
      max: maxCandidates.length ? Math.min(...maxCandidates) : 32768,
      running: (loadavg === undefined ? undefined : parseLoadavgTasks(loadavg)) ?? 0,
    },
    kernelVersion: os.release(),
    osImage: osImageFromEtc ?? (osReleaseLib === undefined ? undefined : parseOsRelease(osReleaseLib)) ?? 'Linux',
    operatingSystem: 'linux',
    architecture: goArch(),
    machineID,
    systemUUID: uuid ? uuid : machineID,
    bootID: (bootId ?? '').trim(),
  };
}
