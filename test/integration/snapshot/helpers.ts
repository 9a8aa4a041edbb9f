// Test helpers for the snapshot suite: build tars with tar-stream, hash them,
// walk trees into comparable records, write OCI layouts for umoci.

import * as fs from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { Readable } from 'node:stream';
import { computeChainIds } from '../../../src/image/chain.js';
import { llistxattr, lgetxattr } from '../../../src/sys/ffi.js';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: Date;
  pax?: Record<string, string>;
}

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((res, rej) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date(1_700_000_000_000),
      linkname: e.linkname,
      devmajor: e.devmajor,
      devminor: e.devminor,
      pax: e.pax,
      size: data?.length ?? 0,
    };
    await new Promise<void>((res, rej) => {
      if (data && type === 'file') pack.entry(header, data, (err) => (err ? rej(err) : res()));
      else pack.entry(header, (err) => (err ? rej(err) : res())).end(undefined);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
export const gzip = (b: Buffer) => gzipSync(b);
export const streamOf = (b: Buffer) => Readable.from([b]);

export function tempRoot(): string {
  const d = `/dev/shm/nodelet-test-${randomBytes(6).toString('hex')}`;
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** A comparable record of every entry under dir (root excluded). */
export function walkTree(dir: string, opts: { xattrs?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    const p = rel === '' ? dir : join(dir, rel);
    for (const name of fs.readdirSync(p).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const full = join(dir, r);
      const st = fs.lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      let desc = `mode=${mode} uid=${st.uid} gid=${st.gid}`;
      if (st.isDirectory()) desc = `dir ${desc}`;
      else if (st.isSymbolicLink()) desc = `symlink -> ${fs.readlinkSync(full)} uid=${st.uid} gid=${st.gid}`;
      else if (st.isFile()) desc = `file ${desc} size=${st.size} ${createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 16)}`;
      else if (st.isCharacterDevice()) desc = `chr ${desc} rdev=${st.rdev}`;
      else if (st.isBlockDevice()) desc = `blk ${desc} rdev=${st.rdev}`;
      else if (st.isFIFO()) desc = `fifo ${desc}`;
      else desc = `other ${desc}`;
      if (opts.xattrs && !st.isSymbolicLink()) {
        const names = llistxattr(full).filter((n) => n.startsWith('user.')).sort();
        if (names.length) desc += ' xattrs=' + names.map((n) => `${n}=${lgetxattr(full, n)?.toString('hex')}`).join(',');
      }
      out.set(r, desc);
      if (st.isDirectory()) visit(r);
    }
  };
  visit('');
  return out;
}

export function diffTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v}  !=  ${b.get(k) ?? '(missing)'}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: (missing)  !=  ${v}`);
  return out;
}

export interface BuiltLayer {
  tar: Buffer;
  blob: Buffer;
  diffId: string;
  digest: string;
  mediaType: string;
}

export function gzLayer(t: Buffer): BuiltLayer {
  const blob = gzip(t);
  return { tar: t, blob, diffId: sha256(t), digest: sha256(blob), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' };
}

/** Write an OCI image layout with these layers; returns the layout dir. */
export function writeOciLayout(dir: string, tag: string, layers: BuiltLayer[]): void {
  const blobs = join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const d = sha256(b);
    fs.writeFileSync(join(blobs, d.slice(7)), b);
    return d;
  };
  for (const l of layers) put(l.blob);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created_by: 'test' })),
    }),
  );
  const configDigest = put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    }),
  );
  const md = put(manifest);
  fs.writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}

export function chainIdsOf(layers: BuiltLayer[]): string[] {
  return computeChainIds(layers.map((l) => l.diffId));
}
