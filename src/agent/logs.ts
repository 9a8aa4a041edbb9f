// CRI container log files (what the shim writes): one line per record,
// "<RFC3339Nano> <stdout|stderr> <F|P> <text>". P (partial) records are
// joined with the following ones up to the next F, as kubelet's log reader
// does. The shim rotates by renaming N.log → N.log.1 and reopening, so a
// follower keeps its open fd until it has drained the old file, then
// reopens the path (the same inode check as kubelet's `logs -f`).
import fs from 'node:fs';
import nodePath from 'node:path';

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  text: string;
}

export function parseCriLine(line: string): { time: string; stream: 'stdout' | 'stderr'; partial: boolean; text: string } | undefined {
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  const c = b < 0 ? -1 : line.indexOf(' ', b + 1);
  if (c < 0) {
    // "<ts> stdout F" with empty text
    const parts = line.split(' ');
    if (parts.length === 3 && (parts[1] === 'stdout' || parts[1] === 'stderr')) return { time: parts[0]!, stream: parts[1], partial: parts[2] === 'P', text: '' };
    return undefined;
  }
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  return { time: line.slice(0, a), stream, partial: line.slice(b + 1, c) === 'P', text: line.slice(c + 1) };
}

/** Joins partial records; feed it raw CRI lines, get whole log records. */
export class CriDecoder {
  private pending = new Map<string, string>();
  push(line: string): LogRecord | undefined {
    const r = parseCriLine(line);
    if (!r) return undefined;
    const prev = this.pending.get(r.stream) ?? '';
    if (r.partial) {
      this.pending.set(r.stream, prev + r.text);
      return undefined;
    }
    this.pending.delete(r.stream);
    return { time: r.time, stream: r.stream, text: prev + r.text };
  }
  flush(): LogRecord[] {
    const out = [...this.pending].map(([stream, text]) => ({ time: new Date().toISOString(), stream: stream as 'stdout' | 'stderr', text }));
    this.pending.clear();
    return out;
  }
}

/** All records of a log file (rotated files first when `withRotated`). */
export function readLog(path: string, opts: { withRotated?: boolean } = {}): LogRecord[] {
  const files: string[] = [];
  if (opts.withRotated) {
    for (let i = 9; i >= 1; i--) if (fs.existsSync(`${path}.${i}`)) files.push(`${path}.${i}`);
  }
  files.push(path);
  const dec = new CriDecoder();
  const out: LogRecord[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      const r = dec.push(line);
      if (r) out.push(r);
    }
  }
  out.push(...dec.flush());
  return out;
}

export interface FollowOptions {
  /** Start at the end of the current file (like tail -f with --tail 0). */
  fromEnd?: boolean;
  pollMs?: number;
  signal?: AbortSignal;
  /** Checked after each drain: return true to stop once everything written so far was read. */
  done?: () => boolean;
}

/**
 * Follows a CRI log file across rotations, calling onRecord for every whole
 * record. Resolves when aborted or when `done()` returns true after a drain.
 */
export async function followLog(path: string, onRecord: (r: LogRecord) => void, opts: FollowOptions = {}): Promise<void> {
  const pollMs = opts.pollMs ?? 100;
  const dec = new CriDecoder();
  let fd = -1;
  let ino = -1;
  let pos = 0;
  let carry = '';
  const buf = Buffer.alloc(64 * 1024);
  const open = (atEnd: boolean, file = path): boolean => {
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      fd = -1;
      return false;
    }
    const st = fs.fstatSync(fd);
    ino = st.ino;
    pos = atEnd ? st.size : 0;
    return true;
  };
  /** After a rotation: the file written after ours (we may have missed several rotations). */
  const nextFile = (): string => {
    const chain: { file: string; ino: number }[] = [];
    for (let i = 9; i >= 1; i--) {
      try {
        chain.push({ file: `${path}.${i}`, ino: fs.statSync(`${path}.${i}`).ino });
      } catch { /* absent */ }
    }
    chain.push({ file: path, ino: -2 });
    const at = chain.findIndex((c) => c.ino === ino);
    if (at >= 0) return chain[at + 1]!.file;
    return chain[0]!.file; // ours is gone: the oldest file left comes next
  };
  const drain = () => {
    if (fd < 0) return;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      const chunk = carry + buf.subarray(0, n).toString('utf8');
      const lines = chunk.split('\n');
      carry = lines.pop() ?? '';
      for (const l of lines) {
        if (!l) continue;
        const r = dec.push(l);
        if (r) onRecord(r);
      }
    }
  };
  open(!!opts.fromEnd);
  // inotify on the directory wakes the loop as soon as the shim writes (polling stays as the fallback)
  let wake: (() => void) | undefined;
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(nodePath.dirname(path), () => wake?.());
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      drain();
      // rotated or truncated?
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(path);
      } catch {
        st = undefined;
      }
      if (fd < 0) {
        if (st) open(false);
      } else if (st && st.ino !== ino) {
        drain();
        fs.closeSync(fd);
        fd = -1;
        carry = '';
        open(false, nextFile());
        continue;
      } else if (st && st.size < pos) {
        pos = 0; // truncated in place (maxFiles 1)
        carry = '';
        continue;
      }
      if (opts.done?.()) {
        drain();
        for (const r of dec.flush()) onRecord(r);
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, pollMs);
        function done() {
          clearTimeout(t);
          wake = undefined;
          opts.signal?.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
        opts.signal?.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    watcher?.close();
    if (fd >= 0) fs.closeSync(fd);
  }
}
