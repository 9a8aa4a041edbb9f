// exec probes (kubelet pkg/probe/exec): the command runs in the container
// through the runtime; exit 0 succeeds, a timeout fails, a runtime error is unknown.

import type { ProbeOutcome } from '../pod/probe.js';
import { truncate, type ProbeContext } from './common.js';

export async function execProbe(command: string[], timeoutMs: number, ctx: ProbeContext): Promise<ProbeOutcome> {
  let r;
  try {
    r = await ctx.runtime.execSync(ctx.containerId, command, { timeoutMs });
  } catch (e) {
    return { result: 'unknown', output: (e as Error).message };
  }
  const out = truncate(Buffer.concat([r.stdout, r.stderr]).toString('utf8'));
  if (r.timedOut) return { result: 'failure', output: `command ${JSON.stringify(command)} timed out after ${timeoutMs / 1000}s` + (out ? `: ${out}` : '') };
  return { result: r.exitCode === 0 ? 'success' : 'failure', output: out };
}
