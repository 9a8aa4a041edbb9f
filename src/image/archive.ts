// Image archives on disk: OCI image layouts (a directory or a tar of one) and
// `docker save` / `podman save --format docker-archive` tars. openImageArchive
// resolves them to manifests + configs (platform picked from an index) and
// serves blobs as streams whose digest is verified while they are read.
// Nothing is extracted: tar members are read in place by offset (a gzip or
// zstd compressed archive is first decompressed to one temporary file).
//
// writeOciLayout (archive-write.ts) builds layouts from data.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform, pipeline as streamPipeline, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { invalidArgument, notFound, NodeletError } from '../errors.js';
import { indexTar, normalizeMemberName, resolveMember, type TarMember } from './archive-tar.js';
import { MT, REF_NAME_ANNOTATION } from './archive-write.js';
import { hostPlatform, matchPlatform, parsePlatform, type Platform } from './registry/platform.js';

export { writeOciLayout, MT, REF_NAME_ANNOTATION } from './archive-write.js';
/** One platform grammar and host detection for pull, import and layouts (the registry client's). */
export { hostPlatform, parsePlatform };
export type { LayerEntry, LayerSource, WriteLayoutOptions } from './archive-write.js';

export interface ArchiveImage {
  refName?: string;
  manifestDigest: string;
  manifestBytes: Buffer;
  mediaType: string;
  configDigest: string;
  configBytes: Buffer;
  layers: { digest: string; size: number; mediaType: string }[];
}

export interface OpenedArchive {
  images: ArchiveImage[];
  /** The blob's content; the stream fails with ERR_ARCHIVE_BLOB_CORRUPT if it does not match its digest. */
  openBlob(digest: string): Promise<NodeJS.ReadableStream>;
  close(): Promise<void>;
}

const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';
const MAX_JSON = 16 << 20;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * Picks the index entry for `want` with the registry client's ranking
 * (containerd's rules: exact variant first, then compatible lower arm/amd64
 * variants). Returns the index of the entry or -1.
 */
export function computePlatformChoice(want: Platform, candidates: (Platform | undefined)[]): number {
  let best = -1;
  let bestScore = 0;
  candidates.forEach((c, i) => {
    if (!c || typeof c.os !== 'string' || typeof c.architecture !== 'string') return;
    const score = matchPlatform(want, c);
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

const fmtPlatform = (p?: Platform) => (p ? `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}` : 'unknown');

// ---------------------------------------------------------------------------
// Where the archive's files come from: a directory or a tar file.

interface Source {
  /** The archive's path, for messages. */
  readonly where: string;
  exists(name: string): Promise<boolean>;
  size(name: string): Promise<number | undefined>;
  stream(name: string, start?: number, endInclusive?: number): Readable;
}

class DirSource implements Source {
  constructor(readonly where: string) {}
  async exists(name: string): Promise<boolean> {
    return (await this.size(name)) !== undefined;
  }
  async size(name: string): Promise<number | undefined> {
    try {
      const st = await fs.stat(path.join(this.where, name));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }
  stream(name: string, start?: number, end?: number): Readable {
    return createReadStream(path.join(this.where, name), { start, end });
  }
}

class TarSource implements Source {
  constructor(
    readonly where: string,
    private readonly members: Map<string, TarMember>,
    /** The file holding the tar, when `where` is a compressed archive. */
    private readonly dataFile?: string,
  ) {}
  private member(name: string): TarMember | undefined {
    return resolveMember(this.members, name, this.where);
  }
  async exists(name: string): Promise<boolean> {
    return this.member(name) !== undefined;
  }
  async size(name: string): Promise<number | undefined> {
    return this.member(name)?.size;
  }
  stream(name: string, start = 0, end?: number): Readable {
    const m = this.member(name);
    if (!m) throw new Error(`no member ${name}`);
    const last = m.offset + m.size - 1;
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.dataFile ?? this.where, { start: m.offset + start, end: Math.min(last, end === undefined ? last : m.offset + end) });
  }
}

async function readAll(src: Source, name: string, limit = MAX_JSON): Promise<Buffer> {
  const size = await src.size(name);
  if (size === undefined) throw notFound('ERR_ARCHIVE_BLOB_NOT_FOUND', `Image archive ${src.where}: ${name} is missing`, { details: { archive: src.where, member: name } });
  if (size > limit) throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: ${name} is ${size} bytes, larger than the ${limit} allowed for metadata`);
  const chunks: Buffer[] = [];
  for await (const c of src.stream(name)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

function digestOf(b: Buffer, algo: string): string {
  return `${algo}:` + createHash(algo).update(b).digest('hex');
}

function corrupt(where: string, what: string, expected: string, actual: string): NodeletError {
  return invalidArgument(
    'ERR_ARCHIVE_BLOB_CORRUPT',
    `Image archive ${where}: blob ${what} is corrupted (expected ${expected}, got ${actual}); re-create or re-download the archive`,
    { details: { archive: where, blob: what, expected, actual } },
  );
}

function parseJson(bytes: Buffer, where: string, what: string): any {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${where}: ${what} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** A pass-through that fails at the end if the bytes do not hash to `digest` (or differ in size). */
function verifying(where: string, digest: string, expectedSize: number | undefined): Transform {
  const [algo] = digest.split(':') as [string];
  const h = createHash(algo);
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const got = `${algo}:` + h.digest('hex');
      if (got !== digest) return cb(corrupt(where, digest, digest, got));
      if (expectedSize !== undefined && n !== expectedSize) return cb(corrupt(where, digest, `${expectedSize} bytes`, `${n} bytes`));
      cb();
    },
  });
}

function checkDigest(d: unknown, where: string, what: string): string {
  if (typeof d !== 'string' || !DIGEST_RE.test(d)) {
    throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${where}: ${what} has an invalid digest ${JSON.stringify(d)}`, { details: { archive: where } });
  }
  return d;
}

// ---------------------------------------------------------------------------

/**
 * Opens an OCI image layout directory, an OCI layout tar, or a `docker save`
 * tar. In a multi-platform index the entry for `opts.platform` (default this
 * host) is chosen.
 */
export async function openImageArchive(p: string, opts: { platform?: string } = {}): Promise<OpenedArchive> {
  const want = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  let st;
  try {
    st = await fs.stat(p);
  } catch (e) {
    throw notFound('ERR_ARCHIVE_NOT_FOUND', `Image archive ${p} does not exist`, { cause: e, details: { archive: p } });
  }
  let src: Source;
  let tempFile: string | undefined;
  if (st.isDirectory()) {
    src = new DirSource(p);
  } else {
    const fh = await fs.open(p, 'r');
    const magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
    await fh.close();
    const gzip = magic[0] === 0x1f && magic[1] === 0x8b;
    const zstd = magic.readUInt32LE(0) === 0xfd2fb528;
    if (gzip || zstd) tempFile = await decompressToTemp(p, gzip ? 'gzip' : 'zstd');
    try {
      src = new TarSource(p, await indexTar(tempFile ?? p), tempFile);
    } catch (e) {
      if (tempFile) await fs.rm(tempFile, { force: true });
      throw e;
    }
  }
  try {
    return await openFrom(src, want, tempFile);
  } catch (e) {
    if (tempFile) await fs.rm(tempFile, { force: true });
    throw e;
  }
}

/**
 * `docker save | gzip` archives (accepted by `docker load`) are decompressed
 * once into a temporary file, removed by close().
 */
async function decompressToTemp(p: string, kind: 'gzip' | 'zstd'): Promise<string> {
  const tmp = path.join(os.tmpdir(), `nodelet-archive-${randomBytes(8).toString('hex')}.tar`);
  try {
    if (kind === 'gzip') {
      await pipeline(createReadStream(p), createGunzip(), createWriteStream(tmp, { mode: 0o600 }));
    } else {
      const child = spawn('zstd', ['-q', '-d', '-c', p], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited ${code}: ${err.trim()}`))));
      });
      await Promise.all([pipeline(child.stdout, createWriteStream(tmp, { mode: 0o600 })), exited]);
    }
    return tmp;
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw invalidArgument('ERR_ARCHIVE_INVALID', `Cannot decompress the ${kind} image archive ${p}: ${(e as Error).message}`, { cause: e, details: { archive: p } });
  }
}

async function openFrom(src: Source, want: Platform, tempFile: string | undefined): Promise<OpenedArchive> {
  const p = src.where;
  let images: ArchiveImage[];
  let blobs: Map<string, { name: string; size?: number }> | undefined;
  if (await src.exists('index.json')) {
    images = await readOciLayout(src, want);
  } else if (await src.exists('manifest.json')) {
    ({ images, blobs } = await readDockerArchive(src));
  } else {
    throw invalidArgument(
      'ERR_ARCHIVE_INVALID',
      `${p} is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)`,
      { details: { archive: p } },
    );
  }
  // sizes the manifests promise, checked as blobs are read
  const sizes = new Map<string, number>();
  for (const img of images) {
    sizes.set(img.configDigest, img.configBytes.length);
    for (const l of img.layers) if (Number.isSafeInteger(l.size) && l.size >= 0) sizes.set(l.digest, l.size);
  }
  return {
    images,
    async openBlob(digest: string) {
      checkDigest(digest, src.where, 'requested blob');
      const loc = blobs ? blobs.get(digest) : { name: `blobs/${digest.replace(':', '/')}`, size: sizes.get(digest) };
      const size = loc ? await src.size(loc.name) : undefined;
      if (!loc || size === undefined) {
        throw notFound('ERR_ARCHIVE_BLOB_NOT_FOUND', `Image archive ${src.where} has no blob ${digest}`, { details: { archive: src.where, digest } });
      }
      const check = verifying(src.where, digest, loc.size);
      // stream.pipeline: an error on either side destroys both (no leaked fd
      // when the consumer stops early); the consumer sees errors on `check`.
      streamPipeline(src.stream(loc.name), check, () => {});
      return check;
    },
    async close() {
      // nothing is held open between calls; a decompressed copy is removed
      if (tempFile) await fs.rm(tempFile, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// OCI image layout

async function readBlob(src: Source, desc: any, what: string): Promise<{ digest: string; bytes: Buffer }> {
  const digest = checkDigest(desc?.digest, src.where, what);
  const bytes = await readAll(src, `blobs/${digest.replace(':', '/')}`);
  const got = digestOf(bytes, digest.split(':')[0]!);
  if (got !== digest) throw corrupt(src.where, `${digest} (${what})`, digest, got);
  if (typeof desc.size === 'number' && desc.size !== bytes.length) throw corrupt(src.where, `${digest} (${what})`, `${desc.size} bytes`, `${bytes.length} bytes`);
  return { digest, bytes };
}

const isIndexType = (mt: unknown) => mt === MT.ociIndex || mt === MT.dockerManifestList;
const isManifestType = (mt: unknown) => mt === MT.ociManifest || mt === MT.dockerManifest;

function refNameOf(desc: any): string | undefined {
  const ann = desc?.annotations ?? {};
  return ann[CONTAINERD_NAME_ANNOTATION] ?? ann[REF_NAME_ANNOTATION];
}

async function readOciLayout(src: Source, want: Platform): Promise<ArchiveImage[]> {
  if (await src.exists('oci-layout')) {
    const layout = parseJson(await readAll(src, 'oci-layout'), src.where, 'oci-layout');
    if (typeof layout?.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
      throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: unsupported imageLayoutVersion ${JSON.stringify(layout?.imageLayoutVersion)}`);
    }
  }
  const index = parseJson(await readAll(src, 'index.json'), src.where, 'index.json');
  if (!Array.isArray(index?.manifests)) throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: index.json has no manifests array`);
  // Entries of one name that differ only by platform form an implicit multi-platform image.
  const groups = new Map<string | undefined, any[]>();
  for (const d of index.manifests) {
    const k = refNameOf(d);
    groups.set(k, [...(groups.get(k) ?? []), d]);
  }
  const images: ArchiveImage[] = [];
  for (const [refName, descs] of groups) {
    let chosen = descs;
    const platforms = new Set(descs.map((d) => (d.platform ? fmtPlatform(d.platform) : '')));
    if (descs.length > 1 && !platforms.has('') && platforms.size === descs.length) {
      const i = computePlatformChoice(want, descs.map((d) => d.platform));
      if (i < 0) throw noPlatform(src, refName, want, descs);
      chosen = [descs[i]];
    }
    for (const d of chosen) {
      const img = await resolveDescriptor(src, d, want, refName, 0);
      if (img) images.push(img);
    }
  }
  if (images.length === 0) throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where} holds no image manifest`);
  return images;
}

function noPlatform(src: Source, refName: string | undefined, want: Platform, descs: any[]): NodeletError {
  const have = descs.map((d) => fmtPlatform(d.platform)).join(', ');
  return notFound(
    'ERR_IMAGE_PLATFORM_NOT_FOUND',
    `Image archive ${src.where}${refName ? ` (${refName})` : ''} has no image for platform ${fmtPlatform(want)} (available: ${have}); pick one with --platform`,
    { details: { archive: src.where, platform: fmtPlatform(want), available: have } },
  );
}

async function resolveDescriptor(src: Source, desc: any, want: Platform, refName: string | undefined, depth: number): Promise<ArchiveImage | undefined> {
  if (depth > 3) throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: indexes nested too deeply`);
  const mt = desc?.mediaType;
  if (mt !== undefined && !isIndexType(mt) && !isManifestType(mt)) {
    if (mt === 'application/vnd.docker.distribution.manifest.v1+json' || mt === 'application/vnd.docker.distribution.manifest.v1+prettyjws') throw schema1(src);
    return undefined; // signatures, attestations, artifacts
  }
  const { digest, bytes } = await readBlob(src, desc, 'manifest');
  const doc = parseJson(bytes, src.where, `manifest ${digest}`);
  const docType = doc.mediaType ?? mt;
  if (doc.schemaVersion === 1) throw schema1(src);
  if (isIndexType(docType) || (docType === undefined && Array.isArray(doc.manifests))) {
    const entries = (doc.manifests ?? []) as any[];
    const i = computePlatformChoice(want, entries.map((e) => e.platform));
    if (i < 0) throw noPlatform(src, refName, want, entries);
    return resolveDescriptor(src, entries[i], want, refName, depth + 1);
  }
  if (!doc.config || !Array.isArray(doc.layers)) throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: manifest ${digest} has no config or layers`);
  const config = await readBlob(src, doc.config, 'config');
  const layers = (doc.layers as any[]).map((l, i) => ({
    digest: checkDigest(l.digest, src.where, `layer ${i}`),
    size: Number(l.size),
    mediaType: String(l.mediaType ?? MT.ociLayerGzip),
  }));
  return {
    ...(refName !== undefined ? { refName } : {}),
    manifestDigest: digest,
    manifestBytes: bytes,
    mediaType: docType ?? MT.ociManifest,
    configDigest: config.digest,
    configBytes: config.bytes,
    layers,
  };
}

function schema1(src: Source): NodeletError {
  return invalidArgument('ERR_IMAGE_SCHEMA1_UNSUPPORTED', `Image archive ${src.where} holds a Docker schema 1 manifest, which is not supported; re-save the image with a current tool`);
}

// ---------------------------------------------------------------------------
// docker save (manifest.json + config + layer tars)

async function peek(src: Source, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of src.stream(name, 0, 5)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function hashMember(src: Source, name: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of src.stream(name)) h.update(c as Buffer);
  return 'sha256:' + h.digest('hex');
}

async function readDockerArchive(src: Source): Promise<{ images: ArchiveImage[]; blobs: Map<string, { name: string; size?: number }> }> {
  const manifest = parseJson(await readAll(src, 'manifest.json'), src.where, 'manifest.json');
  if (!Array.isArray(manifest) || manifest.length === 0) throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: manifest.json is not a non-empty array`);
  const blobs = new Map<string, { name: string; size?: number }>();
  const images: ArchiveImage[] = [];
  for (const [n, entry] of manifest.entries()) {
    if (typeof entry?.Config !== 'string' || !Array.isArray(entry.Layers)) {
      throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: manifest.json entry ${n} needs Config and Layers`);
    }
    const configName = normalizeMemberName(entry.Config, src.where);
    const configBytes = await readAll(src, configName);
    const configDigest = sha256(configBytes);
    const named = /(?:^|\/)(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(configName)?.[1];
    if (named && `sha256:${named}` !== configDigest) throw corrupt(src.where, configName, `sha256:${named}`, configDigest);
    blobs.set(configDigest, { name: configName, size: configBytes.length });
    const config = parseJson(configBytes, src.where, configName);
    const diffIds: unknown[] = config?.rootfs?.diff_ids ?? [];
    if (diffIds.length !== entry.Layers.length) {
      throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: ${configName} lists ${diffIds.length} diff_ids but manifest.json lists ${entry.Layers.length} layers`);
    }
    const layers: ArchiveImage['layers'] = [];
    for (const [i, l] of (entry.Layers as unknown[]).entries()) {
      if (typeof l !== 'string') throw invalidArgument('ERR_ARCHIVE_INVALID', `Image archive ${src.where}: layer ${i} of entry ${n} is not a path`);
      const name = normalizeMemberName(l, src.where);
      const size = await src.size(name);
      if (size === undefined) throw notFound('ERR_ARCHIVE_BLOB_NOT_FOUND', `Image archive ${src.where}: layer ${name} is missing`, { details: { archive: src.where, member: name } });
      const head = await peek(src, name);
      const gzip = head[0] === 0x1f && head[1] === 0x8b;
      const zstd = head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528;
      const blobHex = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name)?.[1];
      let digest: string;
      if (blobHex) digest = `sha256:${blobHex}`;
      else if (!gzip && !zstd) digest = checkDigest(diffIds[i], src.where, `${configName} diff_ids[${i}]`); // verified when read
      else digest = await hashMember(src, name);
      blobs.set(digest, { name, size });
      layers.push({ digest, size, mediaType: gzip ? MT.dockerLayerGzip : zstd ? MT.ociLayerZstd : MT.dockerLayer });
    }
    const manifestBytes = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: MT.dockerManifest,
          config: { mediaType: MT.dockerConfig, size: configBytes.length, digest: configDigest },
          layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest })),
        },
        null,
        3,
      ),
    );
    const base = { manifestDigest: sha256(manifestBytes), manifestBytes, mediaType: MT.dockerManifest, configDigest, configBytes, layers };
    const tags: string[] = Array.isArray(entry.RepoTags) ? entry.RepoTags.filter((t: unknown) => typeof t === 'string') : [];
    if (tags.length === 0) images.push(base);
    for (const refName of tags) images.push({ ...base, refName });
  }
  return { images, blobs };
}
