// Seccomp for containers: which profile applies (RuntimeDefault, Localhost,
// Unconfined; privileged = none, as kubelet and containerd do) and the filter
// it compiles to. The shim installs the bytes unchanged (native/seccomp.c).

import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument, NodeletError } from '../../errors.js';
import { compileProfile } from './compile.js';
import { runtimeDefaultProfile } from './default-profile.js';
import { parseProfile, type SeccompProfile } from './profile.js';

export { compileProfile, MAX_INSTRUCTIONS, type CompiledFilter, type CompileContext } from './compile.js';
export { runtimeDefaultProfile } from './default-profile.js';
export { normalizeProfile, parseProfile, type SeccompProfile } from './profile.js';

export type SeccompProfileType = 'RuntimeDefault' | 'Unconfined' | 'Localhost';

export interface SeccompSpec {
  type: SeccompProfileType;
  /** Localhost: a path relative to <root>/seccomp (kubelet's seccomp profile root) */
  localhostProfile?: string;
}

/** kubelet's seccomp profile root under the state root (/var/lib/kubelet/seccomp). */
export const seccompProfileRoot = (root: string) => path.join(root, 'seccomp');

function loadError(file: string, rel: string, why: string, cause?: unknown): NodeletError {
  return invalidArgument('ERR_SECCOMP_PROFILE_LOAD', `Cannot load seccomp profile "${file}" (localhostProfile "${rel}"): ${why}`, {
    cause, details: { localhostProfile: rel, file },
  });
}

/** The file of a Localhost profile: relative, inside the profile root also after symlinks. */
export function resolveLocalhostProfile(root: string | undefined, rel: string | undefined): string {
  const name = rel ?? '';
  if (!root) throw loadError(name, name, 'nodelet has no state root to resolve Localhost seccomp profiles in');
  const dir = seccompProfileRoot(root);
  const file = path.join(dir, name);
  if (name === '' || path.isAbsolute(name) || name.split('/').includes('..')) {
    throw loadError(file, name, 'localhostProfile must be a relative path without ".." under the seccomp profile root ' + dir);
  }
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw loadError(file, name, `no such file (put the profile under ${dir})`);
    throw loadError(file, name, (e as Error).message, e);
  }
  const realDir = fs.realpathSync(dir);
  if (!real.startsWith(realDir + path.sep)) throw loadError(file, name, `resolves to ${real}, outside ${dir}`);
  return real;
}

/** Read and parse a Localhost profile (I/O; the runtime calls it before computing the plan). */
export function loadLocalhostProfile(root: string | undefined, rel: string | undefined): SeccompProfile {
  const file = resolveLocalhostProfile(root, rel);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw loadError(file, rel ?? '', (e as Error).message, e);
  }
  try {
    return parseProfile(text, `"${file}"`);
  } catch (e) {
    throw loadError(file, rel ?? '', (e as Error).message.replace(/^seccomp profile "[^"]*": /, ''), e);
  }
}

/** The Localhost profile a container needs loaded, if any (privileged containers need none). */
export function loadSeccompFor(security: { privileged: boolean; seccomp?: SeccompSpec }, root: string | undefined): SeccompProfile | undefined {
  const s = security.seccomp;
  if (security.privileged || s?.type !== 'Localhost') return undefined;
  return loadLocalhostProfile(root, s.localhostProfile);
}

export interface SeccompFilterInput {
  spec?: SeccompSpec;
  privileged: boolean;
  /** the container's effective capabilities */
  capabilities: bigint;
  /** the loaded Localhost profile (loadSeccompFor) */
  localhost?: SeccompProfile;
  hostArch?: string;
  kernelRelease?: string;
}

/** The filter as hex (the plan's `seccomp`), or undefined for none. Pure. */
export function computeSeccompFilter(inp: SeccompFilterInput): string | undefined {
  const s = inp.spec;
  if (inp.privileged || !s || s.type === 'Unconfined') return undefined;
  let profile: SeccompProfile;
  let source: string;
  if (s.type === 'RuntimeDefault') {
    profile = runtimeDefaultProfile();
    source = 'RuntimeDefault';
  } else if (s.type === 'Localhost') {
    if (!inp.localhost) throw invalidArgument('ERR_SECCOMP_PROFILE_LOAD', `Localhost seccomp profile "${s.localhostProfile ?? ''}" was not loaded`);
    profile = inp.localhost;
    source = `localhost/${s.localhostProfile}`;
  } else {
    throw invalidArgument('ERR_SECCOMP_PROFILE_INVALID', `seccomp profile type "${String((s as SeccompSpec).type)}" is not RuntimeDefault, Localhost or Unconfined`);
  }
  const ctx = { hostArch: inp.hostArch ?? process.arch, capabilities: inp.capabilities, kernelRelease: inp.kernelRelease };
  return compileProfile(profile, ctx, source).program.toString('hex');
}
