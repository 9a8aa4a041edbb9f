// Updates of an existing pod, as the Kubernetes API server allows them
// (pkg/apis/core/validation/validation.go ValidatePodUpdate): on a running pod
// only spec.containers[*].image, spec.initContainers[*].image,
// spec.activeDeadlineSeconds (set, or lowered), spec.tolerations (additions;
// an existing toleration may change only its tolerationSeconds),
// spec.terminationGracePeriodSeconds (from negative to 1 only) and the
// metadata labels and annotations may change. Anything else is refused with
// the API server's own message, which kubectl users know:
//
//   The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,...
//
// Pure: both pods are defaulted (applyDefaults) before they are compared.

import type { Pod } from './api-types.js';
import { forbidden, formatFieldError, invalid, type FieldError } from './field-errors.js';
import { compareQuantity, tryParseQuantity } from './quantity.js';

/** ValidatePodUpdate's updatablePodSpecFields, in its order and wording. */
export const UPDATABLE_POD_SPEC_FIELDS = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
];

export const FORBIDDEN_POD_UPDATE = `pod updates may not change fields other than ${UPDATABLE_POD_SPEC_FIELDS.join(',')}`;

/**
 * Annotations the node sets on a pod itself (where it came from, who runs it):
 * an update that leaves them out keeps them, as the API server keeps the
 * fields it owns. Spelled out here so src/pod depends on nobody.
 */
export const NODE_MANAGED_ANNOTATIONS = [
  'kubernetes.io/config.source',
  'kubernetes.io/config.hash',
  'kubernetes.io/config.seen',
  'nodelet.io/config.file',
  'nodelet.io/run-owner',
];

const MAX_INT32 = 2147483647;

export interface FieldChange {
  /** e.g. "spec.containers[0].image", "metadata.labels.app" */
  path: string;
  from: unknown;
  to: unknown;
}

export interface PodUpdateChanges {
  /** every difference between the two pods' spec, labels and annotations, leaf by leaf */
  changes: FieldChange[];
  /** containers whose image changed (kubelet restarts them) */
  images: { name: string; init: boolean; from: string | undefined; to: string | undefined }[];
  /** labels or annotations changed */
  metadata: boolean;
  /** anything in spec changed */
  spec: boolean;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Semantic emptiness (apimachinery's Semantic.DeepEqual): nil and empty slices and maps are equal. */
function empty(x: unknown): boolean {
  return x === undefined || x === null || (Array.isArray(x) && x.length === 0) || (isObj(x) && Object.keys(x).length === 0);
}

function key(path: string, k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`;
}

/** Leaf differences of a and b under `path`. Quantities compare by value ("1Gi" = "1024Mi"). */
function diff(a: unknown, b: unknown, path: string, out: FieldChange[], quantities = false): void {
  if (empty(a) && empty(b)) return;
  if (quantities && (typeof a === 'string' || typeof a === 'number') && (typeof b === 'string' || typeof b === 'number')) {
    const qa = tryParseQuantity(a);
    const qb = tryParseQuantity(b);
    if (qa && qb && compareQuantity(qa, qb) === 0) return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length) out.push({ path: `${path}[${i}]`, from: undefined, to: b[i] });
      else if (i >= b.length) out.push({ path: `${path}[${i}]`, from: a[i], to: undefined });
      else diff(a[i], b[i], `${path}[${i}]`, out, quantities);
    }
    return;
  }
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) diff(a[k], b[k], key(path, k), out, quantities || (k === 'limits' || k === 'requests') && /resources$/.test(path));
    return;
  }
  if (a !== b) out.push({ path, from: a, to: b });
}

/** Copy the node-managed annotations of `old` that `neu` leaves out (in place; returns `neu`). */
export function keepNodeManagedAnnotations(old: Pod, neu: Pod): Pod {
  const kept = Object.entries(old.metadata?.annotations ?? {}).filter(([k]) => NODE_MANAGED_ANNOTATIONS.includes(k) && neu.metadata.annotations?.[k] === undefined);
  if (kept.length) neu.metadata.annotations = { ...(neu.metadata.annotations ?? {}), ...Object.fromEntries(kept) };
  return neu;
}

/** What an update from `old` to `neu` changes (spec, labels, annotations; status and system metadata are ignored). */
export function podUpdateChanges(old: Pod, neu: Pod): PodUpdateChanges {
  const meta: FieldChange[] = [];
  diff(old.metadata?.labels, neu.metadata?.labels, 'metadata.labels', meta);
  diff(old.metadata?.annotations, neu.metadata?.annotations, 'metadata.annotations', meta);
  const spec: FieldChange[] = [];
  diff(old.spec, neu.spec, 'spec', spec);
  const images: PodUpdateChanges['images'] = [];
  for (const [field, init] of [['containers', false], ['initContainers', true]] as const) {
    const a = old.spec?.[field] ?? [];
    const b = neu.spec?.[field] ?? [];
    if (a.length !== b.length) continue;
    a.forEach((c, i) => {
      if (c?.image !== b[i]?.image) images.push({ name: b[i]?.name ?? c?.name, init, from: c?.image, to: b[i]?.image });
    });
  }
  return { changes: [...meta, ...spec], images, metadata: meta.length > 0, spec: spec.length > 0 };
}

function show(v: unknown): string {
  return v === undefined ? '<unset>' : JSON.stringify(v);
}

/** Go's ValidateContainerUpdates: same number of containers, every image set and without surrounding spaces. */
function containerUpdateErrors(neu: Pod['spec']['containers'] | undefined, old: Pod['spec']['containers'] | undefined, field: string, errs: FieldError[]): boolean {
  const n = neu ?? [];
  const o = old ?? [];
  if (n.length !== o.length) {
    errs.push(forbidden(field, 'pod updates may not add or remove containers'));
    return true;
  }
  n.forEach((c, i) => {
    if (!c?.image) errs.push({ field: `${field}[${i}].image`, type: 'Required', detail: '' });
    else if (c.image.trim() !== c.image) errs.push(invalid(`${field}[${i}].image`, c.image, 'must not have leading or trailing whitespace'));
  });
  return false;
}

const withoutSeconds = (t: unknown) => (isObj(t) ? { ...t, tolerationSeconds: undefined } : t);
const same = (a: unknown, b: unknown) => {
  const d: FieldChange[] = [];
  diff(a, b, '', d);
  return d.length === 0;
};

/**
 * ValidatePodUpdate (the update part; the new pod's own validation is
 * validatePodFull's). Both pods defaulted; `errors` are kubectl-style lines
 * (`spec: Forbidden: pod updates may not change fields other than ...`),
 * `fieldErrors` the same as FieldErrors for a Status' causes.
 */
export function validatePodUpdate(oldPod: Pod, newPod: Pod): { errors: string[]; fieldErrors: FieldError[] } {
  const errs: FieldError[] = [];
  const done = () => ({ errors: errs.map(formatFieldError), fieldErrors: errs });
  const om = oldPod.metadata ?? {};
  const nm = newPod.metadata ?? {};
  // ValidateObjectMetaUpdate: identity is immutable
  for (const k of ['name', 'namespace', 'uid'] as const)
    if (nm[k] !== undefined && nm[k] !== om[k]) errs.push(invalid(`metadata.${k}`, nm[k], 'field is immutable'));

  const o = oldPod.spec ?? ({ containers: [] } as Pod['spec']);
  const n = newPod.spec ?? ({ containers: [] } as Pod['spec']);
  if (containerUpdateErrors(n.containers, o.containers, 'spec.containers', errs)) return done();
  if (containerUpdateErrors(n.initContainers, o.initContainers, 'spec.initContainers', errs)) return done();

  // activeDeadlineSeconds: from unset to a positive value, or lowered; never removed
  if (n.activeDeadlineSeconds !== undefined && n.activeDeadlineSeconds !== null) {
    const v = n.activeDeadlineSeconds;
    if (!Number.isInteger(v) || v < 0 || v > MAX_INT32) {
      errs.push(invalid('spec.activeDeadlineSeconds', v, `must be between 0 and ${MAX_INT32}, inclusive`));
      return done();
    }
    if (o.activeDeadlineSeconds !== undefined && o.activeDeadlineSeconds !== null && o.activeDeadlineSeconds < v) {
      errs.push(invalid('spec.activeDeadlineSeconds', v, 'must be less than or equal to previous value'));
      return done();
    }
  } else if (o.activeDeadlineSeconds !== undefined && o.activeDeadlineSeconds !== null) {
    errs.push(invalid('spec.activeDeadlineSeconds', 'null', 'must not update from a positive integer to nil value'));
  }

  // tolerations: every old one still there (its tolerationSeconds may change)
  const oldTol = ((o as { tolerations?: unknown[] }).tolerations ?? []) as unknown[];
  const newTol = ((n as { tolerations?: unknown[] }).tolerations ?? []) as unknown[];
  if (!oldTol.every((t) => newTol.some((x) => same(withoutSeconds(t), withoutSeconds(x)))))
    errs.push(forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds'));

  // everything else: the spec with the updatable fields taken from the old pod must equal the old spec
  const munged = structuredClone(n) as Pod['spec'] & Record<string, unknown>;
  munged.containers = (munged.containers ?? []).map((c, i) => ({ ...c, image: o.containers[i]!.image }));
  if (munged.initContainers || o.initContainers) munged.initContainers = (munged.initContainers ?? []).map((c, i) => ({ ...c, image: o.initContainers![i]!.image }));
  munged.activeDeadlineSeconds = o.activeDeadlineSeconds;
  (munged as { tolerations?: unknown }).tolerations = (o as { tolerations?: unknown }).tolerations;
  (munged as { schedulingGates?: unknown }).schedulingGates = (o as { schedulingGates?: unknown }).schedulingGates;
  if (o.terminationGracePeriodSeconds !== undefined && o.terminationGracePeriodSeconds < 0 && munged.terminationGracePeriodSeconds === 1)
    munged.terminationGracePeriodSeconds = o.terminationGracePeriodSeconds;
  const rest: FieldChange[] = [];
  diff(o, munged, 'spec', rest);
  if (rest.length > 0) {
    // The API server appends a diff of the specs (cmp.Diff); this one names each field.
    const lines = rest.flatMap((c) => [`- ${c.path}: ${show(c.from)}`, `+ ${c.path}: ${show(c.to)}`]);
    errs.push(forbidden('spec', `${FORBIDDEN_POD_UPDATE}\n${lines.join('\n')}`));
  }
  return done();
}

/** The API server's message for a refused update: `Pod "web" is invalid: spec: Forbidden: ...` (kubectl prefixes "The "). */
export function podUpdateInvalidMessage(name: string, errors: string[]): string {
  return `Pod "${name}" is invalid: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}`;
}
