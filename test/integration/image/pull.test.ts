// Pulls from a real docker-registry (HTTP, HTTPS with a test CA, Basic,
// Bearer token), multi-platform indexes, skopeo-pushed images, and faults.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { computeChainIds } from '../../../src/image/chain.js';
import { ImageService } from '../../../src/image/service.js';
import { ImagePuller } from '../../../src/agent/image-puller.js';
import type { Pod, PodObjects, Secret } from '../../../src/pod/api-types.js';
import {
  makeImage,
  makeLayer,
  pushImage,
  pushIndex,
  sha256,
  startProxy,
  startRegistry,
  tmpRoot,
  type BuiltImage,
  type FaultProxy,
  type TestRegistry,
} from '../../helpers/registry.js';

const roots: string[] = [];
const stops: (() => Promise<void>)[] = [];
function newRoot(): string {
  const r = tmpRoot();
  roots.push(r);
  return r;
}
afterEach(async () => {
  for (const s of stops.splice(0)) await s().catch(() => undefined);
  for (const r of roots.splice(0)) {
    // unmount leftovers of failed tests before removing
    try {
      execFileSync('sh', ['-c', `grep -o " ${r}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    } catch {
      /* none */
    }
    rmSync(r, { recursive: true, force: true });
  }
});

async function sampleImage(tag = 'v1', o: { architecture?: string; variant?: string; docker?: boolean } = {}): Promise<BuiltImage> {
  const l1 = await makeLayer([
    { name: 'bin/', type: 'directory' },
    { name: 'etc/', type: 'directory' },
    { name: 'etc/os-release', content: `ID=test\nTAG=${tag}\nARCH=${o.architecture ?? 'amd64'}\n` },
    { name: 'bin/hello', content: '#!/bin/sh\necho hello\n', mode: 0o755 },
  ]);
  const l2 = await makeLayer([
    { name: 'etc/motd', content: 'layer two\n' },
    { name: 'bin/.wh.hello' },
  ]);
  return makeImage([l1, l2], { ...o, config: { Cmd: ['/bin/sh'], Env: ['A=1'], WorkingDir: '/w', User: '1000', ExposedPorts: { '80/tcp': {} }, Labels: { x: 'y' }, StopSignal: 'SIGQUIT' } });
}

function blobs(root: string): string[] {
  const d = path.join(root, 'content/blobs/sha256');
  return existsSync(d) ? readdirSync(d).sort() : [];
}
function ingestLeft(root: string): string[] {
  const d = path.join(root, 'content/ingest');
  return existsSync(d) ? readdirSync(d) : [];
}

describe('pull from a plain HTTP registry', () => {
  let reg: TestRegistry;
  let img: BuiltImage;
  beforeAll(async () => {
    reg = await startRegistry();
    img = await sampleImage();
    await pushImage(reg, 'app', 'v1', img);
  });
  afterAll(async () => reg?.stop());

  it('pulls, verifies, unpacks, records the config and mounts the rootfs', async () => {
    const root = newRoot();
    const svc = new ImageService({ root });
    const phases: string[] = [];
    const rec = await svc.pull(`${reg.host}/app:v1`, { onProgress: (p) => phases.push(p.phase) });
    expect(rec.id).toBe(img.configDigest);
    expect(rec.manifestDigest).toBe(img.manifestDigest);
    expect(rec.names).toEqual([`${reg.host}/app:v1`]);
    expect(rec.repoDigests).toContain(`${reg.host}/app@${img.manifestDigest}`);
    expect(rec.config).toMatchObject({ cmd: ['/bin/sh'], env: ['A=1'], workingDir: '/w', user: '1000', exposedPorts: ['80/tcp'], labels: { x: 'y' }, stopSignal: 'SIGQUIT' });
    expect(rec.config.diffIds).toEqual(img.layers.map((l) => l.diffId));
    expect(rec.chainIds).toHaveLength(2);
    expect(phases).toContain('downloading');
    expect(phases).toContain('extracting');
    expect(blobs(root)).toEqual([img.manifestDigest, img.configDigest, ...img.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort());
    expect(ingestLeft(root).filter((n) => !n.startsWith('.'))).toEqual([]);

    expect((await svc.getImage(`${reg.host}/app:v1`))?.id).toBe(rec.id);
    expect((await svc.getImage(rec.id.slice(7, 19)))?.id).toBe(rec.id);
    expect((await svc.getImage(`${reg.host}/app@${img.manifestDigest}`))?.id).toBe(rec.id);

    const mnt = path.join(root, 'mnt');
    await svc.mountImage(`${reg.host}/app:v1`, mnt);
    try {
      expect(readFileSync(path.join(mnt, 'etc/os-release'), 'utf8')).toContain('TAG=v1');
      expect(readFileSync(path.join(mnt, 'etc/motd'), 'utf8')).toBe('layer two\n');
      expect(existsSync(path.join(mnt, 'bin/hello'))).toBe(false); // whiteout
      expect(() => writeFileSync(path.join(mnt, 'x'), 'x')).toThrow(/EROFS|read-only/i);
    } finally {
      await svc.unmountImage(mnt);
    }
    expect(existsSync(path.join(mnt, 'etc'))).toBe(false);

    // a second pull downloads nothing
    const phases2: string[] = [];
    await svc.pull(`${reg.host}/app:v1`, { onProgress: (p) => phases2.push(p.phase) });
    expect(phases2).not.toContain('downloading');
  });

  it('pulls a Docker schema2 image and zstd / uncompressed OCI layers', async () => {
    const docker = makeImage([img.layers[0]!], { docker: true });
    await pushImage(reg, 'app', 'docker', docker);
    const raw = await makeLayer([{ name: 'etc/', type: 'directory' }, { name: 'etc/zst', content: 'zstd layer\n' }], 'none');
    const zblob = execFileSync('zstd', ['-q', '-c'], { input: raw.blob });
    const zst = { ...raw, blob: zblob, digest: sha256(zblob), size: zblob.length, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' };
    const plain = await makeLayer([{ name: 'etc/plain', content: 'plain layer\n' }], 'none');
    const mixed = makeImage([img.layers[0]!, zst, plain]);
    await pushImage(reg, 'app', 'mixed', mixed);
    const root = newRoot();
    const svc = new ImageService({ root });
    expect((await svc.pull(`${reg.host}/app:docker`)).id).toBe(docker.configDigest);
    const rec = await svc.pull(`${reg.host}/app:mixed`);
    expect(rec.chainIds).toHaveLength(3);
    const mnt = path.join(root, 'mnt');
    await svc.mountImage(rec.id, mnt);
    try {
      expect(readFileSync(path.join(mnt, 'etc/zst'), 'utf8')).toBe('zstd layer\n');
      expect(readFileSync(path.join(mnt, 'etc/plain'), 'utf8')).toBe('plain layer\n');
      expect(readFileSync(path.join(mnt, 'bin/hello'), 'utf8')).toContain('echo hello');
    } finally {
      await svc.unmountImage(mnt);
    }
  });

  it('pulls by digest and refuses a digest that does not match', async () => {
    const root = newRoot();
    const svc = new ImageService({ root });
    const rec = await svc.pull(`${reg.host}/app@${img.manifestDigest}`);
    expect(rec.names).toEqual([]);
    expect(rec.repoDigests).toEqual([`${reg.host}/app@${img.manifestDigest}`]);
    const other = sha256('nope');
    await expect(svc.pull(`${reg.host}/app@${other}`)).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  });

  it('names the reference when the manifest is missing', async () => {
    const svc = new ImageService({ root: newRoot() });
    const ref = `${reg.host}/app:nope`;
    const err = (await svc.pull(ref).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.message).toBe(`Cannot pull "${ref}": manifest unknown (does the tag exist?)`);
    expect(err.code).toBe('ERR_IMAGE_NOT_FOUND');
    const err2 = (await svc.pull(`${reg.host}/nosuchrepo:v1`).catch((e: unknown) => e)) as Error;
    expect(err2.message).toMatch(/^Cannot pull "127\.0\.0\.1:\d+\/nosuchrepo:v1": /);
  });

  it('downloads a blob once when two pulls run at the same time', async () => {
    const root = newRoot();
    const proxy = await startProxy(reg.url, () => ({ kind: 'pass' }));
    stops.push(proxy.stop);
    const a = new ImageService({ root });
    const b = new ImageService({ root });
    const [ra, rb] = await Promise.all([a.pull(`${proxy.host}/app:v1`), b.pull(`${proxy.host}/app:v1`)]);
    expect(ra.id).toBe(rb.id);
    for (const l of img.layers) {
      expect(proxy.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${l.digest}`))).toHaveLength(1);
    }
  });

  it('lists, untags, removes and prunes', async () => {
    const root = newRoot();
    const svc = new ImageService({ root });
    const rec = await svc.pull(`${reg.host}/app:v1`);
    // second name for the same image
    await svc.images.put({ ...rec, names: [`${reg.host}/app:other`], repoDigests: [] });
    expect((await svc.list()).map((i) => i.names.sort())).toEqual([[`${reg.host}/app:other`, `${reg.host}/app:v1`]]);
    // a container snapshot keeps the chain
    await svc.prepareRootfs('ctr-1', rec.id);
    expect(await svc.remove(`${reg.host}/app:other`)).toEqual({ untagged: [`${reg.host}/app:other`] });
    const r2 = await svc.remove(`${reg.host}/app:v1`);
    expect(r2.deleted).toBe(rec.id);
    expect(await svc.list()).toEqual([]);
    const pr = await svc.prune();
    expect(pr.blobs.length).toBe(4);
    expect(blobs(root)).toEqual([]);
    expect(pr.chains).toEqual([]); // both chains under ctr-1
    expect(svc.snapshots.hasChain(rec.chainIds[1]!)).toBe(true);
    await svc.removeRootfs('ctr-1');
    const pr2 = await svc.prune();
    expect(pr2.chains.sort()).toEqual([...rec.chainIds].sort());
    expect(await svc.snapshots.listChains()).toEqual([]);
  });
});

describe('pull over HTTPS with a test CA', () => {
  let reg: TestRegistry;
  let img: BuiltImage;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true });
    img = await sampleImage();
    await pushImage(reg, 'secure/app', 'v1', img);
  });
  afterAll(async () => reg?.stop());

  it('trusts certs.d/<host>/ca.crt and fails clearly without it', async () => {
    const svc = new ImageService({ root: newRoot(), certsDirs: [reg.certsDir!] });
    const rec = await svc.pull(`${reg.host}/secure/app:v1`);
    expect(rec.id).toBe(img.configDigest);
    const bare = new ImageService({ root: newRoot(), certsDirs: [path.join(reg.dir, 'none')] });
    // loopback: without the CA the https attempt fails, plain http is tried and fails too
    const e = (await bare.pull(`${reg.host}/secure/app:v1`).catch((x: unknown) => x)) as Error & { code: string };
    expect(e.code).toBe('ERR_IMAGE_REGISTRY_UNREACHABLE');
    expect(e.message).toMatch(/^Cannot pull ".*secure\/app:v1": cannot reach registry .*TLS failed: put the registry's CA in certs\.d\//);
    const insecure = new ImageService({ root: newRoot(), certsDirs: [] });
    expect((await insecure.pull(`${reg.host}/secure/app:v1`, { tlsVerify: false })).id).toBe(img.configDigest);
  });
});

describe('pull with htpasswd Basic auth', () => {
  let reg: TestRegistry;
  let img: BuiltImage;
  beforeAll(async () => {
    reg = await startRegistry({ basic: { user: 'alice', pass: 's3cr:et' } });
    img = await sampleImage();
    await pushImage(reg, 'private/app', 'v1', img);
  });
  afterAll(async () => reg?.stop());

  it('uses --creds, an authfile and $REGISTRY_AUTH_FILE; refuses without', async () => {
    const ref = `${reg.host}/private/app:v1`;
    const noAuth = await new ImageService({ root: newRoot() }).pull(ref, { authFile: '/dev/null/none' }).catch((e: Error) => e);
    expect(noAuth).toBeInstanceOf(Error);
    const saved = process.env.REGISTRY_AUTH_FILE;
    const empty = path.join(reg.dir, 'empty.json');
    writeFileSync(empty, '{"auths":{}}');
    process.env.REGISTRY_AUTH_FILE = empty;
    try {
      const e1 = await new ImageService({ root: newRoot() }).pull(ref).catch((e: Error & { code: string }) => e);
      expect((e1 as { code: string }).code).toBe('ERR_IMAGE_UNAUTHORIZED');
      expect((e1 as Error).message).toMatch(/^Cannot pull ".*": authentication required/);
      const bad = await new ImageService({ root: newRoot() }).pull(ref, { creds: 'alice:wrong' }).catch((e: Error & { code: string }) => e);
      expect((bad as { code: string }).code).toBe('ERR_IMAGE_UNAUTHORIZED');
      expect((await new ImageService({ root: newRoot() }).pull(ref, { creds: 'alice:s3cr:et' })).id).toBe(img.configDigest);
      const authfile = path.join(reg.dir, 'auth.json');
      writeFileSync(authfile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cr:et').toString('base64') } } }));
      expect((await new ImageService({ root: newRoot() }).pull(ref, { authFile: authfile })).id).toBe(img.configDigest);
      process.env.REGISTRY_AUTH_FILE = authfile;
      expect((await new ImageService({ root: newRoot() }).pull(ref)).id).toBe(img.configDigest);
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
      else process.env.REGISTRY_AUTH_FILE = saved;
    }
  });
  it("uses a pod's image pull secrets through the ImagePuller: each matching entry in order, then the node's auth file", async () => {
    const ref = `${reg.host}/private/app:v1`;
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const secret = (name: string, auths: Record<string, unknown>): Secret => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'ns' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) },
    });
    const pod = (secrets: string[]): Pod =>
      ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', uid: `u-${secrets.join('-')}` }, spec: { containers: [{ name: 'c', image: ref, imagePullPolicy: 'Always' }], imagePullSecrets: secrets.map((name) => ({ name })) } }) as Pod;
    const objects: PodObjects = {
      configMaps: [],
      secrets: [
        secret('wrong', { [`http://${reg.host}/v2/`]: { username: 'alice', password: 'wrong' } }),
        secret('right', { [reg.host]: { auth: b64('alice:s3cr:et') } }),
        secret('elsewhere', { 'quay.io': { auth: b64('alice:s3cr:et') } }),
      ],
    };
    const events: string[] = [];
    const puller = (root: string) => new ImagePuller({ images: new ImageService({ root }), record: (_p, type, reason, msg) => void events.push(`${type} ${reason}: ${msg}`) });
    const saved = process.env.REGISTRY_AUTH_FILE;
    const empty = path.join(reg.dir, 'node-empty.json');
    writeFileSync(empty, '{"auths":{}}');
    process.env.REGISTRY_AUTH_FILE = empty;
    try {
      // the wrong entry is tried first, then the right one
      const p1 = pod(['wrong', 'right']);
      const ok = await puller(newRoot()).ensure(p1, p1.spec.containers[0]!, 'f', objects);
      expect('image' in ok && ok.image.id).toBe(img.configDigest);
      // no secret that matches (and none on the node): anonymous, refused
      const p2 = pod(['elsewhere', 'absent']);
      const no = await puller(newRoot()).ensure(p2, p2.spec.containers[0]!, 'f', objects);
      expect('waiting' in no && no.waiting).toMatchObject({ reason: 'ErrImagePull', message: expect.stringMatching(/authentication required/) });
      expect(events).toContain('Warning FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed.');
      // only wrong credentials: refused
      const p3 = pod(['wrong']);
      const bad = await puller(newRoot()).ensure(p3, p3.spec.containers[0]!, 'f', objects);
      expect('waiting' in bad && bad.waiting).toMatchObject({ reason: 'ErrImagePull', message: expect.stringMatching(/credentials rejected/) });
      // the node's auth file after the pod's wrong entry: both tried, the node's works
      const nodeFile = path.join(reg.dir, 'node-auth.json');
      writeFileSync(nodeFile, JSON.stringify({ auths: { [reg.host]: { auth: b64('alice:s3cr:et') } } }));
      process.env.REGISTRY_AUTH_FILE = nodeFile;
      const viaNode = await puller(newRoot()).ensure(p3, p3.spec.containers[0]!, 'f', objects);
      expect('image' in viaNode && viaNode.image.id).toBe(img.configDigest);
      // the image service alone: every attempt's error in one, in order
      writeFileSync(nodeFile, JSON.stringify({ auths: { [reg.host]: { auth: b64('alice:also-wrong') } } }));
      const both = await new ImageService({ root: newRoot() }).pull(ref, { credentials: [{ username: 'alice', password: 'wrong' }] }).catch((e: Error) => e);
      expect((both as { code?: string }).code).toBe('ERR_IMAGE_UNAUTHORIZED');
      expect((both as Error).message).toMatch(/^Cannot pull ".*": \[.*credentials rejected.*, .*credentials rejected.*\]$/);
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
      else process.env.REGISTRY_AUTH_FILE = saved;
    }
  });
  it('an image a pod pulled with its secret is not for a pod without it: that one pulls and is refused', async () => {
    const ref = `${reg.host}/private/app:v1`;
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const secret = (name: string): Secret => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'ns', uid: `uid-${name}` },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': b64(JSON.stringify({ auths: { [reg.host]: { auth: b64('alice:s3cr:et') } } })) },
    });
    const objects: PodObjects = { configMaps: [], secrets: [secret('mine'), secret('copy')] };
    const pod = (uid: string, secrets: string[]): Pod =>
      ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: uid, namespace: 'ns', uid }, spec: { containers: [{ name: 'c', image: ref, imagePullPolicy: 'IfNotPresent' }], imagePullSecrets: secrets.map((name) => ({ name })) } }) as Pod;
    const root = newRoot();
    const events: string[] = [];
    const puller = new ImagePuller({ images: new ImageService({ root }), record: (p, _t, reason, msg) => void events.push(`${p.metadata.uid} ${reason}: ${msg}`), pulledRecordsFile: path.join(root, 'image-pulls.json') });
    const saved = process.env.REGISTRY_AUTH_FILE;
    const empty = path.join(reg.dir, 'node-empty2.json');
    writeFileSync(empty, '{"auths":{}}');
    process.env.REGISTRY_AUTH_FILE = empty;
    try {
      const ensure = (p: Pod) => puller.ensure(p, p.spec.containers[0]!, 'f', objects);
      const a = await ensure(pod('a', ['mine']));
      expect('image' in a && a.image.id).toBe(img.configDigest);
      const b = await ensure(pod('b', []));
      expect('waiting' in b && b.waiting).toMatchObject({ reason: 'ErrImagePull', message: expect.stringMatching(/authentication required/) });
      expect(events).toContain('b Pulling: Pulling image "' + ref + '"');
      const c = await ensure(pod('c', ['copy']));
      expect('image' in c && c.image.id).toBe(img.configDigest);
      expect(events).toContain(`c Pulled: Container image "${ref}" already present on machine and can be accessed by the pod`);
      // the record survives a restart (a new puller on the same file)
      const again = new ImagePuller({ images: new ImageService({ root }), record: () => undefined, pulledRecordsFile: path.join(root, 'image-pulls.json') });
      const d = pod('d', []);
      const outD = await again.ensure(d, d.spec.containers[0]!, 'f', objects);
      expect('waiting' in outD && outD.waiting.reason).toBe('ErrImagePull');
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
      else process.env.REGISTRY_AUTH_FILE = saved;
    }
  });
});

describe('pull with Bearer token auth', () => {
  let reg: TestRegistry;
  let img: BuiltImage;
  beforeAll(async () => {
    reg = await startRegistry({ token: { user: 'bob', pass: 'pw', field: 'access_token' } });
    img = await sampleImage();
    await pushImage(reg, 'team/app', 'v1', img);
  });
  afterAll(async () => reg?.stop());

  it('fetches a scoped token with credentials and caches it', async () => {
    const ref = `${reg.host}/team/app:v1`;
    const before = reg.tokenRequests.length;
    const rec = await new ImageService({ root: newRoot() }).pull(ref, { creds: 'bob:pw' });
    expect(rec.id).toBe(img.configDigest);
    const mine = reg.tokenRequests.slice(before);
    expect(mine.length).toBe(1); // one token serves manifest + config + layers
    expect(mine[0]).toMatchObject({ scope: 'repository:team/app:pull', service: 'nodelet-test-registry' });
    expect(mine[0]!.authorization).toBe('Basic ' + Buffer.from('bob:pw').toString('base64'));
    const denied = await new ImageService({ root: newRoot() }).pull(ref, { creds: 'bob:nope' }).catch((e: Error & { code: string }) => e);
    expect((denied as { code: string }).code).toBe('ERR_IMAGE_UNAUTHORIZED');
  });

  it('anonymous token flow against a token server that allows it', async () => {
    const anon = await startRegistry({ token: {} });
    stops.push(anon.stop);
    await pushImage(anon, 'pub/app', 'v1', img);
    const rec = await new ImageService({ root: newRoot() }).pull(`${anon.host}/pub/app:v1`, { authFile: path.join(anon.dir, 'missing.json') }).catch((e) => e);
    // an explicit --authfile that does not exist is an error, like podman
    expect((rec as { code?: string }).code).toBe('ERR_IMAGE_AUTHFILE_INVALID');
    const ok = await new ImageService({ root: newRoot() }).pull(`${anon.host}/pub/app:v1`);
    expect(ok.id).toBe(img.configDigest);
    expect(anon.tokenRequests.some((t) => t.scope === 'repository:pub/app:pull' && t.authorization === undefined)).toBe(true);
  });
});

describe('multi-platform index', () => {
  let reg: TestRegistry;
  let amd: BuiltImage;
  let arm: BuiltImage;
  let armv7: BuiltImage;
  beforeAll(async () => {
    reg = await startRegistry();
    amd = await sampleImage('amd', { architecture: 'amd64' });
    arm = await sampleImage('arm64', { architecture: 'arm64', variant: 'v8' });
    armv7 = await sampleImage('armv7', { architecture: 'arm', variant: 'v7' });
    const entries = [
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { image: armv7, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
    ];
    await pushIndex(reg, 'multi', 'oci', entries);
    await pushIndex(reg, 'multi', 'docker', entries, { docker: true });
  });
  afterAll(async () => reg?.stop());

  it('selects the host platform by default and --platform on request', async () => {
    const host = process.arch === 'x64' ? amd : process.arch === 'arm64' ? arm : armv7;
    for (const tag of ['oci', 'docker']) {
      const rec = await new ImageService({ root: newRoot() }).pull(`${reg.host}/multi:${tag}`);
      expect(rec.id).toBe(host.configDigest);
      expect(rec.manifestDigest).toBe(host.manifestDigest);
    }
    const svc = new ImageService({ root: newRoot() });
    const r64 = await svc.pull(`${reg.host}/multi:oci`, { platform: 'linux/arm64' });
    expect(r64.id).toBe(arm.configDigest);
    expect(r64.config.architecture).toBe('arm64');
    const r7 = await svc.pull(`${reg.host}/multi:oci`, { platform: 'linux/arm/v7' });
    expect(r7.id).toBe(armv7.configDigest);
    const err = await svc.pull(`${reg.host}/multi:oci`, { platform: 'linux/s390x' }).catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('ERR_IMAGE_PLATFORM_NOT_FOUND');
    expect((err as Error).message).toMatch(/linux\/s390x.*linux\/arm64/);
  });
});

describe('image pushed with skopeo from an OCI layout', () => {
  it('pulls back what skopeo pushed', async () => {
    const reg = await startRegistry();
    stops.push(reg.stop);
    const root = newRoot();
    const layout = path.join(root, 'layout');
    // umoci 0.4.7's `insert` writes truncated tars, so the layout is written here
    const layer = await makeLayer([{ name: 'etc/', type: 'directory' }, { name: 'etc/greeting', content: 'from skopeo\n' }]);
    const built = makeImage([layer], { config: { Cmd: ['/bin/true'] } });
    mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
    for (const b of [layer.blob, built.config, built.manifest]) writeFileSync(path.join(layout, 'blobs', sha256(b).replace(':', '/')), b);
    writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: built.manifestMediaType, digest: built.manifestDigest, size: built.manifest.length, annotations: { 'org.opencontainers.image.ref.name': 't' } }] }),
    );
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:t`, `docker://${reg.host}/skopeo/app:t`], { stdio: 'pipe' });
    const svc = new ImageService({ root: path.join(root, 'state') });
    const rec = await svc.pull(`${reg.host}/skopeo/app:t`);
    expect(rec.config.cmd).toEqual(['/bin/true']);
    const mnt = path.join(root, 'mnt');
    await svc.mountImage(rec.id, mnt);
    try {
      expect(readFileSync(path.join(mnt, 'etc/greeting'), 'utf8')).toBe('from skopeo\n');
    } finally {
      await svc.unmountImage(mnt);
    }
  });
});

describe('registry faults', () => {
  let reg: TestRegistry;
  let img: BuiltImage;
  let proxy: FaultProxy | undefined;
  beforeAll(async () => {
    reg = await startRegistry();
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const l1 = await makeLayer([{ name: 'big.bin', content: big }]);
    const l2 = await makeLayer([{ name: 'small', content: 'small\n' }]);
    img = makeImage([l1, l2]);
    await pushImage(reg, 'faulty', 'v1', img);
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });
  afterAll(async () => reg?.stop());

  const isLayer = (url: string | undefined, i: number) => url?.endsWith(`/blobs/${img.layers[i]!.digest}`) === true;

  it('refuses a blob with the wrong digest and stores nothing', async () => {
    proxy = await startProxy(reg.url, (req) => (isLayer(req.url, 1) ? { kind: 'corrupt' } : { kind: 'pass' }));
    const root = newRoot();
    const svc = new ImageService({ root, retry: { baseDelayMs: 10 } });
    const err = await svc.pull(`${proxy.host}/faulty:v1`).catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('ERR_IMAGE_DIGEST_MISMATCH');
    expect((err as Error).message).toMatch(/^Cannot pull ".*faulty:v1": blob digest mismatch/);
    expect(blobs(root)).not.toContain(img.layers[1]!.digest.slice(7));
    expect(ingestLeft(root)).toEqual([]);
    expect(svc.snapshots.hasChain(computeChainIds(img.layers.map((l) => l.diffId))[1]!)).toBe(false);
    expect(await svc.list()).toEqual([]);
  });

  it('resumes with Range after the connection drops mid-blob', async () => {
    let dropped = 0;
    proxy = await startProxy(reg.url, (req) => {
      if (isLayer(req.url, 0) && dropped < 2) {
        dropped++;
        return { kind: 'truncate', bytes: 1 << 20 };
      }
      return { kind: 'pass' };
    });
    const root = newRoot();
    const svc = new ImageService({ root, retry: { baseDelayMs: 10 } });
    const rec = await svc.pull(`${proxy.host}/faulty:v1`);
    expect(rec.id).toBe(img.configDigest);
    const gets = proxy.requests.filter((r) => r.method === 'GET' && isLayer(r.url, 0));
    expect(gets.length).toBe(3);
    expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/=(\d+)-/.exec(gets[1]!.range!)![1])).toBeGreaterThan(0);
    expect(sha256(readFileSync(path.join(root, 'content/blobs', img.layers[0]!.digest.replace(':', '/'))))).toBe(img.layers[0]!.digest);
    expect(ingestLeft(root)).toEqual([]);
  });

  it('retries 500s and 429 then succeeds', async () => {
    let fails = 0;
    proxy = await startProxy(reg.url, (req) => {
      if ((req.url?.includes('/manifests/') || isLayer(req.url, 1)) && fails < 4) {
        fails++;
        return fails === 2 ? { kind: 'status', status: 429, headers: { 'retry-after': '0' } } : { kind: 'status', status: 500 };
      }
      return { kind: 'pass' };
    });
    const svc = new ImageService({ root: newRoot(), retry: { baseDelayMs: 10 } });
    expect((await svc.pull(`${proxy.host}/faulty:v1`)).id).toBe(img.configDigest);
    expect(fails).toBe(4);
  });

  it('gives up after persistent 500s with a clear error', async () => {
    proxy = await startProxy(reg.url, (req) => (req.url?.includes('/manifests/') ? { kind: 'status', status: 503 } : { kind: 'pass' }));
    const svc = new ImageService({ root: newRoot(), retry: { baseDelayMs: 5, attempts: 3 } });
    const err = await svc.pull(`${proxy.host}/faulty:v1`).catch((e: Error & { code: string }) => e);
    expect((err as Error).message).toMatch(/^Cannot pull ".*faulty:v1": /);
    expect((err as { code: string }).code).toBe('ERR_IMAGE_REGISTRY_503');
    expect(proxy.requests.filter((r) => r.url.includes('/manifests/')).length).toBe(3);
  });

  it('refuses manifests over 4 MiB and schema 1 manifests', async () => {
    const huge = JSON.stringify({ schemaVersion: 2, pad: 'x'.repeat(5 << 20) });
    const s1 = JSON.stringify({ schemaVersion: 1, name: 'faulty', tag: 'v1', fsLayers: [], history: [] });
    proxy = await startProxy(reg.url, (req) =>
      req.url?.endsWith('/manifests/huge')
        ? { kind: 'status', status: 200, body: huge, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } }
        : req.url?.endsWith('/manifests/old')
          ? { kind: 'status', status: 200, body: s1, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' } }
          : { kind: 'pass' },
    );
    const svc = new ImageService({ root: newRoot() });
    await expect(svc.pull(`${proxy.host}/faulty:huge`)).rejects.toMatchObject({ code: 'ERR_IMAGE_MANIFEST_TOO_BIG' });
    const e = await svc.pull(`${proxy.host}/faulty:old`).catch((x: Error & { code: string }) => x);
    expect((e as { code: string }).code).toBe('ERR_IMAGE_SCHEMA1_UNSUPPORTED');
    expect((e as Error).message).toMatch(/^Cannot pull ".*faulty:old": .*schema 1/);
  });

  it('pulls through a configured mirror and falls back to the registry when the mirror fails', async () => {
    proxy = await startProxy(reg.url, () => ({ kind: 'pass' }));
    const root = newRoot();
    const viaMirror = new ImageService({ root, config: { registries: { 'mirrored.example': { mirrors: [proxy.host] } } } });
    // the reference names a registry that does not exist: only the mirror can serve it
    const rec = await viaMirror.pull('mirrored.example/faulty:v1');
    expect(rec.id).toBe(img.configDigest);
    expect(rec.names).toEqual(['mirrored.example/faulty:v1']);
    expect(proxy.requests.some((r) => r.url.endsWith(`/blobs/${img.layers[0]!.digest}`))).toBe(true);
    const broken = await startProxy(reg.url, () => ({ kind: 'status', status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' }));
    stops.push(broken.stop);
    const fallback = new ImageService({ root: newRoot(), config: { registries: { [reg.host]: { mirrors: [broken.host] } } } });
    expect((await fallback.pull(`${reg.host}/faulty:v1`)).id).toBe(img.configDigest);
    expect(broken.requests.length).toBeGreaterThan(0);
  });

  it('refuses a manifest whose bytes do not match the digest it was pulled by', async () => {
    const other = makeImage([img.layers[1]!]);
    proxy = await startProxy(reg.url, (req) =>
      req.url?.endsWith(`/manifests/${img.manifestDigest}`)
        ? { kind: 'status', status: 200, body: other.manifest.toString(), headers: { 'content-type': other.manifestMediaType } }
        : { kind: 'pass' },
    );
    const root = newRoot();
    const svc = new ImageService({ root });
    const e = await svc.pull(`${proxy.host}/faulty@${img.manifestDigest}`).catch((x: Error & { code: string }) => x);
    expect((e as { code: string }).code).toBe('ERR_IMAGE_DIGEST_MISMATCH');
    expect(blobs(root)).toEqual([]);
  });

  it('ensureImage follows the pull policy', async () => {
    proxy = await startProxy(reg.url, () => ({ kind: 'pass' }));
    const svc = new ImageService({ root: newRoot() });
    const ref = `${proxy.host}/faulty:v1`;
    await expect(svc.ensureImage(ref, 'Never')).rejects.toMatchObject({ code: 'ERR_IMAGE_NEVER_PULL' });
    expect(proxy.requests).toEqual([]);
    const a = await svc.ensureImage(ref, 'IfNotPresent');
    const n = proxy.requests.length;
    expect((await svc.ensureImage(ref, 'IfNotPresent')).id).toBe(a.id);
    expect((await svc.ensureImage(ref, 'Never')).id).toBe(a.id);
    expect(proxy.requests.length).toBe(n);
    await svc.ensureImage(ref, 'Always');
    const after = proxy.requests.slice(n);
    expect(after.some((r) => r.url.includes('/manifests/'))).toBe(true);
    expect(after.some((r) => r.url.includes('/blobs/'))).toBe(false); // nothing new to fetch
  });

  it('refuses a config whose diff_ids do not match the layers', async () => {
    const bad = makeImage(img.layers, { diffIds: [img.layers[0]!.diffId] });
    await pushImage(reg, 'faulty', 'baddiff', bad);
    const svc = new ImageService({ root: newRoot() });
    await expect(svc.pull(`${reg.host}/faulty:baddiff`)).rejects.toThrow(/1 diff_ids but the manifest has 2 layers/);
  });
});
