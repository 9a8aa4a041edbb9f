// Pure path deciders for layer unpacking: how a tar entry name maps to a
// place under the layer root, and what an OCI whiteout name means. No I/O.

import { NodeletError } from '../errors.js';

export function unsafePath(entry: string, why: string): NodeletError {
  return new NodeletError('InvalidArgument', 'ERR_LAYER_UNSAFE_PATH', `Layer entry "${entry}" refused: ${why}; the layer is hostile or corrupt, nothing was kept`, {
    details: { entry, reason: why },
  });
}

/**
 * Clean a tar entry name into path components relative to the layer root.
 * Policy (documented in docs/snapshot.md): absolute names are refused (docker
 * and containerd silently re-root them; we refuse, a registry image never has
 * them); "." components and repeated slashes are dropped; ".." is resolved
 * lexically and refused if it would climb above the root; NUL bytes refused.
 * Returns [] for the root itself ("./", ".").
 */
export function cleanEntryPath(name: string): string[] {
  if (name.includes('\0')) throw unsafePath(name, 'the name contains a NUL byte');
  if (name.startsWith('/')) throw unsafePath(name, 'absolute names are not allowed in a layer');
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw unsafePath(name, 'the path climbs out of the layer root with ".."');
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out;
}

/**
 * Resolve a hardlink target name. Tar stores link targets relative to the
 * archive root (not to the link), so the same rules as entry names apply.
 */
export function cleanLinkTarget(entry: string, linkname: string): string[] {
  try {
    const parts = cleanEntryPath(linkname);
    if (parts.length === 0) throw unsafePath(entry, `hardlink target "${linkname}" is the layer root`);
    return parts;
  } catch (e) {
    if (e instanceof NodeletError && e.code === 'ERR_LAYER_UNSAFE_PATH' && e.details.entry !== entry) {
      throw unsafePath(entry, `hardlink target "${linkname}" is outside the layer (${String(e.details.reason)})`);
    }
    throw e;
  }
}

/**
 * Would a symlink stored at `parts` with target `target` point outside the
 * root when resolved lexically from its own directory? Absolute targets are
 * container-relative (resolved inside the rootfs by the runtime), so they are
 * inside by definition.
 */
export function symlinkEscapes(parts: readonly string[], target: string): boolean {
  if (target.startsWith('/')) return false;
  const stack = parts.slice(0, -1);
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (stack.length === 0) return true;
      stack.pop();
    } else stack.push(p);
  }
  return false;
}

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

export type WhiteoutKind =
  | { kind: 'none' }
  | { kind: 'opaque' }
  /** aufs bookkeeping entries (.wh..wh.plnk, .wh..wh.aufs): ignored, like containerd */
  | { kind: 'meta' }
  | { kind: 'whiteout'; name: string };

/** What the basename of a tar entry means under the OCI whiteout rules. */
export function classifyWhiteout(entry: string, base: string): WhiteoutKind {
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'none' };
  if (base === WHITEOUT_OPAQUE) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw unsafePath(entry, `whiteout names an invalid file "${name}"`);
  }
  return { kind: 'whiteout', name };
}

/** Compression of a layer blob, decided from its media type (null: not told). */
export type Compression = 'gzip' | 'zstd' | 'none';

export function compressionFromMediaType(mediaType: string): Compression | null {
  const mt = mediaType.toLowerCase().trim();
  if (mt.endsWith('+gzip') || mt.endsWith('.tar.gzip') || mt === 'application/x-gzip' || mt === 'application/gzip') return 'gzip';
  if (mt.endsWith('+zstd') || mt.endsWith('.tar.zstd')) return 'zstd';
  if (mt.endsWith('.tar') || mt === 'application/vnd.docker.image.rootfs.diff.tar' || mt === 'application/x-tar') return 'none';
  return null;
}

/** Magic-byte sniffing, the fallback when the media type says nothing useful. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
