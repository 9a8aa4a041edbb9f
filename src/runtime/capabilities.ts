// Linux capabilities as names and 64-bit masks, and the pure decision of a
// container's capability sets (containerd's default set, add/drop with "ALL",
// privileged = every capability the kernel knows).

import { invalidArgument } from '../errors.js';

/** include/uapi/linux/capability.h, in number order. */
export const CAPABILITY_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
] as const;

/** containerd's default set (pkg/oci defaultUnixCaps). */
export const DEFAULT_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID',
  'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** "CAP_NET_ADMIN" / "net_admin" / "NET_ADMIN" → bit number. */
export function capabilityNumber(name: string): number {
  const n = name.toUpperCase().replace(/^CAP_/, '');
  const i = (CAPABILITY_NAMES as readonly string[]).indexOf(n);
  if (i < 0) {
    throw invalidArgument('ERR_CAPABILITY_UNKNOWN', `Unknown capability "${name}" (use names like NET_ADMIN or CAP_NET_ADMIN)`, {
      details: { capability: name },
    });
  }
  return i;
}

export function capabilityMask(nums: Iterable<number>): bigint {
  let m = 0n;
  for (const n of nums) m |= 1n << BigInt(n);
  return m;
}

export function maskToHex(m: bigint): string {
  return '0x' + m.toString(16).padStart(16, '0');
}

export function maskToNames(m: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if (m & (1n << BigInt(i))) out.push(CAPABILITY_NAMES[i] ?? `CAP_${i}`);
  return out;
}

const isAll = (s: string) => s.toUpperCase() === 'ALL' || s.toUpperCase() === 'CAP_ALL';

/**
 * The container's capability set, as containerd's CRI plugin computes it
 * (setOCICapabilities): privileged → all known (0..capLastCap); else the
 * default set, then add "ALL", then drop "ALL", then named adds, then named
 * drops (so drop ALL + add X = only X; add ALL + drop X = all but X).
 */
export function computeCapabilitySet(opts: { privileged: boolean; add: string[]; drop: string[]; capLastCap: number; available?: bigint }): bigint {
  // "all" is what the kernel knows AND the daemon holds (containerd's WithAllCurrentCapabilities):
  // a capability outside the daemon's bounding set cannot be granted (capset EPERM).
  const all = capabilityMask(Array.from({ length: opts.capLastCap + 1 }, (_, i) => i)) & (opts.available ?? ~0n);
  if (opts.privileged) return all;
  let set = capabilityMask(DEFAULT_CAPABILITIES.map(capabilityNumber));
  if (opts.add.some(isAll)) set = all;
  if (opts.drop.some(isAll)) set = 0n;
  for (const a of opts.add) if (!isAll(a)) set |= 1n << BigInt(capabilityNumber(a));
  for (const d of opts.drop) if (!isAll(d)) set &= ~(1n << BigInt(capabilityNumber(d)));
  return set & all;
}
