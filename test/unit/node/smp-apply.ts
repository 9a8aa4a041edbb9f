// A small reference implementation of the API server's side of a strategic
// merge patch (apimachinery strategicpatch.StrategicMergePatch), written apart
// from src/node/patch.ts so the tests can check that applying our patch to the
// old object gives the new one. Supports: maps (null deletes), lists merged by
// key ($patch: delete elements, a $patch: replace element, $setElementOrder),
// merged scalar lists ($deleteFromPrimitiveList, $setElementOrder), and
// atomic lists.
import type { PatchSchema } from '../../../src/node/patch.js';

type J = unknown;
const isObj = (v: J): v is Record<string, J> => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

export function applyStrategicPatch(original: J, patch: J, schema: PatchSchema = {}): J {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _r, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, J> = isObj(original) ? clone(original) : {};
  for (const [key, pv] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    const sub = schema.fields?.[key] ?? {};
    if (pv === null) {
      delete out[key];
      continue;
    }
    if (Array.isArray(pv)) {
      if (sub.mergeKey && pv.every(isObj)) out[key] = mergeObjectList(Array.isArray(out[key]) ? (out[key] as J[]) : [], pv, sub.mergeKey, sub.items ?? {});
      else if (sub.mergeScalars) {
        const cur = Array.isArray(out[key]) ? (out[key] as J[]) : [];
        out[key] = [...cur, ...pv.filter((v) => !cur.some((c) => JSON.stringify(c) === JSON.stringify(v)))];
      } else out[key] = clone(pv);
      continue;
    }
    if (isObj(pv)) {
      out[key] = applyStrategicPatch(isObj(out[key]) ? out[key] : {}, pv, sub);
      continue;
    }
    out[key] = pv;
  }
  // directives on lists
  for (const [key, pv] of Object.entries(patch)) {
    const m = /^\$deleteFromPrimitiveList\/(.+)$/.exec(key);
    if (m && Array.isArray(out[m[1]!])) {
      const del = (pv as J[]).map((v) => JSON.stringify(v));
      out[m[1]!] = (out[m[1]!] as J[]).filter((v) => !del.includes(JSON.stringify(v)));
    }
  }
  for (const [key, pv] of Object.entries(patch)) {
    const m = /^\$setElementOrder\/(.+)$/.exec(key);
    if (!m) continue;
    const field = m[1]!;
    const list = Array.isArray(out[field]) ? (out[field] as J[]) : [];
    const mergeKey = schema.fields?.[field]?.mergeKey;
    const order = (pv as J[]).map((o) => JSON.stringify(mergeKey && isObj(o) ? o[mergeKey] : o));
    const keyOf = (e: J) => JSON.stringify(mergeKey && isObj(e) ? e[mergeKey] : e);
    const rank = (e: J) => {
      const i = order.indexOf(keyOf(e));
      return i < 0 ? order.length : i;
    };
    out[field] = list.map((e, i) => ({ e, i })).sort((a, b) => rank(a.e) - rank(b.e) || a.i - b.i).map((x) => x.e);
  }
  return out;
}

function stripDirectives(v: J): J {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Record<string, J> = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

function mergeObjectList(current: J[], patchList: Record<string, J>[], mergeKey: string, itemSchema: PatchSchema): J[] {
  if (patchList.some((e) => e.$patch === 'replace')) {
    return patchList.filter((e) => e.$patch !== 'replace').map(stripDirectives);
  }
  let out = current.map(clone);
  for (const pe of patchList) {
    const k = JSON.stringify(pe[mergeKey]);
    const idx = out.findIndex((e) => isObj(e) && JSON.stringify(e[mergeKey]) === k);
    if (pe.$patch === 'delete') {
      if (idx >= 0) out = out.filter((_, i) => i !== idx);
      continue;
    }
    if (idx >= 0) out[idx] = applyStrategicPatch(out[idx], pe, itemSchema);
    else out.push(applyStrategicPatch({}, pe, itemSchema));
  }
  return out;
}
