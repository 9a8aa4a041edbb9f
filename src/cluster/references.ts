// Which API objects a pod needs from the API server (pure): kubelet's
// podutil.VisitPodConfigmapNames / VisitPodSecretNames (the same walk the
// Node authorizer's graph makes, so these are exactly the objects a node may
// read for the pod) plus the projected serviceAccountToken sources the token
// manager requests tokens for.
//
//   ConfigMaps: env valueFrom.configMapKeyRef, envFrom[].configMapRef of every
//               init, app and ephemeral container; volumes configMap and
//               projected.sources[].configMap.
//   Secrets:    spec.imagePullSecrets; env valueFrom.secretKeyRef,
//               envFrom[].secretRef; volumes secret and projected.sources[].secret.
//   Tokens:     projected.sources[].serviceAccountToken as (audience, expirationSeconds):
//               audience '' when unset (the API server's own audiences),
//               expirationSeconds 3600 when unset (the API's default).
//
// Empty names are skipped (as skipEmptyNames does); every list is deduped in
// first-seen order.
import type { Container, Pod } from '../pod/api-types.js';

export type ObjectKind = 'ConfigMap' | 'Secret';

export interface ObjectRef {
  kind: ObjectKind;
  namespace: string;
  name: string;
}

export interface TokenRef {
  /** '' when the source has none: the token is for the API server's default audiences */
  audience: string;
  expirationSeconds: number;
}

export interface PodReferences {
  namespace: string;
  /** spec.serviceAccountName (or the deprecated spec.serviceAccount), else 'default' */
  serviceAccountName: string;
  configMaps: string[];
  secrets: string[];
  tokens: TokenRef[];
}

/** The default of ServiceAccountTokenProjection.expirationSeconds (API defaulting). */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;

/** "ConfigMap/<ns>/<name>": the key objects are cached and deduped by. */
export function objectKey(ref: ObjectRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** "<audience>|<expirationSeconds>": a token's key within one pod. */
export function tokenKey(t: TokenRef): string {
  return `${t.audience}|${t.expirationSeconds}`;
}

function containersOf(pod: Pod): Container[] {
  const spec = pod.spec as Pod['spec'] & { ephemeralContainers?: Container[] };
  return [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
}

class OrderedSet {
  readonly items: string[] = [];
  private readonly seen = new Set<string>();
  add(name: string | undefined): void {
    if (!name || this.seen.has(name)) return;
    this.seen.add(name);
    this.items.push(name);
  }
}

/** Every ConfigMap, Secret and service-account token the pod references. */
export function podReferences(pod: Pod): PodReferences {
  const cms = new OrderedSet();
  const secrets = new OrderedSet();
  const tokens: TokenRef[] = [];
  const tokenSeen = new Set<string>();

  for (const ref of pod.spec.imagePullSecrets ?? []) secrets.add(ref?.name);
  for (const c of containersOf(pod)) {
    for (const ef of c.envFrom ?? []) {
      cms.add(ef.configMapRef?.name);
      secrets.add(ef.secretRef?.name);
    }
    for (const e of c.env ?? []) {
      cms.add(e.valueFrom?.configMapKeyRef?.name);
      secrets.add(e.valueFrom?.secretKeyRef?.name);
    }
  }
  for (const v of pod.spec.volumes ?? []) {
    cms.add(v.configMap?.name);
    secrets.add(v.secret?.secretName);
    for (const src of v.projected?.sources ?? []) {
      cms.add(src.configMap?.name);
      secrets.add(src.secret?.name);
      const t = src.serviceAccountToken;
      if (t) {
        const ref: TokenRef = { audience: t.audience ?? '', expirationSeconds: t.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS };
        const k = tokenKey(ref);
        if (!tokenSeen.has(k)) {
          tokenSeen.add(k);
          tokens.push(ref);
        }
      }
    }
  }
  return {
    namespace: pod.metadata.namespace || 'default',
    serviceAccountName: pod.spec.serviceAccountName || pod.spec.serviceAccount || 'default',
    configMaps: cms.items,
    secrets: secrets.items,
    tokens,
  };
}

/** The referenced ConfigMaps and Secrets as refs in the pod's namespace (ConfigMaps first). */
export function referencedObjects(pod: Pod): ObjectRef[] {
  const r = podReferences(pod);
  return [
    ...r.configMaps.map((name): ObjectRef => ({ kind: 'ConfigMap', namespace: r.namespace, name })),
    ...r.secrets.map((name): ObjectRef => ({ kind: 'Secret', namespace: r.namespace, name })),
  ];
}
