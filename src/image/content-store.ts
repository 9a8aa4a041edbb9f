// Content-addressed blob store after containerd's local content store:
//   <root>/blobs/sha256/<hex>        committed, verified blobs (read-only)
//   <root>/ingest/<hex>/data         the one in-flight write of a blob
//   <root>/ingest/<hex>.lock         cross-process lock (src/sys/lock.ts: "<pid> <starttime>", stale when that process is gone)
// A blob is committed only after its size and sha256 match: fsync, rename.
// Two pulls (threads or processes) wanting the same blob: one downloads,
// the other waits on the lock and finds the committed blob.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { NodeletError, invalidArgument, notFound } from '../errors.js';
import { fsyncDirAsync } from '../sys/atomic.js';
import { tryLock, unlock } from '../sys/lock.js';
import { sleep } from '../sys/proc.js';
import { validateDigest } from './reference.js';

export interface IngestWriter {
  /** Bytes written so far (the offset to resume from). */
  readonly offset: number;
  write(chunk: Buffer): Promise<void>;
  /** Discards what was written (the server ignored a Range request). */
  reset(): Promise<void>;
}

export interface IngestResult {
  /** false when the blob was already there or another process committed it. */
  written: boolean;
  size: number;
}

function hexOf(digest: string): string {
  validateDigest(digest);
  if (!digest.startsWith('sha256:')) throw invalidArgument('ERR_IMAGE_DIGEST_UNSUPPORTED', `unsupported digest algorithm in ${digest}`);
  return digest.slice('sha256:'.length);
}

export function digestMismatch(expected: string, actual: string, what = 'blob'): NodeletError {
  return new NodeletError('InvalidArgument', 'ERR_IMAGE_DIGEST_MISMATCH', `${what} digest mismatch: expected ${expected}, got ${actual}`, {
    details: { expected, actual },
  });
}

export class ContentStore {
  readonly root: string;
  private readonly blobDir: string;
  private readonly ingestDir: string;
  private ready?: Promise<void>;

  constructor(opts: { root: string }) {
    this.root = opts.root;
    this.blobDir = path.join(this.root, 'blobs', 'sha256');
    this.ingestDir = path.join(this.root, 'ingest');
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await fsp.mkdir(this.blobDir, { recursive: true });
      await fsp.mkdir(this.ingestDir, { recursive: true });
    })();
    return this.ready;
  }

  blobPath(digest: string): string {
    return path.join(this.blobDir, hexOf(digest));
  }

  has(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  size(digest: string): number | undefined {
    try {
      return statSync(this.blobPath(digest)).size;
    } catch {
      return undefined;
    }
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await fsp.readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('ERR_IMAGE_BLOB_NOT_FOUND', `blob ${digest} not in the content store`);
      throw e;
    }
  }

  openBlob(digest: string): NodeJS.ReadableStream {
    return createReadStream(this.blobPath(digest), { highWaterMark: 1 << 20 });
  }

  async list(): Promise<string[]> {
    await this.init();
    return (await fsp.readdir(this.blobDir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => 'sha256:' + n);
  }

  async delete(digest: string): Promise<void> {
    await fsp.unlink(this.blobPath(digest)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  /** Stores a small blob held in memory (manifests, configs), verifying its digest. */
  async writeBlob(digest: string, bytes: Buffer): Promise<IngestResult> {
    return this.ingest(digest, bytes.length, async (w) => w.write(bytes));
  }

  /**
   * Writes a blob through `fill`, verifying size (when known) and digest before
   * committing. Concurrent ingests of one digest run `fill` once; the others
   * wait and return written=false. On any failure nothing is left behind.
   */
  async ingest(
    digest: string,
    expectedSize: number | undefined,
    fill: (w: IngestWriter) => Promise<void>,
    opts: { onWait?: () => void; signal?: AbortSignal } = {},
  ): Promise<IngestResult> {
    const hex = hexOf(digest);
    await this.init();
    const final = path.join(this.blobDir, hex);
    const lock = path.join(this.ingestDir, `${hex}.lock`);
    let waited = false;
    for (;;) {
      const sz = this.size(digest);
      if (sz !== undefined) return { written: false, size: sz };
      if (await tryLock(lock)) break;
      if (!waited) opts.onWait?.();
      waited = true;
      if (opts.signal?.aborted) throw opts.signal.reason;
      await sleep(25, opts.signal);
    }
    const dir = path.join(this.ingestDir, hex);
    const tmp = path.join(dir, 'data');
    try {
      const sz = this.size(digest); // committed while we took the lock
      if (sz !== undefined) return { written: false, size: sz };
      await fsp.rm(dir, { recursive: true, force: true }); // leftovers of a dead writer
      await fsp.mkdir(dir, { recursive: true });
      let fh = await fsp.open(tmp, 'w', 0o644);
      let hash: Hash = createHash('sha256');
      let offset = 0;
      try {
        const writer: IngestWriter = {
          get offset() {
            return offset;
          },
          async write(chunk: Buffer) {
            if (expectedSize !== undefined && offset + chunk.length > expectedSize)
              throw invalidArgument('ERR_IMAGE_BLOB_SIZE_MISMATCH', `blob ${digest} is larger than the ${expectedSize} bytes its descriptor says`);
            hash.update(chunk);
            let done = 0;
            while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
            offset += chunk.length;
          },
          async reset() {
            await fh.truncate(0);
            await fh.close();
            fh = await fsp.open(tmp, 'w', 0o644);
            hash = createHash('sha256');
            offset = 0;
          },
        };
        await fill(writer);
        if (expectedSize !== undefined && offset !== expectedSize)
          throw Object.assign(
            invalidArgument('ERR_IMAGE_BLOB_SIZE_MISMATCH', `blob ${digest}: got ${offset} bytes, descriptor says ${expectedSize}`),
            {},
          );
        const actual = 'sha256:' + hash.digest('hex');
        if (actual !== digest) throw digestMismatch(digest, actual);
        await fh.sync();
      } finally {
        await fh.close().catch(() => undefined);
      }
      await fsp.rename(tmp, final);
      await fsyncDirAsync(this.blobDir);
      return { written: true, size: offset };
    } finally {
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      await unlock(lock);
    }
  }
}
