// The port through which nodelet talks to a Kubernetes API server (cluster mode).
// The implementation is src/kube/client.ts (undici, client certificates from a
// kubeconfig); unit tests use fakes of this interface. Objects are plain JSON
// (Kubernetes wire form); `KubeObject` is the minimum every object has.

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  finalizers?: string[];
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Which resource: core group is `''` (path /api/v1), others /apis/<group>/<version>. */
export interface ResourceRef {
  group: string;
  version: string;
  /** plural lower-case resource name: pods, nodes, leases, events, configmaps, secrets ... */
  resource: string;
  /** omitted for cluster-scoped resources (nodes) or for all-namespace lists */
  namespace?: string;
  /** subresource: status, token, binding, eviction ... */
  subresource?: string;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  limit?: number;
  continue?: string;
  timeoutSeconds?: number;
  /** aborts the request (list: rejects with ERR_KUBE_CANCELED; watch: the stream just ends) */
  signal?: AbortSignal;
}

/** Query options of create and update. */
export interface WriteOptions {
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
  fieldManager?: string;
  /** dryRun=All: validated and admitted, not persisted */
  dryRun?: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  /** for ERROR: a metav1.Status */
  object: T;
}

export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  signal?: AbortSignal;
}

export type PatchType = 'strategic' | 'merge' | 'json' | 'apply';

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
}

/** A non-2xx answer of the API server, carrying its metav1.Status. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion?: string;
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string; // NotFound, AlreadyExists, Conflict, Gone (410 Expired), Forbidden, Invalid ...
  code?: number;
  details?: Record<string, unknown>;
}

export interface KubeClient {
  /** The identity from the kubeconfig (e.g. system:node:<name>), for messages. */
  readonly user?: string;
  readonly server: string;
  get<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string): Promise<T>;
  list<T extends KubeObject = KubeObject>(ref: ResourceRef, opts?: ListOptions): Promise<KubeList<T>>;
  /** Streams watch events until the server closes the watch, `signal` aborts, or an error is thrown.
   *  410 Gone comes back as an ERROR event whose object is a Status with code 410 (the caller relists). */
  watch<T extends KubeObject = KubeObject>(ref: ResourceRef, opts?: WatchOptions): AsyncIterable<WatchEvent<T>>;
  /** POST to the collection (or, with ref.subresource and `opts.name`, e.g. serviceaccounts/<sa>/token, to the object's subresource). */
  create<T extends KubeObject = KubeObject>(ref: ResourceRef, body: unknown, opts?: WriteOptions & { name?: string }): Promise<T>;
  /** PUT (update); resourceVersion in body.metadata gives optimistic concurrency (409 Conflict). */
  update<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, body: unknown, opts?: WriteOptions): Promise<T>;
  /** `patch` may be an object (sent as JSON) or a ready string. 'apply' needs fieldManager. */
  patch<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, type: PatchType, patch: unknown, opts?: { fieldManager?: string; force?: boolean; fieldValidation?: 'Strict' | 'Warn' | 'Ignore'; dryRun?: boolean }): Promise<T>;
  delete(ref: ResourceRef, name: string, opts?: DeleteOptions): Promise<KubeObject | KubeStatus>;
  close(): Promise<void>;
}
