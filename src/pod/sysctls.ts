// Pod sysctls (spec.securityContext.sysctls), admitted the way kubelet does it:
// only sysctls the kernel namespaces (net.*, the IPC ones) can be set, the safe
// set is allowed by default, anything else needs the node's
// --allowed-unsafe-sysctls patterns; net sysctls are refused with hostNetwork,
// IPC ones with hostIPC. A refused pod fails with reason SysctlForbidden.
// The runtime writes the admitted values inside the pod's pinned namespaces.

import { invalidArgument } from '../errors.js';
import type { Pod } from './api-types.js';
import { toDotSeparated } from '../sys/sysctl.js';

export { sysctlProcPath, toDotSeparated } from '../sys/sysctl.js';

export type SysctlNamespace = 'net' | 'ipc';

/** kubelet's safe set: namespaced and without effect on other pods. */
export const SAFE_SYSCTLS: readonly string[] = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
];

/** Which namespace isolates the sysctl, undefined when it is node-wide. */
export function namespacedBy(name: string): SysctlNamespace | undefined {
  const n = toDotSeparated(name);
  if (n === 'kernel.sem' || n.startsWith('kernel.shm') || n.startsWith('kernel.msg') || n.startsWith('fs.mqueue.')) return 'ipc';
  if (n.startsWith('net.')) return 'net';
  return undefined;
}

/** The node's allowlist: the safe set plus the operator's unsafe patterns (`kernel.msg*`, `net.core.somaxconn`). */
export class SysctlAllowlist {
  private readonly exact = new Map<string, SysctlNamespace>();
  private readonly prefixes = new Map<string, SysctlNamespace>();

  constructor(unsafePatterns: readonly string[] = []) {
    for (const raw of [...SAFE_SYSCTLS, ...unsafePatterns]) {
      const p = toDotSeparated(raw.trim());
      if (!/^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$/.test(p) || p.length > 253)
        throw invalidArgument('ERR_SYSCTL_PATTERN_INVALID', `allowed unsafe sysctl "${raw}" is invalid: give a sysctl name, or a prefix ending in "*" (kernel.msg*)`);
      const name = p.endsWith('*') ? p.slice(0, -1) : p;
      const ns = namespacedBy(name);
      if (!ns) throw invalidArgument('ERR_SYSCTL_NOT_NAMESPACED', `allowed unsafe sysctl "${raw}" is not known to be namespaced: only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* can be set per pod`);
      (p.endsWith('*') ? this.prefixes : this.exact).set(name, ns);
    }
  }

  /** Why the sysctl cannot be set for such a pod, or undefined when it can. */
  check(name: string, hostNetwork: boolean, hostIPC: boolean): string | undefined {
    const n = toDotSeparated(name);
    let ns = this.exact.get(n);
    if (!ns) for (const [p, v] of this.prefixes) if (n.startsWith(p)) ns = v;
    if (!ns) return `"${n}" not allowlisted`;
    if (ns === 'ipc' && hostIPC) return `"${n}" not allowed with host ipc enabled`;
    if (ns === 'net' && hostNetwork) return `"${n}" not allowed with host net enabled`;
    return undefined;
  }

  /** kubelet's sysctl admission: the first refusal as {reason, message}, or undefined. */
  admit(pod: Pod): { reason: string; message: string } | undefined {
    for (const s of pod.spec.securityContext?.sysctls ?? []) {
      const why = this.check(s.name, !!pod.spec.hostNetwork, !!pod.spec.hostIPC);
      if (why) return { reason: 'SysctlForbidden', message: `Pod was rejected: forbidden sysctl: ${why}` };
    }
    return undefined;
  }
}
