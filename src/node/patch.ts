// A two-way strategic merge patch generator (apimachinery's
// strategicpatch.CreateTwoWayMergePatch) for the objects a node writes: Node
// status and Pod status. Given the object as it is on the server and as it
// should be, it returns the patch the API server's strategic merge turns into
// the new object:
//
//   - maps are diffed key by key; a removed key becomes null;
//   - lists with a patch merge key (conditions by type, podIPs by ip …) are
//     diffed element by element: changed elements carry their key and the
//     changed fields, removed ones become {"$patch": "delete", key}, and a
//     parallel "$setElementOrder/<list>" lists the keys in the new order
//     whenever the list changed (as kubectl and kubelet send them);
//   - every other list is atomic: replaced whole when different (images,
//     containerStatuses — core/v1 declares those without a patch strategy).
//
// The schema says which lists merge; unknown fields are maps or atomic lists,
// exactly as the server treats fields without patch metadata.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** Patch metadata for one field (struct) and, for lists, how its elements merge. */
export interface PatchSchema {
  /** nested fields of an object */
  fields?: Record<string, PatchSchema>;
  /** this field is a list merged by this key (patchStrategy=merge, patchMergeKey) */
  mergeKey?: string;
  /** a list of scalars with patchStrategy=merge (finalizers …) */
  mergeScalars?: boolean;
  /** the schema of each element of a merged list of objects */
  items?: PatchSchema;
}

const EMPTY: PatchSchema = {};

const objectMetaSchema: PatchSchema = {
  fields: {
    finalizers: { mergeScalars: true },
    ownerReferences: { mergeKey: 'uid' },
  },
};

/** core/v1 Node, as far as its status (and registration's metadata) goes. */
export const NODE_SCHEMA: PatchSchema = {
  fields: {
    metadata: objectMetaSchema,
    spec: { fields: { podCIDRs: { mergeScalars: true } } },
    status: {
      fields: {
        conditions: { mergeKey: 'type' },
        // patchStrategy=merge/type in core/v1, though type is not unique; nodeStatusPatch replaces them instead
        addresses: { mergeKey: 'type' },
        // images, volumesInUse, volumesAttached: atomic
      },
    },
  },
};

/** core/v1 Pod, as far as its status goes. */
export const POD_SCHEMA: PatchSchema = {
  fields: {
    metadata: objectMetaSchema,
    status: {
      fields: {
        conditions: { mergeKey: 'type' },
        podIPs: { mergeKey: 'ip' },
        hostIPs: { mergeKey: 'ip' },
        resourceClaimStatuses: { mergeKey: 'name' },
        // containerStatuses, initContainerStatuses, ephemeralContainerStatuses: atomic (+listType=atomic, no patch strategy)
      },
    },
  },
};

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** reflect.DeepEqual on decoded JSON. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

function kind(v: unknown): 'object' | 'array' | 'null' | 'scalar' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return 'scalar';
}

/** The value's type for the "types changed → replace" rule (reflect.TypeOf). */
function typeTag(v: unknown): string {
  const k = kind(v);
  return k === 'scalar' ? typeof v : k;
}

function keyString(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function diffMaps(original: JsonObject, modified: JsonObject, schema: PatchSchema): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(modified)) {
    const mv = modified[key];
    if (mv === undefined) continue;
    if (!(key in original) || original[key] === undefined) {
      patch[key] = mv;
      continue;
    }
    const ov = original[key]!;
    if (typeTag(ov) !== typeTag(mv)) {
      patch[key] = mv;
      continue;
    }
    const sub = schema.fields?.[key] ?? EMPTY;
    if (isObject(ov) && isObject(mv)) {
      const p = diffMaps(ov, mv, sub);
      if (Object.keys(p).length > 0) patch[key] = p;
    } else if (Array.isArray(ov) && Array.isArray(mv)) {
      diffSlice(key, ov, mv, sub, patch);
    } else if (!jsonEqual(ov, mv)) {
      patch[key] = mv;
    }
  }
  // keys only in original are deleted
  for (const key of Object.keys(original)) {
    if (original[key] === undefined) continue;
    if (!(key in modified) || modified[key] === undefined) patch[key] = null;
  }
  return patch;
}

function diffSlice(key: string, original: Json[], modified: Json[], schema: PatchSchema, patch: JsonObject): void {
  if (schema.mergeKey !== undefined) {
    const elementsAreMaps = [...original, ...modified].every(isObject);
    if (elementsAreMaps) {
      diffListOfMaps(key, original as JsonObject[], modified as JsonObject[], schema.mergeKey, schema.items ?? EMPTY, patch);
      return;
    }
  }
  if (schema.mergeScalars && [...original, ...modified].every((v) => kind(v) === 'scalar')) {
    diffListOfScalars(key, original, modified, patch);
    return;
  }
  if (!jsonEqual(original, modified)) patch[key] = modified;
}

function diffListOfMaps(key: string, original: JsonObject[], modified: JsonObject[], mergeKey: string, itemSchema: PatchSchema, patch: JsonObject): void {
  if (original.length === 0 && modified.length === 0) return;
  const origByKey = new Map<string, JsonObject>();
  for (const o of original) origByKey.set(keyString(o[mergeKey]), o);
  const modKeys = new Set(modified.map((m) => keyString(m[mergeKey])));

  // changed or added elements, in the order of the modified list (normalizeSliceOrder)
  const changes: Json[] = [];
  for (const m of modified) {
    const k = keyString(m[mergeKey]);
    const o = origByKey.get(k);
    if (!o) {
      changes.push(m);
      continue;
    }
    const p = diffMaps(o, m, itemSchema);
    if (Object.keys(p).length > 0) {
      p[mergeKey] = m[mergeKey] ?? null;
      changes.push(p);
    }
  }
  // deletions go last, in the order of the original (sorted by key, as apimachinery walks them)
  const deletions: Json[] = original
    .filter((o) => !modKeys.has(keyString(o[mergeKey])))
    .sort((a, b) => (keyString(a[mergeKey]) < keyString(b[mergeKey]) ? -1 : keyString(a[mergeKey]) > keyString(b[mergeKey]) ? 1 : 0))
    .map((o) => ({ $patch: 'delete', [mergeKey]: o[mergeKey] ?? null }));
  const list = [...changes, ...deletions];
  const orderSame =
    original.length === modified.length && original.every((o, i) => keyString(o[mergeKey]) === keyString(modified[i]![mergeKey]));
  if (list.length > 0) patch[key] = list;
  if (list.length > 0 || !orderSame) {
    patch[`$setElementOrder/${key}`] = modified.map((m) => ({ [mergeKey]: m[mergeKey] ?? null }));
  }
}

function diffListOfScalars(key: string, original: Json[], modified: Json[], patch: JsonObject): void {
  const o = new Set(original.map(keyString));
  const m = new Set(modified.map(keyString));
  const added = modified.filter((v) => !o.has(keyString(v)));
  const removed = original.filter((v) => !m.has(keyString(v)));
  if (added.length) patch[key] = added;
  if (removed.length) patch[`$deleteFromPrimitiveList/${key}`] = removed;
  if (removed.length || !jsonEqual(original, modified)) patch[`$setElementOrder/${key}`] = modified;
}

/** CreateTwoWayMergePatch(original, modified) for objects described by `schema`. `{}` means no change. */
export function createTwoWayMergePatch(original: unknown, modified: unknown, schema: PatchSchema = EMPTY): JsonObject {
  const o = normalize(original);
  const m = normalize(modified);
  if (!isObject(o) || !isObject(m)) throw new TypeError('createTwoWayMergePatch: both documents must be JSON objects');
  return diffMaps(o, m, schema);
}

/** JSON round trip: drops undefined, turns Dates into strings — what the wire carries. */
function normalize(v: unknown): Json {
  return v === undefined ? null : (JSON.parse(JSON.stringify(v)) as Json);
}

export function isEmptyPatch(p: JsonObject): boolean {
  return Object.keys(p).length === 0;
}

/**
 * kubelet's PatchNodeStatus patch (pkg/util/node): the diff of the whole Node
 * with the spec held equal, except that changed addresses are sent whole with
 * a {"$patch": "replace"} element (the "type" merge key is not unique, so a
 * merge would keep stale entries).
 */
export function nodeStatusPatch(oldNode: unknown, newNode: unknown): JsonObject {
  const o = normalize(oldNode);
  const n = normalize(newNode);
  if (!isObject(o) || !isObject(n)) throw new TypeError('nodeStatusPatch: both nodes must be JSON objects');
  const oldStatus = isObject(o.status) ? o.status : {};
  const newStatus = isObject(n.status) ? n.status : {};
  const oldAddrs = Array.isArray(oldStatus.addresses) ? oldStatus.addresses : [];
  const newAddrs = Array.isArray(newStatus.addresses) ? newStatus.addresses : [];
  const manualAddresses = oldAddrs.length > 0 && !jsonEqual(oldAddrs, newAddrs);

  const diffNode: JsonObject = { ...n };
  if ('spec' in o) diffNode.spec = o.spec!;
  else delete diffNode.spec;
  if (manualAddresses) diffNode.status = { ...newStatus, addresses: oldAddrs };
  const patch = diffMaps(o, diffNode, NODE_SCHEMA);
  if (manualAddresses) {
    const status = isObject(patch.status) ? patch.status : {};
    status.addresses = [...newAddrs, { $patch: 'replace' }];
    patch.status = status;
  }
  return patch;
}

/**
 * The status manager's pod status patch (pkg/kubelet/status, PatchPodStatus):
 * the diff of {status: old} → {metadata: {uid}, status: new}. The UID rides
 * along as a precondition; `unchanged` says the patch carries nothing else.
 */
export function podStatusPatch(uid: string, oldStatus: unknown, newStatus: unknown): { patch: JsonObject; unchanged: boolean } {
  const patch = createTwoWayMergePatch({ status: oldStatus ?? {} }, { metadata: { uid }, status: newStatus ?? {} }, POD_SCHEMA);
  const keys = Object.keys(patch);
  const unchanged = keys.length === 1 && keys[0] === 'metadata' && jsonEqual(patch.metadata, { uid });
  return { patch, unchanged };
}
