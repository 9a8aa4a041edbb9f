// Pure parts of the kubelet server: which authorization attributes a request
// needs (kubelet's pkg/kubelet/server/auth.go GetRequestAttributes, with
// KubeletFineGrainedAuthz, GA and locked on in 1.36), the routes of port
// 10250 and the exec query as the API server sends it.

/** One authorization check: a resource request on nodes/<subresource> of this node. */
export interface NodeAttributes {
  verb: string;
  resource: 'nodes';
  subresource: string;
  name: string;
  version: 'v1';
  path: string;
}

/** HTTP method → API verb (kubelet's mapping; anything else has no verb). */
export function apiVerb(method: string | undefined): string {
  switch ((method ?? 'GET').toUpperCase()) {
    case 'POST': return 'create';
    case 'GET': return 'get';
    case 'PUT': return 'update';
    case 'PATCH': return 'patch';
    case 'DELETE': return 'delete';
    default: return '';
  }
}

/** `path` is `prefix` or below it ("/stats" matches /stats, /stats/, /stats/summary, not /statsx). */
export function isSubpath(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/+$/, '');
  return path === p || path.startsWith(p + '/');
}

/**
 * The attributes a request must be allowed for; any one allowed is enough, tried in order:
 *   /stats/* → stats      /metrics/* → metrics      /logs/* → log      /checkpoint/* → checkpoint
 *   /statusz → statusz    /flagz → configz
 *   /pods/*, /runningpods/* → pods, then proxy      /healthz/* → healthz, then proxy      /configz → configz, then proxy
 *   everything else (containerLogs, exec, attach, portForward, run, …) → proxy
 */
export function requestAttributes(method: string | undefined, path: string, nodeName: string): NodeAttributes[] {
  const subresources: string[] = [];
  if (isSubpath(path, '/pods')) subresources.push('pods');
  else if (isSubpath(path, '/healthz')) subresources.push('healthz');
  else if (isSubpath(path, '/configz')) subresources.push('configz');
  else if (isSubpath(path, '/runningpods')) subresources.push('pods');
  if (isSubpath(path, '/stats')) subresources.push('stats');
  else if (isSubpath(path, '/metrics')) subresources.push('metrics');
  else if (isSubpath(path, '/logs')) subresources.push('log');
  else if (isSubpath(path, '/checkpoint')) subresources.push('checkpoint');
  else if (isSubpath(path, '/statusz')) subresources.push('statusz');
  else if (isSubpath(path, '/flagz')) subresources.push('configz');
  else subresources.push('proxy');
  const verb = apiVerb(method);
  return subresources.map((subresource) => ({ verb, resource: 'nodes', subresource, name: nodeName, version: 'v1', path }));
}

/** kubelet's 403 text: `Forbidden (user=U, verb=V, resource=nodes, subresource(s)=[pods proxy])`. */
export function forbiddenMessage(user: string, attrs: NodeAttributes[]): string {
  return `Forbidden (user=${user}, verb=${attrs[0]?.verb ?? ''}, resource=nodes, subresource(s)=[${attrs.map((a) => a.subresource).join(' ')}])\n`;
}

export type KubeletRoute =
  | { kind: 'healthz' }
  | { kind: 'pods' }
  | { kind: 'containerLogs'; namespace: string; pod: string; container: string }
  /** exec, or (attach) attach to the container's own process */
  | { kind: 'exec'; attach?: true; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string; uid?: string }
  | { kind: 'statsSummary' }
  | { kind: 'metrics' }
  | { kind: 'metricsResource' }
  | { kind: 'notFound' };

export function parseKubeletRoute(pathname: string): KubeletRoute {
  const p = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  if (p === '/healthz') return { kind: 'healthz' };
  if (p === '/pods') return { kind: 'pods' };
  if (p === '/stats/summary') return { kind: 'statsSummary' };
  if (p === '/metrics') return { kind: 'metrics' };
  if (p === '/metrics/resource') return { kind: 'metricsResource' };
  const seg = p.split('/').slice(1);
  let d: string[];
  try {
    d = seg.map((s) => decodeURIComponent(s));
  } catch {
    return { kind: 'notFound' };
  }
  if (d.some((s) => s === '')) return { kind: 'notFound' };
  if (d[0] === 'containerLogs' && d.length === 4) return { kind: 'containerLogs', namespace: d[1]!, pod: d[2]!, container: d[3]! };
  if (d[0] === 'portForward' && d.length === 3) return { kind: 'portForward', namespace: d[1]!, pod: d[2]! };
  if (d[0] === 'portForward' && d.length === 4) return { kind: 'portForward', namespace: d[1]!, pod: d[2]!, uid: d[3]! };
  if (d[0] === 'exec' || d[0] === 'attach') {
    const a = d[0] === 'attach' ? { attach: true as const } : {};
    if (d.length === 4) return { kind: 'exec', ...a, namespace: d[1]!, pod: d[2]!, container: d[3]! };
    if (d.length === 5) return { kind: 'exec', ...a, namespace: d[1]!, pod: d[2]!, uid: d[3]!, container: d[4]! };
  }
  return { kind: 'notFound' };
}

/**
 * The exec query kubelet reads: `command` repeated and the streams as the API server passes them
 * (`input`, `output`, `error`, `tty` = 1; core's ExecStdinParam …), or as the pod subresource names them
 * (`stdin`, `stdout`, `stderr`). Returns the local API's query form (exec-stream.ts parseExecQuery), container
 * from the path.
 */
export function normalizeExecQuery(q: URLSearchParams, container: string): URLSearchParams {
  const out = new URLSearchParams();
  for (const c of q.getAll('command')) out.append('command', c);
  const pick = (...keys: string[]) => keys.map((k) => q.get(k)).find((v) => v !== null) ?? null;
  const set = (k: string, v: string | null) => {
    if (v !== null) out.set(k, v);
  };
  set('stdin', pick('input', 'stdin'));
  set('stdout', pick('output', 'stdout'));
  set('stderr', pick('error', 'stderr'));
  set('tty', q.get('tty'));
  out.set('container', container);
  return out;
}
