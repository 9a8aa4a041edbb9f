// Container environment by kubelet's rules (kubelet_pods.go makeEnvironmentVariables)
// and $(VAR) expansion (third_party/forked/golang/expansion).

import { NodeletError } from '../errors.js';
import type { Container, ObjectFieldSelector, Pod, PodObjects, ResourceFieldSelector, ConfigMap, Secret } from './api-types.js';
import { containerLimits, containerRequests } from './qos.js';
import { compareQuantity, divideQuantity, parseQuantity } from './quantity.js';

/**
 * Expand $(VAR) references: `$$` → `$`; `$(NAME)` → mapping(NAME), or left
 * as written when NAME is unknown; a `$` before anything else is kept.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let read: string;
    let advance = 1;
    if (rest[0] === '$') read = '$';
    else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close < 0) read = '$(';
      else {
        const name = rest.slice(1, close);
        const v = lookup(name);
        read = v === undefined ? `$(${name})` : v;
        advance = close + 1;
      }
    } else read = '$' + rest[0];
    out += read;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/** kubelet's CreateContainerConfigError: the container cannot be configured (missing ConfigMap, key, ...). */
export function createContainerConfigError(container: string, message: string, details: Record<string, unknown> = {}): NodeletError {
  return new NodeletError('FailedPrecondition', 'ERR_CREATE_CONTAINER_CONFIG', `container "${container}": ${message}`, {
    details: { container, reason: 'CreateContainerConfigError', ...details },
  });
}

export interface EnvContext {
  objects: PodObjects;
  podIPs?: string[];
  hostIPs?: string[];
  nodeName?: string;
  /** Used for resourceFieldRef limits when a container has none (the host side passes this node's CPUs and memory). */
  nodeAllocatable?: { cpuMilli: number; memoryBytes: number };
  /** Volume name → host path (VolumeManager.setUp), for fileKeyRef. */
  volumePaths?: Record<string, string>;
  /**
   * The bytes of `relPath` inside a volume's host directory, without leaving it (kubelet: securejoin), for
   * fileKeyRef; throws when it cannot be read. The host side passes one (src/host/pod-config.ts).
   */
  readVolumeFile?: (volumeHostPath: string, relPath: string) => { path: string; text: string };
}

/**
 * The value of `key` in an env file, kubelet's envutil.ParseEnv (EnvFiles): `KEY='value'` lines, values in
 * single quotes taken literally (may span lines), `#` comments and blank lines skipped, a comment after the
 * closing quote allowed, whitespace before `=` an error, whitespace after it an empty value. The first line
 * naming the key wins; undefined when no line does. Throws on a malformed file (up to the key's line).
 */
export function parseEnvFile(text: string, key: string): string | undefined {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop(); // a final newline ends the last line (bufio.Scanner)
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.replace(/\r$/, '').replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`invalid environment variable format at line ${n}: missing '='`);
    const namePart = line.slice(0, eq);
    const name = namePart.replace(/[ \t]+$/, '');
    if (name === '') throw new Error(`invalid environment variable format at line ${n}: empty variable name`);
    if (name !== namePart) throw new Error(`invalid environment variable format at line ${n}: whitespace before '=' is not allowed`);
    const valuePart = line.slice(eq + 1);
    const trimmed = valuePart.replace(/^[ \t]+/, '');
    if (trimmed !== valuePart) {
      if (name === key) return '';
      continue;
    }
    if (!trimmed.startsWith("'")) throw new Error(`invalid environment variable format at line ${n}: value must be enclosed in single quotes`);
    let rest = trimmed.slice(1);
    let value = '';
    const start = n;
    for (;;) {
      const close = rest.indexOf("'");
      if (close >= 0) {
        value += rest.slice(0, close);
        const after = rest.slice(close + 1).replace(/^[ \t]+/, '');
        if (after !== '' && !after.startsWith('#')) throw new Error(`invalid environment variable format at line ${i + 1}: unexpected content after closing quote`);
        if (name === key) return value;
        break;
      }
      value += rest + '\n';
      if (++i >= lines.length) throw new Error(`invalid environment variable format starting at line ${start}: unclosed single quote`);
      rest = lines[i]!.replace(/\r$/, '');
    }
  }
  return undefined;
}

function find<T extends ConfigMap | Secret>(list: T[], ns: string, name: string): T | undefined {
  return list.find((o) => o.metadata?.name === name && (o.metadata?.namespace ?? 'default') === ns);
}

function objectData(kind: 'configmap' | 'secret', o: ConfigMap | Secret): Record<string, string> {
  const out: Record<string, string> = {};
  if (kind === 'configmap') {
    const c = o as ConfigMap;
    Object.assign(out, c.data ?? {});
    for (const [k, v] of Object.entries(c.binaryData ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  } else {
    for (const [k, v] of Object.entries((o as Secret).data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  return out;
}

/** The pod's IPs: a hostNetwork pod has the node's (kubelet: HostNetwork pods inherit the node IPs as PodIPs). */
export function podIPsOf(pod: Pod, podIPs: string[] | undefined, hostIPs: string[] | undefined): string[] {
  if (podIPs?.length) return podIPs;
  return pod.spec.hostNetwork ? [...(hostIPs ?? [])] : [];
}

/** Value of a downward-API fieldRef for this pod. */
export function podFieldValue(pod: Pod, sel: ObjectFieldSelector, ctx: Pick<EnvContext, 'podIPs' | 'hostIPs' | 'nodeName'>): string {
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(sel.fieldPath);
  if (m) return (m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations)?.[m[2]!] ?? '';
  switch (sel.fieldPath) {
    case 'metadata.name':
      return pod.metadata.name ?? '';
    case 'metadata.namespace':
      return pod.metadata.namespace ?? 'default';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'metadata.labels':
      return formatMap(pod.metadata.labels);
    case 'metadata.annotations':
      return formatMap(pod.metadata.annotations);
    case 'spec.nodeName':
      return ctx.nodeName ?? pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
    case 'status.podIP':
      return podIPsOf(pod, ctx.podIPs, ctx.hostIPs)[0] ?? '';
    case 'status.podIPs':
      return podIPsOf(pod, ctx.podIPs, ctx.hostIPs).join(',');
    case 'status.hostIP':
      return ctx.hostIPs?.[0] ?? '';
    case 'status.hostIPs':
      return (ctx.hostIPs ?? []).join(',');
  }
  throw new NodeletError('InvalidArgument', 'ERR_FIELDREF_UNSUPPORTED', `unsupported fieldPath: ${sel.fieldPath}`);
}

/** Downward API files for labels/annotations: `key="value"` lines, sorted, values quoted like Go's %q. */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m![k])}`)
    .join('\n');
}

/** Value of a resourceFieldRef (limits fall back to node allocatable; divisor applied, rounded up). */
export function resourceFieldValue(pod: Pod, self: string | undefined, sel: ResourceFieldSelector, ctx: Pick<EnvContext, 'nodeAllocatable'>): string {
  const name = sel.containerName || self;
  const c = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((x) => x.name === name);
  if (!c) throw new NodeletError('InvalidArgument', 'ERR_RESOURCEFIELDREF_CONTAINER', `resourceFieldRef: container "${name}" not found in pod`);
  const allocatable = () => {
    if (!ctx.nodeAllocatable)
      throw new NodeletError('FailedPrecondition', 'ERR_NODE_ALLOCATABLE_UNKNOWN', `resourceFieldRef ${sel.resource} of container "${name}" without a limit needs the node's allocatable resources, which were not given`);
    return ctx.nodeAllocatable;
  };
  const [kind, res] = sel.resource.split('.') as ['limits' | 'requests', string];
  // an omitted divisor comes back from the API server as "0": kubelet then divides by 1
  const given = sel.divisor !== undefined ? parseQuantity(sel.divisor) : undefined;
  const divisor = given && compareQuantity('0', given) !== 0 ? given : parseQuantity('1');
  if (res === 'cpu') {
    const v = kind === 'limits' ? (containerLimits(c).cpu ?? allocatable().cpuMilli) : (containerRequests(c).cpu ?? 0);
    return String(divideQuantity(`${v}m`, divisor));
  }
  if (res === 'memory') {
    const v = kind === 'limits' ? (containerLimits(c).memory ?? allocatable().memoryBytes) : (containerRequests(c).memory ?? 0);
    return String(divideQuantity(String(v), divisor));
  }
  if (res === 'ephemeral-storage') {
    const q = c.resources?.[kind]?.['ephemeral-storage'];
    return q === undefined ? '0' : String(divideQuantity(q, divisor));
  }
  throw new NodeletError('InvalidArgument', 'ERR_RESOURCEFIELDREF_UNSUPPORTED', `unsupported resource: ${sel.resource}`);
}

export interface ResolvedEnv {
  /** Name → value, in the order names were first defined. */
  env: Map<string, string>;
  /** Non-fatal notes (skipped envFrom keys), kubelet reports them as events. */
  warnings: string[];
}

/**
 * Resolve a container's environment: envFrom first (in order, prefix applied,
 * later sources win), then env (in order; `value` is $(VAR)-expanded against
 * what is defined so far; later entries win). Missing non-optional
 * ConfigMaps/Secrets/keys throw CreateContainerConfigError.
 */
export function resolveEnv(pod: Pod, c: Container, ctx: EnvContext): ResolvedEnv {
  const ns = pod.metadata.namespace ?? 'default';
  const env = new Map<string, string>();
  const warnings: string[] = [];
  const lookupObj = (kind: 'configmap' | 'secret', name: string, optional: boolean | undefined) => {
    const list = kind === 'configmap' ? ctx.objects.configMaps : ctx.objects.secrets;
    const o = find(list as (ConfigMap | Secret)[], ns, name);
    if (!o && !optional) throw createContainerConfigError(c.name, `${kind} "${name}" not found`, { kind, name });
    return o ? objectData(kind, o) : undefined;
  };
  for (const [k, v] of Object.entries(ctx.objects.serviceEnv ?? {})) env.set(k, v);
  for (const ef of c.envFrom ?? []) {
    const kind = ef.configMapRef ? 'configmap' : 'secret';
    const ref = (ef.configMapRef ?? ef.secretRef)!;
    const data = lookupObj(kind, ref.name, ref.optional);
    if (!data) continue;
    const skipped: string[] = [];
    for (const [k, v] of Object.entries(data)) {
      const name = (ef.prefix ?? '') + k;
      if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(name)) skipped.push(k);
      else env.set(name, v);
    }
    if (skipped.length)
      warnings.push(`Keys [${skipped.sort().join(', ')}] from the EnvFrom ${kind} ${ns}/${ref.name} were skipped since they are invalid environment variable names.`);
  }
  for (const e of c.env ?? []) {
    let v = '';
    if (e.value) v = expand(e.value, (n) => env.get(n));
    else if (e.valueFrom) {
      const vf = e.valueFrom;
      if (vf.fieldRef) v = podFieldValue(pod, vf.fieldRef, ctx);
      else if (vf.resourceFieldRef) v = resourceFieldValue(pod, c.name, vf.resourceFieldRef, ctx);
      else if (vf.fileKeyRef) {
        // kubelet_pods.go makeEnvironmentVariables (EnvFiles): an empty value counts as missing
        const f = vf.fileKeyRef;
        const base = ctx.volumePaths?.[f.volumeName];
        if (base === undefined || !ctx.readVolumeFile) throw createContainerConfigError(c.name, `cannot find the volume ${JSON.stringify(f.volumeName)} referenced by FileKeyRef`, { volume: f.volumeName });
        let found: string | undefined;
        let file = f.path;
        try {
          const r = ctx.readVolumeFile(base, f.path);
          file = r.path;
          found = parseEnvFile(r.text, f.key);
        } catch (err) {
          throw createContainerConfigError(c.name, "couldn't parse env file", { volume: f.volumeName, path: f.path, cause: (err as Error).message });
        }
        if (!found) {
          if (f.optional) continue;
          throw createContainerConfigError(c.name, `environment variable key ${JSON.stringify(f.key)} not found in file ${JSON.stringify(file)}`, { volume: f.volumeName, path: f.path, key: f.key });
        }
        v = found;
      } else {
        const kind = vf.configMapKeyRef ? 'configmap' : 'secret';
        const ref = (vf.configMapKeyRef ?? vf.secretKeyRef)!;
        const data = lookupObj(kind, ref.name, ref.optional);
        if (!data) continue;
        if (!(ref.key in data)) {
          if (ref.optional) continue;
          throw createContainerConfigError(c.name, `couldn't find key ${ref.key} in ${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${ns}/${ref.name}`, { kind, name: ref.name, key: ref.key });
        }
        v = data[ref.key]!;
      }
    }
    env.set(e.name, v);
  }
  return { env, warnings };
}
