// Probes as kubelet runs them (pkg/probe/{exec,http,tcp,grpc}): runProbe
// performs one check of a container's probe and returns its outcome; what to
// make of outcomes (thresholds, startup gating, hold) is decided by the pure
// worker logic in src/pod/probe.ts.

import type { Probe } from '../pod/api-types.js';
import { resolvePort, type ProbeOutcome } from '../pod/probe.js';
import { hostFor, type ProbeContext } from './common.js';
import { execProbe } from './exec.js';
import { grpcProbe } from './grpc.js';
import { httpProbe } from './http.js';
import { tcpProbe } from './tcp.js';

export { httpProbe, type ProbeContext };

export async function runProbe(probe: Probe, ctx: ProbeContext): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.exec) return await execProbe(probe.exec.command ?? [], timeoutMs, ctx);
    if (probe.httpGet) return await httpProbe(probe.httpGet, timeoutMs, ctx);
    if (probe.tcpSocket) return await tcpProbe(hostFor(ctx, probe.tcpSocket.host), resolvePort(probe.tcpSocket.port, ctx.ports), timeoutMs);
    if (probe.grpc) return await grpcProbe(hostFor(ctx), probe.grpc.port, probe.grpc.service ?? '', timeoutMs);
  } catch (e) {
    return { result: 'failure', output: (e as Error).message };
  }
  return { result: 'unknown', output: 'missing probe handler' };
}
