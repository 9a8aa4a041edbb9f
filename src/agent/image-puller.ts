// Image puller (kubelet images/image_manager.go EnsureImageExists): the pull
// policy, ErrImagePull → ImagePullBackOff with kubelet's back-off per pod and
// container, the built-in images (localhost/nodelet/...) imported through
// ImageService instead of pulled, and the events kubelet records. The pod's
// spec.imagePullSecrets (kubelet_pods.go getPullSecretsForPod, image_manager.go's
// keyring): the Secrets among the pod's objects, their entries that match the
// image tried in order before the node's own credentials; a referenced Secret
// that is not there is an event and the pull goes on without it.
import { describeError, isNodeletError, NodeletError } from '../errors.js';
import { parseReference, repositoryName } from '../image/reference.js';
import type { Credentials } from '../image/registry/auth.js';
import { keyringFromSecrets, lookupKeyring, type KeyringEntry } from '../image/registry/keyring.js';
import type { ImageProvider, ImageRecord } from '../image/types.js';
import type { Container, Pod, PodObjects, Secret } from '../pod/api-types.js';
import { Backoff, backoffKey, type BackoffOptions } from '../pod/backoff.js';
import { credentialHash, mustAttemptPull, PulledImageStore, recordPulled, type PullSecretRef } from './pulled-images.js';

export type PullOutcome =
  | { image: ImageRecord }
  /** not pulled: the container waits with this reason; retry no later than `retryAt` */
  | { waiting: { reason: 'ImagePullBackOff' | 'ErrImagePull' | 'ErrImageNeverPull'; message: string }; retryAt: number };

export interface PullProgress {
  pod: string;
  container: string;
  ref: string;
  phase?: 'start';
  progress?: unknown;
}

export interface ImagePullerOptions {
  images: ImageProvider;
  /** Resolve a built-in image that is not in the store; true when imported. */
  importBuiltin?: (ref: string) => Promise<boolean>;
  backoff?: BackoffOptions;
  record: (pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string) => void;
  onProgress?: (p: PullProgress) => void;
  /** Where the credentials each image was pulled with are kept (pulled-images.ts); in memory without one. */
  pulledRecordsFile?: string;
}

/**
 * The pod's image pull secrets found among its objects, in spec order, and the names that are not there
 * (kubelet's getPullSecretsForPod: empty names are ignored).
 */
export function podPullSecrets(pod: Pod, objects: PodObjects | undefined): { secrets: Secret[]; missing: string[] } {
  const secrets: Secret[] = [];
  const missing: string[] = [];
  const ns = pod.metadata.namespace ?? 'default';
  for (const ref of pod.spec.imagePullSecrets ?? []) {
    const name = ref?.name;
    if (!name) continue;
    const s = objects?.secrets.find((o) => o.metadata?.name === name && (o.metadata.namespace ?? 'default') === ns);
    if (s) secrets.push(s);
    else missing.push(name);
  }
  return { secrets, missing };
}

/** The entries of the pod's pull secrets for one image, most specific first (throws on a malformed secret). */
export function pullSecretKeyring(image: string, secrets: Secret[]): KeyringEntry[] {
  if (secrets.length === 0) return [];
  return lookupKeyring(keyringFromSecrets(secrets), repositoryName(parseReference(image)));
}

/** The credentials of the pod's pull secrets for one image, in the order a pull tries them. */
export function pullSecretCredentials(image: string, secrets: Secret[]): Credentials[] {
  return pullSecretKeyring(image, secrets).map((e) => e.credentials);
}

const secretRef = (e: KeyringEntry): PullSecretRef => ({ ...e.secret, credentialHash: credentialHash(e.credentials) });

export class ImagePuller {
  private readonly backoff: Backoff;
  /** last failure time per `${uid}/${container}` */
  private readonly failures = new Map<string, number>();
  /** one import per built-in ref, shared by every pod that needs it meanwhile */
  private readonly builtinImports = new Map<string, Promise<boolean>>();

  private readonly pulled: PulledImageStore;

  constructor(private readonly o: ImagePullerOptions) {
    this.backoff = new Backoff(o.backoff);
    this.pulled = new PulledImageStore(o.pulledRecordsFile);
  }

  /** `objects`: the pod's API objects (its image pull secrets are among them). */
  async ensure(pod: Pod, c: Container, fieldPath: string, objects?: PodObjects, now = Date.now()): Promise<PullOutcome> {
    const ref = c.image!;
    const pull = podPullSecrets(pod, objects);
    if (pull.missing.length > 0)
      this.o.record(pod, 'Warning', 'FailedToRetrieveImagePullSecret', `Unable to retrieve some image pull secrets (${pull.missing.join(', ')}); attempting to pull the image may not succeed.`);
    const policy = c.imagePullPolicy ?? 'IfNotPresent';
    const key = backoffKey(pod.metadata.uid!, c.name);
    const lastFail = this.failures.get(key);
    if (lastFail !== undefined) {
      const until = this.backoff.releaseAt(key, lastFail, now);
      if (until !== undefined) {
        this.o.record(pod, 'Normal', 'BackOff', `Back-off pulling image "${ref}"`, fieldPath);
        return { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${ref}"` }, retryAt: until };
      }
    }
    try {
      let img = await this.o.images.getImage(ref);
      let imported = false;
      if (!img && policy !== 'Always' && this.o.importBuiltin) {
        let p = this.builtinImports.get(ref);
        if (!p) {
          p = this.o.importBuiltin(ref);
          this.builtinImports.set(ref, p);
          p.catch(() => this.builtinImports.delete(ref)); // a failed import may be retried
        }
        if (await p) img = await this.o.images.getImage(ref);
        imported = !!img;
      }
      const repo = repositoryName(parseReference(ref));
      let ring: KeyringEntry[] | undefined;
      const keyring = () => (ring ??= pullSecretKeyring(ref, pull.secrets));
      // KubeletEnsureSecretPulledImages: a present image another pod pulled with its secret needs this pod's
      // own access, proven by a pull, unless the pod has that secret (or the same credentials)
      let verify = false;
      if (img && !imported && policy !== 'Always') {
        const v = mustAttemptPull(this.pulled.records, img.id, repo, keyring().map(secretRef));
        verify = v.pull;
        if (v.matched && recordPulled(this.pulled.records, img.id, repo, { secret: v.matched })) this.pulled.save();
      }
      if (img && imported) {
        this.o.record(pod, 'Normal', 'Pulled', `Container image "${ref}" imported from the built-in images`, fieldPath);
      } else if (img && policy !== 'Always' && !verify) {
        this.o.record(pod, 'Normal', 'Pulled', `Container image "${ref}" already present on machine and can be accessed by the pod`, fieldPath);
      } else {
        if (policy === 'Never')
          throw new NodeletError('NotFound', 'ERR_IMAGE_NEVER_PULL', img ? `Container image "${ref}" is present but was pulled with credentials this pod lacks, and the pull policy is Never` : `Container image "${ref}" is not present with pull policy of Never`);
        this.o.record(pod, 'Normal', 'Pulling', `Pulling image "${ref}"`, fieldPath);
        const t0 = Date.now();
        this.o.onProgress?.({ pod: pod.metadata.name!, container: c.name, ref, phase: 'start' });
        const entries = keyring();
        const credentials = entries.map((e) => e.credentials);
        let used: { c: Credentials | undefined } | undefined; // set only when the service really pulled
        img = await this.o.images.ensureImage(ref, verify ? 'Always' : policy, {
          ...(credentials.length ? { credentials } : {}),
          onCredentialsUsed: (u) => void (used = { c: u }),
          onProgress: (p) => this.o.onProgress?.({ pod: pod.metadata.name!, container: c.name, ref, progress: p }),
        });
        if (used) {
          const u = used.c;
          const bySecret = u ? entries.find((e) => e.credentials === u) : undefined;
          if (recordPulled(this.pulled.records, img.id, repo, bySecret ? { secret: secretRef(bySecret) } : { nodePodsAccessible: true })) this.pulled.save();
        }
        this.o.record(pod, 'Normal', 'Pulled', `Successfully pulled image "${ref}" in ${((Date.now() - t0) / 1000).toFixed(3)}s`, fieldPath);
      }
      this.failures.delete(key);
      this.backoff.reset(key);
      return { image: img };
    } catch (err) {
      const t = Date.now();
      this.failures.set(key, t);
      const wait = this.backoff.next(key, t, t);
      const never = isNodeletError(err, 'ERR_IMAGE_NEVER_PULL');
      const reason = never ? 'ErrImageNeverPull' : 'ErrImagePull';
      this.o.record(pod, 'Warning', 'Failed', `Failed to pull image "${ref}": ${describeError(err)}`, fieldPath);
      this.o.record(pod, 'Warning', 'Failed', `Error: ${reason}`, fieldPath);
      // sync again soon: it reports ImagePullBackOff until the back-off expires, then pulls again
      return { waiting: { reason, message: describeError(err) }, retryAt: t + Math.min(1000, wait / 2) };
    }
  }

  forgetPod(uid: string): void {
    this.backoff.resetPrefix(uid + '/');
    for (const k of [...this.failures.keys()]) if (k.startsWith(uid + '/')) this.failures.delete(k);
  }
}
