// Pure parts of the API client: request paths and query strings, the NDJSON
// line splitter of watch streams, and the parser of `Warning` headers.
import { invalidArgument } from '../errors.js';
import type { ListOptions, PatchType, ResourceRef, WatchOptions } from './types.js';

const segmentRe = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkSegment(what: string, v: string): void {
  if (!segmentRe.test(v)) throw invalidArgument('ERR_KUBE_BAD_REF', `invalid ${what} "${v}" in a resource reference`, { details: { [what]: v } });
}

/**
 * The URL path of a resource, a named object or its subresource:
 *   core:     /api/v1[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]
 *   grouped:  /apis/<group>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]
 * Names are percent-encoded (they may hold ':' as in system:node:n1 RBAC objects).
 */
export function resourcePath(ref: ResourceRef, name?: string): string {
  checkSegment('version', ref.version);
  checkSegment('resource', ref.resource);
  if (ref.group !== '') checkSegment('group', ref.group);
  let p = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  if (ref.namespace !== undefined && ref.namespace !== '') {
    checkSegment('namespace', ref.namespace);
    p += `/namespaces/${ref.namespace}`;
  }
  p += `/${ref.resource}`;
  if (name !== undefined) {
    if (name === '' || name === '.' || name === '..' || name.includes('/')) {
      throw invalidArgument('ERR_KUBE_BAD_NAME', `invalid object name "${name}" for ${ref.resource}`, { details: { name, resource: ref.resource } });
    }
    p += `/${encodeURIComponent(name)}`;
  }
  if (ref.subresource !== undefined && ref.subresource !== '') {
    if (name === undefined) {
      throw invalidArgument('ERR_KUBE_BAD_REF', `subresource "${ref.subresource}" of ${ref.resource} needs an object name`, { details: { ...ref } });
    }
    checkSegment('subresource', ref.subresource);
    p += `/${ref.subresource}`;
  }
  return p;
}

export type Query = Record<string, string | number | boolean | undefined>;

/** `?a=1&b=x` from the defined entries (empty string when none). */
export function queryString(q: Query): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === '') continue;
    sp.append(k, String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export function listQuery(opts: ListOptions = {}): Query {
  return {
    labelSelector: opts.labelSelector,
    fieldSelector: opts.fieldSelector,
    resourceVersion: opts.resourceVersion,
    limit: opts.limit,
    continue: opts.continue,
    timeoutSeconds: opts.timeoutSeconds,
  };
}

export function watchQuery(opts: WatchOptions = {}): Query {
  return {
    watch: true,
    ...listQuery({ ...opts, limit: undefined, continue: undefined }),
    allowWatchBookmarks: opts.allowWatchBookmarks ? true : undefined,
  };
}

export const patchContentType: Record<PatchType, string> = {
  strategic: 'application/strategic-merge-patch+json',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

/**
 * Splits a stream of text into lines (`\n`, optional `\r` before it), carrying
 * a partial line over to the next chunk. Feed it decoded text (a streaming
 * TextDecoder keeps multi-byte characters that straddle chunks intact).
 */
export class LineSplitter {
  private rest = '';
  /** complete, non-empty lines of this chunk (with what was carried over) */
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const parts = text.split('\n');
    this.rest = parts.pop() ?? '';
    return parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)).filter((l) => l.trim() !== '');
  }
  /** what is left at the end of the stream (a last line without a newline) */
  flush(): string[] {
    const l = this.rest.trim();
    this.rest = '';
    return l === '' ? [] : [l];
  }
  /** bytes-ish of the partial line held, to bound memory */
  get pending(): number {
    return this.rest.length;
  }
}

/**
 * The texts of RFC 7234 `Warning` header values as the API server sends them
 * (`299 - "text"`, several values comma-separated or in several headers).
 * Values that do not parse are returned whole.
 */
export function parseWarnings(values: string | string[] | undefined): string[] {
  if (values === undefined) return [];
  const out: string[] = [];
  for (const raw of Array.isArray(values) ? values : [values]) {
    let i = 0;
    const s = raw;
    while (i < s.length) {
      while (i < s.length && (s[i] === ' ' || s[i] === ',')) i++;
      if (i >= s.length) break;
      const m = /^(\d{3})\s+(\S+)\s+"/.exec(s.slice(i));
      if (!m) {
        // not the grammar: take up to the next comma
        const j = s.indexOf(',', i);
        const t = (j < 0 ? s.slice(i) : s.slice(i, j)).trim();
        if (t) out.push(t);
        i = j < 0 ? s.length : j + 1;
        continue;
      }
      i += m[0].length;
      let text = '';
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        text += s[i];
        i++;
      }
      i++; // closing quote
      // optional warn-date: ` "date"`
      const d = /^\s+"[^"]*"/.exec(s.slice(i));
      if (d) i += d[0].length;
      out.push(text);
    }
  }
  return out;
}
