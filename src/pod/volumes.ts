// Pod volumes on the host, like kubelet's volume plugins: each volume is
// materialised under <root>/pods/<uid>/volumes/kubernetes.io~<kind>/<name>
// (hostPath volumes are the host path itself) and setUp returns
// volume name → host path for the container mounts.
//
//  emptyDir   a directory; medium Memory → a tmpfs (size = sizeLimit, else
//             the pod's memory limit when every container has one). Disk
//             sizeLimit is not enforced (kubelet enforces it by eviction).
//  hostPath   type checks as kubelet's (DirectoryOrCreate, Directory,
//             FileOrCreate, File, Socket, CharDevice, BlockDevice, "").
//  configMap  files written with the atomic writer (..data symlink swap).
//  secret     same, on a tmpfs: secret bytes never touch the disk.
//  downwardAPI, projected (configMap, secret, downwardAPI,
//             serviceAccountToken): on tmpfs too (they may hold secrets).
// tearDown unmounts every mount under the pod's volume dir, then removes it.

import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, openSync, closeSync, readdirSync, rmdirSync, writeSync, fsyncSync, renameSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { NodeletError } from '../errors.js';
import { mount, umount2, MS, MNT } from '../sys/ffi.js';
import type { ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, PodObjects, Secret, Volume } from './api-types.js';
import { writeAtomic, type FileProjection } from './atomic-writer.js';
import { podFieldValue, resourceFieldValue } from './env.js';
import { podResources } from './qos.js';
import { quantityValue } from './quantity.js';
import { resolveSubPath } from './subpath.js';

export interface VolumeContext {
  objects: PodObjects;
  podIPs?: string[];
  hostIPs?: string[];
  nodeName?: string;
  nodeAllocatable?: { cpuMilli: number; memoryBytes: number };
  now?: Date;
}

export const KIND_DIRS = {
  emptyDir: 'kubernetes.io~empty-dir',
  configMap: 'kubernetes.io~configmap',
  secret: 'kubernetes.io~secret',
  downwardAPI: 'kubernetes.io~downward-api',
  projected: 'kubernetes.io~projected',
} as const;

function volumeError(code: string, volume: string, message: string, cause?: unknown): NodeletError {
  return new NodeletError('FailedPrecondition', code, `volume "${volume}": ${message}`, { cause, details: { volume } });
}

/** Mount points (from /proc/self/mountinfo) at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

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
    const existed = existsSync(this.volumesDir(uid));
    mkdirSync(join(this.root, 'pods'), { recursive: true, mode: 0o750 });
    mkdirSync(this.podDir(uid), { recursive: true, mode: 0o750 });
    chmodSync(this.podDir(uid), 0o750);
    const paths: Record<string, string> = {};
    try {
      for (const v of pod.spec.volumes ?? []) paths[v.name] = this.setUpVolume(pod, v, ctx);
    } catch (e) {
      if (!existed) await this.tearDown(uid);
      throw e;
    }
    return paths;
  }

  /** Re-project configMap/secret/downwardAPI/projected volumes (atomic swap) after their sources changed. */
  async update(pod: Pod, ctx: VolumeContext): Promise<void> {
    for (const v of pod.spec.volumes ?? []) if (!v.emptyDir && !v.hostPath) this.setUpVolume(pod, v, ctx);
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

  private kindDir(uid: string, kind: keyof typeof KIND_DIRS, name: string): string {
    return join(this.volumesDir(uid), KIND_DIRS[kind], name);
  }

  private mountTmpfs(dir: string, sizeBytes: number | undefined, mode: number): void {
    mkdirSync(dir, { recursive: true });
    if (isMountPoint(dir)) return;
    const opts = [`mode=${mode.toString(8).padStart(4, '0')}`];
    if (sizeBytes !== undefined && sizeBytes > 0) opts.push(`size=${sizeBytes}`);
    mount('tmpfs', dir, 'tmpfs', MS.NOSUID | MS.NODEV, opts.join(','));
  }

  private setUpVolume(pod: Pod, v: Volume, ctx: VolumeContext): string {
    const uid = pod.metadata.uid!;
    const fsGroup = pod.spec.securityContext?.fsGroup;
    if (v.hostPath) {
      checkHostPath(v.name, v.hostPath.path, v.hostPath.type ?? '');
      return v.hostPath.path;
    }
    if (v.emptyDir) {
      const dir = this.kindDir(uid, 'emptyDir', v.name);
      if (v.emptyDir.medium === 'Memory') {
        const size = v.emptyDir.sizeLimit !== undefined ? quantityValue(v.emptyDir.sizeLimit) : podResources(pod).memoryLimitBytes;
        this.mountTmpfs(dir, size, 0o777);
      } else {
        mkdirSync(dir, { recursive: true });
      }
      chmodSync(dir, 0o777); // kubelet: emptyDir is world-writable so any container user can use it
      if (fsGroup !== undefined) {
        chownSync(dir, 0, fsGroup);
        chmodSync(dir, 0o2777);
      }
      return dir;
    }
    if (v.configMap) {
      const dir = this.kindDir(uid, 'configMap', v.name);
      const cm = findObj(ctx.objects.configMaps, pod, v.configMap.name);
      if (!cm && !v.configMap.optional) throw volumeError('ERR_VOLUME_CONFIGMAP_NOT_FOUND', v.name, `configmap "${v.configMap.name}" not found`);
      const payload = cm ? project(v.name, 'configmap', configMapData(cm), v.configMap.items, v.configMap.defaultMode ?? 0o644, v.configMap.optional, fsGroup) : {};
      writeAtomic(dir, payload, { gid: fsGroup });
      return dir;
    }
    if (v.secret) {
      const dir = this.kindDir(uid, 'secret', v.name);
      const s = findObj(ctx.objects.secrets, pod, v.secret.secretName);
      if (!s && !v.secret.optional) throw volumeError('ERR_VOLUME_SECRET_NOT_FOUND', v.name, `secret "${v.secret.secretName}" not found`);
      this.mountTmpfs(dir, undefined, 0o755);
      const payload = s ? project(v.name, 'secret', secretData(s), v.secret.items, v.secret.defaultMode ?? 0o644, v.secret.optional, fsGroup) : {};
      writeAtomic(dir, payload, { gid: fsGroup });
      return dir;
    }
    if (v.downwardAPI) {
      const dir = this.kindDir(uid, 'downwardAPI', v.name);
      this.mountTmpfs(dir, undefined, 0o755);
      writeAtomic(dir, downwardPayload(pod, v.downwardAPI.items, v.downwardAPI.defaultMode ?? 0o644, ctx, fsGroup), { gid: fsGroup });
      return dir;
    }
    if (v.projected) {
      const dir = this.kindDir(uid, 'projected', v.name);
      this.mountTmpfs(dir, undefined, 0o755);
      const mode = v.projected.defaultMode ?? 0o644;
      const payload: Record<string, FileProjection> = {};
      for (const src of v.projected.sources ?? []) {
        if (src.configMap) {
          const cm = findObj(ctx.objects.configMaps, pod, src.configMap.name);
          if (!cm && !src.configMap.optional) throw volumeError('ERR_VOLUME_CONFIGMAP_NOT_FOUND', v.name, `configmap "${src.configMap.name}" not found`);
          if (cm) Object.assign(payload, project(v.name, 'configmap', configMapData(cm), src.configMap.items, mode, src.configMap.optional, fsGroup));
        }
        if (src.secret) {
          const s = findObj(ctx.objects.secrets, pod, src.secret.name);
          if (!s && !src.secret.optional) throw volumeError('ERR_VOLUME_SECRET_NOT_FOUND', v.name, `secret "${src.secret.name}" not found`);
          if (s) Object.assign(payload, project(v.name, 'secret', secretData(s), src.secret.items, mode, src.secret.optional, fsGroup));
        }
        if (src.downwardAPI) Object.assign(payload, downwardPayload(pod, src.downwardAPI.items, mode, ctx, fsGroup));
        if (src.serviceAccountToken) {
          const t = src.serviceAccountToken;
          payload[t.path] = { data: Buffer.from(this.token(pod, t.audience, t.expirationSeconds ?? 3600, ctx.now ?? new Date())), mode: fsGroup !== undefined ? 0o640 : 0o600 };
        }
      }
      writeAtomic(dir, payload, { gid: fsGroup });
      return dir;
    }
    throw volumeError('ERR_VOLUME_UNSUPPORTED', v.name, 'no supported volume source');
  }

  /**
   * A local service-account token: an HS256 JWT signed with a key private to
   * this node (<root>/sa-signing.key). Nothing outside this node verifies it:
   * it exists so programs that expect the file find one with the usual claims.
   */
  token(pod: Pod, audience: string | undefined, expirationSeconds: number, now: Date): string {
    if (!this.signingKey) {
      const keyPath = join(this.root, 'sa-signing.key');
      if (existsSync(keyPath)) this.signingKey = readFileSync(keyPath);
      else {
        mkdirSync(this.root, { recursive: true });
        this.signingKey = randomBytes(32);
        const tmp = `${keyPath}.tmp-${process.pid}`;
        const fd = openSync(tmp, 'w', 0o600);
        try {
          writeSync(fd, this.signingKey);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, keyPath);
      }
    }
    const iat = Math.floor(now.getTime() / 1000);
    const ns = pod.metadata.namespace ?? 'default';
    const sa = pod.spec.serviceAccountName ?? 'default';
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const head = b64({ alg: 'HS256', typ: 'JWT' });
    const body = b64({
      iss: 'nodelet',
      sub: `system:serviceaccount:${ns}:${sa}`,
      aud: [audience || 'nodelet'],
      iat,
      nbf: iat,
      exp: iat + expirationSeconds,
      'kubernetes.io': { namespace: ns, pod: { name: pod.metadata.name, uid: pod.metadata.uid }, serviceaccount: { name: sa } },
    });
    const sig = createHmac('sha256', this.signingKey).update(`${head}.${body}`).digest('base64url');
    return `${head}.${body}.${sig}`;
  }
}

function findObj<T extends ConfigMap | Secret>(list: T[], pod: Pod, name: string): T | undefined {
  const ns = pod.metadata.namespace ?? 'default';
  return list.find((o) => o.metadata?.name === name && (o.metadata?.namespace ?? 'default') === ns);
}

function configMapData(c: ConfigMap): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(c.data ?? {})) out[k] = Buffer.from(v, 'utf8');
  for (const [k, v] of Object.entries(c.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

function secretData(s: Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
  for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v, 'utf8');
  return out;
}

/** kubelet MakePayload: all keys, or the listed items (a missing key is an error unless optional). */
function project(volume: string, kind: string, data: Record<string, Buffer>, items: KeyToPath[] | undefined, defaultMode: number, optional: boolean | undefined, fsGroup: number | undefined): Record<string, FileProjection> {
  const out: Record<string, FileProjection> = {};
  const withGroup = (m: number) => (fsGroup !== undefined ? m | 0o440 : m);
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) out[k] = { data: v, mode: withGroup(defaultMode) };
    return out;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (optional) continue;
      throw volumeError('ERR_VOLUME_KEY_NOT_FOUND', volume, `configured to use key "${it.key}" but the ${kind} has no such key`);
    }
    out[it.path] = { data: v, mode: withGroup(it.mode ?? defaultMode) };
  }
  return out;
}

function downwardPayload(pod: Pod, items: DownwardAPIVolumeFile[] | undefined, defaultMode: number, ctx: VolumeContext, fsGroup: number | undefined): Record<string, FileProjection> {
  const out: Record<string, FileProjection> = {};
  for (const it of items ?? []) {
    let value = '';
    if (it.fieldRef) value = podFieldValue(pod, it.fieldRef, ctx);
    else if (it.resourceFieldRef) value = resourceFieldValue(pod, undefined, it.resourceFieldRef, ctx);
    const mode = it.mode ?? defaultMode;
    out[it.path] = { data: Buffer.from(value), mode: fsGroup !== undefined ? mode | 0o440 : mode };
  }
  return out;
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
