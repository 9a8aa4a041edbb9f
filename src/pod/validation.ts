// Pod validation with the Kubernetes API server's rules
// (pkg/apis/core/validation/validation.go) for the fields nodelet implements.
// Every error found is returned, each naming its field path.

import { isIP } from 'node:net';
import type { Container, EnvVar, Pod, PodObjects, Probe, Volume, ObjectFieldSelector, ResourceFieldSelector, KeyToPath, DownwardAPIVolumeFile, SeccompProfile, AppArmorProfile } from './api-types.js';
import { VOLUME_SOURCE_KINDS } from './api-types.js';
import { duplicate, forbidden, invalid, notFoundValue, notSupported, required, tooLong, tooMany, type FieldError } from './field-errors.js';
import { checkShape, UNSUPPORTED_VOLUME_SOURCES } from './schema.js';
import { APPARMOR_ANNOTATION_PREFIX } from './security-admission.js';
import { compareQuantity, tryParseQuantity } from './quantity.js';
import { aggregateContainerResources, formatQuantity, isOvercommitAllowed, isSupportedPodLevelResource, podLevelResources, toAmount, type Amount } from './qos.js';

// ------------------------------------------------------------- name rules

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

export function dns1123Label(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v !== 'string') return;
  if (v.length > 63) errs.push(invalid(field, v, 'must be no more than 63 characters'));
  if (!DNS1123_LABEL.test(v)) errs.push(invalid(field, v, LABEL_MSG));
}

export function dns1123Subdomain(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v !== 'string') return;
  if (v.length > 253) errs.push(invalid(field, v, 'must be no more than 253 characters'));
  if (!DNS1123_SUBDOMAIN.test(v)) errs.push(invalid(field, v, SUBDOMAIN_MSG));
}

/** IANA_SVC_NAME: ≤15 chars, [a-z0-9-], at least one letter, no leading/trailing/double '-'. */
export function ianaSvcName(field: string, v: string, errs: FieldError[]): void {
  if (v.length > 15) errs.push(invalid(field, v, 'must be no more than 15 characters'));
  if (!/^[-a-z0-9]+$/.test(v)) errs.push(invalid(field, v, 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'));
  if (v.includes('--')) errs.push(invalid(field, v, 'must not contain consecutive hyphens'));
  if (!/[a-z]/.test(v)) errs.push(invalid(field, v, 'must contain at least one letter (a-z)'));
  if (v.startsWith('-') || v.endsWith('-')) errs.push(invalid(field, v, 'must not begin or end with a hyphen'));
}

/**
 * Environment variable names: Kubernetes ≥1.34 (RelaxedEnvironmentVariableValidation, GA)
 * accepts any printable ASCII character except '='. We follow that.
 */
export function envVarName(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v !== 'string') return;
  if (v === '') errs.push(required(field));
  else if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(v))
    errs.push(invalid(field, v, "a valid environment variable name must consist only of printable ASCII characters other than '='"));
}

function configKey(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v !== 'string' || v === '') return void errs.push(required(field));
  if (v.length > 253) errs.push(tooLong(field, v, 253));
  if (!CONFIG_KEY.test(v) || v === '.' || v === '..' || v.startsWith('..'))
    errs.push(invalid(field, v, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
}

/** A relative path without '..' elements (subPath, items[].path). */
function relativePath(field: string, v: unknown, errs: FieldError[], allowEmpty = false): void {
  if (typeof v !== 'string') return;
  if (v === '') {
    if (!allowEmpty) errs.push(required(field));
    return;
  }
  if (v.startsWith('/')) errs.push(invalid(field, v, 'must be a relative path'));
  if (v.split('/').includes('..')) errs.push(invalid(field, v, "must not contain '..'"));
}

/** Kubernetes' validateSeccompProfileField. */
function seccompProfile(field: string, sp: SeccompProfile | undefined, errs: FieldError[]): void {
  if (sp === undefined || sp === null) return;
  const types = ['Localhost', 'RuntimeDefault', 'Unconfined'];
  if (!sp.type) errs.push(required(`${field}.type`, 'type is required when seccompProfile is set'));
  else oneOf(`${field}.type`, sp.type, types, errs);
  if (sp.type === 'Localhost') {
    if (sp.localhostProfile === undefined || sp.localhostProfile === null) errs.push(required(`${field}.localhostProfile`, 'must be set when seccomp type is Localhost'));
    else relativePath(`${field}.localhostProfile`, sp.localhostProfile, errs);
  } else if (sp.localhostProfile !== undefined && sp.localhostProfile !== null) {
    errs.push(invalid(`${field}.localhostProfile`, sp, 'can only be set when seccomp type is Localhost'));
  }
}

/** Kubernetes' validateAppArmorProfileField. */
function appArmorProfile(field: string, ap: AppArmorProfile | undefined, errs: FieldError[]): void {
  if (ap === undefined || ap === null) return;
  if (!ap.type) errs.push(required(`${field}.type`, 'type is required when appArmorProfile is set'));
  else oneOf(`${field}.type`, ap.type, ['Localhost', 'RuntimeDefault', 'Unconfined'], errs);
  if (ap.type === 'Localhost') {
    if (ap.localhostProfile === undefined || ap.localhostProfile === null || ap.localhostProfile.trim() === '')
      errs.push(required(`${field}.localhostProfile`, 'must be set when AppArmor type is Localhost'));
    else if (ap.localhostProfile.length > 4095) errs.push(tooLong(`${field}.localhostProfile`, ap.localhostProfile, 4095));
  } else if (ap.localhostProfile !== undefined && ap.localhostProfile !== null) {
    errs.push(invalid(`${field}.localhostProfile`, ap.localhostProfile, 'can only be set when AppArmor type is Localhost'));
  }
}

function nonNegative(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v === 'number' && v < 0) errs.push(invalid(field, v, 'must be greater than or equal to 0'));
}
function positive(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v === 'number' && v < 1) errs.push(invalid(field, v, 'must be greater than or equal to 1'));
}
function oneOf(field: string, v: unknown, allowed: readonly string[], errs: FieldError[], opt = true): void {
  if (v === undefined || v === null) {
    if (!opt) errs.push(required(field));
    return;
  }
  if (typeof v === 'string' && !allowed.includes(v)) errs.push(notSupported(field, v, allowed));
}
function mode(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v === 'number' && (v < 0 || v > 0o777)) errs.push(invalid(field, v, 'must be a number between 0 and 0777 (octal), both inclusive'));
}
function port(field: string, v: unknown, errs: FieldError[], allowZero = false): void {
  if (typeof v !== 'number') return;
  if (v === 0 && allowZero) return;
  if (v < 1 || v > 65535) errs.push(invalid(field, v, 'must be between 1 and 65535, inclusive'));
}
function portOrName(field: string, v: unknown, errs: FieldError[]): void {
  if (v === undefined || v === null || v === '') return void errs.push(required(field));
  if (typeof v === 'number') port(field, v, errs);
  else if (typeof v === 'string') {
    if (/^\d+$/.test(v)) port(field, Number(v), errs);
    else ianaSvcName(field, v, errs);
  }
}

// ------------------------------------------------------------- downward API selectors

export const ENV_FIELD_PATHS = [
  'metadata.name', 'metadata.namespace', 'metadata.uid', 'metadata.labels', 'metadata.annotations',
  'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs',
];
export const VOLUME_FIELD_PATHS = ['metadata.name', 'metadata.namespace', 'metadata.uid', 'metadata.labels', 'metadata.annotations'];
export const RESOURCE_FIELDS = [
  'limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage',
];

function fieldRef(field: string, f: ObjectFieldSelector, allowed: string[], errs: FieldError[]): void {
  if (!f.fieldPath) return void errs.push(required(`${field}.fieldPath`));
  if (f.apiVersion !== undefined && f.apiVersion !== 'v1') errs.push(notSupported(`${field}.apiVersion`, f.apiVersion, ['v1']));
  const m = /^(metadata\.(?:labels|annotations))\['([^']+)'\]$/.exec(f.fieldPath);
  if (m) {
    if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(m[2]!))
      errs.push(invalid(`${field}.fieldPath`, f.fieldPath, 'the key must be a qualified name'));
    return;
  }
  const ok = allowed.filter((a) => a !== 'metadata.labels' && a !== 'metadata.annotations' || allowed === VOLUME_FIELD_PATHS);
  if (!ok.includes(f.fieldPath)) errs.push(notSupported(`${field}.fieldPath`, f.fieldPath, allowed));
}

function resourceFieldRef(field: string, r: ResourceFieldSelector, containerNames: Set<string>, needName: boolean, errs: FieldError[]): void {
  if (!r.resource) errs.push(required(`${field}.resource`));
  else if (!RESOURCE_FIELDS.includes(r.resource)) errs.push(notSupported(`${field}.resource`, r.resource, RESOURCE_FIELDS));
  if (r.containerName === undefined || r.containerName === '') {
    if (needName) errs.push(required(`${field}.containerName`));
  } else if (!containerNames.has(r.containerName)) {
    errs.push(invalid(`${field}.containerName`, r.containerName, 'must name a container of this pod'));
  }
  if (r.divisor !== undefined) {
    const d = tryParseQuantity(r.divisor);
    if (!d) errs.push(invalid(`${field}.divisor`, r.divisor, 'must be a valid quantity'));
    else if (compareQuantity('0', d) !== 0) { // "0" is unset: the API server stores an omitted divisor as "0"
      const cpu = ['1m', '1'];
      const mem = ['1', '1k', '1M', '1G', '1T', '1P', '1E', '1Ki', '1Mi', '1Gi', '1Ti', '1Pi', '1Ei'];
      const allowed = r.resource?.endsWith('.cpu') ? cpu : mem;
      if (!allowed.some((a) => compareQuantity(a, d) === 0)) errs.push(notSupported(`${field}.divisor`, r.divisor, allowed));
    }
  }
}

// ------------------------------------------------------------- containers

function validateProbe(field: string, p: Probe, kind: 'liveness' | 'readiness' | 'startup', errs: FieldError[]): void {
  validateHandler(field, p, ['exec', 'httpGet', 'tcpSocket', 'grpc'], errs);
  nonNegative(`${field}.initialDelaySeconds`, p.initialDelaySeconds, errs);
  positive(`${field}.timeoutSeconds`, p.timeoutSeconds, errs);
  positive(`${field}.periodSeconds`, p.periodSeconds, errs);
  positive(`${field}.successThreshold`, p.successThreshold, errs);
  positive(`${field}.failureThreshold`, p.failureThreshold, errs);
  if (kind !== 'readiness' && typeof p.successThreshold === 'number' && p.successThreshold !== 1)
    errs.push(invalid(`${field}.successThreshold`, p.successThreshold, 'must be 1'));
  if (kind === 'readiness' && p.terminationGracePeriodSeconds !== undefined)
    errs.push(invalid(`${field}.terminationGracePeriodSeconds`, p.terminationGracePeriodSeconds, 'must not be set for readinessProbes'));
  positive(`${field}.terminationGracePeriodSeconds`, p.terminationGracePeriodSeconds, errs);
}

function validateHandler(field: string, h: Record<string, any>, kinds: string[], errs: FieldError[]): void {
  const set = kinds.filter((k) => h[k] !== undefined && h[k] !== null);
  if (set.length === 0) return void errs.push(required(field, 'must specify a handler type'));
  if (set.length > 1) {
    errs.push(forbidden(`${field}.${set[1]}`, 'may not specify more than 1 handler type'));
    return;
  }
  const k = set[0]!;
  const v = h[k];
  const f = `${field}.${k}`;
  if (k === 'exec' && (!Array.isArray(v.command) || v.command.length === 0)) errs.push(required(`${f}.command`));
  if (k === 'httpGet') {
    portOrName(`${f}.port`, v.port, errs);
    oneOf(`${f}.scheme`, v.scheme, ['HTTP', 'HTTPS'], errs);
    if (typeof v.path === 'string' && v.path !== '' && !v.path.startsWith('/')) errs.push(invalid(`${f}.path`, v.path, "must start with '/'"));
    (v.httpHeaders ?? []).forEach((hh: { name?: string }, i: number) => {
      if (!hh?.name || !/^[-A-Za-z0-9!#$%&'*+.^_`|~]+$/.test(hh.name)) errs.push(invalid(`${f}.httpHeaders[${i}].name`, hh?.name, 'a valid HTTP header must consist of alphanumeric characters or \'-\''));
    });
  }
  if (k === 'tcpSocket') portOrName(`${f}.port`, v.port, errs);
  if (k === 'grpc') {
    if (v.port === undefined) errs.push(required(`${f}.port`));
    else port(`${f}.port`, v.port, errs);
  }
  if (k === 'sleep') {
    if (typeof v.seconds !== 'number') errs.push(required(`${f}.seconds`));
    else if (v.seconds < 0) errs.push(invalid(`${f}.seconds`, v.seconds, 'must be greater than or equal to 0'));
  }
}

interface Ctx {
  volumes: Map<string, Volume>;
  containerNames: Set<string>;
  objects?: PodObjects;
  namespace: string;
  hostNetwork: boolean;
}

function findObj<T extends { metadata: { name?: string; namespace?: string } }>(list: T[], ns: string, name: string): T | undefined {
  return list.find((o) => o.metadata?.name === name && (o.metadata?.namespace ?? 'default') === ns);
}

function checkRef(field: string, kind: 'configmap' | 'secret', name: string, key: string | undefined, optional: boolean | undefined, ctx: Ctx, errs: FieldError[]): void {
  if (!ctx.objects || optional) return;
  const list = (kind === 'configmap' ? ctx.objects.configMaps : ctx.objects.secrets) as { metadata: { name?: string; namespace?: string }; data?: Record<string, string>; binaryData?: Record<string, string> }[];
  const obj = findObj(list, ctx.namespace, name);
  if (!obj) return void errs.push(invalid(field, name, `${kind} "${name}" not found in namespace "${ctx.namespace}" (add it to the manifest or mark the reference optional)`));
  if (key !== undefined && !(key in (obj.data ?? {})) && !(key in (obj.binaryData ?? {})))
    errs.push(invalid(field, key, `key "${key}" not found in ${kind} "${name}"`));
}

function validateEnv(field: string, e: EnvVar, ctx: Ctx, errs: FieldError[]): void {
  if (e.name === undefined) errs.push(required(`${field}.name`));
  else envVarName(`${field}.name`, e.name, errs);
  if (!e.valueFrom) return;
  const vf = e.valueFrom as Record<string, any>;
  // validation.go validateEnvVarValueFrom: every source given is checked; then none / with value / several
  const kinds = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef', 'fileKeyRef'].filter((k) => vf[k]);
  const at = (k: string) => `${field}.valueFrom.${k}`;
  if (vf.fieldRef) fieldRef(at('fieldRef'), vf.fieldRef, ENV_FIELD_PATHS, errs);
  if (vf.resourceFieldRef) resourceFieldRef(at('resourceFieldRef'), vf.resourceFieldRef, ctx.containerNames, false, errs);
  for (const [k, kind] of [['configMapKeyRef', 'configmap'], ['secretKeyRef', 'secret']] as const) {
    const r = vf[k];
    if (!r) continue;
    const f = at(k);
    if (!r.name) errs.push(required(`${f}.name`));
    else if (kind === 'configmap') dns1123Subdomain(`${f}.name`, r.name, errs);
    configKey(`${f}.key`, r.key, errs);
    if (r.name && r.key && kinds.length === 1 && !e.value) checkRef(f, kind, r.name, r.key, r.optional, ctx, errs);
  }
  if (vf.fileKeyRef) fileKeyRef(at('fileKeyRef'), vf.fileKeyRef, ctx, errs);
  if (kinds.length === 0) errs.push(invalid(`${field}.valueFrom`, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`'));
  else if (e.value) errs.push(invalid(`${field}.valueFrom`, '', 'may not be specified when `value` is not empty'));
  else if (kinds.length > 1) errs.push(invalid(`${field}.valueFrom`, '', 'may not have more than one field specified at a time'));
}

/** validateFileKeySelector + validateFileKeyRefVolumes (EnvFiles, beta and on by default since 1.35). */
function fileKeyRef(f: string, r: { volumeName?: unknown; path?: unknown; key?: unknown }, ctx: Ctx, errs: FieldError[]): void {
  if (!r.key) errs.push(required(`${f}.key`));
  else envVarName(`${f}.key`, r.key, errs);
  if (!r.volumeName) errs.push(required(`${f}.volumeName`));
  else {
    dns1123Label(`${f}.volumeName`, r.volumeName, errs);
    const v = ctx.volumes.get(r.volumeName as string);
    if (!v) errs.push(notFoundValue(`${f}.volumeName`, r.volumeName));
    else if (!v.emptyDir) errs.push(invalid(`${f}.volumeName`, r.volumeName, 'referenced volume must be of type emptyDir'));
  }
  if (!r.path) errs.push(required(`${f}.path`));
  else if (typeof r.path === 'string' && r.path.split('/').includes('..')) errs.push(invalid(`${f}.path`, r.path, "must not contain '..'"));
}

const RESOURCE_NAMES = ['cpu', 'memory', 'ephemeral-storage'];

function validateResources(field: string, c: Container, errs: FieldError[], warnings: string[]): void {
  const r = c.resources;
  if (!r) return;
  const parsed: Record<string, Record<string, ReturnType<typeof tryParseQuantity>>> = { limits: {}, requests: {} };
  for (const which of ['limits', 'requests'] as const) {
    for (const [k, v] of Object.entries(r[which] ?? {})) {
      const f = `${field}.resources.${which}.${k}`;
      if (!RESOURCE_NAMES.includes(k) && !k.startsWith('hugepages-')) {
        if (!k.includes('/')) errs.push(notSupported(`${field}.resources.${which}[${k}]`, k, RESOURCE_NAMES));
        else warnings.push(`${f}: extended resources are not enforced by nodelet`);
        continue;
      }
      const q = tryParseQuantity(v as string);
      if (!q) {
        errs.push(invalid(f, v, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
        continue;
      }
      if (q.negative) errs.push(invalid(f, v, 'must be greater than or equal to 0'));
      if (k === 'ephemeral-storage' || k.startsWith('hugepages-')) warnings.push(`${f}: ${k} is not enforced by nodelet`);
      parsed[which]![k] = q;
    }
  }
  for (const [k, req] of Object.entries(parsed.requests!)) {
    const lim = parsed.limits![k];
    if (req && lim && compareQuantity(req, lim) > 0)
      errs.push(invalid(`${field}.resources.requests`, req.text, `must be less than or equal to ${k} limit of ${lim.text}`));
  }
}

// ------------------------------------------------------------- pod-level resources

// validation.go validatePodResources (v1.36, PodLevelResources on): validatePodResourceRequirements
// (validateResourceRequirements with validatePodResourceName) and validatePodResourceConsistency, on the
// defaulted spec.resources (podLevelResources), as the API server validates the defaulted object.
const QNAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const QNAME_MSG = `must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '${QNAME_FMT}')`;
const STANDARD_RESOURCES = new Set(
  'cpu memory ephemeral-storage requests.cpu requests.memory requests.ephemeral-storage limits.cpu limits.memory limits.ephemeral-storage pods resourcequotas services replicationcontrollers secrets configmaps persistentvolumeclaims storage requests.storage services.nodeports services.loadbalancers'.split(' '),
);
const INTEGER_RESOURCES = new Set('pods resourcequotas services replicationcontrollers secrets configmaps persistentvolumeclaims services.nodeports services.loadbalancers'.split(' '));
const POD_LEVEL_SUPPORTED = ['cpu', 'hugepages-', 'memory']; // sets.List(SupportedPodLevelResources())
const QUANTITY_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/** validation.IsQualifiedName (content.IsLabelKey) messages. */
function qualifiedNameMsgs(v: string): string[] {
  const parts = v.split('/');
  const msgs: string[] = [];
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) msgs.push('prefix part must be non-empty');
    else {
      if (prefix.length > 253) msgs.push('prefix part must be no more than 253 characters');
      if (!DNS1123_SUBDOMAIN.test(prefix)) msgs.push(`prefix part ${SUBDOMAIN_MSG}`);
    }
  } else return [`a valid label key ${QNAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  if (name.length === 0) msgs.push('name part must be non-empty');
  else if (name.length > 63) msgs.push('name part must be no more than 63 characters');
  if (!new RegExp(`^${QNAME_FMT}$`).test(name)) msgs.push(`name part ${QNAME_MSG}`);
  return msgs;
}

const isNativeResource = (k: string) => !k.includes('/') || k.includes('kubernetes.io/');
/** helper.IsExtendedResourceName: outside kubernetes.io, "requests.<name>" a qualified name */
const isExtendedResource = (k: string) => !isNativeResource(k) && !k.startsWith('requests.') && qualifiedNameMsgs(`requests.${k}`).length === 0;

/** validatePodResourceName */
function podResourceNameErrors(k: string, fp: string): FieldError[] {
  const msgs = qualifiedNameMsgs(k);
  if (msgs.length) return msgs.map((m) => invalid(fp, k, m));
  if (!k.includes('/') && !STANDARD_RESOURCES.has(k) && !k.startsWith('hugepages-') && !k.startsWith('requests.hugepages-'))
    return [invalid(fp, k, 'must be a standard resource type or fully qualified')];
  if (!isSupportedPodLevelResource(k)) return [notSupported(fp, k, POD_LEVEL_SUPPORTED)];
  return [];
}

/** ValidateResourceQuantityValue */
function podQuantityErrors(k: string, a: Amount, fp: string): FieldError[] {
  const out: FieldError[] = [];
  const text = formatQuantity(a);
  if (a.nano < 0n) out.push(invalid(fp, text, 'must be greater than or equal to 0'));
  if ((INTEGER_RESOURCES.has(k) || isExtendedResource(k)) && a.nano % 1_000_000_000n !== 0n) out.push(invalid(fp, text, 'must be an integer'));
  return out;
}

/** validateResourceQuantityHugePageValue: a whole number of pages (AllowIndivisibleHugePagesValues is off for a new pod). */
function hugePageErrors(k: string, a: Amount, fp: string): FieldError[] {
  if (!k.startsWith('hugepages-')) return [];
  const page = toAmount(k.slice('hugepages-'.length));
  const divisible = !!page && page.nano > 0n && page.nano % 1_000_000_000n === 0n && ceilValue(a) % ceilValue(page) === 0n;
  const text = formatQuantity(a);
  return divisible ? [] : [invalid(fp, text, `${text} is not positive integer multiple of ${k}`)];
}
const ceilValue = (a: Amount) => (a.nano >= 0n ? (a.nano + 999_999_999n) / 1_000_000_000n : a.nano / 1_000_000_000n);

function validatePodLevelResources(pod: Pod, errs: FieldError[], warnings: string[]): void {
  const s = pod.spec;
  const r = s.resources;
  if (r === undefined || r === null) return;
  const f = 'spec.resources';
  if ((s as { os?: { name?: string } }).os?.name === 'windows') {
    errs.push(forbidden(f, 'may not be set for a windows pod'));
    return;
  }
  if (r.claims !== undefined && r.claims !== null) errs.push(forbidden(`${f}.claims`, 'claims may not be set for Resources at pod-level'));
  const pl = podLevelResources(pod)!;
  const limits = new Map<string, Amount>();
  const requests = new Map<string, Amount>();
  let cpuOrMemory = false;
  let hugePages = false;
  for (const [which, list, parsed] of [['limits', pl.limits, limits], ['requests', pl.requests, requests]] as const) {
    for (const [k, v] of Object.entries(list)) {
      const fp = `${f}.${which}[${k}]`;
      errs.push(...podResourceNameErrors(k, fp));
      const a = toAmount(v);
      if (!a) {
        errs.push(invalid(fp, v, QUANTITY_MSG));
        continue;
      }
      parsed.set(k, a);
      errs.push(...podQuantityErrors(k, a, fp));
      if (which === 'requests') {
        // request <= limit; non-overcommitable resources (hugepages) need request = limit
        const lim = limits.get(k);
        if (lim) {
          if (a.nano !== lim.nano && !isOvercommitAllowed(k)) errs.push(invalid(`${f}.requests`, formatQuantity(a), `must be equal to ${k} limit of ${formatQuantity(lim)}`));
          else if (a.nano > lim.nano) errs.push(invalid(`${f}.requests`, formatQuantity(a), `must be less than or equal to ${k} limit of ${formatQuantity(lim)}`));
        } else if (!(k in pl.limits) && !isOvercommitAllowed(k)) errs.push(required(`${f}.limits`, 'Limit must be set for non overcommitable resources'));
      }
      errs.push(...hugePageErrors(k, a, fp));
      if (k === 'cpu' || k === 'memory') cpuOrMemory = true;
      if (k.startsWith('hugepages-')) {
        hugePages = true;
        warnings.push(`${f}.${which}.${k}: ${k} is not enforced by nodelet`);
      }
    }
  }
  if (!cpuOrMemory && hugePages) errs.push(forbidden(f, 'HugePages require cpu or memory'));
  // validateResourceClaimNames: nodelet has no spec.resourceClaims, so every name is unknown
  if (Array.isArray(r.claims)) {
    const seen = new Set<string>();
    r.claims.forEach((c, i) => {
      const name = c?.name;
      if (!name) return errs.push(required(`${f}.claims[${i}]`));
      const key = c.request ? `${name}/${c.request}` : name;
      if (seen.has(key)) return errs.push(duplicate(`${f}.claims[${i}]`, key));
      seen.add(key);
      errs.push({ field: `${f}.claims[${i}]`, type: 'NotFound', value: name, detail: 'must be one of the names in pod.spec.resourceClaims which is empty' });
    });
  }
  // validatePodResourceConsistency
  for (const [k, agg] of aggregateContainerResources(pod, 'requests')) {
    const podReq = requests.get(k);
    if (podReq && agg.nano > podReq.nano)
      errs.push(invalid(`${f}.requests[${k}]`, formatQuantity(podReq), `must be greater than or equal to aggregate container requests of ${formatQuantity(agg)}`));
  }
  for (const [k, agg] of aggregateContainerResources(pod, 'limits')) {
    const podLim = limits.get(k);
    if (k.startsWith('hugepages-') && podLim && agg.nano > podLim.nano)
      errs.push(invalid(`${f}.limits[${k}]`, formatQuantity(podLim), `must be greater than or equal to aggregate container limits of ${formatQuantity(agg)}`));
  }
  (s.containers ?? []).forEach((c, i) => {
    for (const [k, v] of Object.entries(c?.resources?.limits ?? {})) {
      const podLim = limits.get(k);
      const lim = toAmount(v);
      if (podLim && lim && lim.nano > podLim.nano)
        errs.push(invalid(`${f}.containers[${i}][${k}].limits`, formatQuantity(lim), `must be less than or equal to pod limits of ${formatQuantity(podLim)}`));
    }
  });
}

const CONTAINER_RESTART_POLICIES = ['Always', 'Never', 'OnFailure']; // sets.List order, as the API server lists them
const RESTART_RULE_ACTIONS = ['Restart'];
const RESTART_RULE_OPERATORS = ['In', 'NotIn'];

/**
 * validation.go validateContainerRestartPolicy (v1.36, ContainerRestartRules): the container's restartPolicy
 * overrides the pod's; rules need it. The v1.36 API server also accepts the action RestartAllContainers
 * (RestartAllContainersOnContainerExits, beta): nodelet does not implement the in-place pod restart, so it
 * refuses the action by name rather than run the pod differently.
 */
function validateContainerRestartPolicy(field: string, c: Container, errs: FieldError[]): void {
  const rules = c.restartPolicyRules ?? [];
  const policyField = `${field}.restartPolicy`;
  if (c.restartPolicy === undefined || c.restartPolicy === null) {
    if (rules.length === 0) return;
    errs.push(required(policyField, 'must specify restartPolicy when restart rules are used'));
  } else if (typeof c.restartPolicy === 'string' && !CONTAINER_RESTART_POLICIES.includes(c.restartPolicy)) {
    errs.push(notSupported(policyField, c.restartPolicy, CONTAINER_RESTART_POLICIES));
  }
  if (rules.length > 20) errs.push(tooMany(`${field}.restartPolicyRules`, rules.length, 20));
  rules.forEach((rule, i) => {
    const f = `${field}.restartPolicyRules[${i}]`;
    const action = rule.action ?? '';
    if (action === 'RestartAllContainers')
      errs.push({ field: `${f}.action`, type: 'NotSupported', value: action, detail: `not supported by nodelet (the in-place restart of every container of the pod); supported values: ${RESTART_RULE_ACTIONS.map((a) => JSON.stringify(a)).join(', ')}` });
    else if (!RESTART_RULE_ACTIONS.includes(action)) errs.push(notSupported(`${f}.action`, action, RESTART_RULE_ACTIONS));
    const ec = rule.exitCodes;
    if (ec === undefined || ec === null) return void errs.push(required(`${f}.exitCodes`, 'must be specified'));
    const op = ec.operator ?? '';
    if (!RESTART_RULE_OPERATORS.includes(op)) errs.push(notSupported(`${f}.exitCodes.operator`, op, RESTART_RULE_OPERATORS));
    if ((ec.values?.length ?? 0) > 255) errs.push(tooMany(`${f}.exitCodes.values`, ec.values!.length, 255));
  });
}

function validateContainer(c: Container, field: string, init: boolean, ctx: Ctx, errs: FieldError[], warnings: string[]): void {
  if (!c.name) errs.push(required(`${field}.name`));
  else dns1123Label(`${field}.name`, c.name, errs);
  if (!c.image || (typeof c.image === 'string' && c.image.trim() === '')) errs.push(required(`${field}.image`));
  else if (typeof c.image === 'string' && c.image !== c.image.trim()) errs.push(invalid(`${field}.image`, c.image, 'must not have leading or trailing whitespace'));
  oneOf(`${field}.imagePullPolicy`, c.imagePullPolicy, ['Always', 'IfNotPresent', 'Never'], errs);
  oneOf(`${field}.terminationMessagePolicy`, c.terminationMessagePolicy, ['File', 'FallbackToLogsOnError'], errs);
  if (c.terminationMessagePath !== undefined && typeof c.terminationMessagePath === 'string' && !c.terminationMessagePath.startsWith('/'))
    errs.push(invalid(`${field}.terminationMessagePath`, c.terminationMessagePath, 'must be an absolute path'));
  if (typeof c.workingDir === 'string' && c.workingDir !== '' && !c.workingDir.startsWith('/'))
    errs.push(invalid(`${field}.workingDir`, c.workingDir, 'must be an absolute path'));

  // restartPolicy / restartPolicyRules (ContainerRestartRules, on in v1.36): validateInitContainerRestartPolicy
  // for init containers, validateContainerRestartPolicy for both
  if (init) {
    if (c.restartPolicy === undefined || c.restartPolicy === null) {
      if (c.restartPolicyRules?.length) errs.push(required(`${field}.restartPolicy`, 'must specify restartPolicy when restart rules are used'));
    } else validateContainerRestartPolicy(field, c, errs);
  } else validateContainerRestartPolicy(field, c, errs);
  const sidecar = init && c.restartPolicy === 'Always';
  if (init && !sidecar) {
    for (const k of ['lifecycle', 'livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      if (c[k]) errs.push(forbidden(`${field}.${k}`, 'may not be set for init containers without restartPolicy=Always'));
    }
  }
  if (!(init && !sidecar)) {
    if (c.livenessProbe) validateProbe(`${field}.livenessProbe`, c.livenessProbe, 'liveness', errs);
    if (c.readinessProbe) validateProbe(`${field}.readinessProbe`, c.readinessProbe, 'readiness', errs);
    if (c.startupProbe) validateProbe(`${field}.startupProbe`, c.startupProbe, 'startup', errs);
    for (const k of ['postStart', 'preStop'] as const) {
      const h = c.lifecycle?.[k];
      if (h) validateHandler(`${field}.lifecycle.${k}`, h, ['exec', 'httpGet', 'tcpSocket', 'sleep'], errs);
      if (h?.tcpSocket) warnings.push(`${field}.lifecycle.${k}.tcpSocket: deprecated; the handler only checks the connection like kubelet`);
    }
  }

  // ports
  const portNames = new Set<string>();
  (c.ports ?? []).forEach((p, i) => {
    const f = `${field}.ports[${i}]`;
    if (p.name !== undefined && p.name !== '') {
      ianaSvcName(`${f}.name`, p.name, errs);
      if (portNames.has(p.name)) errs.push(duplicate(`${f}.name`, p.name));
      portNames.add(p.name);
    }
    if (p.containerPort === undefined || p.containerPort === 0) errs.push(required(`${f}.containerPort`));
    else port(`${f}.containerPort`, p.containerPort, errs);
    port(`${f}.hostPort`, p.hostPort, errs, true);
    oneOf(`${f}.protocol`, p.protocol, ['TCP', 'UDP', 'SCTP'], errs);
    if (p.hostIP !== undefined && p.hostIP !== '' && !isIP(p.hostIP)) errs.push(invalid(`${f}.hostIP`, p.hostIP, 'must be a valid IP address'));
    if (ctx.hostNetwork && p.hostPort && p.hostPort !== p.containerPort)
      errs.push(invalid(`${f}.containerPort`, p.containerPort, 'must match `hostPort` when `hostNetwork` is true'));
  });

  // env
  (c.env ?? []).forEach((e, i) => validateEnv(`${field}.env[${i}]`, e, ctx, errs));
  (c.envFrom ?? []).forEach((e, i) => {
    const f = `${field}.envFrom[${i}]`;
    const set = (['configMapRef', 'secretRef'] as const).filter((k) => e[k]);
    if (set.length !== 1) return void errs.push(invalid(f, '', 'must specify one of: `configMapRef` or `secretRef`'));
    if (e.prefix) envVarName(`${f}.prefix`, e.prefix, errs);
    const r = e[set[0]!]!;
    if (!r.name) errs.push(required(`${f}.${set[0]}.name`));
    else checkRef(`${f}.${set[0]}.name`, set[0] === 'configMapRef' ? 'configmap' : 'secret', r.name, undefined, r.optional, ctx, errs);
  });

  validateResources(field, c, errs, warnings);

  // volume mounts
  const paths = new Set<string>();
  (c.volumeMounts ?? []).forEach((m, i) => {
    const f = `${field}.volumeMounts[${i}]`;
    if (!m.name) errs.push(required(`${f}.name`));
    else if (!ctx.volumes.has(m.name)) errs.push(notFound(`${f}.name`, m.name));
    if (!m.mountPath) errs.push(required(`${f}.mountPath`));
    else if (typeof m.mountPath === 'string') {
      if (!m.mountPath.startsWith('/')) errs.push(invalid(`${f}.mountPath`, m.mountPath, 'must be an absolute path'));
      if (m.mountPath.split('/').includes('..')) errs.push(invalid(`${f}.mountPath`, m.mountPath, "must not contain '..'"));
      const norm = m.mountPath.replace(/\/+$/, '') || '/';
      if (paths.has(norm)) errs.push(invalid(`${f}.mountPath`, m.mountPath, 'must be unique'));
      paths.add(norm);
    }
    if (m.subPath !== undefined) relativePath(`${f}.subPath`, m.subPath, errs, true);
    if (m.subPathExpr !== undefined) {
      relativePath(`${f}.subPathExpr`, m.subPathExpr, errs, true);
      if (m.subPath) errs.push(invalid(`${f}.subPathExpr`, m.subPathExpr, 'subPathExpr and subPath are mutually exclusive'));
    }
    oneOf(`${f}.mountPropagation`, m.mountPropagation, ['None', 'HostToContainer', 'Bidirectional'], errs);
    if (m.mountPropagation === 'Bidirectional' && !c.securityContext?.privileged)
      errs.push(forbidden(`${f}.mountPropagation`, 'Bidirectional mount propagation is available only to privileged containers'));
  });

  // security context
  const sc = c.securityContext;
  if (sc) {
    oneOf(`${field}.securityContext.procMount`, sc.procMount, ['Default', 'Unmasked'], errs);
    seccompProfile(`${field}.securityContext.seccompProfile`, sc.seccompProfile, errs);
    appArmorProfile(`${field}.securityContext.appArmorProfile`, sc.appArmorProfile, errs);
    if (sc.privileged && sc.allowPrivilegeEscalation === false)
      errs.push(invalid(`${field}.securityContext`, sc, 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true'));
    idRange(`${field}.securityContext.runAsUser`, sc.runAsUser, errs);
    idRange(`${field}.securityContext.runAsGroup`, sc.runAsGroup, errs);
    for (const w of ['add', 'drop'] as const)
      (sc.capabilities?.[w] ?? []).forEach((cap, i) => {
        if (!/^(CAP_)?[A-Z_]+$/i.test(cap) && cap !== 'ALL') errs.push(invalid(`${field}.securityContext.capabilities.${w}[${i}]`, cap, 'must be a capability name (NET_ADMIN, SYS_TIME, ALL ...)'));
      });
  }
  if (c.stdinOnce && !c.stdin) errs.push(invalid(`${field}.stdinOnce`, true, 'requires stdin to be true'));
}

function notFound(field: string, v: unknown): FieldError {
  return { field, type: 'Invalid', value: v, detail: 'must match the name of a volume in spec.volumes' };
}

function idRange(field: string, v: unknown, errs: FieldError[]): void {
  if (typeof v === 'number' && (v < 0 || v > 2147483647)) errs.push(invalid(field, v, 'must be between 0 and 2147483647, inclusive'));
}

// ------------------------------------------------------------- volumes

function validateItems(field: string, items: KeyToPath[] | undefined, errs: FieldError[]): void {
  (items ?? []).forEach((it, i) => {
    configKey(`${field}.items[${i}].key`, it.key, errs);
    if (!it.path) errs.push(required(`${field}.items[${i}].path`));
    else relativePath(`${field}.items[${i}].path`, it.path, errs);
    mode(`${field}.items[${i}].mode`, it.mode, errs);
  });
}

function validateDapiItems(field: string, items: DownwardAPIVolumeFile[] | undefined, ctx: Ctx, errs: FieldError[]): void {
  (items ?? []).forEach((it, i) => {
    const f = `${field}.items[${i}]`;
    if (!it.path) errs.push(required(`${f}.path`));
    else relativePath(`${f}.path`, it.path, errs);
    mode(`${f}.mode`, it.mode, errs);
    if (!!it.fieldRef === !!it.resourceFieldRef) errs.push(invalid(f, '', 'fieldRef and resourceFieldRef can not be specified simultaneously, and one is required'));
    if (it.fieldRef) fieldRef(`${f}.fieldRef`, it.fieldRef, VOLUME_FIELD_PATHS, errs);
    if (it.resourceFieldRef) resourceFieldRef(`${f}.resourceFieldRef`, it.resourceFieldRef, ctx.containerNames, true, errs);
  });
}

const HOSTPATH_TYPES = ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'];

function validateVolume(v: Volume, field: string, ctx: Ctx, errs: FieldError[]): void {
  if (!v.name) errs.push(required(`${field}.name`));
  else dns1123Label(`${field}.name`, v.name, errs);
  const raw = v as unknown as Record<string, unknown>;
  const bad = UNSUPPORTED_VOLUME_SOURCES.filter((k) => raw[k] !== undefined);
  for (const k of bad) errs.push(notSupported(`${field}.${k}`, k, VOLUME_SOURCE_KINDS));
  const kinds = VOLUME_SOURCE_KINDS.filter((k) => raw[k] !== undefined && raw[k] !== null);
  if (kinds.length + bad.length === 0) return void errs.push(required(field, 'must specify a volume type'));
  if (kinds.length + bad.length > 1) return void errs.push(forbidden(`${field}.${kinds[1] ?? bad[0]}`, 'may not specify more than 1 volume type'));
  if (v.emptyDir) {
    oneOf(`${field}.emptyDir.medium`, v.emptyDir.medium, ['', 'Memory'], errs);
    if (v.emptyDir.sizeLimit !== undefined) {
      const q = tryParseQuantity(v.emptyDir.sizeLimit);
      if (!q || q.negative) errs.push(invalid(`${field}.emptyDir.sizeLimit`, v.emptyDir.sizeLimit, 'must be a valid non-negative quantity'));
    }
  }
  if (v.hostPath) {
    const p = v.hostPath.path;
    if (!p) errs.push(required(`${field}.hostPath.path`));
    else if (typeof p === 'string') {
      if (!p.startsWith('/')) errs.push(invalid(`${field}.hostPath.path`, p, 'must be an absolute path'));
      if (p.split('/').includes('..')) errs.push(invalid(`${field}.hostPath.path`, p, "must not contain '..'"));
    }
    oneOf(`${field}.hostPath.type`, v.hostPath.type, HOSTPATH_TYPES, errs);
  }
  if (v.configMap) {
    if (!v.configMap.name) errs.push(required(`${field}.configMap.name`));
    else {
      dns1123Subdomain(`${field}.configMap.name`, v.configMap.name, errs);
      checkRef(`${field}.configMap.name`, 'configmap', v.configMap.name, undefined, v.configMap.optional, ctx, errs);
    }
    mode(`${field}.configMap.defaultMode`, v.configMap.defaultMode, errs);
    validateItems(`${field}.configMap`, v.configMap.items, errs);
  }
  if (v.secret) {
    if (!v.secret.secretName) errs.push(required(`${field}.secret.secretName`));
    else {
      dns1123Subdomain(`${field}.secret.secretName`, v.secret.secretName, errs);
      checkRef(`${field}.secret.secretName`, 'secret', v.secret.secretName, undefined, v.secret.optional, ctx, errs);
    }
    mode(`${field}.secret.defaultMode`, v.secret.defaultMode, errs);
    validateItems(`${field}.secret`, v.secret.items, errs);
  }
  if (v.downwardAPI) {
    mode(`${field}.downwardAPI.defaultMode`, v.downwardAPI.defaultMode, errs);
    validateDapiItems(`${field}.downwardAPI`, v.downwardAPI.items, ctx, errs);
  }
  if (v.projected) {
    mode(`${field}.projected.defaultMode`, v.projected.defaultMode, errs);
    const seen = new Set<string>();
    (v.projected.sources ?? []).forEach((s, i) => {
      const f = `${field}.projected.sources[${i}]`;
      const set = (['configMap', 'secret', 'downwardAPI', 'serviceAccountToken'] as const).filter((k) => s?.[k]);
      if (set.length !== 1) return void errs.push(forbidden(f, 'may not specify more than 1 volume type per source, and must specify one'));
      const addPath = (pf: string, p: string) => {
        if (seen.has(p)) errs.push(invalid(pf, p, 'conflicting duplicate paths'));
        seen.add(p);
      };
      for (const k of ['configMap', 'secret'] as const) {
        const r = s[k];
        if (!r) continue;
        if (!r.name) errs.push(required(`${f}.${k}.name`));
        else checkRef(`${f}.${k}.name`, k === 'configMap' ? 'configmap' : 'secret', r.name, undefined, r.optional, ctx, errs);
        validateItems(`${f}.${k}`, r.items, errs);
        (r.items ?? []).forEach((it, j) => it.path && addPath(`${f}.${k}.items[${j}].path`, it.path));
      }
      if (s.downwardAPI) {
        validateDapiItems(`${f}.downwardAPI`, s.downwardAPI.items, ctx, errs);
        (s.downwardAPI.items ?? []).forEach((it, j) => it.path && addPath(`${f}.downwardAPI.items[${j}].path`, it.path));
      }
      const t = s.serviceAccountToken;
      if (t) {
        if (!t.path) errs.push(required(`${f}.serviceAccountToken.path`));
        else {
          relativePath(`${f}.serviceAccountToken.path`, t.path, errs);
          addPath(`${f}.serviceAccountToken.path`, t.path);
        }
        const e = t.expirationSeconds;
        if (typeof e === 'number' && e < 600) errs.push(invalid(`${f}.serviceAccountToken.expirationSeconds`, e, 'may not specify a duration less than 10 minutes'));
        if (typeof e === 'number' && e > 2 ** 32) errs.push(invalid(`${f}.serviceAccountToken.expirationSeconds`, e, 'may not specify a duration larger than 2^32 seconds'));
      }
    });
  }
}

// ------------------------------------------------------------- pod

export interface ValidateResult {
  errors: FieldError[];
  warnings: string[];
}

/**
 * Validate a (defaulted) Pod. With `objects`, non-optional ConfigMap and
 * Secret references must resolve against them (as `nodelet run` needs: the
 * manifest is the only source); without, references are not checked (the
 * daemon may receive the objects later, and kubelet then reports
 * CreateContainerConfigError).
 */
export function validatePodFull(pod: Pod, objects?: PodObjects): ValidateResult {
  const errs: FieldError[] = [];
  const warnings: string[] = [];
  checkShape('pod', pod, '', errs, warnings);
  if (errs.length > 0) return { errors: errs, warnings }; // wrong types: further checks would be noise
  if (pod.apiVersion !== undefined && pod.apiVersion !== 'v1') errs.push(notSupported('apiVersion', pod.apiVersion, ['v1']));
  const m = pod.metadata ?? {};
  if (!m.name) errs.push(required('metadata.name', 'name or generateName is required'));
  else dns1123Subdomain('metadata.name', m.name, errs);
  if (m.namespace) dns1123Label('metadata.namespace', m.namespace, errs);
  for (const [k] of Object.entries(m.labels ?? {})) qualifiedName(`metadata.labels`, k, errs);
  for (const [k, v] of Object.entries(m.labels ?? {})) labelValue(`metadata.labels`, v, errs);
  for (const [k] of Object.entries(m.annotations ?? {})) qualifiedName(`metadata.annotations`, k, errs);
  // the legacy AppArmor annotation's value (apivalidation's ValidateAppArmorProfileFormat)
  for (const [k, v] of Object.entries(m.annotations ?? {}))
    if (k.startsWith(APPARMOR_ANNOTATION_PREFIX) && v !== 'runtime/default' && v !== 'unconfined' && !/^localhost\/\S/.test(v))
      errs.push(invalid(`metadata.annotations[${k}]`, v, 'invalid AppArmor profile name: use runtime/default, unconfined or localhost/<profile>'));

  const s = pod.spec;
  if (!s) return { errors: [...errs, required('spec')], warnings };
  if (!Array.isArray(s.containers) || s.containers.length === 0) errs.push(required('spec.containers'));
  const volumes = new Map<string, Volume>();
  (s.volumes ?? []).forEach((v, i) => {
    if (v?.name && volumes.has(v.name)) errs.push(duplicate(`spec.volumes[${i}].name`, v.name));
    if (v?.name) volumes.set(v.name, v);
  });
  const containerNames = new Set<string>();
  const ctx: Ctx = { volumes, containerNames, objects, namespace: m.namespace ?? 'default', hostNetwork: !!s.hostNetwork };
  const all: [Container, string, boolean][] = [
    ...(s.initContainers ?? []).map((c, i) => [c, `spec.initContainers[${i}]`, true] as [Container, string, boolean]),
    ...(s.containers ?? []).map((c, i) => [c, `spec.containers[${i}]`, false] as [Container, string, boolean]),
  ];
  for (const [c, f] of all) {
    if (!c?.name) continue;
    if (containerNames.has(c.name)) errs.push(duplicate(`${f}.name`, c.name));
    containerNames.add(c.name);
  }
  (s.volumes ?? []).forEach((v, i) => validateVolume(v, `spec.volumes[${i}]`, ctx, errs));
  for (const [c, f, init] of all) validateContainer(c, f, init, ctx, errs, warnings);

  // host port conflicts across all containers (checkHostPortConflicts)
  const hostPorts = new Map<string, string>();
  for (const [c, f] of all) {
    (c.ports ?? []).forEach((p, i) => {
      if (!p.hostPort) return;
      const key = `${p.hostPort}/${p.protocol ?? 'TCP'}/${p.hostIP ?? ''}`;
      if (hostPorts.has(key)) errs.push(duplicate(`${f}.ports[${i}].hostPort`, `${p.hostPort}/${p.protocol ?? 'TCP'}`));
      hostPorts.set(key, f);
    });
  }
  validatePodLevelResources(pod, errs, warnings);

  oneOf('spec.restartPolicy', s.restartPolicy, ['Always', 'OnFailure', 'Never'], errs);
  oneOf('spec.dnsPolicy', s.dnsPolicy, ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'], errs);
  nonNegative('spec.terminationGracePeriodSeconds', s.terminationGracePeriodSeconds, errs);
  positive('spec.activeDeadlineSeconds', s.activeDeadlineSeconds, errs);
  if (s.hostname) dns1123Label('spec.hostname', s.hostname, errs);
  if (s.subdomain) dns1123Label('spec.subdomain', s.subdomain, errs);
  if (s.hostnameOverride !== undefined && s.hostnameOverride !== null) {
    // validatePodHostName (HostnameOverride, beta and on in v1.36)
    if (s.setHostnameAsFQDN) errs.push(forbidden('spec.hostnameOverride', 'may not be specified when setHostnameAsFQDN is true'));
    if (s.hostNetwork) errs.push(forbidden('spec.hostnameOverride', 'may not be specified when hostNetwork is true'));
    if (s.hostnameOverride.length > 64) errs.push(tooLong('spec.hostnameOverride', s.hostnameOverride, 64));
    dns1123Subdomain('spec.hostnameOverride', s.hostnameOverride, errs);
  }
  if (s.serviceAccountName) dns1123Subdomain('spec.serviceAccountName', s.serviceAccountName, errs);
  if (s.nodeName) dns1123Subdomain('spec.nodeName', s.nodeName, errs);
  if (s.shareProcessNamespace && s.hostPID)
    errs.push(invalid('spec.securityContext.shareProcessNamespace', true, 'ShareProcessNamespace and HostPID cannot both be enabled'));
  const dc = s.dnsConfig;
  if (s.dnsPolicy === 'None' && (!dc || !dc.nameservers?.length))
    errs.push(required('spec.dnsConfig.nameservers', 'must provide at least one DNS nameserver when dnsPolicy is None'));
  if (dc) {
    if ((dc.nameservers?.length ?? 0) > 3) errs.push(invalid('spec.dnsConfig.nameservers', dc.nameservers, 'must not have more than 3 nameservers'));
    (dc.nameservers ?? []).forEach((n, i) => !isIP(n) && errs.push(invalid(`spec.dnsConfig.nameservers[${i}]`, n, 'must be a valid IP address')));
    if ((dc.searches?.length ?? 0) > 32) errs.push(invalid('spec.dnsConfig.searches', dc.searches, 'must not have more than 32 search paths'));
    (dc.searches ?? []).forEach((n, i) => n !== '.' && dns1123Subdomain(`spec.dnsConfig.searches[${i}]`, n.replace(/\.$/, ''), errs));
    (dc.options ?? []).forEach((o, i) => !o?.name && errs.push(required(`spec.dnsConfig.options[${i}].name`)));
  }
  (s.hostAliases ?? []).forEach((h, i) => {
    if (!h.ip || !isIP(h.ip)) errs.push(invalid(`spec.hostAliases[${i}].ip`, h.ip, 'must be a valid IP address'));
    (h.hostnames ?? []).forEach((n, j) => dns1123Subdomain(`spec.hostAliases[${i}].hostnames[${j}]`, n, errs));
  });
  const psc = s.securityContext;
  if (psc) {
    idRange('spec.securityContext.runAsUser', psc.runAsUser, errs);
    idRange('spec.securityContext.runAsGroup', psc.runAsGroup, errs);
    idRange('spec.securityContext.fsGroup', psc.fsGroup, errs);
    seccompProfile('spec.securityContext.seccompProfile', psc.seccompProfile, errs);
    appArmorProfile('spec.securityContext.appArmorProfile', psc.appArmorProfile, errs);
    (psc.supplementalGroups ?? []).forEach((g, i) => idRange(`spec.securityContext.supplementalGroups[${i}]`, g, errs));
    const seenSysctls = new Set<string>();
    (psc.sysctls ?? []).forEach((sc, i) => {
      if (!sc.name) errs.push(required(`spec.securityContext.sysctls[${i}].name`));
      else if (seenSysctls.has(sc.name)) errs.push(duplicate(`spec.securityContext.sysctls[${i}].name`, sc.name));
      else if (!/^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/.test(sc.name))
        errs.push(invalid(`spec.securityContext.sysctls[${i}].name`, sc.name, "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"));
      if (sc.name) seenSysctls.add(sc.name);
    });
  }
  // ephemeral containers come only through the API server's pods/ephemeralcontainers subresource (a manifest cannot
  // carry them: the API server refuses them on create); nodelet does not run them yet, and says so
  const ephemeral = (s as { ephemeralContainers?: unknown[] }).ephemeralContainers;
  if (ephemeral?.length) {
    if (ctx.objects) errs.push(forbidden('spec.ephemeralContainers', 'cannot be set on create'));
    else warnings.push(`spec.ephemeralContainers: nodelet does not run ephemeral containers yet; the ${ephemeral.length} of this pod are not started and get no status (kubectl debug needs a kubelet node)`);
  }
  // image pull secrets are used from the pod's objects (src/agent/image-puller.ts); without an API server only the
  // manifest's own Secrets are there (in cluster mode `objects` is undefined here: the API server's are fetched)
  if (ctx.objects)
    (s.imagePullSecrets ?? []).forEach((r, i) => {
      if (r?.name && !findObj(ctx.objects!.secrets, ctx.namespace, r.name))
        warnings.push(`spec.imagePullSecrets[${i}]: Secret "${r.name}" not found in namespace "${ctx.namespace}": without an API server nodelet uses only the manifest's Secrets; add it there or configure registry credentials with an auth file`);
    });
  return { errors: errs, warnings };
}

function qualifiedName(field: string, k: string, errs: FieldError[]): void {
  const slash = k.lastIndexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : '';
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (slash >= 0 && (!DNS1123_SUBDOMAIN.test(prefix) || prefix.length > 253)) errs.push(invalid(field, k, 'prefix part must be a lowercase RFC 1123 subdomain'));
  if (name.length === 0 || name.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name))
    errs.push(invalid(field, k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters"));
}

function labelValue(field: string, v: string, errs: FieldError[]): void {
  if (typeof v !== 'string') return;
  if (v.length > 63 || (v !== '' && !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(v)))
    errs.push(invalid(field, v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters"));
}

/** Errors only (see validatePodFull for warnings). */
export function validatePod(pod: Pod, objects?: PodObjects): FieldError[] {
  return validatePodFull(pod, objects).errors;
}
