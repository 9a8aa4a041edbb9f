// VolumeManager against the real kernel (root): tmpfs mounts, modes, atomic updates, teardown.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { VolumeManager, checkHostPath } from '../../../src/volumes/manager.js';
import { mountsUnder } from '../../../src/sys/mounts.js';
import { resolveSubPath } from '../../../src/volumes/subpath.js';
import { applyDefaults } from '../../../src/pod/manifest.js';
import { signServiceAccountToken } from '../../../src/pod/volume-plan.js';
import { statfs, FS_MAGIC, umount2, MNT } from '../../../src/sys/ffi.js';
import type { Pod, Volume, Secret, ConfigMap } from '../../../src/pod/api-types.js';

let root: string;
let vm: VolumeManager;

beforeEach(() => {
  if (process.getuid?.() !== 0) throw new Error('volume tests need root');
  root = `/dev/shm/nodelet-test-${randomBytes(6).toString('hex')}`;
  mkdirSync(root, { recursive: true });
  vm = new VolumeManager({ root });
});
afterEach(() => {
  for (const mp of mountsUnder(root)) umount2(mp, MNT.DETACH);
  rmSync(root, { recursive: true, force: true });
});

const pod = (volumes: Volume[], extra: Partial<Pod['spec']> = {}): Pod =>
  applyDefaults({ metadata: { name: 'web', namespace: 'default', labels: { app: 'web', tier: 'fe' }, annotations: { note: 'a"b' } }, spec: { containers: [{ name: 'app', image: 'busybox', resources: { limits: { memory: '32Mi', cpu: '250m' } } }], volumes, ...extra } });

const secret = (data: Record<string, string>): Secret => ({ metadata: { name: 'creds', namespace: 'default' }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) });
const cm = (data: Record<string, string>): ConfigMap => ({ metadata: { name: 'cfg', namespace: 'default' }, data });
// the test root is itself on tmpfs (/dev/shm): a volume is "on tmpfs" when it is its own tmpfs mount
const isTmpfs = (p: string) => mountsUnder(p).includes(p) && statfs(p).type === FS_MAGIC.TMPFS;

describe('VolumeManager', () => {
  it('secret: on tmpfs, modes, items; teardown unmounts and removes', async () => {
    const p = pod([{ name: 's', secret: { secretName: 'creds', items: [{ key: 'pw', path: 'dir/password', mode: 0o400 }, { key: 'user', path: 'user' }] } }]);
    const paths = await vm.setUp(p, { objects: { configMaps: [], secrets: [secret({ pw: 'hunter2', user: 'bob' })] } });
    const dir = paths.s!;
    expect(dir).toBe(join(root, 'pods', p.metadata.uid!, 'volumes/kubernetes.io~secret/s'));
    expect(isTmpfs(dir)).toBe(true);
    expect(readFileSync(join(dir, 'dir/password'), 'utf8')).toBe('hunter2');
    expect(statSync(join(dir, 'dir/password')).mode & 0o777).toBe(0o400);
    expect(statSync(join(dir, 'user')).mode & 0o777).toBe(0o644);
    expect(lstatSync(join(dir, 'user')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, '..data'))).toMatch(/^\.\.\d/);
    expect(statSync(join(root, 'pods', p.metadata.uid!)).mode & 0o777).toBe(0o750);
    await vm.tearDown(p.metadata.uid!);
    expect(mountsUnder(root)).toEqual([]);
    expect(existsSync(join(root, 'pods', p.metadata.uid!))).toBe(false);
  });

  it('configMap update is an atomic ..data swap; removed keys disappear', async () => {
    const p = pod([{ name: 'c', configMap: { name: 'cfg', defaultMode: 0o640 } }]);
    const paths = await vm.setUp(p, { objects: { configMaps: [cm({ a: '1', b: '2' })], secrets: [] } });
    const dir = paths.c!;
    expect(isTmpfs(dir)).toBe(false);
    const before = readlinkSync(join(dir, '..data'));
    expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o640);
    await vm.update(p, { objects: { configMaps: [cm({ a: 'one', c: '3' })], secrets: [] } });
    const after = readlinkSync(join(dir, '..data'));
    expect(after).not.toBe(before);
    expect(readFileSync(join(dir, 'a'), 'utf8')).toBe('one');
    expect(readFileSync(join(dir, 'c'), 'utf8')).toBe('3');
    expect(existsSync(join(dir, 'b'))).toBe(false);
    expect(existsSync(join(dir, before))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['..data', after, 'a', 'c'].sort());
  });

  it('emptyDir Memory: tmpfs with size=sizeLimit; disk emptyDir is a plain dir', async () => {
    const p = pod([{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } }, { name: 'd', emptyDir: {} }, { name: 'm2', emptyDir: { medium: 'Memory' } }]);
    const paths = await vm.setUp(p, { objects: { configMaps: [], secrets: [] } });
    expect(isTmpfs(paths.m!)).toBe(true);
    const st = statfs(paths.m!);
    expect(st.blocks * st.blockSize).toBe(8 * 2 ** 20);
    const st2 = statfs(paths.m2!);
    expect(st2.blocks * st2.blockSize).toBe(32 * 2 ** 20); // the pod's memory limit
    expect(mountsUnder(paths.d!)).toEqual([]);
    expect(statSync(paths.d!).mode & 0o777).toBe(0o777);
    await vm.tearDown(p.metadata.uid!);
    expect(mountsUnder(root)).toEqual([]);
  });

  it('downwardAPI and projected (with service account token) on tmpfs', async () => {
    const p = pod([
      { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'name', fieldRef: { fieldPath: 'metadata.name' } }, { path: 'mem', resourceFieldRef: { containerName: 'app', resource: 'limits.memory', divisor: '1Mi' } }] } },
      { name: 'all', projected: { sources: [{ secret: { name: 'creds' } }, { configMap: { name: 'cfg', items: [{ key: 'a', path: 'conf/a' }] } }, { serviceAccountToken: { path: 'token', audience: 'api', expirationSeconds: 3600 } }] } },
    ]);
    const paths = await vm.setUp(p, { objects: { configMaps: [cm({ a: '1' })], secrets: [secret({ pw: 'x' })] }, now: new Date('2026-01-01T00:00:00Z') });
    expect(isTmpfs(paths.info!) && isTmpfs(paths.all!)).toBe(true);
    expect(readFileSync(join(paths.info!, 'labels'), 'utf8')).toBe('app="web"\ntier="fe"');
    expect(readFileSync(join(paths.info!, 'name'), 'utf8')).toBe('web');
    expect(readFileSync(join(paths.info!, 'mem'), 'utf8')).toBe('32');
    expect(readFileSync(join(paths.all!, 'pw'), 'utf8')).toBe('x');
    expect(readFileSync(join(paths.all!, 'conf/a'), 'utf8')).toBe('1');
    const tok = readFileSync(join(paths.all!, 'token'), 'utf8').split('.');
    expect(tok).toHaveLength(3);
    const claims = JSON.parse(Buffer.from(tok[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ sub: 'system:serviceaccount:default:default', aud: ['api'], exp: Date.parse('2026-01-01T01:00:00Z') / 1000 });
    expect(statSync(join(paths.all!, 'token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'sa-signing.key')).mode & 0o777).toBe(0o600);
  });

  it('the service-account signing key: created once (32 bytes, 0600, no temp file left), then reused', () => {
    const p = pod([]);
    const now = new Date('2026-01-01T00:00:00Z');
    const t1 = vm.token(p, 'api', 3600, now);
    expect(readdirSync(root)).toEqual(['sa-signing.key']);
    const key = readFileSync(join(root, 'sa-signing.key'));
    expect(key).toHaveLength(32);
    expect(statSync(join(root, 'sa-signing.key')).mode & 0o777).toBe(0o600);
    expect(new VolumeManager({ root }).token(p, 'api', 3600, now)).toBe(t1);
    expect(t1).toBe(signServiceAccountToken(p, 'api', 3600, now, key));
  });

  it('missing secret: error, and nothing left behind', async () => {
    const p = pod([{ name: 'm', emptyDir: { medium: 'Memory' } }, { name: 's', secret: { secretName: 'nope' } }]);
    await expect(vm.setUp(p, { objects: { configMaps: [], secrets: [] } })).rejects.toThrow(/volume "s": secret "nope" not found/);
    expect(mountsUnder(root)).toEqual([]);
    expect(existsSync(join(root, 'pods', p.metadata.uid!))).toBe(false);
    // optional: an empty volume
    const q = pod([{ name: 's', secret: { secretName: 'nope', optional: true } }]);
    const paths = await vm.setUp(q, { objects: { configMaps: [], secrets: [] } });
    expect(readdirSync(paths.s!).filter((e) => !e.startsWith('..'))).toEqual([]);
  });

  it('fsGroup: emptyDir setgid to the group, secret files group-readable', async () => {
    const p = pod([{ name: 'd', emptyDir: {} }, { name: 's', secret: { secretName: 'creds', defaultMode: 0o400 } }], { securityContext: { fsGroup: 2000 } });
    const paths = await vm.setUp(p, { objects: { configMaps: [], secrets: [secret({ pw: 'x' })] } });
    const d = statSync(paths.d!);
    expect([d.gid, d.mode & 0o7777]).toEqual([2000, 0o2777]);
    const f = statSync(join(paths.s!, 'pw'));
    expect([f.gid, f.mode & 0o777]).toEqual([2000, 0o440]);
  });

  it('fsGroup: a tmpfs emptyDir is 03777, a missing subPath in it gets that mode and the group (dgtrwxrwxrwx)', async () => {
    const p = pod([{ name: 'm', emptyDir: { medium: 'Memory' } }], { securityContext: { fsGroup: 123 } });
    const paths = await vm.setUp(p, { objects: { configMaps: [], secrets: [] } });
    const m = statSync(paths.m!);
    expect([m.uid, m.gid, m.mode & 0o7777]).toEqual([0, 123, 0o3777]);
    const sub = statSync(vm.resolveSubPath(paths.m!, 'test-sub'));
    expect([sub.uid, sub.gid, sub.mode & 0o7777]).toEqual([0, 123, 0o3777]);
  });

  it('hostPath type checks', () => {
    const d = join(root, 'host');
    checkHostPath('v', join(d, 'a/b'), 'DirectoryOrCreate');
    expect(statSync(join(d, 'a/b')).isDirectory()).toBe(true);
    checkHostPath('v', join(d, 'f'), 'FileOrCreate');
    expect(statSync(join(d, 'f')).isFile()).toBe(true);
    expect(() => checkHostPath('v', join(d, 'f'), 'Directory')).toThrow(/is not a directory/);
    expect(() => checkHostPath('v', join(d, 'a'), 'File')).toThrow(/is not a file/);
    expect(() => checkHostPath('v', join(d, 'none'), 'Directory')).toThrow(/does not exist/);
    expect(() => checkHostPath('v', '/dev/null', 'BlockDevice')).toThrow(/not a block device/);
    checkHostPath('v', '/dev/null', 'CharDevice');
    expect(() => checkHostPath('v', join(d, 'f'), 'Socket')).toThrow(/not a socket/);
    checkHostPath('v', join(d, 'whatever'), '');
  });

  it('subPath: created when missing, symlink escapes refused', () => {
    const vol = join(root, 'vol');
    mkdirSync(vol);
    expect(resolveSubPath(vol, 'a/b')).toBe(join(vol, 'a/b'));
    expect(statSync(join(vol, 'a/b')).isDirectory()).toBe(true);
    symlinkSync('/etc', join(vol, 'evil'));
    expect(() => resolveSubPath(vol, 'evil')).toThrow(/resolves outside volume/);
    expect(() => resolveSubPath(vol, 'evil/passwd')).toThrow(/resolves outside volume/);
    symlinkSync('../../..', join(vol, 'a/up'));
    expect(() => resolveSubPath(vol, 'a/up/etc')).toThrow(/resolves outside volume/);
    symlinkSync('b', join(vol, 'a/inside'));
    expect(resolveSubPath(vol, 'a/inside')).toBe(join(vol, 'a/b'));
    writeFileSync(join(vol, 'file'), 'x');
    expect(resolveSubPath(vol, 'file')).toBe(join(vol, 'file'));
    expect(() => resolveSubPath(vol, '../x')).toThrow(/must be relative/);
  });
});
