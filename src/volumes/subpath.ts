// Safe volumeMount subPath resolution, after kubelet's fix for
// CVE-2017-1002101: every component of <volume>/<subPath> is resolved, and a
// symlink anywhere in it that leads outside the volume is refused. Missing
// directories are created with the mode of the volume's root, setgid and sticky
// included (kubelet's makeMounts: SafeMakeDir(subPath, volumePath, GetMode(volumePath))),
// so an fsGroup volume's 02777/03777 carries over and the group comes from the
// setgid root. The caller binds the returned path.

import { lstatSync, mkdirSync, chmodSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { NodeletError } from '../errors.js';

function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

function escapeError(subPath: string, volumePath: string, where: string): NodeletError {
  return new NodeletError('PermissionDenied', 'ERR_SUBPATH_ESCAPE', `subPath "${subPath}" resolves outside volume ${volumePath} (at ${where}); refusing to mount it`, {
    details: { subPath, volumePath, where },
  });
}

/** Host path for <volumePath>/<subPath>, created if missing; throws ERR_SUBPATH_ESCAPE / ERR_SUBPATH_INVALID. */
export function resolveSubPath(volumePath: string, subPath: string): string {
  if (subPath.startsWith('/') || subPath.split('/').includes('..'))
    throw new NodeletError('InvalidArgument', 'ERR_SUBPATH_INVALID', `subPath "${subPath}" must be relative and must not contain '..'`);
  const root = realpathSync(volumePath);
  const perm = statSync(root).mode & 0o7777;
  let cur = root;
  for (const comp of subPath.split('/').filter((s) => s !== '' && s !== '.')) {
    const p = join(cur, comp);
    let st;
    try {
      st = lstatSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(p);
      chmodSync(p, perm); // mkdir's mode went through the umask; setgid/sticky need the chmod anyway
      cur = p;
      continue;
    }
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(p);
      } catch {
        throw escapeError(subPath, volumePath, p);
      }
      if (!within(root, target)) throw escapeError(subPath, volumePath, p);
      cur = target;
    } else cur = p;
  }
  const final = realpathSync(cur);
  if (!within(root, final)) throw escapeError(subPath, volumePath, cur);
  return final;
}
