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
