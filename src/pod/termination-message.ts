// Termination messages as kubelet reads them (kuberuntime_container.go
// getTerminationMessage / readLastStringFromContainerLogs): the file bound
// at terminationMessagePath (at most 4096 bytes); with
// FallbackToLogsOnError, when that file is empty and the container failed,
// the tail of its log (last 80 lines, at most 2048 bytes). Pure: the caller
// reads the bytes (src/host/termination-message.ts readTerminationMessage).

import type { TerminationMessagePolicy } from './api-types.js';

export const MAX_MESSAGE_BYTES = 4096;
export const FALLBACK_LINES = 80;
export const FALLBACK_BYTES = 2048;
/** How much of the end of the log the caller reads for the fallback. */
export const LOG_TAIL_BYTES = 64 * 1024;

/** Message text from CRI-format log lines ("<time> <stream> <P|F> <text>"): partial lines joined. */
export function criLogText(raw: string): string {
  let out = '';
  for (const line of raw.split('\n')) {
    if (!line) continue;
    const m = /^\S+ (?:stdout|stderr) ([PF]) ?(.*)$/.exec(line);
    if (!m) continue;
    out += m[2] + (m[1] === 'F' ? '\n' : '');
  }
  return out;
}

/** Whether the message falls back to the log: the file gave nothing, the policy asks for it and the container failed. */
export function wantsLogFallback(message: string, policy: TerminationMessagePolicy, exitCode: number): boolean {
  return !message && policy === 'FallbackToLogsOnError' && exitCode !== 0;
}

export function terminationMessage(opts: {
  /** the first MAX_MESSAGE_BYTES of the file bound at terminationMessagePath ('' if none) */
  message: string;
  policy: TerminationMessagePolicy;
  exitCode: number;
  /** the last LOG_TAIL_BYTES of the CRI-format container log, when wantsLogFallback (undefined: no log) */
  logTail?: string;
}): string {
  if (!wantsLogFallback(opts.message, opts.policy, opts.exitCode) || opts.logTail === undefined) return opts.message;
  // a generous tail of the raw log (its first line cut when the read was full), then the last 80 lines / 2048 bytes of text
  const raw = opts.logTail;
  const text = criLogText(raw.slice(raw.indexOf('\n') >= 0 && raw.length === LOG_TAIL_BYTES ? raw.indexOf('\n') + 1 : 0));
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let tail = lines.slice(-FALLBACK_LINES).join('\n');
  if (text.endsWith('\n') && tail) tail += '\n';
  const b = Buffer.from(tail);
  return b.length > FALLBACK_BYTES ? b.subarray(b.length - FALLBACK_BYTES).toString('utf8') : tail;
}
