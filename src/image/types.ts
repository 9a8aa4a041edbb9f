// Public surface of the image subsystem, as used by the runtime and the pod
// layer. Implementations: src/image/service.ts (pull, store, import) and
// src/snapshot/ (unpack, overlay/copy snapshotters).

import type { Mount } from '../cri/types.js';
import type { Credentials } from './registry/auth.js';

/** A mount described as data (containerd's mount.Mount); defined in src/cri/types.ts, shared with src/snapshot. */
export type { Mount } from '../cri/types.js';

/** The parts of an OCI image config the agent uses. */
export interface ImageConfig {
  os: string;
  architecture: string;
  variant?: string;
  entrypoint?: string[];
  cmd?: string[];
  env: string[];
  workingDir?: string;
  user?: string;
  exposedPorts: string[];
  labels: Record<string, string>;
  stopSignal?: string;
  /** Uncompressed layer digests, base first. */
  diffIds: string[];
}

export interface ImageRecord {
  /** Image ID: the digest of the config blob ("sha256:..."), as docker/podman show it. */
  id: string;
  /** Digest of the manifest that was resolved for this platform. */
  manifestDigest: string;
  /** Normalized references pointing at this image ("docker.io/library/busybox:latest"). */
  names: string[];
  /** "name@sha256:..." forms (repo digests). */
  repoDigests: string[];
  config: ImageConfig;
  /** Chain IDs of the layer chain, base first (OCI image-spec "ChainID"). */
  chainIds: string[];
  /** Sum of compressed layer sizes. */
  size: number;
  created?: string;
  pulledAt: string;
}

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface PullProgress {
  ref: string;
  /** layer/config digest, or undefined for whole-image messages */
  digest?: string;
  phase: 'resolving' | 'waiting' | 'downloading' | 'verifying' | 'extracting' | 'done' | 'exists';
  current?: number;
  total?: number;
}

export interface PullOptions {
  /** "os/arch[/variant]"; default this host's. */
  platform?: string;
  /** "user:pass" */
  creds?: string;
  /** docker config.json / podman auth.json; default $REGISTRY_AUTH_FILE. */
  authFile?: string;
  /**
   * Credentials tried in this order before the node's own (creds / authFile / the default auth files): a
   * pod's image pull secrets that match the image (src/image/registry/keyring.ts), as kubelet passes them.
   */
  credentials?: Credentials[];
  /** Told which credentials the successful pull used (the same object as given or resolved; undefined: anonymous). */
  onCredentialsUsed?: (c: Credentials | undefined) => void;
  /** false allows plain HTTP and unverified TLS for non-loopback registries. */
  tlsVerify?: boolean;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
}

/** What the runtime needs from the image subsystem. */
export interface ImageProvider {
  /** Find an image by reference or ID (full or short hex prefix). */
  getImage(refOrId: string): Promise<ImageRecord | undefined>;
  /** Pull according to policy (Always / IfNotPresent / Never) and return the record. */
  ensureImage(ref: string, policy: PullPolicy, opts?: PullOptions): Promise<ImageRecord>;
  /**
   * Prepare a writable root filesystem for a container: returns the mounts
   * (an overlay of the image's layer chain plus a fresh upper/work dir, or a
   * bind of a copied tree where overlay is unavailable). `key` is unique per
   * container; the snapshot is registered as in use until removeRootfs(key).
   */
  prepareRootfs(key: string, imageId: string): Promise<Mount[]>;
  /** Remove the container's writable layer; idempotent. */
  removeRootfs(key: string): Promise<void>;
  /** Where the container `key` writes (its writable layer), for disk accounting; undefined if unknown. */
  writableDir?(key: string): string | undefined;
}
