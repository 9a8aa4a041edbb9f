// Node admission of what a pod asks of the host's security modules, as kubelet admits it:
//   AppArmor (pkg/security/apparmor/validate.go, the appArmorAdmitHandler): a pod that asks for a
//     profile other than Unconfined — spec.securityContext.appArmorProfile, a container's, or the
//     legacy annotation container.apparmor.security.beta.kubernetes.io/<container> — is rejected
//     with reason AppArmor and "Pod was rejected: Cannot enforce AppArmor: <why>" when the host cannot enforce it.
//     nodelet does not load or apply profiles itself, so on a host with AppArmor such a pod is
//     rejected too (saying so) rather than run unconfined in silence.
//   hostUsers: false (a user namespace per pod) is rejected the same way until nodelet maps ids.
import type { AppArmorProfile, Pod } from './api-types.js';

export const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

export interface Rejection {
  reason: string;
  message: string;
}

/** The profile a container runs with: its own field, the legacy annotation, then the pod's (kubelet's GetProfile). */
export function appArmorProfileOf(pod: Pod, container: string): AppArmorProfile | undefined {
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers, ...((pod.spec as { ephemeralContainers?: Pod['spec']['containers'] }).ephemeralContainers ?? [])];
  const own = all.find((c) => c.name === container)?.securityContext?.appArmorProfile;
  if (own) return own;
  const annotation = pod.metadata.annotations?.[APPARMOR_ANNOTATION_PREFIX + container];
  if (annotation !== undefined) {
    if (annotation === 'runtime/default') return { type: 'RuntimeDefault' };
    if (annotation === 'unconfined') return { type: 'Unconfined' };
    if (annotation.startsWith('localhost/')) return { type: 'Localhost', localhostProfile: annotation.slice('localhost/'.length) };
    return { type: 'Localhost', localhostProfile: '' }; // an invalid name: refused below, as kubelet refuses it
  }
  return pod.spec.securityContext?.appArmorProfile;
}

/** Who asks for a profile other than Unconfined (the first one), or undefined (kubelet's isRequired). */
function appArmorRequester(pod: Pod): { container: string; profile: AppArmorProfile } | undefined {
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    const p = appArmorProfileOf(pod, c.name);
    if (p && p.type !== 'Unconfined') return { container: c.name, profile: p };
  }
  return undefined;
}

const describeProfile = (p: AppArmorProfile) => (p.type === 'Localhost' ? `Localhost profile "${p.localhostProfile ?? ''}"` : p.type);

/** `hostAppArmor`: the host's AppArmor is enabled (src/host/security.ts appArmorEnabled). */
export function admitAppArmor(pod: Pod, hostAppArmor: boolean): Rejection | undefined {
  const r = appArmorRequester(pod);
  if (!r) return undefined;
  const why = !hostAppArmor
    ? 'AppArmor is not enabled on the host'
    : r.profile.type === 'Localhost' && !r.profile.localhostProfile?.trim()
      ? `invalid empty AppArmor profile name for container "${r.container}"`
      : `nodelet does not apply AppArmor profiles (container "${r.container}" asks for ${describeProfile(r.profile)}): set appArmorProfile type Unconfined, or run the pod on a kubelet node`;
  return { reason: 'AppArmor', message: `Pod was rejected: Cannot enforce AppArmor: ${why}` };
}

export function admitUserNamespaces(pod: Pod): Rejection | undefined {
  if (pod.spec.hostUsers !== false) return undefined;
  return {
    reason: 'UserNamespacesUnsupported',
    message: 'Pod was rejected: hostUsers: false asks for a user namespace per pod, which nodelet does not create yet: remove the field (or set hostUsers: true) to run the pod in the host\'s user namespace',
  };
}

/** Both, AppArmor first. */
export function admitSecurity(pod: Pod, hostAppArmor: boolean): Rejection | undefined {
  return admitAppArmor(pod, hostAppArmor) ?? admitUserNamespaces(pod);
}
