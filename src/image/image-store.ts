// Image records: <root>/images/images.json ({version, images: ImageRecord[]}),
// rewritten atomically (temp + fsync + rename) under <root>/images/.lock so
// concurrent pulls in several processes never lose a tag. A name points at
// one image; tagging moves it (the old image keeps its other names, or stays
// as a dangling "<none>" image like docker's).
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ImageRecord } from './types.js';
import { writeJsonAtomicAsync } from '../sys/atomic.js';
import { withLock } from '../sys/lock.js';

interface StoreFile {
  version: 1;
  images: ImageRecord[];
}

export class ImageStore {
  readonly dir: string;
  private readonly file: string;
  private readonly lock: string;

  constructor(opts: { root: string }) {
    this.dir = opts.root;
    this.file = path.join(this.dir, 'images.json');
    this.lock = path.join(this.dir, '.lock');
  }

  async list(): Promise<ImageRecord[]> {
    return (await this.read()).images;
  }

  private async read(): Promise<StoreFile> {
    try {
      const j = JSON.parse(await fsp.readFile(this.file, 'utf8')) as StoreFile;
      return { version: 1, images: Array.isArray(j.images) ? j.images : [] };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, images: [] };
      throw e;
    }
  }

  private async write(f: StoreFile): Promise<void> {
    await writeJsonAtomicAsync(this.file, f, { indent: 1 });
  }

  /** Read-modify-write under the store lock. */
  async update<T>(fn: (images: ImageRecord[]) => T | Promise<T>): Promise<T> {
    await fsp.mkdir(this.dir, { recursive: true });
    return withLock(this.lock, async () => {
      const f = await this.read();
      const out = await fn(f.images);
      await this.write(f);
      return out;
    });
  }

  /** Adds or merges a record; its names are moved away from other images. */
  async put(rec: ImageRecord): Promise<ImageRecord> {
    return this.update((images) => {
      for (const other of images) {
        if (other.id === rec.id) continue;
        other.names = other.names.filter((n) => !rec.names.includes(n));
      }
      const existing = images.find((i) => i.id === rec.id);
      if (!existing) {
        images.push(rec);
        return rec;
      }
      existing.names = [...new Set([...existing.names, ...rec.names])];
      existing.repoDigests = [...new Set([...existing.repoDigests, ...rec.repoDigests])];
      existing.pulledAt = rec.pulledAt;
      existing.manifestDigest = rec.manifestDigest;
      existing.size = rec.size;
      return existing;
    });
  }
}
