import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import * as tar from 'tar-stream';

export async function tempDir(): Promise<string> {
  const dir = `/dev/shm/nodelet-test-${randomBytes(6).toString('hex')}`;
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

export const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export async function readStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function decompressLayer(blob: Buffer, mediaType: string): Buffer {
  if (mediaType.endsWith('gzip')) return gunzipSync(blob);
  if (mediaType.endsWith('zstd')) return Buffer.from(zstdDecompress(blob));
  return blob;
}

export interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  mtime: number;
  pax?: Record<string, string> | null;
  content: Buffer;
}

/** Parses an uncompressed tar into its headers and contents. */
export async function readTar(buf: Buffer): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const h = entry.header;
      out.push({
        name: h.name,
        type: String(h.type),
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        linkname: h.linkname,
        devmajor: h.devmajor,
        devminor: h.devminor,
        mtime: h.mtime ? h.mtime.getTime() : 0,
        pax: h.pax as Record<string, string> | null | undefined,
        content: Buffer.concat(chunks),
      });
    }
  })();
  ex.end(buf);
  await done;
  return out;
}

/** Builds a tar from raw headers (for hand-made docker-save archives and hostile inputs). */
export async function makeTar(entries: { name: string; type?: tar.Header['type']; linkname?: string; content?: Buffer | string }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header: tar.Header = { name: e.name, type: e.type ?? 'file', mtime: new Date(0), mode: 0o644, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) } as tar.Header;
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if ((e.type ?? 'file') === 'file') pack.entry(header, e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content), cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}
