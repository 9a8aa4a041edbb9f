// Termination messages as kubelet reads them (kuberuntime_container.go
// getTerminationMessage / readLastStringFromContainerLogs): the file bound
// at terminationMessagePath (at most 4096 bytes); with
// FallbackToLogsOnError, when that file is empty and the container failed,
// the tail of its log (last 80 lines, at most 2048 bytes).

import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import type { TerminationMessagePolicy } from './api-types.js';

export const MAX_MESSAGE_BYTES = 4096;
export const FALLBACK_LINES = 80;
export const FALLBACK_BYTES = 2048;

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

const readTail = (path: string, max: number) => readBounded(path, max, 'tail');
const readHead = (path: string, max: number) => readBounded(path, max, 'head');

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

export function readTerminationMessage(opts: {
  /** host file bound at terminationMessagePath */
  messageFile?: string;
  policy: TerminationMessagePolicy;
  /** CRI-format container log */
  logPath?: string;
  exitCode: number;
}): string {
  const fromFile = opts.messageFile ? readHead(opts.messageFile, MAX_MESSAGE_BYTES).toString('utf8') : '';
  if (fromFile || opts.policy !== 'FallbackToLogsOnError' || opts.exitCode === 0 || !opts.logPath) return fromFile;
  // read a generous tail of the raw log, then keep the last 80 lines / 2048 bytes of text
  const raw = readTail(opts.logPath, 64 * 1024).toString('utf8');
  const text = criLogText(raw.slice(raw.indexOf('\n') >= 0 && raw.length === 64 * 1024 ? raw.indexOf('\n') + 1 : 0));
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let tail = lines.slice(-FALLBACK_LINES).join('\n');
  if (text.endsWith('\n') && tail) tail += '\n';
  const b = Buffer.from(tail);
  return b.length > FALLBACK_BYTES ? b.subarray(b.length - FALLBACK_BYTES).toString('utf8') : tail;
}
