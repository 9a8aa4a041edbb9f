// Small pure pieces of the client verbs that behave as kubectl's: the error of a daemon that cannot be
// reached (not running vs. not allowed), the container a verb defaults to (with kubectl's note), --since
// durations (Go's time.ParseDuration), log line prefixes (label selectors: src/api/selectors.ts).
import { NodeletError } from '../errors.js';
import type { Pod, PodStatus } from '../pod/api-types.js';

/** A command line as a shell would take it back (for "try sudo nodelet …"). */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * The error of a connection to the daemon's socket that failed: EACCES/EPERM is the root-only socket (say
 * so, and how: sudo); ENOENT/ECONNREFUSED is no daemon (say how to start one). Printed as kubectl prints
 * errors (`error: …`, main.ts: details.kubectlStyle).
 */
export function daemonUnreachable(socket: string, e: NodeJS.ErrnoException, argv: string[] = process.argv.slice(2)): NodeletError {
  const code = e.code ?? '';
  if (code === 'EACCES' || code === 'EPERM')
    return new NodeletError('PermissionDenied', 'ERR_DAEMON_UNREACHABLE', `permission denied on ${socket}: the nodelet API is root-only; try sudo nodelet ${shellQuote(argv)}`, {
      cause: e,
      details: { kubectlStyle: true, socket, errno: code },
    });
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK')
    return new NodeletError(
      'Unavailable',
      'ERR_DAEMON_UNREACHABLE',
      `cannot connect to the nodelet daemon at ${socket} (${code}): it is not running; start it with "sudo nodelet daemon" (or "sudo systemctl start nodelet"), or point --socket or $NODELET_SOCKET at its socket`,
      { cause: e, details: { kubectlStyle: true, socket, errno: code } },
    );
  return new NodeletError('Unavailable', 'ERR_DAEMON_UNREACHABLE', `cannot reach the nodelet daemon at ${socket}: ${code || e.message}`, { cause: e, details: { kubectlStyle: true, socket, errno: code } });
}

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/** kubectl's AllContainerNames: `a, b, setup (init)`. */
export function allContainerNames(pod: Pod): string {
  return [...pod.spec.containers.map((c) => c.name), ...(pod.spec.initContainers ?? []).map((c) => `${c.name} (init)`)].join(', ');
}

/**
 * kubectl's FindOrDefaultContainerByName without a name: the annotated default container, else the first,
 * with the note `Defaulted container "a" out of: a, b` when there was a choice.
 */
export function defaultContainer(pod: Pod): { name: string; note?: string } {
  const annotated = pod.metadata.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  if (annotated && all.some((c) => c.name === annotated)) return { name: annotated };
  const name = pod.spec.containers[0]!.name;
  const choice = pod.spec.containers.length > 1 || (pod.spec.initContainers?.length ?? 0) > 0;
  return choice ? { name, note: `Defaulted container ${JSON.stringify(name)} out of: ${allContainerNames(pod)}` } : { name };
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration (`5s`, `2m`, `1h30m`, `1.5h`, `300ms`) in milliseconds; throws on anything else. */
export function parseGoDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let at = 0;
  let sign = 1;
  let body = s;
  if (body.startsWith('-') || body.startsWith('+')) {
    sign = body[0] === '-' ? -1 : 1;
    body = body.slice(1);
  }
  if (!body) throw new Error(`invalid duration "${text}"`);
  re.lastIndex = 0;
  while (at < body.length) {
    re.lastIndex = at;
    const m = re.exec(body);
    if (!m) throw new Error(`invalid duration "${text}"${/^\d+(\.\d+)?$/.test(body) ? ' (missing unit: 5s, 2m, 1h)' : ''}`);
    total += Number(m[1]) * UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  return sign * total;
}

/** kubectl logs --since: whole seconds, rounded (Duration.Round(time.Second)); must be > 0. */
export function sinceSeconds(text: string): number {
  const ms = parseGoDuration(text);
  const s = Math.round(ms / 1000);
  if (ms <= 0 || s <= 0) throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', `--since must be greater than 0 (at least 1s), got "${text}"`, { details: { kubectlStyle: true } });
  return s;
}

/** RFC 3339 check for --since-time (kubectl: `--since-time only accepts times matching RFC3339`). */
export function checkSinceTime(text: string): string {
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(text) || Number.isNaN(Date.parse(text)))
    throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', `--since-time only accepts times matching RFC3339, eg '2006-01-02T15:04:05Z', got "${text}"`, { details: { kubectlStyle: true } });
  return text;
}

/**
 * Splits a stream of text into whole lines, each given `prefix` (kubectl logs --prefix: `[pod/web/c1] `);
 * `end()` flushes a last line without its newline.
 */
export function linePrefixer(prefix: string, write: (s: string) => void): { push(chunk: string): void; end(): void } {
  let buf = '';
  return {
    push(chunk) {
      if (!prefix) return write(chunk);
      buf += chunk;
      const i = buf.lastIndexOf('\n');
      if (i < 0) return;
      const whole = buf.slice(0, i + 1);
      buf = buf.slice(i + 1);
      write(whole.slice(0, -1).split('\n').map((l) => `${prefix}${l}\n`).join(''));
    },
    end() {
      if (prefix && buf) write(`${prefix}${buf}\n`);
      buf = '';
    },
  };
}

// ------------------------------------------------------------------ nodelet run's notes

/** `, IP 10.244.0.5` (or `, host network`) after a pod's Running. */
export function runningNote(pod: Pod, status: PodStatus | undefined): string {
  if (pod.spec.hostNetwork) return `, host network${status?.hostIP ? ` (IP ${status.hostIP})` : ''}`;
  return status?.podIP ? `, IP ${status.podIP}` : '';
}

/**
 * How to reach each declared hostPort: `port 80 → 127.0.0.1:8080` (and the host's own IP when known); a
 * hostIP in the manifest is the only address; a protocol other than TCP is named (`port 53/UDP → …`).
 */
export function hostPortLines(pod: Pod, status: PodStatus | undefined): string[] {
  const out: string[] = [];
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      const proto = (p.protocol ?? 'TCP').toUpperCase();
      const at = (ip: string) => `${ip.includes(':') ? `[${ip}]` : ip}:${p.hostPort}`;
      const ips = p.hostIP && p.hostIP !== '0.0.0.0' && p.hostIP !== '::' ? [p.hostIP] : ['127.0.0.1', ...(status?.hostIP && status.hostIP !== '127.0.0.1' ? [status.hostIP] : [])];
      out.push(`port ${p.containerPort}${proto === 'TCP' ? '' : `/${proto}`}${p.name ? ` (${c.name}/${p.name})` : ''} → ${ips.map(at).join(', ')}`);
    }
  }
  return out;
}
