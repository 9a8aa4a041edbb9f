// Facts about this node that the pure pod core (src/pod) takes as input:
// its resolver configuration (kubelet's --resolv-conf), hostname and
// allocatable CPU and memory. Read here, on the side that touches the host.

import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { parseResolvConf, type ResolvConf } from '../pod/container-config.js';

const SYSTEMD_UPSTREAM = '/run/systemd/resolve/resolv.conf';

/**
 * The host's resolver configuration as a pod sees it: like kubelet's
 * --resolv-conf, skip a stub resolver on 127.0.0.0/8 (systemd-resolved) that
 * is unreachable from a pod's network namespace, using the upstream file.
 */
export function readHostResolvConf(path = '/etc/resolv.conf'): ResolvConf {
  let conf = existsSync(path) ? parseResolvConf(readFileSync(path, 'utf8')) : { nameservers: [], searches: [], options: [] };
  if (conf.nameservers.every((n) => n.startsWith('127.')) && path === '/etc/resolv.conf' && existsSync(SYSTEMD_UPSTREAM))
    conf = parseResolvConf(readFileSync(SYSTEMD_UPSTREAM, 'utf8'));
  return conf;
}

/** The node's hostname (a hostNetwork pod's). */
export function nodeHostname(): string {
  return hostname();
}

/** This node's CPUs and memory: resourceFieldRef limits of containers without one (kubelet uses node allocatable). */
export function hostAllocatable(): { cpuMilli: number; memoryBytes: number } {
  return { cpuMilli: cpus().length * 1000, memoryBytes: totalmem() };
}

/**
 * The host's AppArmor is enabled (runc's apparmor.IsEnabled, which kubelet uses): the module says Y and
 * securityfs shows it. `root` for tests.
 */
export function appArmorEnabled(root = '/'): boolean {
  try {
    return readFileSync(`${root}sys/module/apparmor/parameters/enabled`, 'utf8').startsWith('Y') && existsSync(`${root}sys/kernel/security/apparmor`);
  } catch {
    return false;
  }
}
