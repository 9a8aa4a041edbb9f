// Which credentials an image on this node was pulled with (kubelet's KubeletEnsureSecretPulledImages,
// beta and on by default since v1.35; pkg/kubelet/images/pullmanager), so that a pod cannot run an image
// another pod pulled with its own pull secret. The record per image ID maps the repository it was pulled
// as to either "every pod may use it" (pulled anonymously or with the node's credentials) or the pull
// secrets (namespace, name, uid, a hash of the credentials) that pulled it. The policy is kubelet's
// default, NeverVerifyPreloadedImages: an image with no record (imported, built in, pulled by `nodelet
// pull` or before this existed) is not verified. Not done: kubelet's pull intents (a pull interrupted by
// a crash makes its image "pulled by kubelet"); here such an image has no record, so it counts as preloaded.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { getLogger } from '../log.js';
import { writeFileAtomic } from '../sys/atomic.js';
import type { Credentials } from '../image/registry/auth.js';

const log = getLogger('pulled-images');

export interface PullSecretRef {
  namespace: string;
  name: string;
  uid: string;
  /** sha256 of the credentials that pulled it */
  credentialHash: string;
}

export interface RepoCredentials {
  nodePodsAccessible?: boolean;
  secrets?: PullSecretRef[];
}

/** image ID → repository (host/path, no tag or digest) → who may use it */
export type PulledRecords = Record<string, Record<string, RepoCredentials>>;

export function credentialHash(c: Credentials): string {
  return createHash('sha256').update(JSON.stringify({ username: c.username, password: c.password })).digest('hex');
}

/**
 * kubelet's MustAttemptImagePull: must the present image be pulled again to prove the pod may use it?
 * No record: preloaded, not verified. A record without this repository, or with secrets none of which the
 * pod has (same coordinates, or the same credentials under another Secret): yes.
 */
export function mustAttemptPull(records: PulledRecords, imageId: string, repository: string, pod: PullSecretRef[]): { pull: boolean; matched?: PullSecretRef } {
  const rec = records[imageId];
  if (!rec) return { pull: false };
  const cached = rec[repository];
  if (!cached) return { pull: true };
  if (cached.nodePodsAccessible) return { pull: false };
  for (const p of pod)
    for (const c of cached.secrets ?? []) {
      if (c.credentialHash && c.credentialHash === p.credentialHash) return { pull: false, ...(c.namespace === p.namespace && c.name === p.name && c.uid === p.uid ? {} : { matched: p }) };
      if (c.namespace === p.namespace && c.name === p.name && c.uid === p.uid) return { pull: false };
    }
  return { pull: true };
}

/** kubelet's pulledRecordMergeNewCreds: node-wide access absorbs everything; secrets are merged by coordinates. */
export function recordPulled(records: PulledRecords, imageId: string, repository: string, by: { nodePodsAccessible: true } | { secret: PullSecretRef }): boolean {
  const rec = (records[imageId] ??= {});
  const cur = rec[repository];
  if (cur?.nodePodsAccessible) return false;
  if ('nodePodsAccessible' in by) {
    rec[repository] = { nodePodsAccessible: true };
    return true;
  }
  const s = by.secret;
  const secrets = [...(cur?.secrets ?? [])];
  const i = secrets.findIndex((x) => x.namespace === s.namespace && x.name === s.name && x.uid === s.uid);
  if (i >= 0 && secrets[i]!.credentialHash === s.credentialHash) return false;
  if (i >= 0) secrets[i] = s;
  else secrets.push(s);
  rec[repository] = { secrets };
  return true;
}

/** The records in one JSON file (atomic writes); in memory only without a file. */
export class PulledImageStore {
  readonly records: PulledRecords;
  constructor(private readonly file?: string) {
    let r: PulledRecords = {};
    if (file) {
      try {
        const v = JSON.parse(fs.readFileSync(file, 'utf8')) as { records?: PulledRecords };
        if (v && typeof v.records === 'object' && v.records) r = v.records;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('unreadable image pull records; starting empty', { file, error: (e as Error).message });
      }
    }
    this.records = r;
  }
  save(): void {
    if (!this.file) return;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileAtomic(this.file, JSON.stringify({ version: 1, records: this.records }), { mode: 0o600 });
    } catch (e) {
      log.warn('cannot write image pull records', { file: this.file, error: (e as Error).message });
    }
  }
}
