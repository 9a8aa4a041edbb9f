// Reading manifests: YAML (block or flow style) or JSON, one or many
// documents (`---`), `kind: List` expanded. Pods, ConfigMaps and Secrets are
// kept. Any other kind (a Deployment, a Service...) is, with
// `unsupportedKinds: 'error'` (nodelet run, apply, the API's PUT), an error
// naming the kind and the document: nodelet would otherwise "succeed" while
// running nothing of it. By default (static pods: kubelet logs and ignores what
// is not a pod) such a document is skipped with a warning. A document that is
// not an object, has no kind, or has a wrong apiVersion is an error.
//
// The usual pipeline is loadManifests(): parse → applyDefaults → validate,
// all errors of all objects gathered into one ManifestError.

import { parseAllDocuments, type ScalarTag } from 'yaml';
import type { ErrorCode } from '../error-codes.js';
import type { ConfigMap, Pod, PodObjects, Secret } from './api-types.js';
import { ManifestError, invalid, required, notSupported, type FieldError } from './field-errors.js';
import { checkShape } from './schema.js';
import { applyDefaults, type DefaultOptions } from './defaults.js';
import { validatePodFull, dns1123Subdomain } from './validation.js';

export { ManifestError, formatFieldError, type FieldError, type FieldErrorType } from './field-errors.js';
export { applyDefaults, defaultPullPolicy } from './defaults.js';
export { validatePod, validatePodFull } from './validation.js';

export interface ParsedManifests {
  pods: Pod[];
  configMaps: ConfigMap[];
  secrets: Secret[];
  warnings: string[];
}

const SUPPORTED = ['Pod', 'ConfigMap', 'Secret', 'List'];

export interface ParseOptions {
  /** A kind nodelet does not run: 'error' (ERR_KIND_NOT_SUPPORTED, every such document named) or 'warn' (skipped with a warning; the default). */
  unsupportedKinds?: 'error' | 'warn';
}

/** `x.yaml: document 2: kind "Deployment" (apps/v1) is not supported by nodelet: only Pod, ConfigMap and Secret — run it on a cluster` */
export function unsupportedKindMessage(source: string | undefined, at: string, kind: string, apiVersion: unknown): string {
  return `${source ?? 'manifest'}: ${at}: kind ${JSON.stringify(kind)} (${typeof apiVersion === 'string' && apiVersion ? apiVersion : 'no apiVersion'}) is not supported by nodelet: only Pod, ConfigMap and Secret — run it on a cluster`;
}

/**
 * Documents of kinds nodelet does not run. A ManifestError like every refused manifest (its `errors` name
 * each document's kind), with one line per document as its message and its own code.
 */
export class UnsupportedKindError extends ManifestError {
  constructor(lines: string[], errors: FieldError[], source?: string) {
    super('manifest', errors, { source });
    this.name = 'UnsupportedKindError';
    this.message = lines.join('\n');
    (this as { code: ErrorCode }).code = 'ERR_KIND_NOT_SUPPORTED';
  }
}

/** Go's `0o644` / `0O644` octal literal (strconv.ParseInt base 0, underscores allowed as go-yaml v2 strips them). */
const GO_OCTAL_INT: ScalarTag = {
  identify: () => false,
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: /^[-+]?0[oO][0-7_]+$/,
  resolve: (s: string) => {
    const neg = s.startsWith('-');
    const n = parseInt(s.replace(/^[-+]?0[oO]/, '').replace(/_/g, ''), 8);
    return neg ? -n : n;
  },
};

/** `field: null` means "unset" to the API server's decoder: drop such keys (array items are kept and rejected by the schema). */
function dropNulls(o: unknown): unknown {
  if (Array.isArray(o)) o.forEach(dropNulls);
  else if (o && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      if (v === null || v === undefined) delete (o as Record<string, unknown>)[k];
      else dropNulls(v);
    }
  }
  return o;
}

function docName(kind: string, obj: Record<string, any>, index: number): string {
  const n = obj?.metadata?.name;
  return n ? `${kind} "${n}"` : `document ${index + 1}`;
}

function validateData(kind: 'ConfigMap' | 'Secret', obj: Record<string, any>, errs: FieldError[], warnings: string[]): void {
  checkShape(kind === 'ConfigMap' ? 'configMap' : 'secret', obj, '', errs, warnings);
  if (!obj.metadata?.name) errs.push(required('metadata.name'));
  else dns1123Subdomain('metadata.name', obj.metadata.name, errs);
  const keys = new Set<string>();
  const check = (field: string, data: Record<string, unknown> | undefined, b64: boolean) => {
    for (const [k, v] of Object.entries(data ?? {})) {
      if (!/^[-._a-zA-Z0-9]+$/.test(k) || k === '.' || k === '..' || k.length > 253)
        errs.push(invalid(`${field}[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
      if (keys.has(k) && field !== 'stringData') errs.push(invalid(`${field}[${k}]`, k, 'duplicate of a key in data'));
      keys.add(k);
      if (b64 && typeof v === 'string' && !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(v))
        errs.push(invalid(`${field}[${k}]`, '<redacted>', 'illegal base64 data'));
    }
  };
  if (kind === 'ConfigMap') {
    check('data', obj.data, false);
    check('binaryData', obj.binaryData, true);
  } else {
    check('data', obj.data, true);
    check('stringData', obj.stringData, false);
  }
}

/**
 * Parse manifest text. Throws ManifestError on YAML syntax errors, documents
 * that are not Kubernetes objects, and invalid ConfigMaps/Secrets. Pods are
 * returned as written (not defaulted, not validated: see loadManifests).
 * Secret stringData is merged into data (base64), as the API server does.
 */
export function parseManifests(text: string, source?: string, popts: ParseOptions = {}): ParsedManifests {
  const out: ParsedManifests = { pods: [], configMaps: [], secrets: [], warnings: [] };
  // YAML 1.1 like kubectl (sigs.k8s.io/yaml → go-yaml v2): `defaultMode: 0400` is octal, `yes`/`no` are
  // booleans; but as in go-yaml v2, timestamps stay strings and there are no base-60 numbers (`1:20`), and
  // `0o644` is octal too (go-yaml v2 reads ints with Go's strconv.ParseInt(s, 0, 64)). Checked scalar by
  // scalar against sigs.k8s.io/yaml v1.6.0 YAMLToJSON (test/unit/pod/parity-manifest.test.ts).
  const docs = parseAllDocuments(text, {
    prettyErrors: true,
    uniqueKeys: true,
    version: '1.1',
    customTags: (tags) => [GO_OCTAL_INT, ...tags.filter((t) => !(typeof t === 'object' && (String(t.tag).endsWith(':timestamp') || (t as { format?: string }).format === 'TIME')))],
  });
  const list = Array.isArray(docs) ? docs : [docs];
  const problems: FieldError[] = [];
  const unsupported: { line: string; error: FieldError }[] = [];
  const objects: { obj: any; at: string }[] = [];
  list.forEach((d, i) => {
    if (d.errors.length > 0) {
      for (const e of d.errors) problems.push(invalid(`document ${i + 1}`, undefined, `YAML syntax error: ${e.message.split('\n')[0]}`));
      return;
    }
    const obj = d.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) return; // empty document
    objects.push({ obj: dropNulls(obj), at: `document ${i + 1}` });
  });
  const expand = (obj: any, at: string): void => {
    if (typeof obj !== 'object' || Array.isArray(obj)) return void problems.push(invalid(at, undefined, 'must be a Kubernetes object (a mapping with apiVersion and kind)'));
    if (!obj.kind) return void problems.push(required(`${at}: kind`));
    if (typeof obj.kind !== 'string') return void problems.push(invalid(`${at}: kind`, obj.kind, 'must be a string'));
    if (obj.kind === 'List' || obj.kind.endsWith('List')) {
      if (!Array.isArray(obj.items)) return void problems.push(required(`${at}: items`));
      obj.items.forEach((it: any, j: number) => expand(it, `${at} items[${j}]`));
      return;
    }
    if (!SUPPORTED.includes(obj.kind)) {
      if (popts.unsupportedKinds === 'error')
        return void unsupported.push({ line: unsupportedKindMessage(source, at, obj.kind, obj.apiVersion), error: notSupported(`${at}: kind`, obj.kind, ['Pod', 'ConfigMap', 'Secret']) });
      out.warnings.push(`${at}: kind ${obj.kind} (${obj.apiVersion ?? 'no apiVersion'}) is not supported by nodelet and was skipped; supported kinds: Pod, ConfigMap, Secret, List`);
      return;
    }
    if (obj.apiVersion !== 'v1') return void problems.push(obj.apiVersion ? notSupported(`${at}: ${obj.kind} apiVersion`, obj.apiVersion, ['v1']) : required(`${at}: ${obj.kind} apiVersion`));
    if (obj.kind === 'Pod') {
      out.pods.push(obj as Pod);
      return;
    }
    const errs: FieldError[] = [];
    validateData(obj.kind, obj, errs, out.warnings);
    if (errs.length > 0) {
      throw new ManifestError(docName(obj.kind, obj, 0), errs, { source });
    }
    obj.metadata.namespace ||= 'default';
    if (obj.kind === 'Secret') {
      const data: Record<string, string> = { ...(obj.data ?? {}) };
      for (const [k, v] of Object.entries(obj.stringData ?? {})) data[k] = Buffer.from(String(v)).toString('base64');
      const s: Secret = { ...obj, data };
      delete s.stringData;
      s.type ??= 'Opaque';
      out.secrets.push(s);
    } else out.configMaps.push(obj as ConfigMap);
  };
  for (const { obj, at } of objects) expand(obj, at);
  if (unsupported.length > 0) throw new UnsupportedKindError(unsupported.map((u) => u.line), unsupported.map((u) => u.error), source);
  if (problems.length > 0) throw new ManifestError(source ? `manifest` : 'manifest', problems, { source });
  if (objects.length === 0) out.warnings.push(`${source ?? 'manifest'}: no objects found`);
  return out;
}

export interface LoadOptions extends DefaultOptions, ParseOptions {
  /** Check that non-optional ConfigMap/Secret references resolve against the file's objects (default true). */
  requireReferences?: boolean;
  /** Extra objects known to the caller (e.g. the daemon's store). */
  objects?: PodObjects;
}

/**
 * parse → defaults → validate. Throws one ManifestError listing every error of
 * every pod (field paths prefixed with nothing; the pod is named in the
 * message). Returns the defaulted pods and all warnings.
 */
export function loadManifests(text: string, source?: string, opts: LoadOptions = {}): ParsedManifests {
  const parsed = parseManifests(text, source, { unsupportedKinds: opts.unsupportedKinds });
  const objects: PodObjects = {
    configMaps: [...parsed.configMaps, ...(opts.objects?.configMaps ?? [])],
    secrets: [...parsed.secrets, ...(opts.objects?.secrets ?? [])],
  };
  const pods: Pod[] = [];
  const failures: { name: string; errors: FieldError[] }[] = [];
  const names = new Set<string>();
  for (const raw of parsed.pods) {
    // wrong JSON types are reported before defaulting (the API server's decoder fails first)
    const shapeErrors: FieldError[] = [];
    checkShape('pod', raw, '', shapeErrors, []);
    const pod = shapeErrors.length ? raw : applyDefaults(raw, opts);
    const r = shapeErrors.length ? { errors: shapeErrors, warnings: [] } : validatePodFull(pod, opts.requireReferences === false ? undefined : objects);
    parsed.warnings.push(...r.warnings.map((w) => `Pod "${pod.metadata?.name ?? '?'}": ${w}`));
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (names.has(key)) r.errors.push({ field: 'metadata.name', type: 'Duplicate', value: pod.metadata?.name, detail: 'another pod in this manifest has the same name' });
    names.add(key);
    if (r.errors.length > 0) failures.push({ name: pod.metadata?.name ?? '?', errors: r.errors });
    pods.push(pod);
  }
  if (failures.length === 1) throw new ManifestError(`Pod "${failures[0]!.name}"`, failures[0]!.errors, { source });
  if (failures.length > 1) {
    const all = failures.flatMap((f) => f.errors.map((e) => ({ ...e, field: `Pod "${f.name}": ${e.field}` })));
    throw new ManifestError(`${failures.length} pods`, all, { source });
  }
  return { ...parsed, pods };
}

/** Secret data decoded to bytes (values are base64 after parseManifests). */
export function secretBytes(s: Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

/** ConfigMap data and binaryData as bytes. */
export function configMapBytes(c: ConfigMap): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(c.data ?? {})) out[k] = Buffer.from(v, 'utf8');
  for (const [k, v] of Object.entries(c.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}
