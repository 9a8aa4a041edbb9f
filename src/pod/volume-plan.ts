// What each pod volume should hold, decided without touching the host (the
// pure half of kubelet's volume plugins): the kubelet directory kind, whether
// it lives on a tmpfs and how large, the emptyDir mode, and for configMap,
// secret, downwardAPI and projected volumes the file set with modes (kubelet's
// MakePayload: key-to-path mapping, defaultMode / per-item mode, |0440 with
// fsGroup). src/volumes/manager.ts carries a plan out on the host.

import { createHmac } from 'node:crypto';
import { NodeletError, type ErrorCode } from '../errors.js';
import type { ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, PodObjects, Secret, Volume } from './api-types.js';
import { podFieldValue, resourceFieldValue } from './env.js';
import { podResources } from './qos.js';
import { quantityValue } from './quantity.js';

export interface VolumeContext {
  objects: PodObjects;
  podIPs?: string[];
  hostIPs?: string[];
  nodeName?: string;
  /** For resourceFieldRef limits of containers without one (the I/O side fills in the host's). */
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

export type VolumeKind = keyof typeof KIND_DIRS;

/** One file of a volume: content and permission bits. */
export interface FileProjection {
  data: Buffer;
  mode: number;
}

/** A projected serviceAccountToken file: the I/O side signs it with the node's key (signServiceAccountToken). */
export interface TokenProjection {
  token: { audience?: string; expirationSeconds: number };
  mode: number;
}

export type PlannedFile = FileProjection | TokenProjection;

export type VolumePlan =
  | { name: string; kind: 'hostPath'; path: string; type: string }
  | {
      name: string;
      kind: 'emptyDir';
      kindDir: string;
      /** medium Memory: a tmpfs of this size (undefined: no size option) */
      tmpfs?: { sizeBytes: number | undefined };
      /**
       * 0777 (a tmpfs: 01777, the mode of a tmpfs root kubelet mounts without a mode option), with setgid and
       * group `gid` when the pod has an fsGroup (SetVolumeOwnership adds g+s to the volume's mode): 02777 / 03777
       */
      mode: number;
      gid?: number;
    }
  | {
      name: string;
      kind: 'configMap' | 'secret' | 'downwardAPI' | 'projected';
      kindDir: string;
      /** secret, downwardAPI and projected: own tmpfs (nosuid,nodev,mode=0755) so their bytes never reach a disk */
      tmpfs: boolean;
      files: Record<string, PlannedFile>;
      gid?: number;
    };

export function volumeError(code: ErrorCode, volume: string, message: string, cause?: unknown): NodeletError {
  return new NodeletError('FailedPrecondition', code, `volume "${volume}": ${message}`, { cause, details: { volume } });
}

/** The data of a tmpfs mount: `mode=0755[,size=N]`. */
export function tmpfsOptions(sizeBytes: number | undefined, mode: number): string {
  const opts = [`mode=${mode.toString(8).padStart(4, '0')}`];
  if (sizeBytes !== undefined && sizeBytes > 0) opts.push(`size=${sizeBytes}`);
  return opts.join(',');
}

function findObj<T extends ConfigMap | Secret>(list: T[], pod: Pod, name: string): T | undefined {
  const ns = pod.metadata.namespace ?? 'default';
  return list.find((o) => o.metadata?.name === name && (o.metadata?.namespace ?? 'default') === ns);
}

export function configMapData(c: ConfigMap): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(c.data ?? {})) out[k] = Buffer.from(v, 'utf8');
  for (const [k, v] of Object.entries(c.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

export function secretData(s: Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
  for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v, 'utf8');
  return out;
}

/** kubelet MakePayload: all keys, or the listed items (a missing key is an error unless optional). */
export function projectKeys(
  volume: string,
  kind: string,
  data: Record<string, Buffer>,
  items: KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean | undefined,
  fsGroup: number | undefined,
): Record<string, FileProjection> {
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

/** downwardAPI items: fieldRef / resourceFieldRef values as files. */
export function downwardFiles(pod: Pod, items: DownwardAPIVolumeFile[] | undefined, defaultMode: number, ctx: VolumeContext, fsGroup: number | undefined): Record<string, FileProjection> {
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

/** The plan for one volume; throws ERR_VOLUME_* (FailedPrecondition) for missing objects or keys. */
export function planVolume(pod: Pod, v: Volume, ctx: VolumeContext): VolumePlan {
  const fsGroup = pod.spec.securityContext?.fsGroup;
  const gid = fsGroup !== undefined ? { gid: fsGroup } : {};
  if (v.hostPath) return { name: v.name, kind: 'hostPath', path: v.hostPath.path, type: v.hostPath.type ?? '' };
  if (v.emptyDir) {
    // kubelet: emptyDir is world-writable so any container user can use it
    const memory = v.emptyDir.medium === 'Memory';
    const sizeBytes = memory ? (v.emptyDir.sizeLimit !== undefined ? quantityValue(v.emptyDir.sizeLimit) : podResources(pod).memoryLimitBytes) : undefined;
    return { name: v.name, kind: 'emptyDir', kindDir: KIND_DIRS.emptyDir, ...(memory ? { tmpfs: { sizeBytes } } : {}), mode: (memory ? 0o1777 : 0o777) | (fsGroup !== undefined ? 0o2000 : 0), ...gid };
  }
  if (v.configMap) {
    const cm = findObj(ctx.objects.configMaps, pod, v.configMap.name);
    if (!cm && !v.configMap.optional) throw volumeError('ERR_VOLUME_CONFIGMAP_NOT_FOUND', v.name, `configmap "${v.configMap.name}" not found`);
    const files = cm ? projectKeys(v.name, 'configmap', configMapData(cm), v.configMap.items, v.configMap.defaultMode ?? 0o644, v.configMap.optional, fsGroup) : {};
    return { name: v.name, kind: 'configMap', kindDir: KIND_DIRS.configMap, tmpfs: false, files, ...gid };
  }
  if (v.secret) {
    const s = findObj(ctx.objects.secrets, pod, v.secret.secretName);
    if (!s && !v.secret.optional) throw volumeError('ERR_VOLUME_SECRET_NOT_FOUND', v.name, `secret "${v.secret.secretName}" not found`);
    const files = s ? projectKeys(v.name, 'secret', secretData(s), v.secret.items, v.secret.defaultMode ?? 0o644, v.secret.optional, fsGroup) : {};
    return { name: v.name, kind: 'secret', kindDir: KIND_DIRS.secret, tmpfs: true, files, ...gid };
  }
  if (v.downwardAPI) {
    const files = downwardFiles(pod, v.downwardAPI.items, v.downwardAPI.defaultMode ?? 0o644, ctx, fsGroup);
    return { name: v.name, kind: 'downwardAPI', kindDir: KIND_DIRS.downwardAPI, tmpfs: true, files, ...gid };
  }
  if (v.projected) {
    const mode = v.projected.defaultMode ?? 0o644;
    const files: Record<string, PlannedFile> = {};
    for (const src of v.projected.sources ?? []) {
      if (src.configMap) {
        const cm = findObj(ctx.objects.configMaps, pod, src.configMap.name);
        if (!cm && !src.configMap.optional) throw volumeError('ERR_VOLUME_CONFIGMAP_NOT_FOUND', v.name, `configmap "${src.configMap.name}" not found`);
        if (cm) Object.assign(files, projectKeys(v.name, 'configmap', configMapData(cm), src.configMap.items, mode, src.configMap.optional, fsGroup));
      }
      if (src.secret) {
        const s = findObj(ctx.objects.secrets, pod, src.secret.name);
        if (!s && !src.secret.optional) throw volumeError('ERR_VOLUME_SECRET_NOT_FOUND', v.name, `secret "${src.secret.name}" not found`);
        if (s) Object.assign(files, projectKeys(v.name, 'secret', secretData(s), src.secret.items, mode, src.secret.optional, fsGroup));
      }
      if (src.downwardAPI) Object.assign(files, downwardFiles(pod, src.downwardAPI.items, mode, ctx, fsGroup));
      if (src.serviceAccountToken) {
        const t = src.serviceAccountToken;
        files[t.path] = { token: { audience: t.audience, expirationSeconds: t.expirationSeconds ?? 3600 }, mode: fsGroup !== undefined ? 0o640 : 0o600 };
      }
    }
    return { name: v.name, kind: 'projected', kindDir: KIND_DIRS.projected, tmpfs: true, files, ...gid };
  }
  throw volumeError('ERR_VOLUME_UNSUPPORTED', v.name, 'no supported volume source');
}

/** Plans for every volume of the pod (all checked before anything is created on the host). */
export function planVolumes(pod: Pod, ctx: VolumeContext): VolumePlan[] {
  return (pod.spec.volumes ?? []).map((v) => planVolume(pod, v, ctx));
}

/**
 * A local service-account token: an HS256 JWT (`iss: nodelet`, `sub:
 * system:serviceaccount:<ns>:<sa>`, `aud`, `exp`, `kubernetes.io` claims)
 * signed with `key`, a secret private to this node. Nothing outside this node
 * verifies it: it exists so programs that expect the file find one.
 */
export function signServiceAccountToken(pod: Pod, audience: string | undefined, expirationSeconds: number, now: Date, key: Buffer): string {
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
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
