import { describe, expect, it } from 'vitest';
import { planVolume, planVolumes, signServiceAccountToken, tmpfsOptions, KIND_DIRS, type FileProjection } from '../../../src/pod/volume-plan.js';
import { applyDefaults } from '../../../src/pod/manifest.js';
import type { ConfigMap, Pod, Secret, Volume } from '../../../src/pod/api-types.js';
import { isNodeletError } from '../../../src/errors.js';

const pod = (volumes: Volume[], extra: Partial<Pod['spec']> = {}): Pod =>
  applyDefaults({ metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'busybox', resources: { limits: { memory: '32Mi' } } }, { name: 'side', image: 'busybox' }], volumes, ...extra } });
const secret: Secret = { metadata: { name: 'creds', namespace: 'default' }, data: { pw: Buffer.from('hunter2').toString('base64') }, stringData: { user: 'bob' } };
const cm: ConfigMap = { metadata: { name: 'cfg', namespace: 'default' }, data: { a: '1' }, binaryData: { b: Buffer.from([0, 1]).toString('base64') } };
const objects = { configMaps: [cm], secrets: [secret] };
const text = (f: unknown) => (f as FileProjection).data.toString('utf8');

describe('planVolume', () => {
  it('secret: on tmpfs, items map keys to paths with their modes', () => {
    const p = pod([{ name: 's', secret: { secretName: 'creds', defaultMode: 0o400, items: [{ key: 'pw', path: 'dir/password' }, { key: 'user', path: 'u', mode: 0o600 }] } }]);
    const plan = planVolume(p, p.spec.volumes![0]!, { objects });
    expect(plan).toMatchObject({ kind: 'secret', kindDir: KIND_DIRS.secret, tmpfs: true });
    if (plan.kind !== 'secret') throw new Error('kind');
    expect(Object.keys(plan.files)).toEqual(['dir/password', 'u']);
    expect([text(plan.files['dir/password']), plan.files['dir/password']!.mode]).toEqual(['hunter2', 0o400]);
    expect([text(plan.files.u), plan.files.u!.mode]).toEqual(['bob', 0o600]);
  });
  it('configMap: every key (data and binaryData) with defaultMode, on disk; fsGroup adds 0440 and the gid', () => {
    const p = pod([{ name: 'c', configMap: { name: 'cfg' } }], { securityContext: { fsGroup: 2000 } });
    const plan = planVolume(p, p.spec.volumes![0]!, { objects });
    expect(plan).toMatchObject({ kind: 'configMap', tmpfs: false, gid: 2000 });
    if (plan.kind !== 'configMap') throw new Error('kind');
    expect(plan.files.a).toEqual({ data: Buffer.from('1'), mode: 0o644 | 0o440 });
    expect(plan.files.b).toEqual({ data: Buffer.from([0, 1]), mode: 0o644 | 0o440 });
  });
  it('missing objects and keys: errors unless optional', () => {
    const missing = pod([{ name: 's', secret: { secretName: 'nope' } }]);
    expect(() => planVolume(missing, missing.spec.volumes![0]!, { objects })).toThrow(/volume "s": secret "nope" not found/);
    const key = pod([{ name: 'c', configMap: { name: 'cfg', items: [{ key: 'zz', path: 'z' }] } }]);
    try {
      planVolume(key, key.spec.volumes![0]!, { objects });
      expect.unreachable();
    } catch (e) {
      expect(isNodeletError(e) && e.code).toBe('ERR_VOLUME_KEY_NOT_FOUND');
    }
    const opt = pod([{ name: 'c', configMap: { name: 'cfg', optional: true, items: [{ key: 'zz', path: 'z' }] } }, { name: 's', secret: { secretName: 'nope', optional: true } }]);
    expect(planVolumes(opt, { objects }).map((v) => (v.kind === 'configMap' || v.kind === 'secret' ? v.files : v))).toEqual([{}, {}]);
  });
  it('emptyDir: memory medium sized by sizeLimit, else the pod memory limit (only when every container has one)', () => {
    const p = pod([{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } }, { name: 'm2', emptyDir: { medium: 'Memory' } }, { name: 'd', emptyDir: {} }]);
    const [m, m2, d] = planVolumes(p, { objects });
    expect(m).toMatchObject({ kind: 'emptyDir', tmpfs: { sizeBytes: 8 * 2 ** 20 }, mode: 0o1777 }); // a tmpfs root is sticky, as kubelet's
    expect(m2).toMatchObject({ kind: 'emptyDir', tmpfs: { sizeBytes: undefined } }); // "side" has no memory limit
    expect(d).toEqual({ name: 'd', kind: 'emptyDir', kindDir: KIND_DIRS.emptyDir, mode: 0o777 });
    const g = pod([{ name: 'd', emptyDir: {} }], { securityContext: { fsGroup: 7 } });
    expect(planVolumes(g, { objects })[0]).toMatchObject({ mode: 0o2777, gid: 7 });
    // fsGroup on a tmpfs: kubelet's ownership change adds setgid to the tmpfs root's 01777
    const gm = pod([{ name: 'm', emptyDir: { medium: 'Memory' } }], { securityContext: { fsGroup: 123 } });
    expect(planVolumes(gm, { objects })[0]).toMatchObject({ mode: 0o3777, gid: 123 });
    expect(tmpfsOptions(8 * 2 ** 20, 0o777)).toBe('mode=0777,size=8388608');
    expect(tmpfsOptions(undefined, 0o755)).toBe('mode=0755');
  });
  it('projected: sources in order, downward values, a token request for the manager to sign', () => {
    const p = pod([
      {
        name: 'all',
        projected: {
          defaultMode: 0o440,
          sources: [{ secret: { name: 'creds', items: [{ key: 'pw', path: 'pw' }] } }, { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'mem', resourceFieldRef: { containerName: 'side', resource: 'limits.memory', divisor: '1Mi' } }] } }, { serviceAccountToken: { path: 'token', audience: 'api' } }],
        },
      },
    ]);
    const plan = planVolume(p, p.spec.volumes![0]!, { objects, nodeAllocatable: { cpuMilli: 1000, memoryBytes: 64 * 2 ** 20 } });
    if (plan.kind !== 'projected') throw new Error('kind');
    expect(plan.tmpfs).toBe(true);
    expect(Object.keys(plan.files)).toEqual(['pw', 'labels', 'mem', 'token']);
    expect(text(plan.files.labels)).toBe('app="web"');
    expect(text(plan.files.mem)).toBe('64'); // no limit on "side": node allocatable
    expect(plan.files.token).toEqual({ token: { audience: 'api', expirationSeconds: 3600 }, mode: 0o600 });
    // without the node's allocatable resources the pure planner refuses rather than guess
    expect(() => planVolume(p, p.spec.volumes![0]!, { objects })).toThrow(/node's allocatable resources/);
  });
  it('hostPath and unsupported sources', () => {
    const p = pod([{ name: 'h', hostPath: { path: '/srv', type: 'Directory' } }, { name: 'x' } as Volume]);
    expect(planVolume(p, p.spec.volumes![0]!, { objects })).toEqual({ name: 'h', kind: 'hostPath', path: '/srv', type: 'Directory' });
    expect(() => planVolume(p, p.spec.volumes![1]!, { objects })).toThrow(/no supported volume source/);
  });
  it('service account token: HS256 over the claims with the given key', () => {
    const p = pod([]);
    const now = new Date('2026-01-01T00:00:00Z');
    const t = signServiceAccountToken(p, undefined, 600, now, Buffer.alloc(32, 1)).split('.');
    expect(JSON.parse(Buffer.from(t[0]!, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(JSON.parse(Buffer.from(t[1]!, 'base64url').toString())).toMatchObject({ iss: 'nodelet', sub: 'system:serviceaccount:default:default', aud: ['nodelet'], exp: now.getTime() / 1000 + 600 });
    expect(signServiceAccountToken(p, undefined, 600, now, Buffer.alloc(32, 2)).split('.')[2]).not.toBe(t[2]);
  });
});
