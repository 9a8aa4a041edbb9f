// Layer unpacking: decompress (gzip / zstd / none) → tar-stream → files under
// one layer root, hashing the uncompressed stream for the diff_id check.
//
// Every entry is placed with lexical path cleaning plus an lstat walk of its
// parent components inside the root: a symlink is never followed (refused if
// this layer made it, replaced by a directory if it came from a lower layer,
// which is what overlayfs would show). Whiteouts become overlay whiteouts
// (mode 'overlay') or deletions in the copied tree (mode 'copy').

import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { NodeletError, SyscallError, isNodeletError } from '../errors.js';
import { getLogger } from '../log.js';
import { lchown, lgetxattr, lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../sys/ffi.js';
import {
  classifyWhiteout,
  cleanEntryPath,
  cleanLinkTarget,
  compressionFromMediaType,
  sniffCompression,
  symlinkEscapes,
  unsafePath,
  type Compression,
} from './paths.js';
import { patchTarStreamPax } from './tar-headers.js';
import { FREE_SPACE_CHECK_BYTES, checkFreeSpace, checkLayerSize, noSpace, reserveBytes, type LayerLimits } from './limits.js';

const log = getLogger('snapshot.unpack');

export type UnpackMode = 'overlay' | 'copy';

export interface UnpackResult {
  /** "sha256:<hex>" of the uncompressed tar stream */
  diffId: string;
  /** uncompressed bytes */
  bytes: number;
  /** tar entries handled */
  entries: number;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const FILE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

function layerInvalid(entry: string, why: string, cause?: unknown): NodeletError {
  return new NodeletError('InvalidArgument', 'ERR_LAYER_INVALID', `Layer entry "${entry}": ${why}`, { cause, details: { entry } });
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

let zstdBinary: boolean | undefined;
function haveZstdBinary(): boolean {
  if (zstdBinary === undefined) zstdBinary = spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
  return zstdBinary;
}

/** Turn the (compressed) blob stream into the uncompressed tar stream. */
async function decompress(source: NodeJS.ReadableStream, mediaType: string): Promise<AsyncIterable<Buffer>> {
  const iterable: AsyncIterable<Buffer | string> =
    typeof (source as Partial<AsyncIterable<Buffer>>)[Symbol.asyncIterator] === 'function'
      ? (source as AsyncIterable<Buffer | string>)
      : new Readable().wrap(source); // an old-style stream
  const it = iterable[Symbol.asyncIterator]();
  const first = await it.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Buffer);
  let compression: Compression = compressionFromMediaType(mediaType) ?? 'none';
  // "none" also covers unknown media types and docker-save "layer.tar" files that are in fact compressed.
  if (compression === 'none') compression = sniffCompression(head);
  const whole = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield Buffer.from(n.value as Buffer);
      }
    })(),
    { objectMode: false },
  );
  if (compression === 'none') return whole;
  if (compression === 'gzip') {
    const gunzip = createGunzip({ chunkSize: 256 * 1024 });
    whole.on('error', (e) => gunzip.destroy(e));
    return whole.pipe(gunzip);
  }
  if (haveZstdBinary()) {
    const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    whole.on('error', (e) => child.stdout.destroy(e));
    whole.pipe(child.stdin);
    child.stdin.on('error', () => undefined); // EPIPE when zstd fails early; reported through the exit code
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    return (async function* () {
      try {
        for await (const chunk of child.stdout) yield chunk as Buffer;
        const code = await exited;
        if (code !== 0) throw new NodeletError('InvalidArgument', 'ERR_LAYER_DECOMPRESS', `zstd could not decompress the layer (exit ${code}): ${stderr.trim()}`);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    })();
  }
  const { Decompress } = await import('fzstd');
  return (async function* () {
    const out: Buffer[] = [];
    const d = new Decompress((chunk: Uint8Array) => out.push(Buffer.from(chunk)));
    for await (const chunk of whole) {
      d.push(chunk as Buffer);
      while (out.length) yield out.shift()!;
    }
    d.push(new Uint8Array(0), true);
    while (out.length) yield out.shift()!;
  })();
}

interface EntryMeta {
  uid: number;
  gid: number;
  mode: number;
  mtime: number; // seconds
  xattrs: [string, Buffer][];
}

/** Places tar entries under `root`; synchronous fs calls, one small state per layer. */
class LayerWriter {
  private readonly knownDirs = new Set<string>(['']);
  /** copy mode: relative paths this layer wrote (everything else came from a lower layer) */
  private readonly createdHere = new Set<string>();
  private readonly dirTimes = new Map<string, number>();
  private warnedXattr = false;

  private readonly lowerDirCache = new Map<string, boolean>();

  constructor(
    private readonly root: string,
    private readonly mode: UnpackMode,
    /** overlay mode: the parent chain's layer dirs, top first */
    private readonly lowers: readonly string[] = [],
  ) {}

  /**
   * Overlay lookup through the lower layers (lstat only, never following a
   * symlink): is `dirParts` a directory in the merged lower stack? A whiteout
   * is only useful there; in a directory no lower layer has, overlayfs would
   * list the whiteout device in readdir.
   */
  private lowerHasDir(dirParts: readonly string[]): boolean {
    const key = dirParts.join('/');
    const hit = this.lowerDirCache.get(key);
    if (hit !== undefined) return hit;
    let layers = [...this.lowers];
    let prefix = '';
    for (const c of dirParts) {
      prefix = prefix === '' ? c : `${prefix}/${c}`;
      const next: string[] = [];
      for (const l of layers) {
        let st: fs.Stats | undefined;
        try {
          st = fs.lstatSync(`${l}/${prefix}`);
        } catch {
          continue;
        }
        if (!st.isDirectory()) break;
        next.push(l);
        let opaque = false;
        try {
          opaque = lgetxattr(`${l}/${prefix}`, 'trusted.overlay.opaque')?.toString() === 'y';
        } catch {
          /* no xattr support: not opaque */
        }
        if (opaque) break;
      }
      layers = next;
      if (layers.length === 0) break;
    }
    const r = layers.length > 0;
    this.lowerDirCache.set(key, r);
    return r;
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  private fromThisLayer(rel: string): boolean {
    return this.mode === 'overlay' || this.createdHere.has(rel);
  }

  private markCreated(rel: string): void {
    if (this.mode === 'copy') this.createdHere.add(rel);
  }

  /** Make sure every parent of `parts` is a real directory inside the root; never follow a symlink. */
  ensureParents(entry: string, parts: readonly string[]): string {
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = rel === '' ? parts[i]! : `${rel}/${parts[i]}`;
      if (this.knownDirs.has(rel)) continue;
      const p = this.abs(rel);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(p);
      } catch (e) {
        if (errCode(e) !== 'ENOENT') throw e;
      }
      if (st === undefined) {
        fs.mkdirSync(p, 0o755);
        fs.chmodSync(p, 0o755); // whatever the umask
        this.markCreated(rel);
      } else if (!st.isDirectory()) {
        if (st.isSymbolicLink() && this.fromThisLayer(rel)) {
          throw unsafePath(entry, `its parent "${rel}" is a symlink; writing through it could leave the layer`);
        }
        if (this.fromThisLayer(rel)) throw layerInvalid(entry, `its parent "${rel}" is not a directory`);
        // A non-directory from a lower layer: overlayfs would show this layer's directory instead.
        this.removePath(rel, st);
        fs.mkdirSync(p, 0o755);
        this.markCreated(rel);
      }
      this.knownDirs.add(rel);
    }
    return rel;
  }

  /** Remove whatever is at rel (file, link, whole tree); forget cached dirs under it. */
  private removePath(rel: string, st?: fs.Stats): void {
    const p = this.abs(rel);
    if (st === undefined) {
      try {
        st = fs.lstatSync(p);
      } catch (e) {
        if (errCode(e) === 'ENOENT') return;
        throw e;
      }
    }
    if (st.isDirectory()) {
      fs.rmSync(p, { recursive: true, force: true });
      const prefix = rel + '/';
      for (const d of this.knownDirs) if (d === rel || d.startsWith(prefix)) this.knownDirs.delete(d);
      for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(prefix)) this.dirTimes.delete(d);
    } else {
      fs.unlinkSync(p);
    }
  }

  private applyOwnerMode(p: string, m: EntryMeta, chmod: boolean): void {
    lchown(p, m.uid, m.gid);
    if (chmod) fs.chmodSync(p, m.mode); // after chown: chown clears setuid/setgid
  }

  private applyXattrs(entry: string, p: string, m: EntryMeta): void {
    for (const [name, value] of m.xattrs) {
      if (name.startsWith('trusted.overlay.')) {
        // would let a layer steer overlayfs (redirect, metacopy, opaque); containerd filters these too
        log.warn('ignoring overlay-private xattr in layer entry', { entry, xattr: name });
        continue;
      }
      try {
        lsetxattr(p, name, value);
      } catch (e) {
        if (e instanceof SyscallError && (e.errnoName === 'EPERM' || e.errnoName === 'EOPNOTSUPP' || e.errnoName === 'ENOTSUP')) {
          if (!this.warnedXattr) log.warn('xattr not supported here, skipped', { entry, xattr: name, errno: e.errnoName });
          this.warnedXattr = true;
          continue;
        }
        throw e;
      }
    }
  }

  /** Prepare the final path for a new non-directory entry: remove what is there. */
  private clearTarget(rel: string): void {
    this.removePath(rel);
  }

  /** A regular file: returns the open fd; the caller writes the data, then calls finishFile. */
  beginFile(entry: string, parts: string[]): { fd: number; rel: string } {
    this.ensureParents(entry, parts);
    const rel = parts.join('/');
    const p = this.abs(rel);
    let fd: number;
    try {
      fd = fs.openSync(p, FILE_FLAGS, 0o600);
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw e;
      this.clearTarget(rel);
      fd = fs.openSync(p, FILE_FLAGS, 0o600);
    }
    this.markCreated(rel);
    return { fd, rel };
  }

  finishFile(entry: string, fd: number, rel: string, m: EntryMeta): void {
    try {
      fs.fchownSync(fd, m.uid, m.gid);
      fs.fchmodSync(fd, m.mode);
      fs.futimesSync(fd, m.mtime, m.mtime);
    } finally {
      fs.closeSync(fd);
    }
    if (m.xattrs.length) this.applyXattrs(entry, this.abs(rel), m);
  }

  directory(entry: string, parts: string[], m: EntryMeta): void {
    const rel = parts.join('/');
    const p = this.abs(rel);
    if (parts.length > 0) {
      this.ensureParents(entry, parts);
      try {
        fs.mkdirSync(p, 0o700);
      } catch (e) {
        if (errCode(e) !== 'EEXIST') throw e;
        const st = fs.lstatSync(p);
        if (!st.isDirectory()) {
          // ".wh.D" then "D/" in one layer: the new D replaces the lower one entirely
          const replacesWhiteout = this.mode === 'overlay' && st.isCharacterDevice() && st.rdev === 0;
          this.removePath(rel, st);
          fs.mkdirSync(p, 0o700);
          if (replacesWhiteout) lsetxattr(p, 'trusted.overlay.opaque', 'y');
        }
      }
      this.markCreated(rel);
      this.knownDirs.add(rel);
    }
    this.applyOwnerMode(p, m, true);
    if (m.xattrs.length) this.applyXattrs(entry, p, m);
    this.dirTimes.set(rel, m.mtime);
  }

  symlink(entry: string, parts: string[], target: string, m: EntryMeta): void {
    if (parts.length === 0) throw unsafePath(entry, 'a symlink cannot replace the layer root');
    if (target === '' || target.includes('\0')) throw layerInvalid(entry, 'symlink with an empty or invalid target');
    this.ensureParents(entry, parts);
    const rel = parts.join('/');
    const p = this.abs(rel);
    try {
      fs.symlinkSync(target, p);
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw e;
      this.clearTarget(rel);
      fs.symlinkSync(target, p);
    }
    this.markCreated(rel);
    lchown(p, m.uid, m.gid);
    if (m.xattrs.length) this.applyXattrs(entry, p, m);
    fs.lutimesSync(p, m.mtime, m.mtime);
  }

  hardlink(entry: string, parts: string[], linkname: string): void {
    if (parts.length === 0) throw unsafePath(entry, 'a hardlink cannot replace the layer root');
    const tparts = cleanLinkTarget(entry, linkname);
    // the target's parents must be real directories inside the root (no symlink hop)
    let rel = '';
    for (let i = 0; i < tparts.length - 1; i++) {
      rel = rel === '' ? tparts[i]! : `${rel}/${tparts[i]}`;
      if (this.knownDirs.has(rel)) continue;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(this.abs(rel));
      } catch (e) {
        if (errCode(e) === 'ENOENT') throw layerInvalid(entry, `hardlink target "${linkname}" does not exist in the layer`);
        throw e;
      }
      if (st.isSymbolicLink()) throw unsafePath(entry, `hardlink target "${linkname}" goes through the symlink "${rel}"`);
      if (!st.isDirectory()) throw layerInvalid(entry, `hardlink target "${linkname}": "${rel}" is not a directory`);
    }
    const trel = tparts.join('/');
    const tp = this.abs(trel);
    let tst: fs.Stats;
    try {
      tst = fs.lstatSync(tp);
    } catch (e) {
      if (errCode(e) === 'ENOENT') throw layerInvalid(entry, `hardlink target "${linkname}" does not exist in the layer`);
      throw e;
    }
    if (tst.isDirectory()) throw layerInvalid(entry, `hardlink target "${linkname}" is a directory`);
    if (tst.isSymbolicLink() && symlinkEscapes(tparts, fs.readlinkSync(tp))) {
      throw unsafePath(entry, `hardlink target "${linkname}" is a symlink that points outside the layer`);
    }
    this.ensureParents(entry, parts);
    const lrel = parts.join('/');
    if (lrel === trel) return;
    const p = this.abs(lrel);
    try {
      fs.linkSync(tp, p);
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw e;
      this.clearTarget(lrel);
      fs.linkSync(tp, p);
    }
    this.markCreated(lrel);
  }

  special(entry: string, parts: string[], type: 'character-device' | 'block-device' | 'fifo', major: number, minor: number, m: EntryMeta): void {
    if (parts.length === 0) throw unsafePath(entry, 'a device node cannot replace the layer root');
    this.ensureParents(entry, parts);
    const rel = parts.join('/');
    const p = this.abs(rel);
    const kind = type === 'fifo' ? S_IFIFO : type === 'block-device' ? S_IFBLK : S_IFCHR;
    try {
      mknod(p, kind | 0o600, major, minor);
    } catch (e) {
      if (!(e instanceof SyscallError && e.errnoName === 'EEXIST')) throw e;
      this.clearTarget(rel);
      mknod(p, kind | 0o600, major, minor);
    }
    this.markCreated(rel);
    this.applyOwnerMode(p, m, true);
    if (m.xattrs.length) this.applyXattrs(entry, p, m);
    fs.lutimesSync(p, m.mtime, m.mtime);
  }

  /** `.wh.NAME`: hide NAME of the lower layers. */
  whiteout(entry: string, parts: string[], name: string): void {
    this.ensureParents(entry, parts);
    const dirParts = parts.slice(0, -1);
    const rel = [...dirParts, name].join('/');
    if (this.mode === 'overlay') {
      this.clearTarget(rel);
      if (this.lowerHasDir(dirParts)) mknod(this.abs(rel), S_IFCHR | 0o000, 0, 0);
    } else {
      this.removePath(rel);
      this.createdHere.delete(rel);
    }
  }

  /** `.wh..wh..opq`: the directory hides everything of the lower layers. */
  opaque(entry: string, parts: string[]): void {
    this.ensureParents(entry, parts);
    const drel = parts.slice(0, -1).join('/');
    const dp = this.abs(drel);
    if (this.mode === 'overlay') {
      lsetxattr(dp, 'trusted.overlay.opaque', 'y');
      return;
    }
    for (const child of fs.readdirSync(dp)) {
      const crel = drel === '' ? child : `${drel}/${child}`;
      if (!this.createdHere.has(crel)) this.removePath(crel);
    }
  }

  /** Directory mtimes last (creating children changes them), deepest first. */
  finish(): void {
    const dirs = [...this.dirTimes.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, t] of dirs) fs.lutimesSync(this.abs(rel), t, t);
  }
}

function depth(rel: string): number {
  if (rel === '') return 0;
  let n = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
  return n;
}

function entryMeta(h: tar.Header): EntryMeta {
  const pax = (h.pax ?? {}) as Record<string, string>;
  const xattrs: [string, Buffer][] = [];
  for (const [k, v] of Object.entries(pax)) {
    if (k.startsWith('SCHILY.xattr.')) xattrs.push([k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'latin1')]);
  }
  const num = (s: string | undefined, d: number) => {
    if (s === undefined) return d;
    const n = Number(s);
    return Number.isFinite(n) ? n : d;
  };
  const mtimeS = h.mtime instanceof Date ? h.mtime.getTime() / 1000 : 0;
  return {
    uid: num(pax.uid, h.uid ?? 0),
    gid: num(pax.gid, h.gid ?? 0),
    mode: (h.mode ?? 0o644) & 0o7777,
    mtime: num(pax.mtime, mtimeS),
    xattrs,
  };
}

/**
 * Unpack one layer blob into `root` (which exists: empty for 'overlay', a copy
 * of the parent chain for 'copy'). Returns the digest of the uncompressed
 * stream; the caller compares it with the expected diff_id and discards the
 * directory on mismatch or error.
 */
export async function unpackLayer(
  source: NodeJS.ReadableStream,
  root: string,
  opts: {
    mode: UnpackMode;
    mediaType: string;
    /** overlay: parent chain layer dirs, top first */
    lowers?: readonly string[];
    /** the uncompressed-size bound and the free-space reserve, checked while streaming (defaults: limits.ts) */
    limits?: LayerLimits;
  },
): Promise<UnpackResult> {
  const limits = opts.limits ?? {};
  patchTarStreamPax();
  const writer = new LayerWriter(root, opts.mode, opts.lowers ?? []);
  const hash = createHash('sha256');
  let bytes = 0;
  let entries = 0;
  let failure: unknown;
  /** the file being written, closed here if the unpack fails mid-file */
  let openFd: number | undefined;
  const extract = tar.extract();

  const fail = (e: unknown) => {
    if (failure === undefined) failure = e;
    extract.destroy(e instanceof Error ? e : new Error(String(e)));
  };

  extract.on('entry', (h, stream, next) => {
    stream.on('error', () => undefined); // reported through extract's own error
    if (failure !== undefined) return;
    entries++;
    const name = h.name;
    try {
      const parts = cleanEntryPath(name);
      const m = entryMeta(h);
      const base = parts[parts.length - 1];
      const wh = base === undefined ? { kind: 'none' as const } : classifyWhiteout(name, base);
      const drain = () => {
        if ((h.size ?? 0) > 0 && h.type !== 'directory') {
          stream.on('end', next);
          stream.resume();
        } else next();
      };
      if (wh.kind === 'opaque') {
        writer.opaque(name, parts);
        return drain();
      }
      if (wh.kind === 'whiteout') {
        writer.whiteout(name, parts, wh.name);
        return drain();
      }
      if (wh.kind === 'meta') return drain();
      switch (h.type) {
        case 'file':
        case 'contiguous-file': {
          if (parts.length === 0) throw unsafePath(name, 'a file cannot replace the layer root');
          const { fd, rel } = writer.beginFile(name, parts);
          openFd = fd;
          if ((h.size ?? 0) === 0) {
            openFd = undefined;
            writer.finishFile(name, fd, rel, m);
            return next();
          }
          stream.on('data', (data: unknown) => {
            const chunk = data as Buffer;
            if (failure !== undefined) return;
            try {
              let off = 0;
              while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
            } catch (e) {
              fail(e);
            }
          });
          stream.on('end', () => {
            if (failure !== undefined) return;
            try {
              openFd = undefined;
              writer.finishFile(name, fd, rel, m);
              next();
            } catch (e) {
              fail(e);
            }
          });
          stream.on('error', (e: Error) => fail(e));
          return;
        }
        case 'directory':
          writer.directory(name, parts, m);
          return drain();
        case 'symlink':
          writer.symlink(name, parts, h.linkname ?? '', m);
          return drain();
        case 'link':
          writer.hardlink(name, parts, h.linkname ?? '');
          return drain();
        case 'character-device':
        case 'block-device':
        case 'fifo':
          writer.special(name, parts, h.type, h.devmajor ?? 0, h.devminor ?? 0, m);
          return drain();
        default:
          throw layerInvalid(name, `unsupported tar entry type "${String(h.type)}"`);
      }
    } catch (e) {
      fail(e);
    }
  });

  const ended = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => resolve());
    extract.on('error', (e: Error) => {
      // tar-stream's own refusals (a header over its 4 MiB bound, a bad checksum) arrive only here
      if (failure === undefined) failure = e;
      reject(failure);
    });
    extract.on('close', () => (failure !== undefined ? reject(failure) : resolve()));
  });
  ended.catch(() => undefined);

  let nextSpaceCheck = 0;
  try {
    const input = await decompress(source, opts.mediaType);
    for await (const chunk of input) {
      if (failure !== undefined) break;
      hash.update(chunk);
      bytes += chunk.length;
      const tooLarge = checkLayerSize(limits, bytes);
      if (tooLarge) {
        fail(tooLarge);
        break;
      }
      if (bytes >= nextSpaceCheck) {
        // what the entries written so far took is on disk (writeSync): the next 16 MiB may not pass the reserve
        nextSpaceCheck = bytes + FREE_SPACE_CHECK_BYTES;
        const noRoom = checkFreeSpace(limits, fs.statfsSync(root), root);
        if (noRoom) {
          fail(noRoom);
          break;
        }
      }
      // a destroyed extract never drains again: without this check the loop waits forever
      if (extract.destroyed) break;
      if (!extract.write(chunk) && !extract.destroyed) {
        await new Promise<void>((res) => {
          const done = () => {
            extract.off('drain', done);
            extract.off('close', done);
            res();
          };
          extract.on('drain', done);
          extract.on('close', done);
        });
      }
    }
    if (failure === undefined) extract.end(undefined);
    await ended;
    if (failure !== undefined) throw failure;
    writer.finish();
  } catch (e) {
    if (!extract.destroyed) extract.destroy(new Error('unpack aborted'));
    if (openFd !== undefined) {
      try {
        fs.closeSync(openFd);
      } catch {
        /* already closed */
      }
    }
    throw wrapUnpackError(failure ?? e, root, limits);
  }
  return { diffId: 'sha256:' + hash.digest('hex'), bytes, entries };
}

function wrapUnpackError(e: unknown, root: string, limits: LayerLimits): unknown {
  if (isNodeletError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const code = errCode(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    let free = 0;
    let total = 0;
    try {
      const st = fs.statfsSync(root);
      free = st.bavail * st.bsize;
      total = st.blocks * st.bsize;
    } catch {
      /* the directory may be gone already */
    }
    return noSpace(root, free, reserveBytes(limits, total), e);
  }
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || /incorrect header check|unexpected end of file/i.test(msg)) {
    return new NodeletError('InvalidArgument', 'ERR_LAYER_DECOMPRESS', `The layer could not be decompressed: ${msg}`, { cause: e });
  }
  if (/tar header|Unexpected end of data|Invalid header|Header exceeds/i.test(msg)) {
    return new NodeletError('InvalidArgument', 'ERR_LAYER_INVALID', `The layer is not a valid tar archive: ${msg}`, { cause: e });
  }
  return new NodeletError('Internal', 'ERR_LAYER_UNPACK', `Unpacking the layer failed: ${msg}`, { cause: e });
}
