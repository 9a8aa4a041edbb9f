// What every prober shares: the context of a check and its output bound.

import type { ContainerRuntime } from '../runtime/types.js';

export interface ProbeContext {
  /** Pod IP; absent with hostNetwork → 127.0.0.1 (the host). */
  podIP?: string;
  containerId: string;
  runtime: Pick<ContainerRuntime, 'execSync'>;
  /** The container's declared ports, to resolve named ports. */
  ports: { name?: string; containerPort: number }[];
  /** kubelet's User-Agent version. */
  kubeVersion?: string;
}

/** kubelet keeps at most 10 KiB of a probe's output. */
export const MAX_OUTPUT = 10 * 1024;

export function truncate(s: string): string {
  return s.length > MAX_OUTPUT ? s.slice(0, MAX_OUTPUT) : s;
}

/** The probe's target host: its own `host`, else the pod IP, else (hostNetwork) 127.0.0.1. */
export function hostFor(ctx: Pick<ProbeContext, 'podIP'>, host?: string): string {
  return host || ctx.podIP || '127.0.0.1';
}
