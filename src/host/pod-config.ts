// The pod core's config builders (src/pod/container-config.ts) with this
// host's inputs filled in where the caller gave none: the host's resolv.conf
// and hostname for the sandbox, allocatable resources and on-disk subPath
// resolution for containers.

import type { ContainerConfigInput, BuiltContainerConfig, SandboxConfigInput } from '../pod/container-config.js';
import { buildContainerConfig, buildSandboxConfig } from '../pod/container-config.js';
import type { Pod } from '../pod/api-types.js';
import type { PodSandboxConfig } from '../runtime/types.js';
import { resolveSubPath } from '../volumes/subpath.js';
import { hostAllocatable, nodeHostname, readHostResolvConf } from './node.js';

/** buildSandboxConfig with the host's resolv.conf (readHostResolvConf) and hostname unless given. */
export function sandboxConfigForHost(pod: Pod, opts: Partial<SandboxConfigInput> = {}): PodSandboxConfig {
  return buildSandboxConfig(pod, { hostResolvConf: opts.hostResolvConf ?? readHostResolvConf(), nodeHostname: opts.nodeHostname ?? nodeHostname() });
}

/** buildContainerConfig with this node's allocatable resources and resolveSubPath (src/volumes/subpath.ts) unless given. */
export function containerConfigForHost(input: Omit<ContainerConfigInput, 'subPathResolver'> & Partial<Pick<ContainerConfigInput, 'subPathResolver'>>): BuiltContainerConfig {
  return buildContainerConfig({ ...input, nodeAllocatable: input.nodeAllocatable ?? hostAllocatable(), subPathResolver: input.subPathResolver ?? resolveSubPath });
}
