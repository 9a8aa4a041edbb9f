// Resolve the container's uid/gid/groups like runc's user.GetExecUserPath and
// containerd's WithUserID/WithAdditionalGIDs: runAsUser/runAsGroup win, else
// the image's USER ("name", "uid", "name:group", "uid:gid") looked up in the
// rootfs's /etc/passwd and /etc/group. Parsing is pure; reading the files is
// done through readInRoot (symlinks resolved inside the rootfs).

import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument } from '../errors.js';

export interface PasswdEntry { name: string; uid: number; gid: number; home: string; shell: string }
export interface GroupEntry { name: string; gid: number; members: string[] }

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const f = l.split(':');
    if (f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const f = l.split(':');
    if (f.length < 3 || f[2] === '') continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean) });
  }
  return out;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** passwd home (for HOME), "/" if unknown */
  home: string;
  username?: string;
}

export interface ResolveUserInput {
  passwd: PasswdEntry[];
  group: GroupEntry[];
  /** the image config's USER ("" / undefined = root) */
  imageUser?: string;
  runAsUser?: number;
  runAsGroup?: number;
  /** the CRI's supplemental groups (pod supplementalGroups + fsGroup) */
  supplementalGroups: number[];
  /** Strict: no groups from the image's /etc/group (containerd skips WithAdditionalGIDs) */
  supplementalGroupsPolicy?: 'Merge' | 'Strict';
}

const isNumeric = (s: string) => /^[0-9]+$/.test(s);
const MAX_ID = 2 ** 31 - 1;

function badUser(msg: string, user: string): Error {
  return invalidArgument('ERR_CONTAINER_USER_INVALID', msg, { details: { user } });
}

/**
 * uid and primary gid as runc's GetExecUser; the supplementary groups as containerd's CRI builds them:
 * with policy Merge (default) the groups of /etc/group that list the user by name (WithAdditionalGIDs:
 * the user is runAsUser's passwd name, else the image USER's user part; a group named like the user is
 * not a supplementary one), then the primary gid (ensureAdditionalGids), then the CRI supplemental
 * groups merged in (mergeGids: unique, ascending). Strict: only the primary gid and the CRI groups.
 */
export function resolveUser(inp: ResolveUserInput): ResolvedUser {
  let entry: PasswdEntry | undefined;
  let uid: number;
  let gid: number | undefined;
  /** the name containerd looks the groups up by ("" = none) */
  let username = '';
  if (inp.runAsUser !== undefined) {
    uid = inp.runAsUser;
    entry = inp.passwd.find((p) => p.uid === uid);
    username = entry?.name ?? '';
  } else {
    const spec = (inp.imageUser ?? '').trim();
    const [u = '', g] = spec.split(':', 2) as [string, string | undefined];
    if (u === '') {
      uid = 0;
      entry = inp.passwd.find((p) => p.uid === 0);
      username = entry?.name ?? '';
    } else if (isNumeric(u)) {
      uid = Number(u);
      if (uid > MAX_ID) throw badUser(`Image USER "${spec}": uid out of range`, spec);
      entry = inp.passwd.find((p) => p.uid === uid);
      username = entry?.name ?? '';
    } else {
      entry = inp.passwd.find((p) => p.name === u);
      if (!entry) throw badUser(`Image USER "${spec}": no user "${u}" in the image's /etc/passwd (use a numeric uid or add the user to the image)`, spec);
      uid = entry.uid;
      username = u;
    }
    if (g !== undefined && g !== '') {
      if (isNumeric(g)) gid = Number(g);
      else {
        const ge = inp.group.find((x) => x.name === g);
        if (!ge) throw badUser(`Image USER "${spec}": no group "${g}" in the image's /etc/group`, spec);
        gid = ge.gid;
      }
    }
  }
  if (inp.runAsGroup !== undefined) gid = inp.runAsGroup;
  const primary = gid ?? entry?.gid ?? 0;
  const gids = new Set<number>([primary]);
  if (inp.supplementalGroupsPolicy !== 'Strict' && username !== '') {
    for (const g of inp.group) if (g.name !== username && g.members.includes(username)) gids.add(g.gid);
  }
  for (const g of inp.supplementalGroups) gids.add(g);
  const additionalGids = [...gids].sort((a, b) => a - b);
  return { uid, gid: primary, additionalGids, home: entry?.home || '/', username: entry?.name };
}

/**
 * Resolve `p` (absolute, inside the container) against `root` following
 * symlinks as if root were "/": the result never escapes root (like
 * github.com/cyphar/filepath-securejoin).
 */
export function resolveInRoot(root: string, p: string): string {
  const parts = p.split('/').filter((s) => s && s !== '.');
  const done: string[] = [];
  let hops = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '..') { done.pop(); continue; }
    const cur = path.join(root, ...done, part);
    let st: fs.Stats;
    try { st = fs.lstatSync(cur); } catch { done.push(part, ...parts); break; }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw invalidArgument('ERR_PATH_SYMLINK_LOOP', `Too many symlinks resolving ${p} in ${root}`);
      const target = fs.readlinkSync(cur);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter((s) => s && s !== '.'));
    } else done.push(part);
  }
  return path.join(root, ...done);
}

/** Read a file inside a rootfs ("" if missing). */
export function readInRoot(root: string, p: string): string {
  try { return fs.readFileSync(resolveInRoot(root, p), 'utf8'); } catch { return ''; }
}

export function resolveUserInRootfs(rootfs: string, inp: Omit<ResolveUserInput, 'passwd' | 'group'>): ResolvedUser {
  return resolveUser({ ...inp, passwd: parsePasswd(readInRoot(rootfs, '/etc/passwd')), group: parseGroup(readInRoot(rootfs, '/etc/group')) });
}
