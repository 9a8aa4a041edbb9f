// Reads what kubelet's getTerminationMessage reads — the head of the file
// bound at terminationMessagePath and, for FallbackToLogsOnError, the tail of
// the container's CRI log — and lets terminationMessage (src/pod) decide.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { TerminationMessagePolicy } from '../pod/api-types.js';
import { LOG_TAIL_BYTES, MAX_MESSAGE_BYTES, terminationMessage, wantsLogFallback } from '../pod/termination-message.js';

/** At most `max` bytes from the start or the end of a file; empty if it cannot be opened. */
function readBounded(path: string, max: number, from: 'head' | 'tail'): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fstatSync(fd).size;
    const len = from === 'tail' ? Math.min(size, max) : max;
    const buf = Buffer.alloc(len);
    const n = readSync(fd, buf, 0, len, from === 'tail' ? size - len : 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export function readTerminationMessage(opts: {
  /** host file bound at terminationMessagePath */
  messageFile?: string;
  policy: TerminationMessagePolicy;
  /** CRI-format container log */
  logPath?: string;
  exitCode: number;
}): string {
  const message = opts.messageFile ? readBounded(opts.messageFile, MAX_MESSAGE_BYTES, 'head').toString('utf8') : '';
  const logTail = opts.logPath && wantsLogFallback(message, opts.policy, opts.exitCode) ? readBounded(opts.logPath, LOG_TAIL_BYTES, 'tail').toString('utf8') : undefined;
  return terminationMessage({ message, policy: opts.policy, exitCode: opts.exitCode, logTail });
}
