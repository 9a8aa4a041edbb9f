// Why a container exited, in words (for `describe pod`).
import { constants } from 'node:os';

const byNumber = new Map(Object.entries(constants.signals as Record<string, number>).map(([k, v]) => [v, k]));

export function describeExit(code: number, reason?: string, hasMemoryLimit = false): string {
  if (reason === 'OOMKilled') return hasMemoryLimit ? 'killed by the kernel OOM killer: the container hit its memory limit' : 'killed by the kernel OOM killer: the pod hit its memory limit';
  if (code === 0) return '';
  if (code > 128 && code < 128 + 65) {
    const sig = byNumber.get(code - 128);
    if (sig === 'SIGKILL') return 'SIGKILL: killed (OOM, liveness failure after the grace period, or kill -9)';
    if (sig === 'SIGTERM') return 'SIGTERM: stopped';
    return sig ? `killed by ${sig}` : `killed by signal ${code - 128}`;
  }
  if (code === 126) return 'command not executable';
  if (code === 127) return 'command not found';
  if (code === 128 && reason === 'StartError') return 'the container could not start';
  return 'the process exited with an error';
}
