// Atomic file writes, one rule for every record nodelet keeps:
//   1. a fresh temp file in the SAME directory (".<name>.<random>.tmp", created O_EXCL),
//   2. write the data, fchmod to the requested mode (exact: the umask does not apply),
//   3. fsync the file,
//   4. rename(2) it over the final name (or, with `exclusive`, link(2) it to the final
//      name, which fails with EEXIST if that exists: never replaces a file),
//   5. fsync the directory, so the new name survives a power cut.
// A reader of the final name sees the old content or the new one, never a partial
// file; a crash leaves at most a hidden temp file next to it. On any error the temp
// file is removed and the final name is untouched.

import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { alreadyExists } from '../errors.js';

export interface AtomicWriteOptions {
  /** File mode of the result (default 0o644), applied with fchmod so the umask does not change it. */
  mode?: number;
  /** Create only: fail with ERR_FILE_EXISTS (AlreadyExists) when the final name exists; never replace it. */
  exclusive?: boolean;
}

export interface AtomicJsonOptions extends AtomicWriteOptions {
  /** JSON.stringify indentation (default 1); the file always ends with a newline. */
  indent?: number;
}

const DEFAULT_MODE = 0o644;

/** The temp name used for `file`: hidden, in the same directory, never equal to a final name we write. */
export function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Is `name` (a directory entry) one of our temp files? (for directory scans that must skip them) */
export function isAtomicTempName(name: string): boolean {
  return /^\..+\.[0-9a-f]{12}\.tmp$/.test(name);
}

function existsError(file: string, cause: unknown) {
  return alreadyExists('ERR_FILE_EXISTS', `${file} already exists; it was not replaced`, { cause, details: { path: file } });
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export async function fsyncDirAsync(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write `data` to `file` atomically (see the file comment). Synchronous: small records on hot paths. */
export function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const tmp = tempNameFor(file);
  const fd = fs.openSync(tmp, 'wx', opts.mode ?? DEFAULT_MODE);
  let committed = false;
  try {
    try {
      fs.writeFileSync(fd, data);
      fs.fchmodSync(fd, opts.mode ?? DEFAULT_MODE);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (opts.exclusive) {
      try {
        fs.linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw existsError(file, e);
        throw e;
      }
      committed = true;
      fs.unlinkSync(tmp);
    } else {
      fs.renameSync(tmp, file);
      committed = true;
    }
  } finally {
    if (!committed) fs.rmSync(tmp, { force: true });
  }
  fsyncDir(dirname(file));
}

/** writeFileAtomic without blocking the event loop on the fsyncs (pull paths, large files). */
export async function writeFileAtomicAsync(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempNameFor(file);
  const fh = await fsp.open(tmp, 'wx', opts.mode ?? DEFAULT_MODE);
  let committed = false;
  try {
    try {
      await fh.writeFile(data);
      await fh.chmod(opts.mode ?? DEFAULT_MODE);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.exclusive) {
      try {
        await fsp.link(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw existsError(file, e);
        throw e;
      }
      committed = true;
      await fsp.unlink(tmp);
    } else {
      await fsp.rename(tmp, file);
      committed = true;
    }
  } finally {
    if (!committed) await fsp.rm(tmp, { force: true });
  }
  await fsyncDirAsync(dirname(file));
}

function jsonText(value: unknown, indent: number | undefined): string {
  return JSON.stringify(value, null, indent ?? 1) + '\n';
}

/** JSON record, written atomically (indent 1 by default, trailing newline). */
export function writeJsonAtomic(file: string, value: unknown, opts: AtomicJsonOptions = {}): void {
  writeFileAtomic(file, jsonText(value, opts.indent), opts);
}

export async function writeJsonAtomicAsync(file: string, value: unknown, opts: AtomicJsonOptions = {}): Promise<void> {
  await writeFileAtomicAsync(file, jsonText(value, opts.indent), opts);
}
