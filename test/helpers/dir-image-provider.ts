// Test helper: an ImageProvider over one rootfs directory (e.g. a busybox
// rootfs from rootfs.ts). prepareRootfs returns a real overlay mount: the
// directory as the read-only lower layer, a fresh upper/work per key, so
// containers never write into the shared tree. Not a mock: the runtime mounts
// and uses what it returns exactly as it would a snapshotter's mounts.
import fs from 'node:fs';
import path from 'node:path';
import type { ImageConfig, ImageProvider, ImageRecord, Mount } from '../../src/image/types.js';

export class DirImageProvider implements ImageProvider {
  readonly record: ImageRecord;
  constructor(private readonly lower: string, private readonly work: string, config: Partial<ImageConfig> = {}) {
    fs.mkdirSync(work, { recursive: true });
    this.record = {
      id: 'sha256:' + 'b'.repeat(64), manifestDigest: 'sha256:' + 'c'.repeat(64), names: ['test/busybox:latest'], repoDigests: [],
      config: { os: 'linux', architecture: 'amd64', env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], exposedPorts: [], labels: {}, diffIds: [], cmd: ['sh'], ...config },
      chainIds: [], size: 0, pulledAt: new Date().toISOString(),
    };
  }
  async getImage(ref: string): Promise<ImageRecord | undefined> {
    return ref === this.record.id || this.record.names.includes(ref) || ref === 'busybox' ? this.record : undefined;
  }
  async ensureImage(): Promise<ImageRecord> {
    return this.record;
  }
  async prepareRootfs(key: string): Promise<Mount[]> {
    const d = path.join(this.work, key);
    fs.mkdirSync(path.join(d, 'upper'), { recursive: true });
    fs.mkdirSync(path.join(d, 'work'), { recursive: true });
    return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${this.lower}`, `upperdir=${d}/upper`, `workdir=${d}/work`] }];
  }
  async removeRootfs(key: string): Promise<void> {
    fs.rmSync(path.join(this.work, key), { recursive: true, force: true });
  }
  /** keys with a writable layer still present */
  keys(): string[] {
    return fs.readdirSync(this.work);
  }
}
