import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd, resolveInRoot, resolveUser, resolveUserInRootfs } from '../../../src/runtime/user.js';

const passwd = parsePasswd('root:x:0:0:root:/root:/bin/sh\n# c\nwww:x:33:33:www:/var/www:/bin/false\nbad:x::1::\napp:x:1000:1000::/home/app:/bin/sh\n');
const group = parseGroup('root:x:0:\nwww:x:33:\nstaff:x:50:app,www\nvideo:x:44:app\napp:x:1000:\n');

describe('resolveUser (runc GetExecUser; containerd WithUserID + WithAdditionalGIDs + WithSupplementalGroups)', () => {
  // additionalGids: the primary gid, /etc/group memberships by name (Merge), the CRI groups; unique, ascending
  it.each([
    ['no user → root', {}, { uid: 0, gid: 0, additionalGids: [0], home: '/root' }],
    ['name', { imageUser: 'app' }, { uid: 1000, gid: 1000, additionalGids: [44, 50, 1000], home: '/home/app' }],
    ['uid known', { imageUser: '33' }, { uid: 33, gid: 33, additionalGids: [33, 50], home: '/var/www' }],
    ['uid unknown → gid 0', { imageUser: '4242' }, { uid: 4242, gid: 0, additionalGids: [0], home: '/' }],
    ['name:group keeps the user\'s groups (containerd cuts the group off)', { imageUser: 'app:www' }, { uid: 1000, gid: 33, additionalGids: [33, 44, 50], home: '/home/app' }],
    ['uid:gid', { imageUser: '5:7' }, { uid: 5, gid: 7, additionalGids: [7], home: '/' }],
    ['runAsUser overrides the image', { imageUser: 'app', runAsUser: 33 }, { uid: 33, gid: 33, additionalGids: [33, 50], home: '/var/www' }],
    ['runAsGroup + supplementalGroups', { runAsUser: 1000, runAsGroup: 5, supplementalGroups: [9, 44] }, { uid: 1000, gid: 5, additionalGids: [5, 9, 44, 50], home: '/home/app' }],
    ['Strict: no /etc/group groups', { runAsUser: 1000, runAsGroup: 5, supplementalGroups: [9], supplementalGroupsPolicy: 'Strict' as const }, { uid: 1000, gid: 5, additionalGids: [5, 9], home: '/home/app' }],
    ['Merge explicitly', { imageUser: 'app', supplementalGroupsPolicy: 'Merge' as const }, { uid: 1000, gid: 1000, additionalGids: [44, 50, 1000], home: '/home/app' }],
    ['a group named like the user is not supplementary', { imageUser: 'app', supplementalGroups: [] }, { uid: 1000, gid: 1000, additionalGids: [44, 50, 1000], home: '/home/app' }],
  ])('%s', (_n, inp, want) => {
    const r = resolveUser({ passwd, group: [...group, { name: 'app', gid: 1001, members: ['app'] }], supplementalGroups: [], ...inp });
    expect({ uid: r.uid, gid: r.gid, additionalGids: r.additionalGids, home: r.home }).toEqual(want);
  });
  it.each([
    ['unknown name', 'nobody2', /no user "nobody2"/],
    ['unknown group name', 'app:nogroup', /no group "nogroup"/],
  ])('rejects %s', (_n, u, re) => {
    expect(() => resolveUser({ passwd, group, supplementalGroups: [], imageUser: u })).toThrow(re);
  });
});

describe('resolveInRoot', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-user-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  it('symlinks (absolute and ..) never escape the rootfs', () => {
    fs.mkdirSync(path.join(root, 'etc'));
    fs.mkdirSync(path.join(root, 'real'));
    fs.writeFileSync(path.join(root, 'real', 'passwd'), 'u:x:7:8::/h:/bin/sh\n');
    fs.symlinkSync('/real/passwd', path.join(root, 'etc', 'passwd'));
    fs.symlinkSync('../../../../etc/shadow', path.join(root, 'etc', 'group'));
    expect(resolveInRoot(root, '/etc/passwd')).toBe(path.join(root, 'real/passwd'));
    expect(resolveInRoot(root, '/etc/group')).toBe(path.join(root, 'etc/shadow'));
    expect(resolveUserInRootfs(root, { imageUser: 'u', supplementalGroups: [] })).toMatchObject({ uid: 7, gid: 8, home: '/h' });
  });
});
