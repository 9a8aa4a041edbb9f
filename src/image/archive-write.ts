// Builds OCI image layouts from layers described as data: the built-in images
// (scripts/build-images), test fixtures and the pull benchmark all use it.
// Deterministic: entries in the order given (a packed directory is walked in
// sorted order), fixed mtimes unless given, no timestamps in gzip headers, so
// the same input always yields the same digests.

import { hostPlatform } from './registry/platform.js';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDirAsync, writeFileAtomicAsync } from '../sys/atomic.js';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { invalidArgument, internal } from '../errors.js';

export interface LayerEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  content?: Buffer | string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: Date;
  xattrs?: Record<string, string>;
}

export type LayerSource = { entries: LayerEntry[] } | { dir: string /* pack a directory tree */ } | { tar: Buffer /* raw tar as-is, for hostile tests */ };

export interface WriteLayoutOptions {
  layers: LayerSource[];
  compression?: 'gzip' | 'zstd' | 'none';
  config?: {
    entrypoint?: string[];
    cmd?: string[];
    env?: string[];
    workingDir?: string;
    user?: string;
    exposedPorts?: string[];
    labels?: Record<string, string>;
    stopSignal?: string;
  };
  platform?: { os: string; architecture: string; variant?: string };
  refName?: string /* org.opencontainers.image.ref.name */;
}

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Default mtime of every entry: the epoch, so builds are reproducible. */
const FIXED_MTIME = new Date(0);


/**
 * Writes (or adds to) an OCI image layout at `dir`. With `refName`, an
 * existing index entry of the same name is replaced, like `umoci tag`.
 */
export async function writeOciLayout(
  dir: string,
  opts: WriteLayoutOptions,
): Promise<{ manifestDigest: string; configDigest: string; diffIds: string[] }> {
  const compression = opts.compression ?? 'gzip';
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const layerDescs: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  for (const [i, src] of opts.layers.entries()) {
    const r = await writeLayerBlob(dir, src, compression, i);
    layerDescs.push({ mediaType: r.mediaType, digest: r.digest, size: r.size });
    diffIds.push(r.diffId);
  }
  const platform = opts.platform ?? hostPlatform();
  const c = opts.config ?? {};
  const imageConfig: Record<string, unknown> = {};
  if (c.user !== undefined) imageConfig.User = c.user;
  if (c.exposedPorts?.length) imageConfig.ExposedPorts = Object.fromEntries(c.exposedPorts.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}]));
  if (c.env?.length) imageConfig.Env = c.env;
  if (c.entrypoint) imageConfig.Entrypoint = c.entrypoint;
  if (c.cmd) imageConfig.Cmd = c.cmd;
  if (c.workingDir !== undefined) imageConfig.WorkingDir = c.workingDir;
  if (c.labels && Object.keys(c.labels).length) imageConfig.Labels = c.labels;
  if (c.stopSignal !== undefined) imageConfig.StopSignal = c.stopSignal;
  const config = {
    created: FIXED_MTIME.toISOString(),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: imageConfig,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: FIXED_MTIME.toISOString(), created_by: `nodelet writeOciLayout layer ${i}` })),
  };
  const configBlob = await writeJsonBlob(dir, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: configBlob.digest, size: configBlob.size },
    layers: layerDescs,
  };
  const manifestBlob = await writeJsonBlob(dir, manifest);

  const indexPath = path.join(dir, 'index.json');
  let index: { schemaVersion: number; mediaType?: string; manifests: Record<string, unknown>[] } = {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: [],
  };
  try {
    index = JSON.parse(await fs.readFile(indexPath, 'utf8'));
    if (!Array.isArray(index.manifests)) throw new Error('manifests is not an array');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw invalidArgument('ERR_ARCHIVE_INVALID', `Cannot add an image to the OCI layout ${dir}: its index.json is invalid (${(e as Error).message}); use an empty directory`, { cause: e });
    }
  }
  const ref = opts.refName;
  index.manifests = index.manifests.filter((d) => {
    const ann = (d.annotations ?? {}) as Record<string, string>;
    return ref === undefined ? d.digest !== manifestBlob.digest : ann[REF_NAME_ANNOTATION] !== ref;
  });
  index.manifests.push({
    mediaType: MT.ociManifest,
    digest: manifestBlob.digest,
    size: manifestBlob.size,
    ...(ref !== undefined ? { annotations: { [REF_NAME_ANNOTATION]: ref } } : {}),
    platform: { architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}) },
  });
  await writeFileAtomicAsync(indexPath, Buffer.from(JSON.stringify(index)));
  await writeFileAtomicAsync(path.join(dir, 'oci-layout'), Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  return { manifestDigest: manifestBlob.digest, configDigest: configBlob.digest, diffIds };
}

async function writeJsonBlob(dir: string, value: unknown): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  await writeFileAtomicAsync(blobPath(dir, digest), bytes);
  return { digest, size: bytes.length };
}

function blobPath(dir: string, digest: string): string {
  return path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Streams the layer tar through sha256 (diffID), the compressor and sha256 (digest) into a blob. */
async function writeLayerBlob(
  dir: string,
  src: LayerSource,
  compression: 'gzip' | 'zstd' | 'none',
  index: number,
): Promise<{ digest: string; diffId: string; size: number; mediaType: string }> {
  const tmp = path.join(dir, 'blobs', 'sha256', `.layer-${randomBytes(6).toString('hex')}`);
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let size = 0;
  const tarStream = layerTarStream(src, index);
  const tapDiff = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      diffHash.update(chunk);
      yield chunk;
    }
  };
  const tapBlob = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      blobHash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  };
  const out = createWriteStream(tmp, { mode: 0o644 });
  try {
    if (compression === 'zstd') {
      const child = spawn('zstd', ['-q', '-c', '-3', '-T0'], { stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = new Promise<void>((resolve, reject) => {
        child.on('error', (e) => reject(internal('ERR_ARCHIVE_ZSTD', `Cannot run zstd to compress layer ${index} (is the zstd package installed?)`, { cause: e })));
        child.on('close', (code) => (code === 0 ? resolve() : reject(internal('ERR_ARCHIVE_ZSTD', `zstd exited with code ${code} compressing layer ${index}`))));
      });
      await Promise.all([pipeline(tarStream, tapDiff, child.stdin), pipeline(child.stdout, tapBlob, out), exited]);
    } else if (compression === 'gzip') {
      await pipeline(tarStream, tapDiff, createGzip(), tapBlob, out);
    } else {
      await pipeline(tarStream, tapDiff, tapBlob, out);
    }
    const fh = await fs.open(tmp, 'r');
    await fh.sync();
    await fh.close();
    const digest = 'sha256:' + blobHash.digest('hex');
    // content-addressed: the final name is known only now, so this is the streamed form of src/sys/atomic.ts's rule
    await fs.rename(tmp, blobPath(dir, digest));
    await fsyncDirAsync(path.dirname(blobPath(dir, digest)));
    const mediaType = compression === 'gzip' ? MT.ociLayerGzip : compression === 'zstd' ? MT.ociLayerZstd : MT.ociLayer;
    return { digest, diffId: 'sha256:' + diffHash.digest('hex'), size, mediaType };
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

function layerTarStream(src: LayerSource, index: number): Readable {
  if ('tar' in src) return Readable.from([src.tar]);
  const pack = tar.pack();
  const fill = 'entries' in src ? packEntries(pack, src.entries, index) : packDir(pack, src.dir);
  fill.then(
    () => pack.finalize(),
    (e) => pack.destroy(e),
  );
  return pack as unknown as Readable;
}

const TAR_TYPES = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
} as const;

function entryHeader(e: LayerEntry): tar.Header {
  const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const pax = e.xattrs && Object.keys(e.xattrs).length ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) : undefined;
  const defaultMode = e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644;
  return {
    name,
    type: TAR_TYPES[e.type],
    mode: e.mode ?? defaultMode,
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtime: e.mtime ?? FIXED_MTIME,
    linkname: e.linkname,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
    uname: '',
    gname: '',
    ...(pax ? { pax } : {}),
  } as tar.Header;
}

function addEntry(pack: tar.Pack, header: tar.Header, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (header.type === 'file') pack.entry(header, content ?? Buffer.alloc(0), cb);
    else pack.entry(header, cb);
  });
}

async function packEntries(pack: tar.Pack, entries: LayerEntry[], index: number): Promise<void> {
  for (const e of entries) {
    if (!e.path || !TAR_TYPES[e.type]) {
      throw invalidArgument('ERR_ARCHIVE_LAYER_ENTRY', `Layer ${index}: entry ${JSON.stringify(e.path)} needs a path and a type (file, dir, symlink, hardlink, char, block, fifo)`);
    }
    if ((e.type === 'symlink' || e.type === 'hardlink') && !e.linkname) {
      throw invalidArgument('ERR_ARCHIVE_LAYER_ENTRY', `Layer ${index}: ${e.type} ${e.path} needs a linkname`);
    }
    const content = e.content === undefined ? undefined : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    await addEntry(pack, entryHeader(e), e.type === 'file' ? content : undefined);
  }
}

/** Packs a directory tree (sorted, numeric owners, hardlinks kept, fixed mtimes). */
async function packDir(pack: tar.Pack, root: string): Promise<void> {
  const seen = new Map<string, string>(); // dev:ino -> first path, for hardlinks
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(root, r);
      const st = await fs.lstat(full);
      const base = { path: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        await addEntry(pack, entryHeader({ ...base, type: 'dir' }));
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await addEntry(pack, entryHeader({ ...base, type: 'symlink', linkname: await fs.readlink(full) }));
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await addEntry(pack, entryHeader({ ...base, type: 'hardlink', linkname: first }));
          continue;
        }
        if (st.nlink > 1) seen.set(key, r);
        await packFileStreaming(pack, entryHeader({ ...base, type: 'file' }), full, st.size);
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        // glibc's gnu_dev_major/minor, on the two 32-bit halves of the 64-bit dev_t
        const lo = Number(st.rdev) >>> 0;
        const hi = Math.floor(Number(st.rdev) / 0x100000000);
        const devmajor = (((lo >>> 8) & 0xfff) | (hi & ~0xfff)) >>> 0;
        const devminor = ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0;
        await addEntry(pack, entryHeader({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor, devminor }));
      } else if (st.isFIFO()) {
        await addEntry(pack, entryHeader({ ...base, type: 'fifo' }));
      } // sockets are skipped, as tar does
    }
  };
  await walk('');
}

/** Large files are streamed into the entry instead of being read whole. */
async function packFileStreaming(pack: tar.Pack, header: tar.Header, file: string, size: number): Promise<void> {
  if (size <= 1 << 20) return addEntry(pack, header, await fs.readFile(file));
  header.size = size;
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve())) as unknown as Writable;
    createReadStream(file).on('error', reject).pipe(sink);
  });
}
