// Manifest and config parsing: OCI index / Docker manifest list, OCI manifest /
// Docker schema2; schema1 refused. Pure functions over bytes.
import { NodeletError, invalidArgument } from '../errors.js';
import { MEDIA } from './registry/client.js';
import type { Platform } from './registry/platform.js';
import type { ImageConfig } from './types.js';
import { validateDigest } from './reference.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  urls?: string[];
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'manifest'; mediaType: string; config: Descriptor; layers: Descriptor[] };

const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
]);

function badManifest(what: string, why: string): NodeletError {
  return invalidArgument('ERR_IMAGE_MANIFEST_INVALID', `invalid manifest ${what}: ${why}`);
}

function descriptor(d: unknown, what: string): Descriptor {
  const o = d as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw badManifest(what, 'descriptor is not an object');
  if (typeof o.digest !== 'string') throw badManifest(what, 'descriptor without digest');
  validateDigest(o.digest);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw badManifest(what, `descriptor ${o.digest} has no valid size`);
  const p = o.platform as Record<string, unknown> | undefined;
  return {
    mediaType: typeof o.mediaType === 'string' ? o.mediaType : '',
    digest: o.digest,
    size: o.size,
    ...(p && typeof p.os === 'string' && typeof p.architecture === 'string'
      ? { platform: { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}) } }
      : {}),
    ...(Array.isArray(o.urls) ? { urls: o.urls as string[] } : {}),
  };
}

/** Parses manifest bytes; `headerType` is the Content-Type the registry sent. */
export function parseManifest(bytes: Buffer, headerType: string, what: string): ParsedManifest {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw badManifest(what, 'not JSON');
  }
  const mt = (typeof j.mediaType === 'string' && j.mediaType) || headerType;
  if (j.schemaVersion === 1 || mt === MEDIA.dockerV1 || mt === MEDIA.dockerV1Signed) {
    throw new NodeletError(
      'FailedPrecondition',
      'ERR_IMAGE_SCHEMA1_UNSUPPORTED',
      `${what} uses the deprecated Docker schema 1 manifest format, which nodelet does not support: re-push it with a current docker, podman or skopeo`,
    );
  }
  if (Array.isArray(j.manifests) || mt === MEDIA.ociIndex || mt === MEDIA.dockerList) {
    if (!Array.isArray(j.manifests)) throw badManifest(what, 'index without manifests');
    return { kind: 'index', mediaType: mt || MEDIA.ociIndex, manifests: j.manifests.map((m) => descriptor(m, what)) };
  }
  if (j.config !== undefined && Array.isArray(j.layers)) {
    const layers = j.layers.map((l) => descriptor(l, what));
    for (const l of layers) {
      if (l.mediaType.includes('+encrypted')) throw badManifest(what, `layer ${l.digest} is encrypted (${l.mediaType}); nodelet cannot decrypt layers`);
      if (l.mediaType && !LAYER_TYPES.has(l.mediaType)) throw badManifest(what, `layer ${l.digest} has unsupported media type ${l.mediaType}`);
    }
    return { kind: 'manifest', mediaType: mt || MEDIA.ociManifest, config: descriptor(j.config, what), layers };
  }
  throw badManifest(what, `unsupported manifest type ${mt || '(none)'}`);
}

/** Parses an image config blob into the fields the agent uses. */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfig & { created?: string } {
  let j: Record<string, any>;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalidArgument('ERR_IMAGE_CONFIG_INVALID', `image config of ${what} is not JSON`);
  }
  const c = (j.config ?? {}) as Record<string, any>;
  const rootfs = j.rootfs as { type?: string; diff_ids?: unknown } | undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids)) throw invalidArgument('ERR_IMAGE_CONFIG_INVALID', `image config of ${what} has no rootfs.diff_ids`);
  const diffIds = rootfs.diff_ids.map((d) => {
    if (typeof d !== 'string') throw invalidArgument('ERR_IMAGE_CONFIG_INVALID', `image config of ${what}: bad diff_id`);
    return validateDigest(d);
  });
  const strs = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined);
  const entrypoint = strs(c.Entrypoint);
  const cmd = strs(c.Cmd);
  return {
    os: typeof j.os === 'string' ? j.os : 'linux',
    architecture: typeof j.architecture === 'string' ? j.architecture : '',
    ...(typeof j.variant === 'string' ? { variant: j.variant } : {}),
    ...(entrypoint ? { entrypoint } : {}),
    ...(cmd ? { cmd } : {}),
    env: strs(c.Env) ?? [],
    ...(typeof c.WorkingDir === 'string' && c.WorkingDir ? { workingDir: c.WorkingDir } : {}),
    ...(typeof c.User === 'string' && c.User ? { user: c.User } : {}),
    exposedPorts: c.ExposedPorts && typeof c.ExposedPorts === 'object' ? Object.keys(c.ExposedPorts).sort() : [],
    labels: c.Labels && typeof c.Labels === 'object' ? { ...c.Labels } : {},
    ...(typeof c.StopSignal === 'string' && c.StopSignal ? { stopSignal: c.StopSignal } : {}),
    diffIds,
    ...(typeof j.created === 'string' ? { created: j.created } : {}),
  };
}
