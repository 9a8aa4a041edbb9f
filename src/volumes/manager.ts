// Pod volumes on the host, like kubelet's volume plugins: each volume is
// materialised under <root>/pods/<uid>/volumes/kubernetes.io~<kind>/<name>
// (hostPath volumes are the host path itself) and setUp returns
// volume name → host path for the container mounts. What each volume holds
// (file sets, modes, tmpfs sizes) is decided by planVolume (src/pod/volume-plan.ts);
// this module carries the plan out.
//
//  emptyDir   a directory; medium Memory → a tmpfs (size = sizeLimit, else
//             the pod's memory limit when every container has one). Disk
//             sizeLimit is enforced by eviction, as kubelet does (src/agent/eviction.ts).
//  hostPath   type checks as kubelet's (DirectoryOrCreate, Directory,
//             FileOrCreate, File, Socket, CharDevice, BlockDevice, "").
//  configMap  files written with the atomic writer (..data symlink swap).
//  secret     same, on a tmpfs: secret bytes never touch the disk.
//  downwardAPI, projected (configMap, secret, downwardAPI,
//             serviceAccountToken): on tmpfs too (they may hold secrets).
// tearDown unmounts every mount under the pod's volume dir, then removes it.

import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, openSync, closeSync, readdirSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isNodeletError, NodeletError } from '../errors.js';
import { mount, umount2, MS, MNT } from '../sys/ffi.js';
import { writeFileAtomic } from '../sys/atomic.js';
import { mountsUnder } from '../sys/mounts.js';
import type { Pod } from '../pod/api-types.js';
import { hostAllocatable } from '../host/node.js';
import { planVolume, planVolumes, signServiceAccountToken, tmpfsOptions, volumeError, type FileProjection, type VolumeContext, type VolumePlan } from '../pod/volume-plan.js';
import { writeAtomic } from './atomic-writer.js';
import { resolveSubPath } from './subpath.js';

export type { VolumeContext };

function isMountPoint(dir: string): boolean {
  return mountsUnder(dir).includes(dir);
}

export class VolumeManager {
  readonly root: string;
  private signingKey?: Buffer;

  constructor(opts: { root: string }) {
    this.root = opts.root;
  }

  podDir(uid: string): string {
    return join(this.root, 'pods', uid);
  }

  volumesDir(uid: string): string {
    return join(this.podDir(uid), 'volumes');
  }

  /** Materialise every volume of the pod; returns name → host path. On failure nothing new is left behind. */
  async setUp(pod: Pod, ctx: VolumeContext): Promise<Record<string, string>> {
    const uid = pod.metadata.uid!;
    const plans = planVolumes(pod, withHost(ctx)); // every object and key checked before anything is created
    const existed = existsSync(this.volumesDir(uid));
    mkdirSync(join(this.root, 'pods'), { recursive: true, mode: 0o750 });
    mkdirSync(this.podDir(uid), { recursive: true, mode: 0o750 });
    chmodSync(this.podDir(uid), 0o750);
    const paths: Record<string, string> = {};
    try {
      for (const plan of plans) paths[plan.name] = this.apply(pod, plan, ctx);
    } catch (e) {
      if (!existed) await this.tearDown(uid);
      throw e;
    }
    return paths;
  }

  /** Re-project configMap/secret/downwardAPI/projected volumes (atomic swap) after their sources changed. */
  async update(pod: Pod, ctx: VolumeContext): Promise<void> {
    const host = withHost(ctx);
    const plans = (pod.spec.volumes ?? []).filter((v) => !v.emptyDir && !v.hostPath).map((v) => planVolume(pod, v, host));
    for (const plan of plans) this.apply(pod, plan, ctx);
  }

  /** Safe host path for a volumeMount subPath (see subpath.ts). */
  resolveSubPath(volumePath: string, subPath: string): string {
    return resolveSubPath(volumePath, subPath);
  }

  async tearDown(uid: string): Promise<void> {
    const dir = this.volumesDir(uid);
    if (existsSync(dir)) {
      for (const mp of mountsUnder(dir)) {
        try {
          umount2(mp, MNT.DETACH);
        } catch (e) {
          throw new NodeletError('Internal', 'ERR_VOLUME_UNMOUNT', `cannot unmount ${mp}: ${(e as Error).message}`, { cause: e });
        }
      }
      const left = mountsUnder(dir);
      if (left.length) throw new NodeletError('Internal', 'ERR_VOLUME_UNMOUNT', `mounts remain under ${dir}: ${left.join(', ')}; not removing it`);
      rmSync(dir, { recursive: true, force: true });
    }
    try {
      if (readdirSync(this.podDir(uid)).length === 0) rmdirSync(this.podDir(uid));
    } catch {
      /* absent or not empty: the pod's other state stays with its owner */
    }
  }

  private mountTmpfs(dir: string, sizeBytes: number | undefined, mode: number): void {
    mkdirSync(dir, { recursive: true });
    if (isMountPoint(dir)) return;
    mount('tmpfs', dir, 'tmpfs', MS.NOSUID | MS.NODEV, tmpfsOptions(sizeBytes, mode));
  }

  /** Carry out one volume's plan; returns its host path. */
  private apply(pod: Pod, plan: VolumePlan, ctx: VolumeContext): string {
    if (plan.kind === 'hostPath') {
      checkHostPath(plan.name, plan.path, plan.type);
      return plan.path;
    }
    const dir = join(this.volumesDir(pod.metadata.uid!), plan.kindDir, plan.name);
    if (plan.kind === 'emptyDir') {
      if (plan.tmpfs) this.mountTmpfs(dir, plan.tmpfs.sizeBytes, 0o777);
      else mkdirSync(dir, { recursive: true });
      if (plan.gid !== undefined) chownSync(dir, 0, plan.gid);
      chmodSync(dir, plan.mode); // after chown, which clears setgid
      return dir;
    }
    if (plan.tmpfs) this.mountTmpfs(dir, undefined, 0o755);
    else mkdirSync(dir, { recursive: true });
    const payload: Record<string, FileProjection> = {};
    for (const [p, f] of Object.entries(plan.files)) {
      // a token from the pod's source (cluster mode: the TokenRequest API) when it has one for this audience and expiration, else a local one
      const api = 'token' in f ? ctx.objects.serviceAccountTokens?.find((t) => t.audience === (f.token.audience ?? '') && t.expirationSeconds === f.token.expirationSeconds) : undefined;
      payload[p] = 'token' in f ? { data: Buffer.from(api ? api.token : this.token(pod, f.token.audience, f.token.expirationSeconds, ctx.now ?? new Date())), mode: f.mode } : f;
    }
    writeAtomic(dir, payload, { gid: plan.gid });
    return dir;
  }

  /**
   * A local service-account token (signServiceAccountToken) signed with a key
   * private to this node, <root>/sa-signing.key (0600, created on first use,
   * atomically and exclusively: a crash never leaves a partial key, and a key
   * another writer created first is the one used).
   */
  token(pod: Pod, audience: string | undefined, expirationSeconds: number, now: Date): string {
    if (!this.signingKey) {
      const keyPath = join(this.root, 'sa-signing.key');
      if (existsSync(keyPath)) this.signingKey = readFileSync(keyPath);
      else {
        mkdirSync(this.root, { recursive: true });
        const key = randomBytes(32);
        try {
          writeFileAtomic(keyPath, key, { mode: 0o600, exclusive: true });
          this.signingKey = key;
        } catch (e) {
          if (!isNodeletError(e, 'ERR_FILE_EXISTS')) throw e;
          this.signingKey = readFileSync(keyPath);
        }
      }
    }
    return signServiceAccountToken(pod, audience, expirationSeconds, now, this.signingKey);
  }
}

/** The host's allocatable CPU and memory for resourceFieldRef limits, unless the caller gave them. */
function withHost(ctx: VolumeContext): VolumeContext {
  return ctx.nodeAllocatable ? ctx : { ...ctx, nodeAllocatable: hostAllocatable() };
}

/** kubelet's hostPath type checker. */
export function checkHostPath(volume: string, path: string, type: string): void {
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(path);
  } catch {
    st = undefined;
  }
  const fail = (what: string) => {
    throw volumeError('ERR_HOSTPATH_TYPE_CHECK', volume, `hostPath type check failed: ${path} ${what}`);
  };
  switch (type) {
    case '':
      return;
    case 'DirectoryOrCreate':
      if (!st) {
        mkdirSync(path, { recursive: true, mode: 0o755 });
        return;
      }
      if (!st.isDirectory()) fail('is not a directory');
      return;
    case 'Directory':
      if (!st) fail('does not exist');
      if (!st!.isDirectory()) fail('is not a directory');
      return;
    case 'FileOrCreate':
      if (!st) {
        try {
          closeSync(openSync(path, 'a', 0o644));
        } catch (e) {
          throw volumeError('ERR_HOSTPATH_TYPE_CHECK', volume, `cannot create file ${path}: ${(e as Error).message}`, e);
        }
        return;
      }
      if (!st.isFile()) fail('is not a file');
      return;
    case 'File':
      if (!st) fail('does not exist');
      if (!st!.isFile()) fail('is not a file');
      return;
    case 'Socket':
      if (!st || !st.isSocket()) fail('is not a socket file');
      return;
    case 'CharDevice':
      if (!st || !st.isCharacterDevice()) fail('is not a character device');
      return;
    case 'BlockDevice':
      if (!st || !st.isBlockDevice()) fail('is not a block device');
      return;
    default:
      throw volumeError('ERR_HOSTPATH_TYPE_CHECK', volume, `unsupported hostPath type "${type}"`);
  }
}
