// AppArmor and user-namespace admission (src/pod/security-admission.ts), appArmorEnabled (src/host/node.ts),
// and the validation of appArmorProfile and the legacy annotation.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from '../../../src/pod/api-types.js';
import { admitAppArmor, admitSecurity, admitUserNamespaces, appArmorProfileOf } from '../../../src/pod/security-admission.js';
import { appArmorEnabled } from '../../../src/host/node.js';
import { validatePod } from '../../../src/pod/validation.js';

const pod = (o: { spec?: Partial<Pod['spec']>; annotations?: Record<string, string>; c?: Pod['spec']['containers'][number]['securityContext'] } = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'default', uid: 'u', ...(o.annotations ? { annotations: o.annotations } : {}) },
  spec: { containers: [{ name: 'a', image: 'busybox', ...(o.c ? { securityContext: o.c } : {}) }, { name: 'b', image: 'busybox' }], ...o.spec },
});

describe('AppArmor admission', () => {
  it('needs nothing of the host when no container asks for a profile, or all are Unconfined', () => {
    expect(admitAppArmor(pod(), false)).toBeUndefined();
    expect(admitAppArmor(pod({ c: { appArmorProfile: { type: 'Unconfined' } } }), false)).toBeUndefined();
    expect(admitAppArmor(pod({ spec: { securityContext: { appArmorProfile: { type: 'Unconfined' } } }, annotations: { 'container.apparmor.security.beta.kubernetes.io/b': 'unconfined' } }), false)).toBeUndefined();
  });

  it('a profile on a host without AppArmor: rejected as kubelet rejects it (pod field, container field, annotation)', () => {
    const want = { reason: 'AppArmor', message: 'Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host' };
    expect(admitAppArmor(pod({ spec: { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } } }), false)).toEqual(want);
    expect(admitAppArmor(pod({ c: { appArmorProfile: { type: 'Localhost', localhostProfile: 'k8s-deny-write' } } }), false)).toEqual(want);
    expect(admitAppArmor(pod({ annotations: { 'container.apparmor.security.beta.kubernetes.io/b': 'runtime/default' } }), false)).toEqual(want);
  });

  it('on a host with AppArmor nodelet says it does not apply profiles, naming the container and profile', () => {
    const r = admitAppArmor(pod({ c: { appArmorProfile: { type: 'Localhost', localhostProfile: 'k8s-deny-write' } } }), true);
    expect(r?.reason).toBe('AppArmor');
    expect(r?.message).toContain('nodelet does not apply AppArmor profiles (container "a" asks for Localhost profile "k8s-deny-write")');
  });

  it('the container field wins over the annotation, which wins over the pod field (kubelet GetProfile)', () => {
    const p = pod({ spec: { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } }, annotations: { 'container.apparmor.security.beta.kubernetes.io/a': 'localhost/x', 'container.apparmor.security.beta.kubernetes.io/b': 'unconfined' }, c: { appArmorProfile: { type: 'Unconfined' } } });
    expect(appArmorProfileOf(p, 'a')).toEqual({ type: 'Unconfined' });
    expect(appArmorProfileOf(p, 'b')).toEqual({ type: 'Unconfined' });
    expect(admitAppArmor(p, false)).toBeUndefined();
    const q = pod({ spec: { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } }, annotations: { 'container.apparmor.security.beta.kubernetes.io/a': 'localhost/x' } });
    expect(appArmorProfileOf(q, 'a')).toEqual({ type: 'Localhost', localhostProfile: 'x' });
    expect(appArmorProfileOf(q, 'b')).toEqual({ type: 'RuntimeDefault' });
  });

  it('the host check reads the module parameter and securityfs', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aa-')) + '/';
    try {
      expect(appArmorEnabled(root)).toBe(false);
      fs.mkdirSync(`${root}sys/module/apparmor/parameters`, { recursive: true });
      fs.writeFileSync(`${root}sys/module/apparmor/parameters/enabled`, 'Y\n');
      expect(appArmorEnabled(root)).toBe(false); // no securityfs entry
      fs.mkdirSync(`${root}sys/kernel/security/apparmor`, { recursive: true });
      expect(appArmorEnabled(root)).toBe(true);
      fs.writeFileSync(`${root}sys/module/apparmor/parameters/enabled`, 'N\n');
      expect(appArmorEnabled(root)).toBe(false);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('user namespaces', () => {
  it('hostUsers: false is refused by name; true or unset runs', () => {
    expect(admitUserNamespaces(pod())).toBeUndefined();
    expect(admitUserNamespaces(pod({ spec: { hostUsers: true } }))).toBeUndefined();
    const r = admitUserNamespaces(pod({ spec: { hostUsers: false } }));
    expect(r?.reason).toBe('UserNamespacesUnsupported');
    expect(r?.message).toContain('hostUsers: false');
    expect(admitSecurity(pod({ spec: { hostUsers: false, securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } } }), false)?.reason).toBe('AppArmor');
  });
});

describe('validation', () => {
  const fields = (p: Pod) => validatePod(p).map((e) => `${e.field}: ${e.detail}`);
  it('appArmorProfile: type required and known; localhostProfile only and always with Localhost', () => {
    expect(fields(pod({ c: { appArmorProfile: { type: 'Localhost' } } }))).toEqual([expect.stringMatching(/^spec\.containers\[0\]\.securityContext\.appArmorProfile\.localhostProfile: must be set/)]);
    expect(fields(pod({ c: { appArmorProfile: { type: 'RuntimeDefault', localhostProfile: 'x' } } }))).toEqual([expect.stringMatching(/appArmorProfile\.localhostProfile: can only be set when AppArmor type is Localhost/)]);
    expect(fields(pod({ spec: { securityContext: { appArmorProfile: { type: 'Bogus' as never } } } }))).toEqual([expect.stringMatching(/^spec\.securityContext\.appArmorProfile\.type: /)]);
    expect(fields(pod({ c: { appArmorProfile: { type: 'Localhost', localhostProfile: 'ok' } } }))).toEqual([]);
  });
  it('the legacy annotation must name a profile', () => {
    expect(fields(pod({ annotations: { 'container.apparmor.security.beta.kubernetes.io/a': 'bogus' } }))).toEqual([expect.stringMatching(/^metadata\.annotations\[container\.apparmor\.security\.beta\.kubernetes\.io\/a\]: invalid AppArmor profile name/)]);
    for (const ok of ['runtime/default', 'unconfined', 'localhost/p']) expect(fields(pod({ annotations: { 'container.apparmor.security.beta.kubernetes.io/a': ok } }))).toEqual([]);
  });
});
