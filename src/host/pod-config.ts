// The pod core's config builders (src/pod/container-config.ts) with this
// host's inputs filled in where the caller gave none: the host's resolv.conf
// and hostname for the sandbox, allocatable resources and on-disk subPath
// resolution for containers.

import type { ContainerConfigInput, BuiltContainerConfig, SandboxConfigInput } from '../pod/container-config.js';
import { buildContainerConfig, buildSandboxConfig } from '../pod/container-config.js';
import type { Pod } from '../pod/api-types.js';
import type { PodSandboxConfig } from '../runtime/types.js';
import fs from 'node:fs';
import path from 'node:path';
import { resolveSubPath } from '../volumes/subpath.js';
import { hostAllocatable, nodeHostname, readHostResolvConf } from './node.js';

/** buildSandboxConfig with the host's resolv.conf (readHostResolvConf) and hostname unless given. */
export function sandboxConfigForHost(pod: Pod, opts: Partial<SandboxConfigInput> = {}): PodSandboxConfig {
  return buildSandboxConfig(pod, { ...opts, hostResolvConf: opts.hostResolvConf ?? readHostResolvConf(), nodeHostname: opts.nodeHostname ?? nodeHostname() });
}

/** buildContainerConfig with this node's allocatable resources, resolveSubPath (src/volumes/subpath.ts) and readVolumeFile unless given. */
export function containerConfigForHost(input: Omit<ContainerConfigInput, 'subPathResolver'> & Partial<Pick<ContainerConfigInput, 'subPathResolver'>>): BuiltContainerConfig {
  return buildContainerConfig({ ...input, nodeAllocatable: input.nodeAllocatable ?? hostAllocatable(), subPathResolver: input.subPathResolver ?? resolveSubPath, readVolumeFile: input.readVolumeFile ?? readVolumeFile });
}

/**
 * A file of a volume for fileKeyRef, as kubelet's securejoin.SecureJoin: symlinks (written by the pod's
 * containers) are resolved inside the volume, never outside it. At most 1 MiB is read.
 */
export function readVolumeFile(volumeHostPath: string, relPath: string): { path: string; text: string } {
  const root = fs.realpathSync(volumeHostPath);
  let cur = root;
  const parts = relPath.split('/').filter((p) => p && p !== '.');
  for (let hops = 0; parts.length; ) {
    const part = parts.shift()!;
    if (part === '..') {
      if (cur !== root) cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, part);
    let target: string | undefined;
    try { target = fs.readlinkSync(next); } catch { /* not a link (or missing: the open below fails) */ }
    if (target === undefined) { cur = next; continue; }
    if (++hops > 255) throw new Error(`too many symlinks in ${relPath}`);
    if (path.isAbsolute(target)) cur = root;
    parts.unshift(...target.split('/').filter((p) => p && p !== '.'));
  }
  const fd = fs.openSync(cur, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(1 << 20);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return { path: cur, text: buf.subarray(0, n).toString('utf8') };
  } finally {
    fs.closeSync(fd);
  }
}
