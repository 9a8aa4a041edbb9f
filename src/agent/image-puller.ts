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
import { keyringFromSecrets, lookupKeyring } from '../image/registry/keyring.js';
import type { ImageProvider, ImageRecord } from '../image/types.js';
import type { Container, Pod, PodObjects, Secret } from '../pod/api-types.js';
import { Backoff, backoffKey, type BackoffOptions } from '../pod/backoff.js';

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

/** The credentials of the pod's pull secrets for one image, most specific first (throws on a malformed secret). */
export function pullSecretCredentials(image: string, secrets: Secret[]): Credentials[] {
  if (secrets.length === 0) return [];
  return lookupKeyring(keyringFromSecrets(secrets), repositoryName(parseReference(image))).map((e) => e.credentials);
}

export class ImagePuller {
  private readonly backoff: Backoff;
  /** last failure time per `${uid}/${container}` */
  private readonly failures = new Map<string, number>();
  /** one import per built-in ref, shared by every pod that needs it meanwhile */
  private readonly builtinImports = new Map<string, Promise<boolean>>();

  constructor(private readonly o: ImagePullerOptions) {
    this.backoff = new Backoff(o.backoff);
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
      if (img && imported) {
        this.o.record(pod, 'Normal', 'Pulled', `Container image "${ref}" imported from the built-in images`, fieldPath);
      } else if (img && policy !== 'Always') {
        this.o.record(pod, 'Normal', 'Pulled', `Container image "${ref}" already present on machine`, fieldPath);
      } else {
        if (policy === 'Never') throw new NodeletError('NotFound', 'ERR_IMAGE_NEVER_PULL', `Container image "${ref}" is not present with pull policy of Never`);
        this.o.record(pod, 'Normal', 'Pulling', `Pulling image "${ref}"`, fieldPath);
        const t0 = Date.now();
        this.o.onProgress?.({ pod: pod.metadata.name!, container: c.name, ref, phase: 'start' });
        const credentials = pullSecretCredentials(ref, pull.secrets);
        img = await this.o.images.ensureImage(ref, policy, {
          ...(credentials.length ? { credentials } : {}),
          onProgress: (p) => this.o.onProgress?.({ pod: pod.metadata.name!, container: c.name, ref, progress: p }),
        });
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
