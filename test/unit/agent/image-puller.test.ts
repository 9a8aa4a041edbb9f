import { describe, expect, it } from 'vitest';
import { ImagePuller, podPullSecrets, pullSecretCredentials } from '../../../src/agent/image-puller.js';
import type { ImageProvider, ImageRecord, PullOptions, PullPolicy } from '../../../src/image/types.js';
import type { Pod, PodObjects, Secret } from '../../../src/pod/api-types.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (name: string, auths: Record<string, unknown>, type = 'kubernetes.io/dockerconfigjson'): Secret => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'ns' },
  type,
  data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) },
});
const pod = (image: string, pullSecrets: string[]): Pod =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', uid: 'u1' },
    spec: { containers: [{ name: 'c', image, imagePullPolicy: 'Always' }], imagePullSecrets: pullSecrets.map((name) => ({ name })) },
  }) as Pod;

function fakeImages(fail?: (opts?: PullOptions) => Error | undefined): ImageProvider & { calls: PullOptions[] } {
  const calls: PullOptions[] = [];
  const rec = { id: 'sha256:' + 'a'.repeat(64) } as ImageRecord;
  return {
    calls,
    getImage: async () => undefined,
    ensureImage: async (_ref: string, _p: PullPolicy, opts?: PullOptions) => {
      calls.push(opts ?? {});
      const e = fail?.(opts);
      if (e) throw e;
      return rec;
    },
    prepareRootfs: async () => [],
    removeRootfs: async () => undefined,
  };
}

describe('pull secrets of a pod', () => {
  it('finds the referenced secrets in spec order and names the missing ones (empty names ignored)', () => {
    const p = pod('localhost:5000/pause:testing', ['b', 'gone', '', 'a']);
    const otherNs = { ...secret('gone', {}), metadata: { name: 'gone', namespace: 'other' } };
    const objects: PodObjects = { configMaps: [], secrets: [secret('a', {}), secret('b', {}), secret('unrelated', {}), otherNs] };
    const r = podPullSecrets(p, objects);
    expect(r.secrets.map((s) => s.metadata.name)).toEqual(['b', 'a']);
    expect(r.missing).toEqual(['gone']);
  });
  it('gives the matching credentials for the image, most specific first', () => {
    const secrets = [secret('s1', { 'localhost:5000': { auth: b64('user:password') }, 'quay.io': { auth: b64('q:q') } }), secret('s2', { 'localhost:5000/pause': { username: 'deep', password: 'x' } })];
    expect(pullSecretCredentials('localhost:5000/pause:testing', secrets)).toEqual([
      { username: 'deep', password: 'x' },
      { username: 'user', password: 'password' },
    ]);
    expect(pullSecretCredentials('busybox', secrets)).toEqual([]);
  });
});

describe('ImagePuller with image pull secrets', () => {
  const events: string[] = [];
  const record = (_p: Pod, type: string, reason: string, message: string) => void events.push(`${type} ${reason}: ${message}`);

  it('passes the matching credentials to the pull and records a missing secret', async () => {
    events.length = 0;
    const images = fakeImages();
    const puller = new ImagePuller({ images, record });
    const p = pod('localhost:5000/pause:testing', ['missing-one', 'creds']);
    const out = await puller.ensure(p, p.spec.containers[0]!, 'spec.containers{c}', { configMaps: [], secrets: [secret('creds', { 'localhost:5000': { auth: 'dXNlcjpwYXNzd29yZA==' } })] });
    expect('image' in out).toBe(true);
    expect(images.calls[0]!.credentials).toEqual([{ username: 'user', password: 'password' }]);
    expect(events).toContain('Warning FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (missing-one); attempting to pull the image may not succeed.');
  });

  it('pulls with no pod credentials when none match, and a rejected pull is ErrImagePull', async () => {
    events.length = 0;
    const images = fakeImages(() => new Error('authentication required by localhost:5000'));
    const puller = new ImagePuller({ images, record });
    const p = pod('localhost:5000/pause:testing', ['other']);
    const out = await puller.ensure(p, p.spec.containers[0]!, 'f', { configMaps: [], secrets: [secret('other', { 'quay.io': { auth: b64('q:q') } })] });
    expect(images.calls[0]!.credentials).toBeUndefined();
    expect('waiting' in out && out.waiting.reason).toBe('ErrImagePull');
    expect(events.some((e) => e.startsWith('Warning FailedToRetrieveImagePullSecret'))).toBe(false);
  });

  it('a malformed pull secret fails the pull (ErrImagePull), as kubelet does', async () => {
    events.length = 0;
    const images = fakeImages();
    const puller = new ImagePuller({ images, record });
    const p = pod('localhost:5000/pause:testing', ['bad']);
    const bad: Secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bad', namespace: 'ns' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{not json') } };
    const out = await puller.ensure(p, p.spec.containers[0]!, 'f', { configMaps: [], secrets: [bad] });
    expect('waiting' in out && out.waiting).toMatchObject({ reason: 'ErrImagePull', message: expect.stringMatching(/image pull secret "bad"/) });
    expect(images.calls).toHaveLength(0);
  });
});

describe('ImagePuller: an image pulled with a secret is not for pods without it (KubeletEnsureSecretPulledImages)', () => {
  const rec = { id: 'sha256:' + 'b'.repeat(64) } as ImageRecord;
  /** a registry that wants user:password, behind an image store */
  function privateImages(): ImageProvider & { pulls: number } {
    let have = false;
    const o = {
      pulls: 0,
      getImage: async () => (have ? rec : undefined),
      ensureImage: async (_ref: string, policy: PullPolicy, opts?: PullOptions) => {
        if (have && policy !== 'Always') return rec;
        o.pulls++;
        const c = opts?.credentials?.find((x) => x.username === 'user' && x.password === 'password');
        if (!c) throw new Error('authentication required by localhost:5000');
        opts?.onCredentialsUsed?.(c);
        have = true;
        return rec;
      },
      prepareRootfs: async () => [],
      removeRootfs: async () => undefined,
    };
    return o;
  }
  const good = { 'localhost:5000': { auth: 'dXNlcjpwYXNzd29yZA==' } };
  const podAs = (uid: string, secrets: string[], policy: 'IfNotPresent' | 'Never' = 'IfNotPresent'): Pod => {
    const p = pod('localhost:5000/pause:testing', secrets);
    p.metadata.uid = uid;
    p.spec.containers[0]!.imagePullPolicy = policy;
    return p;
  };

  it('verifies by pulling for a pod without the secret; the same credentials in another secret are enough', async () => {
    const events: string[] = [];
    const images = privateImages();
    const puller = new ImagePuller({ images, record: (_p, type, reason, message) => void events.push(`${type} ${reason}: ${message}`) });
    const objects: PodObjects = { configMaps: [], secrets: [secret('mine', good), secret('copy', good)] };
    const a = podAs('a', ['mine']);
    expect('image' in (await puller.ensure(a, a.spec.containers[0]!, 'f', objects))).toBe(true);
    expect(images.pulls).toBe(1);
    // present, but pulled with a secret this pod lacks: pulled again without credentials, refused
    const b = podAs('b', []);
    const outB = await puller.ensure(b, b.spec.containers[0]!, 'f', objects);
    expect('waiting' in outB && outB.waiting.reason).toBe('ErrImagePull');
    expect(images.pulls).toBe(2);
    // the pull policy Never cannot verify
    const n = podAs('n', [], 'Never');
    const outN = await puller.ensure(n, n.spec.containers[0]!, 'f', objects);
    expect('waiting' in outN && outN.waiting.reason).toBe('ErrImageNeverPull');
    // the same secret, or another holding the same credentials: present, no pull
    events.length = 0;
    for (const [uid, s] of [['a2', 'mine'], ['c', 'copy']] as const) {
      const p = podAs(uid, [s]);
      expect('image' in (await puller.ensure(p, p.spec.containers[0]!, 'f', objects))).toBe(true);
    }
    expect(images.pulls).toBe(2);
    expect(events.filter((e) => e.includes('already present on machine and can be accessed by the pod'))).toHaveLength(2);
  });

  it('an image pulled without pod credentials is for every pod', async () => {
    let have = false;
    const images: ImageProvider = {
      getImage: async () => (have ? rec : undefined),
      ensureImage: async (_r: string, policy: PullPolicy, opts?: PullOptions) => {
        if (!(have && policy !== 'Always')) {
          opts?.onCredentialsUsed?.(undefined);
          have = true;
        }
        return rec;
      },
      prepareRootfs: async () => [],
      removeRootfs: async () => undefined,
    };
    const puller = new ImagePuller({ images, record: () => undefined });
    const a = podAs('a', []);
    await puller.ensure(a, a.spec.containers[0]!, 'f', { configMaps: [], secrets: [] });
    const n = podAs('n', [], 'Never');
    expect('image' in (await puller.ensure(n, n.spec.containers[0]!, 'f', { configMaps: [], secrets: [] }))).toBe(true);
  });
});
