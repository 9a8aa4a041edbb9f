// kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go): a volume's
// files live in a timestamped directory `..<ts>`; `..data` is a symlink to
// it; each top-level user path is a symlink through `..data`. An update
// writes a new `..<ts>`, swaps `..data` with one rename(2), fixes the user
// symlinks and removes the old directory, so readers inside the container
// never see a half-written set.

import { chmodSync, chownSync, fsyncSync, closeSync, openSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeSync, lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NodeletError } from '../errors.js';
import type { FileProjection } from '../pod/volume-plan.js';

function validPath(p: string): boolean {
  return p !== '' && !p.startsWith('/') && !p.split('/').includes('..') && !p.startsWith('..');
}

/** Write `payload` (relative path → content) into `dir` atomically (see the header). */
export function writeAtomic(dir: string, payload: Record<string, FileProjection>, opts: { gid?: number } = {}): void {
  for (const p of Object.keys(payload))
    if (!validPath(p)) throw new NodeletError('InvalidArgument', 'ERR_VOLUME_PATH_INVALID', `volume file path "${p}" must be relative without '..'`);
  mkdirSync(dir, { recursive: true });
  const ts = `..${new Date().toISOString().replace(/[-:]/g, '_').replace('.', '_')}_${process.hrtime.bigint() % 1000000n}`;
  const tsDir = join(dir, ts);
  mkdirSync(tsDir, { mode: 0o755 });
  chmodSync(tsDir, 0o755);
  for (const [p, f] of Object.entries(payload)) {
    const full = join(tsDir, p);
    mkdirSync(dirname(full), { recursive: true, mode: 0o755 });
    const fd = openSync(full, 'wx', f.mode);
    try {
      writeSync(fd, f.data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(full, f.mode);
    if (opts.gid !== undefined) chownSync(full, 0, opts.gid);
  }
  let old: string | undefined;
  try {
    old = readlinkSync(join(dir, '..data'));
  } catch {
    /* first write */
  }
  const tmp = join(dir, '..data_tmp');
  rmSync(tmp, { force: true });
  symlinkSync(ts, tmp);
  renameSync(tmp, join(dir, '..data'));
  // user-visible top-level entries
  const tops = new Set(Object.keys(payload).map((p) => p.split('/')[0]!));
  for (const t of tops) {
    const link = join(dir, t);
    let ok = false;
    try {
      ok = lstatSync(link).isSymbolicLink() && readlinkSync(link) === join('..data', t);
    } catch {
      /* missing */
    }
    if (!ok) {
      rmSync(link, { force: true, recursive: true });
      symlinkSync(join('..data', t), link);
    }
  }
  for (const e of readdirSync(dir)) {
    if (e.startsWith('..')) continue;
    if (!tops.has(e)) rmSync(join(dir, e), { force: true, recursive: true });
  }
  if (old && old !== ts) rmSync(join(dir, old), { recursive: true, force: true });
}
