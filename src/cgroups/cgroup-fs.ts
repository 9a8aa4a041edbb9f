// The cgroup filesystem adapter: one kernel operation per method, no policy.
// Rooted at a hierarchy's mount directory (/sys/fs/cgroup, /sys/fs/cgroup/memory,
// or a temp dir holding fake files in unit tests). Cgroup paths are absolute
// ("/nodelet/pod1") and validated by the caller (cgroupPath()).

import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SyscallError, errnoNumber } from '../errors.js';

export interface CgroupWrite {
  /** absolute file path written */
  file: string;
  value: string;
}

function toSyscallError(e: unknown, syscall: string, path: string, extra?: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return e;
  return new SyscallError(syscall, errnoNumber(code) ?? 0, path, extra);
}

export class CgroupFs {
  /** Optional observer of every write (tests record the order). */
  onWrite?: (w: CgroupWrite) => void;

  constructor(readonly root: string) {}

  dir(path: string): string {
    return path === '/' ? this.root : join(this.root, path);
  }

  file(path: string, name: string): string {
    return join(this.dir(path), name);
  }

  exists(path: string, name?: string): boolean {
    return existsSync(name === undefined ? this.dir(path) : this.file(path, name));
  }

  /** File content, or null if the file does not exist. */
  read(path: string, name: string): string | null {
    const f = this.file(path, name);
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENODEV') return null;
      throw toSyscallError(e, 'read', f);
    }
  }

  /** One write(2) of `value` (cgroup files take one value per write). */
  write(path: string, name: string, value: string): void {
    const f = this.file(path, name);
    this.onWrite?.({ file: f, value });
    try {
      writeFileSync(f, value);
    } catch (e) {
      // cgroupfs answers EACCES to O_CREAT of a file it does not have
      if (!existsSync(f)) throw new SyscallError('write', errnoNumber('ENOENT') ?? 2, f, 'no such cgroup file: is its controller mounted/enabled?');
      throw toSyscallError(e, 'write', f, `value ${JSON.stringify(value)}`);
    }
  }

  /** mkdir one level; false if it already existed. */
  mkdir(path: string): boolean {
    const d = this.dir(path);
    try {
      mkdirSync(d);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw toSyscallError(e, 'mkdir', d);
    }
  }

  /** rmdir one level: 'removed', 'missing', or 'busy' (EBUSY / ENOTEMPTY). */
  rmdir(path: string): 'removed' | 'missing' | 'busy' {
    const d = this.dir(path);
    try {
      rmdirSync(d);
      return 'removed';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'missing';
      if (code === 'EBUSY' || code === 'ENOTEMPTY') return 'busy';
      throw toSyscallError(e, 'rmdir', d);
    }
  }

  /** Names of child cgroups (sub-directories). */
  children(path: string): string[] {
    try {
      return readdirSync(this.dir(path), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw toSyscallError(e, 'readdir', this.dir(path));
    }
  }

  /** Pids listed in cgroup.procs of this cgroup only. */
  procs(path: string): number[] {
    const text = this.read(path, 'cgroup.procs') ?? '';
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => Number(l.trim()));
  }
}

/** "key value" lines (cpu.stat, memory.stat, memory.events, oom_control) → map. */
export function parseFlatKeyed(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (!text) return out;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** A single-number file ("123\n"), "max" → Infinity, missing → undefined. */
export function parseSingle(text: string | null): number | undefined {
  if (text === null) return undefined;
  const t = text.trim();
  if (t === 'max') return Infinity;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}
