// `nodelet ps` (podman ps): the pods `nodelet run` started on this --root, from their records
// (<root>/pods/<uid>/pod.json, PodStore.loadAll) with the nodelet.io/run-owner annotation. STATUS says
// whether the owner (pid + start time, src/agent/run-owner.ts) is still there: Running, or Orphaned
// (its `nodelet run` is gone; the next `nodelet run` or `nodelet daemon` on this root removes the pod).
import fs from 'node:fs';
import path from 'node:path';
import { NodeletError } from '../errors.js';
import { PodStore } from '../agent/pod-store.js';
import { isOrphan, parseRunOwner, RUN_OWNER_ANNOTATION, type ProcLookup, procStartTime } from '../agent/run-owner.js';
import { humanDuration } from './describe.js';
import { shellQuote } from './client-ux.js';

export interface RunPodRow {
  name: string;
  namespace: string;
  status: 'Running' | 'Orphaned';
  ownerPid: number;
  age: string;
  uid: string;
}

function permissionDenied(p: string): NodeletError {
  return new NodeletError('PermissionDenied', 'ERR_NOT_ROOT', `permission denied on ${p}: the pod records are root-only; try sudo nodelet ${shellQuote(process.argv.slice(2))}`, {
    details: { kubectlStyle: true },
  });
}

export function listRunPods(root: string, now = Date.now(), procLookup: ProcLookup = procStartTime): RunPodRow[] {
  const dir = path.join(root, 'pods');
  // loadAll skips what it cannot read: as a user that would be an empty list, which is a lie
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(dir);
  }
  for (const n of names) {
    try {
      fs.accessSync(path.join(dir, n, 'pod.json'), fs.constants.R_OK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(path.join(dir, n, 'pod.json'));
    }
  }
  const rows: RunPodRow[] = [];
  for (const rec of new PodStore({ root }).loadAll()) {
    const ann = rec.pod.metadata.annotations?.[RUN_OWNER_ANNOTATION];
    const owner = parseRunOwner(ann);
    if (!owner) continue;
    const created = Date.parse(rec.pod.metadata.creationTimestamp ?? '');
    rows.push({
      name: rec.pod.metadata.name!,
      namespace: rec.pod.metadata.namespace ?? 'default',
      status: isOrphan(ann, procLookup) ? 'Orphaned' : 'Running',
      ownerPid: owner.pid,
      age: Number.isNaN(created) ? '<unknown>' : humanDuration(now - created),
      uid: rec.pod.metadata.uid!,
    });
  }
  return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}
