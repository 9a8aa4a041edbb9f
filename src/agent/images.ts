// The agent's ImageProvider: answers the hot path (lookup by name or ID,
// rootfs preparation) straight from the image store and snapshot store that
// ImageService keeps, and loads ImageService itself — with the registry
// client and undici, ~70 ms of module loading — only when something must be
// pulled or a lookup needs its full rules (digests, ambiguous ID prefixes).
// `nodelet run` of a local image never pays for the registry code.
import path from 'node:path';
import type { ImageProvider, ImageRecord, Mount, PullOptions, PullPolicy } from '../image/types.js';
import type { ImageService } from '../image/service.js';
import { ImageStore } from '../image/image-store.js';
import { formatReference, parseReference } from '../image/reference.js';
import { SnapshotStore, type LayerLimits } from '../snapshot/index.js';
import { notFound } from '../errors.js';

export class AgentImages implements ImageProvider {
  private readonly store: ImageStore;
  private readonly snapshots: SnapshotStore;
  private service?: Promise<ImageService>;

  constructor(private readonly opts: { root: string; maxConcurrentDownloads?: number; layerLimits?: LayerLimits }) {
    this.store = new ImageStore({ root: path.join(opts.root, 'images') });
    this.snapshots = new SnapshotStore({ root: path.join(opts.root, 'snapshots'), driver: 'auto' });
  }

  /** The full ImageService (loaded on first need). */
  full(): Promise<ImageService> {
    this.service ??= import('../image/service.js').then((m) => new m.ImageService({ root: this.opts.root, maxConcurrentDownloads: this.opts.maxConcurrentDownloads, layerLimits: this.opts.layerLimits }));
    return this.service;
  }

  private async fast(refOrId: string): Promise<ImageRecord | undefined> {
    const all = await this.store.list();
    const byId = all.find((i) => i.id === refOrId);
    if (byId) return byId;
    if (refOrId.includes('@') || /^(sha256:)?[0-9a-f]{6,64}$/.test(refOrId)) return undefined;
    let name: string;
    try {
      const r = parseReference(refOrId);
      if (r.digest) return undefined;
      name = formatReference(r);
    } catch {
      return undefined;
    }
    return all.find((i) => i.names.includes(name));
  }

  async getImage(refOrId: string): Promise<ImageRecord | undefined> {
    return (await this.fast(refOrId)) ?? (await this.full()).getImage(refOrId);
  }

  async ensureImage(ref: string, policy: PullPolicy, opts?: PullOptions): Promise<ImageRecord> {
    if (policy !== 'Always') {
      const hit = await this.fast(ref);
      if (hit) return hit;
    }
    return (await this.full()).ensureImage(ref, policy, opts);
  }

  async prepareRootfs(key: string, imageId: string): Promise<Mount[]> {
    const img = (await this.store.list()).find((i) => i.id === imageId);
    if (!img) {
      if (this.service) return (await this.service).prepareRootfs(key, imageId);
      throw notFound('ERR_IMAGE_NOT_FOUND', `image ${imageId} is not in the store; pull it first`);
    }
    return this.snapshots.prepare(key, img.chainIds[img.chainIds.length - 1] ?? null);
  }

  writableDir(key: string): string | undefined {
    return this.snapshots.writableDir(key);
  }

  async removeRootfs(key: string): Promise<void> {
    await this.snapshots.remove(key);
  }
}
