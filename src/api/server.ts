// The daemon's API: HTTP + JSON over a root-only unix socket, shaped like the
// Kubernetes API (paths, List/Status objects, ?watch=1 newline-delimited
// {"type","object"} events, pod log and exec subresources) so kubectl habits
// carry over. Routing and parameter parsing are pure (parseRoute); the
// handlers call the NodeAgent. Exec also streams: an upgrade to a WebSocket
// with Kubernetes' channel subprotocols (exec-stream.ts).
import { applyRequestBounds, boundsServerOptions, type RequestBounds } from '../sys/http-bounds.js';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { describeError, invalidArgument, isNodeletError } from '../errors.js';
import { getLogger } from '../log.js';
import type { Pod } from '../pod/api-types.js';
import { loadManifests, parseManifests } from '../pod/manifest.js';
import { keepNodeManagedAnnotations, podUpdateInvalidMessage, validatePodUpdate } from '../pod/update.js';
import { formatFieldError, type FieldError } from '../pod/field-errors.js';
import type { AgentEvent, NodeAgent, PodView } from '../agent/node-agent.js';
import type { PodSource } from '../agent/pod-config.js';
import type { RecordedEvent } from '../agent/events.js';
import { followLog, readLog, type LogRecord } from '../agent/logs.js';
import { latestStatus } from '../pod/actions.js';
import { EXEC_PROTOCOLS, negotiateProtocol, offeredProtocols, parseExecQuery, serveExecStream } from './exec-stream.js';
import { checkFields, matchFields, matchLabels, parseFieldSelector, parseLabelSelector, podFields, POD_FIELDS, SelectorError } from './selectors.js';
import os from 'node:os';
import { computeNodeStatus, nodeLabels } from '../node/status.js';
import { readHostInfo } from '../node/host-info.js';
import { KUBELET_VERSION } from '../node/version.js';
import { NODELET_VERSION } from '../version.js';
import { sleep } from '../sys/proc.js';

const log = getLogger('api');

export type Route =
  | { kind: 'healthz' }
  | { kind: 'metrics' }
  | { kind: 'pods'; namespace?: string }
  | { kind: 'pod'; namespace: string; name: string }
  | { kind: 'log'; namespace: string; name: string }
  | { kind: 'exec'; namespace: string; name: string }
  | { kind: 'events'; namespace?: string }
  | { kind: 'stats' }
  | { kind: 'nodes' }
  | { kind: 'node'; name: string }
  | { kind: 'version' }
  | { kind: 'notFound' };

export function parseRoute(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (p === '/healthz' || p === '/livez' || p === '/readyz') return { kind: 'healthz' };
  if (p === '/metrics') return { kind: 'metrics' };
  if (p === '/api/v1/pods') return { kind: 'pods' };
  if (p === '/api/v1/events') return { kind: 'events' };
  if (p === '/api/v1/stats/pods') return { kind: 'stats' };
  if (p === '/api/v1/nodes') return { kind: 'nodes' };
  if (p === '/version') return { kind: 'version' };
  const n = /^\/api\/v1\/nodes\/([^/]+)$/.exec(p);
  if (n) return { kind: 'node', name: decodeURIComponent(n[1]!) };
  let m = /^\/api\/v1\/namespaces\/([^/]+)\/(pods|events)$/.exec(p);
  if (m) return m[2] === 'pods' ? { kind: 'pods', namespace: decodeURIComponent(m[1]!) } : { kind: 'events', namespace: decodeURIComponent(m[1]!) };
  m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(?:\/(log|exec))?$/.exec(p);
  if (m) {
    const namespace = decodeURIComponent(m[1]!);
    const name = decodeURIComponent(m[2]!);
    return m[3] === 'log' ? { kind: 'log', namespace, name } : m[3] === 'exec' ? { kind: 'exec', namespace, name } : { kind: 'pod', namespace, name };
  }
  return { kind: 'notFound' };
}

export function statusObject(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

const REASONS: Record<number, string> = { 400: 'BadRequest', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'AlreadyExists', 413: 'RequestEntityTooLarge', 422: 'Invalid', 500: 'InternalError' };

/** Request bodies larger than this are answered 413, as the API server's 3 MiB limit (a little more room here). */
export const MAX_BODY_BYTES = 4 << 20;

function httpCodeOf(e: unknown): number {
  if (isNodeletError(e, 'ERR_API_BODY_TOO_LARGE')) return 413;
  if (isNodeletError(e)) {
    switch (e.category) {
      case 'InvalidArgument': return 422;
      case 'NotFound': return 404;
      case 'AlreadyExists': return 409;
      case 'FailedPrecondition': return 400;
      default: return 500;
    }
  }
  return 500;
}

export interface ApiServerOptions {
  agent: NodeAgent;
  socket: string;
  /** The pod source that pods created and deleted through the API belong to (default: the agent's 'api' source). */
  source?: PodSource;
  /** Extra Prometheus text appended to /metrics. */
  metrics?: () => string;
  /** This host as a Node (`GET /api/v1/nodes`): its name (default the hostname) and state dir (nodefs; default "/"). */
  node?: { name?: string; rootDir?: string; nodeIP?: string };
  /**
   * A client must send its request headers within `headersMs` (default 10 s) and the whole request, body
   * included, within `requestMs` (default 60 s); an idle keep-alive connection is closed after 5 s. A slow or
   * stalled client is disconnected instead of holding a socket and its buffers. Responses (watches, log follows,
   * exec streams) are not bounded by these.
   */
  timeouts?: RequestBounds;
}

/** The server's version (`GET /version`, kubectl version's serverVersion; version.Info). */
export function versionInfo(): Record<string, string> {
  const [major, minor] = NODELET_VERSION.split('.');
  return {
    major: major ?? '0', minor: minor ?? '0', gitVersion: `v${NODELET_VERSION}`, gitCommit: '', gitTreeState: '', buildDate: '',
    goVersion: '', compiler: 'node', platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`, nodeVersion: process.version, kubeletVersion: KUBELET_VERSION,
  };
}

export class ApiServer {
  private readonly server: http.Server;
  private podSource?: PodSource;
  private readonly watchers = new Set<http.ServerResponse>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 << 20, handleProtocols: (offered) => negotiateProtocol(offered) ?? false });
  private readonly execSockets = new Set<WebSocket>();
  /** when this server started: the local Node's creationTimestamp */
  private readonly startedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  /** The source pods created here belong to (resolved on first use). */
  private get source(): PodSource {
    return (this.podSource ??= this.opts.source ?? this.opts.agent.config.source('api'));
  }

  constructor(private readonly opts: ApiServerOptions) {
    this.server = http.createServer({ connectionsCheckingInterval: boundsServerOptions(opts.timeouts).connectionsCheckingInterval }, (req, res) => {
      this.handle(req, res).catch((e) => {
        if (req.destroyed && !res.headersSent && (e as NodeJS.ErrnoException)?.code === 'ECONNRESET') {
          // the client went away (or was cut off by requestTimeout) while sending its body: nobody to answer
          log.warn('request aborted by the client or its timeout', { url: req.url });
          return;
        }
        const code = httpCodeOf(e);
        const fields = { url: req.url, status: code, error: describeError(e) };
        if (code >= 500) log.error('request failed', fields);
        else log.warn('request refused', fields);
        if (code === 413) res.setHeader('connection', 'close'); // the rest of the body is not read: no reuse
        if (!res.headersSent) this.json(res, code, statusObject(code, REASONS[code] ?? 'InternalError', describeError(e)));
        else res.end();
      });
    });
    applyRequestBounds(this.server, opts.timeouts);
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => undefined); // a client gone mid-handshake
      this.upgrade(req, socket, head).catch((e) => {
        log.error('upgrade failed', { url: req.url, error: describeError(e) });
        const code = httpCodeOf(e);
        rejectUpgrade(socket, code, statusObject(code, REASONS[code] ?? 'InternalError', describeError(e)));
      });
    });
  }

  async listen(): Promise<void> {
    fs.mkdirSync(path.dirname(this.opts.socket), { recursive: true, mode: 0o755 });
    try {
      fs.unlinkSync(this.opts.socket); // a stale socket from a killed daemon
    } catch { /* none */ }
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.opts.socket, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    fs.chmodSync(this.opts.socket, 0o600);
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.end();
    for (const ws of this.execSockets) ws.terminate(); // kills their execs
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    try { fs.unlinkSync(this.opts.socket); } catch { /* gone */ }
  }

  private json(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: http.ServerResponse, code: number, message: string, details?: Record<string, unknown>): void {
    this.json(res, code, statusObject(code, REASONS[code] ?? 'InternalError', message, details));
  }

  private async body(req: http.IncomingMessage, max = MAX_BODY_BYTES): Promise<string> {
    const tooLarge = () =>
      invalidArgument('ERR_API_BODY_TOO_LARGE', `the request body is larger than ${max} bytes: send the object in a smaller form (or split a multi-document file)`);
    if (Number(req.headers['content-length'] ?? 0) > max) throw tooLarge();
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) throw tooLarge();
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private findPod(ns: string, name: string): PodView | undefined {
    return this.opts.agent.findPod(ns, name);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://nodelet');
    const q = url.searchParams;
    const route = parseRoute(url.pathname);
    const agent = this.opts.agent;
    const method = req.method ?? 'GET';
    switch (route.kind) {
      case 'healthz':
        res.writeHead(200, { 'content-type': 'text/plain' });
        return void res.end('ok');
      case 'metrics':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        return void res.end(renderMetrics(agent) + (this.opts.metrics?.() ?? ''));
      case 'pods': {
        if (method === 'POST') {
          if (!route.namespace) return this.fail(res, 405, 'POST pods to /api/v1/namespaces/{namespace}/pods');
          const text = await this.body(req);
          const parsed = loadManifests(text, 'request body', { defaultNamespace: route.namespace } as never);
          if (parsed.pods.length !== 1) return this.fail(res, 400, `expected exactly one Pod in the request body, got ${parsed.pods.length}`);
          const pod = parsed.pods[0]!;
          pod.metadata.namespace ??= route.namespace;
          if (pod.metadata.namespace !== route.namespace)
            return this.fail(res, 400, `the namespace of the provided object (${pod.metadata.namespace}) does not match the namespace sent on the request (${route.namespace})`);
          if (this.findPod(pod.metadata.namespace, pod.metadata.name!))
            return this.fail(res, 409, `pods "${pod.metadata.name}" already exists`, { name: pod.metadata.name, kind: 'pods' });
          this.source.add(pod, { configMaps: parsed.configMaps, secrets: parsed.secrets });
          return this.json(res, 201, agent.getPod(pod.metadata.uid!)?.pod ?? pod);
        }
        if (method !== 'GET') return this.fail(res, 405, `method ${method} not allowed`);
        let labels: ReturnType<typeof parseLabelSelector>;
        let fields: ReturnType<typeof parseFieldSelector>;
        try {
          labels = parseLabelSelector(q.get('labelSelector') ?? '');
          fields = parseFieldSelector(q.get('fieldSelector') ?? '');
          checkFields(fields, POD_FIELDS);
        } catch (e) {
          if (e instanceof SelectorError) return this.fail(res, 400, e.message);
          throw e;
        }
        const select = (v: PodView) =>
          (!route.namespace || (v.pod.metadata.namespace ?? 'default') === route.namespace) && matchLabels(labels, v.pod.metadata.labels) && matchFields(fields, podFields(v.pod));
        if (q.get('watch') === '1' || q.get('watch') === 'true') return this.watch(req, res, select);
        const items = agent.listPods().filter(select).map((v) => v.pod);
        return this.json(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items });
      }
      case 'pod': {
        const v = this.findPod(route.namespace, route.name);
        if (!v) return this.fail(res, 404, `pods "${route.name}" not found`, { name: route.name, kind: 'pods' });
        if (method === 'GET') return this.json(res, 200, v.pod);
        if (method === 'DELETE') {
          const g = q.get('gracePeriodSeconds');
          const grace = g !== null && g !== '' ? Number(g) : undefined;
          if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) return this.fail(res, 400, `gracePeriodSeconds must be a non-negative integer, got "${g}"`);
          const done = this.source.delete(v.pod.metadata.uid!, grace);
          if (q.get('wait') === '1') await done;
          return this.json(res, 200, agent.getPod(v.pod.metadata.uid!)?.pod ?? v.pod);
        }
        if (method === 'PUT' || method === 'PATCH') return this.updatePod(v, method, req, res);
        return this.fail(res, 405, `method ${method} not allowed`);
      }
      case 'log':
        return this.logs(route.namespace, route.name, q, res);
      case 'exec':
        return this.exec(route.namespace, route.name, req, res);
      case 'events': {
        let items: RecordedEvent[] = agent.events(route.namespace ? { namespace: route.namespace } : undefined);
        for (const sel of (q.get('fieldSelector') ?? '').split(',').filter(Boolean)) {
          const [k, val] = sel.split('=');
          if (k === 'involvedObject.name') items = items.filter((e) => e.involvedObject.name === val);
          else if (k === 'involvedObject.uid') items = items.filter((e) => e.involvedObject.uid === val);
          else if (k === 'involvedObject.namespace') items = items.filter((e) => e.involvedObject.namespace === val);
          else if (k === 'reason') items = items.filter((e) => e.reason === val);
          else if (k === 'type') items = items.filter((e) => e.type === val);
          else return this.fail(res, 400, `field label not supported: ${k}`);
        }
        return this.json(res, 200, { kind: 'EventList', apiVersion: 'v1', metadata: {}, items });
      }
      case 'stats': {
        // CPU over a short window (two samples), memory working set: like `kubectl top`.
        const ns = q.get('namespace');
        const pods = agent.listPods().filter((v) => !ns || v.pod.metadata.namespace === ns);
        const sample = async () => {
          const out = new Map<string, { cpu: number; mem: number }>();
          for (const v of pods) {
            let cpu = 0;
            let mem = 0;
            for (const c of await agent.podContainers(v.pod.metadata.uid!)) {
              if (c.state !== 'running') continue;
              const st = await agent.runtime.containerStats(c.id).catch(() => undefined);
              if (st) {
                cpu += st.cpuUsageNanos;
                mem += st.memoryWorkingSetBytes;
              }
            }
            out.set(v.pod.metadata.uid!, { cpu, mem });
          }
          return out;
        };
        const a = await sample();
        const t0 = performance.now();
        await sleep(500);
        const b = await sample();
        const dt = (performance.now() - t0) / 1000;
        const items = pods.map((v) => {
          const x = a.get(v.pod.metadata.uid!)!;
          const y = b.get(v.pod.metadata.uid!)!;
          return { namespace: v.pod.metadata.namespace, name: v.pod.metadata.name, cpuMilli: Math.max(0, (y.cpu - x.cpu) / 1e6 / dt), memoryBytes: y.mem };
        });
        return this.json(res, 200, { kind: 'PodMetricsList', items });
      }
      case 'nodes':
      case 'node': {
        if (method !== 'GET') return this.fail(res, 405, `method ${method} not allowed`);
        const node = await this.localNode();
        if (route.kind === 'node') {
          if (route.name !== node.metadata.name) return this.fail(res, 404, `nodes "${route.name}" not found`, { name: route.name, kind: 'nodes' });
          return this.json(res, 200, node);
        }
        return this.json(res, 200, { kind: 'NodeList', apiVersion: 'v1', metadata: {}, items: [node] });
      }
      case 'version':
        return this.json(res, 200, versionInfo());
      default:
        return this.fail(res, 404, `the server could not find the requested resource (${url.pathname})`);
    }
  }

  /** This host as a Node: kubelet's status setters over what the host reports now (conditions, capacity, nodeInfo). */
  private async localNode() {
    const o = this.opts.node ?? {};
    const host = await readHostInfo({ rootDir: o.rootDir ?? '/', ...(o.nodeIP ? { nodeIP: o.nodeIP } : {}), ...(o.name ? { hostname: o.name } : {}) });
    const name = o.name ?? host.hostname ?? os.hostname();
    const status = computeNodeStatus({ host, now: Date.now() });
    return {
      kind: 'Node', apiVersion: 'v1',
      metadata: { name, creationTimestamp: this.startedAt, labels: nodeLabels({ hostname: name, operatingSystem: host.operatingSystem, architecture: host.architecture }) },
      spec: {},
      status,
    };
  }

  /**
   * PUT …/pods/{name} (a whole Pod, YAML or JSON) or PATCH with a JSON merge patch (RFC 7386,
   * application/merge-patch+json): what the API server allows on an existing pod (src/pod/update.ts),
   * else 422 Invalid with its message. resourceVersion, when given, must be the current one (409).
   */
  private async updatePod(v: PodView, method: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const old = v.pod;
    const name = old.metadata.name!;
    const ns = old.metadata.namespace ?? 'default';
    const text = await this.body(req);
    let body = text;
    if (method === 'PATCH') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/merge-patch+json')
        return this.json(res, 415, statusObject(415, 'UnsupportedMediaType', `the body of a PATCH must be a JSON merge patch (Content-Type: application/merge-patch+json), not "${type}": nodelet has no strategic merge or JSON patch`));
      let patch: unknown;
      try {
        patch = JSON.parse(text);
      } catch (e) {
        return this.fail(res, 400, `the merge patch is not JSON: ${describeError(e)}`);
      }
      const { status: _status, ...current } = old;
      body = JSON.stringify(mergePatch(current, patch));
    }
    const source = old.metadata.annotations?.['kubernetes.io/config.source'];
    if (source === 'file')
      return this.json(res, 409, statusObject(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": it is a static pod from ${old.metadata.annotations?.['nodelet.io/config.file'] ?? 'the manifest directory'}; change that file instead (nodelet replaces the pod)`, { name, kind: 'pods' }));
    if (old.metadata.deletionTimestamp)
      return this.json(res, 409, statusObject(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": the pod is being deleted`, { name, kind: 'pods' }));
    // the uid and creation time an update does not carry are the pod's (the API server keeps its own fields)
    const parsed = loadManifests(body, 'request body', { requireReferences: false, unsupportedKinds: 'error', uid: () => old.metadata.uid! });
    if (parsed.pods.length !== 1) return this.fail(res, 400, `expected exactly one Pod in the request body, got ${parsed.pods.length}`);
    const pod = parsed.pods[0]!;
    if (!parseManifests(body).pods[0]?.metadata?.namespace) pod.metadata.namespace = ns; // defaulted: the request's
    if (pod.metadata.name !== name) return this.fail(res, 400, `the name of the object (${pod.metadata.name}) does not match the name on the URL (${name})`);
    if ((pod.metadata.namespace ?? 'default') !== ns)
      return this.fail(res, 400, `the namespace of the provided object (${pod.metadata.namespace}) does not match the namespace sent on the request (${ns})`);
    if (pod.metadata.resourceVersion && pod.metadata.resourceVersion !== old.metadata.resourceVersion)
      return this.json(res, 409, statusObject(409, 'Conflict', `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'pods' }));
    pod.metadata.creationTimestamp = old.metadata.creationTimestamp;
    delete pod.metadata.resourceVersion;
    keepNodeManagedAnnotations(old, pod);
    const { errors, fieldErrors } = validatePodUpdate(old, pod);
    if (errors.length > 0)
      return this.json(res, 422, statusObject(422, 'Invalid', podUpdateInvalidMessage(name, errors), { name, kind: 'Pod', causes: fieldErrors.map(statusCause) }));
    this.source.update(pod);
    return this.json(res, 200, this.opts.agent.getPod(old.metadata.uid!)?.pod ?? pod);
  }

  private watch(req: http.IncomingMessage, res: http.ServerResponse, select: (v: PodView) => boolean): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const send = (type: string, object: unknown) => res.write(JSON.stringify({ type, object }) + '\n');
    for (const v of this.opts.agent.listPods()) if (select(v)) send('ADDED', v.pod);
    const on = (ev: AgentEvent) => {
      if (select(ev.pod)) send(ev.type, ev.pod.pod);
    };
    this.opts.agent.on('pod', on);
    this.watchers.add(res);
    const stop = () => {
      this.opts.agent.off('pod', on);
      this.watchers.delete(res);
    };
    req.on('close', stop);
    res.on('close', stop);
  }

  private async logs(ns: string, name: string, q: URLSearchParams, res: http.ServerResponse): Promise<void> {
    const v = this.findPod(ns, name);
    if (!v) return this.fail(res, 404, `pods "${name}" not found`);
    const o = parseLogQuery(q);
    if ('error' in o) return this.fail(res, 400, o.error);
    return streamContainerLog(this.opts.agent, v, o, res, (code, message) => this.fail(res, code, message));
  }

  /** The running container an exec goes to, or the HTTP error that says why there is none. */
  private async execTarget(ns: string, name: string, container: string | undefined): Promise<{ id: string } | { code: number; message: string }> {
    const v = this.findPod(ns, name);
    if (!v) return { code: 404, message: `pods "${name}" not found` };
    const pod = v.pod;
    const cname = container ?? pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'] ?? pod.spec.containers[0]!.name;
    if (![...(pod.spec.initContainers ?? []), ...pod.spec.containers].some((c) => c.name === cname))
      return { code: 400, message: `container ${cname} is not valid for pod ${name}` };
    const s = latestStatus(await this.opts.agent.podContainers(pod.metadata.uid!), cname);
    if (!s || s.state !== 'running') return { code: 400, message: `container ${cname} is not running in pod ${name}` };
    return { id: s.id };
  }

  /** POST …/exec with a JSON body: run to completion, output in the response (no upgrade). */
  private async exec(ns: string, name: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const agent = this.opts.agent;
    if (!this.findPod(ns, name)) return this.fail(res, 404, `pods "${name}" not found`);
    if (req.method === 'GET') return this.fail(res, 400, `Upgrade request required: exec streams over a WebSocket (${EXEC_PROTOCOLS.join(', ')}); or POST {command, container, stdin?}`);
    if (req.method !== 'POST') return this.fail(res, 405, 'exec is POST {command, container, stdin?}');
    let body: { command?: string[]; container?: string; stdin?: string; timeoutSeconds?: number };
    try {
      body = JSON.parse(await this.body(req));
    } catch {
      return this.fail(res, 400, 'exec body must be JSON {command, container, stdin?}');
    }
    if (!Array.isArray(body.command) || body.command.length === 0 || !body.command.every((x) => typeof x === 'string'))
      return this.fail(res, 400, 'command must be a non-empty list of strings');
    const t = await this.execTarget(ns, name, body.container);
    if ('code' in t) return this.fail(res, t.code, t.message);
    const r = await agent.runtime.execSync(t.id, body.command, {
      stdin: body.stdin,
      timeoutMs: body.timeoutSeconds ? body.timeoutSeconds * 1000 : undefined,
    });
    return this.json(res, 200, { exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') });
  }

  /**
   * GET|POST …/exec?command=…&stdin=&stdout=&stderr=&tty= upgraded to a WebSocket. Everything that can be
   * checked before the command runs (route, subprotocol, query, pod, container) fails as an ordinary HTTP
   * Status; after the upgrade, failures and the exit code travel on the status channel.
   */
  private async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://nodelet');
    const route = parseRoute(url.pathname);
    const fail = (code: number, message: string) => rejectUpgrade(socket, code, statusObject(code, REASONS[code] ?? 'InternalError', message));
    if (route.kind !== 'exec') return fail(404, `the server could not find the requested resource (${url.pathname}) to upgrade`);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
      return fail(400, `unable to upgrade to "${req.headers.upgrade}": exec streams over a WebSocket only (${EXEC_PROTOCOLS.join(', ')})`);
    const protocol = negotiateProtocol(offeredProtocols(req.headers['sec-websocket-protocol']));
    if (!protocol)
      return fail(400, `requested protocol(s) are not supported: [${offeredProtocols(req.headers['sec-websocket-protocol']).join(' ')}]; supports [${EXEC_PROTOCOLS.join(' ')}]`);
    const q = parseExecQuery(url.searchParams);
    if ('error' in q) return fail(400, q.error);
    const t = await this.execTarget(route.namespace, route.name, q.container);
    if ('code' in t) return fail(t.code, t.message);
    // The WebSocket handshake is a GET; kubectl's older SPDY path POSTs, and a POST upgrade means the same here.
    if (req.method === 'POST') req.method = 'GET';
    const runtime = this.opts.agent.runtime;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.execSockets.add(ws);
      ws.once('close', () => this.execSockets.delete(ws));
      log.debug('exec stream', { pod: `${route.namespace}/${route.name}`, container: q.container, command: q.command, tty: q.tty, protocol });
      serveExecStream(ws, protocol, q, (o) => runtime.exec(t.id, q.command, o)).catch((e) => {
        log.error('exec stream failed', { pod: `${route.namespace}/${route.name}`, error: describeError(e) });
        ws.terminate();
      });
    });
  }
}

/** JSON merge patch (RFC 7386): objects merge, null removes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A metav1.StatusCause of a field error, as the API server reports it (kubectl prints `field: message`). */
function statusCause(e: FieldError): { reason: string; message: string; field: string } {
  const reasons: Record<FieldError['type'], string> = {
    Required: 'FieldValueRequired', Invalid: 'FieldValueInvalid', Duplicate: 'FieldValueDuplicate', NotSupported: 'FieldValueNotSupported', Forbidden: 'FieldValueForbidden', TooLong: 'FieldValueTooLong', TooMany: 'FieldValueTooMany',
    NotFound: 'FieldValueNotFound', UnknownField: 'FieldValueUnknown',
  };
  const line = formatFieldError(e);
  // an unknown field's line (`strict decoding error: unknown field "spec.x"`) does not start with the field
  return { reason: reasons[e.type], message: e.type === 'UnknownField' ? line : line.slice(e.field.length + 2), field: e.field };
}

/** An HTTP error response written on a socket that asked for an upgrade (no ServerResponse exists there). */
function rejectUpgrade(socket: Duplex, code: number, body: unknown): void {
  if (socket.destroyed) return;
  const text = JSON.stringify(body) + '\n';
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}

/** The query of a container log (core/v1 PodLogOptions; the local API's `…/pods/{name}/log` and kubelet's `/containerLogs`). */
export interface ContainerLogOptions {
  container?: string;
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  /** the last N lines only */
  tailLines?: number;
  /** records newer than this (RFC 3339 or ms since the epoch, from sinceSeconds or sinceTime) */
  sinceMs?: number;
  /** stop after this many bytes */
  limitBytes?: number;
  /** Stdout, Stderr or All (default) */
  stream?: 'Stdout' | 'Stderr' | 'All';
}

const boolParam = (v: string | null) => v === 'true' || v === '1';

/** PodLogOptions from a query; `now` for sinceSeconds. Invalid values are an error (kubelet answers 400). */
export function parseLogQuery(q: URLSearchParams, now = Date.now()): ContainerLogOptions | { error: string } {
  const o: ContainerLogOptions = { follow: boolParam(q.get('follow')), previous: boolParam(q.get('previous')), timestamps: boolParam(q.get('timestamps')) };
  const c = q.get('container');
  if (c) o.container = c;
  const int = (k: string, min: number): number | undefined | { error: string } => {
    const v = q.get(k);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) return { error: `${k}: must be ${min === 1 ? 'a positive ' : 'an '}integer, got "${v}"` };
    return n;
  };
  const tail = int('tailLines', -Infinity);
  if (typeof tail === 'object') return tail;
  if (tail !== undefined && tail >= 0) o.tailLines = tail; // negative: all (kubectl's --tail=-1)
  const since = int('sinceSeconds', 1);
  if (typeof since === 'object') return since;
  const limit = int('limitBytes', 1);
  if (typeof limit === 'object') return limit;
  if (limit !== undefined) o.limitBytes = limit;
  const sinceTime = q.get('sinceTime');
  if (since !== undefined && sinceTime) return { error: 'at most one of sinceTime or sinceSeconds may be specified' };
  if (since !== undefined) o.sinceMs = now - since * 1000;
  if (sinceTime) {
    const t = Date.parse(sinceTime);
    if (Number.isNaN(t)) return { error: `sinceTime: "${sinceTime}" is not an RFC 3339 time` };
    o.sinceMs = t;
  }
  const stream = q.get('stream');
  if (stream) {
    if (stream !== 'Stdout' && stream !== 'Stderr' && stream !== 'All') return { error: `stream: must be one of Stdout, Stderr, All, got "${stream}"` };
    if (stream !== 'All' && o.tailLines !== undefined) return { error: 'tailLines cannot be used with a stream other than All' };
    o.stream = stream;
  }
  return o;
}

/**
 * Writes a container's CRI log as text/plain (kubelet's ReadLogs): the container of `o.container` (else the only one),
 * its previous instance with `previous`, filtered by since/stream, cut by tailLines and limitBytes; with `follow`,
 * from the end of the live file across rotations until the container exits or the client goes. Errors before the
 * first byte go to `fail` (HTTP code + message).
 */
export async function streamContainerLog(
  agent: NodeAgent,
  v: PodView,
  o: ContainerLogOptions,
  res: http.ServerResponse,
  fail: (code: number, message: string) => void,
): Promise<void> {
  const pod = v.pod;
  const name = pod.metadata.name!;
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => c.name);
  let cname = o.container;
  if (!cname) {
    if (pod.spec.containers.length > 1)
      return fail(400, `a container name must be specified for pod ${name}, choose one of: [${pod.spec.containers.map((c) => c.name).join(' ')}]`);
    cname = pod.spec.containers[0]!.name;
  }
  if (!all.includes(cname)) return fail(400, `container ${cname} is not valid for pod ${name}`);
  const statuses = (await agent.podContainers(pod.metadata.uid!)).filter((s) => s.name === cname).sort((a, b) => b.attempt - a.attempt);
  const target = o.previous ? statuses[1] : statuses[0];
  if (!target)
    return fail(400, o.previous ? `previous terminated container "${cname}" in pod "${name}" not found` : `container "${cname}" in pod "${name}" is waiting to start`);
  const fmt = (r: LogRecord) => (o.timestamps ? `${r.time} ${r.text}\n` : `${r.text}\n`);
  const keep = (r: LogRecord) =>
    (o.sinceMs === undefined || Date.parse(r.time) >= o.sinceMs) && (!o.stream || o.stream === 'All' || r.stream === o.stream.toLowerCase());
  let budget = o.limitBytes ?? Infinity;
  /** false once limitBytes is reached (the response is over) */
  const write = (r: LogRecord): boolean => {
    if (budget <= 0 || !keep(r)) return budget > 0;
    let b = Buffer.from(fmt(r));
    if (b.length > budget) b = b.subarray(0, budget);
    budget -= b.length;
    res.write(b);
    return budget > 0;
  };
  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
  const follow = o.follow && !o.previous;
  let recs = readLog(target.logPath, { withRotated: true }).filter(keep);
  if (o.tailLines !== undefined) recs = recs.slice(Math.max(0, recs.length - o.tailLines));
  for (const r of recs) if (!write(r)) return void res.end();
  if (!follow) return void res.end();
  // Follow from the current end of the live file; survives rotation.
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let exited = false;
  const off = agent.runtime.onContainerExit((e) => {
    if (e.containerId === target.id) exited = true;
  });
  const st = await agent.runtime.containerStatus(target.id).catch(() => undefined);
  if (!st || st.state === 'exited') exited = true;
  try {
    await followLog(target.logPath, (r) => {
      if (!write(r)) abort.abort();
    }, { fromEnd: true, signal: abort.signal, pollMs: 100, done: () => exited });
  } finally {
    off();
    res.end();
  }
}

/** Prometheus text exposition of the agent's state. */
export function renderMetrics(agent: NodeAgent): string {
  const pods = agent.listPods();
  const lines: string[] = [];
  lines.push('# HELP nodelet_pods Pods by phase.', '# TYPE nodelet_pods gauge');
  const phases: Record<string, number> = { Pending: 0, Running: 0, Succeeded: 0, Failed: 0, Unknown: 0 };
  for (const p of pods) phases[p.status?.phase ?? 'Unknown'] = (phases[p.status?.phase ?? 'Unknown'] ?? 0) + 1;
  for (const [k, n] of Object.entries(phases)) lines.push(`nodelet_pods{phase="${k}"} ${n}`);
  lines.push('# HELP nodelet_container_restarts_total Container restarts.', '# TYPE nodelet_container_restarts_total counter');
  for (const p of pods)
    for (const s of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])])
      lines.push(`nodelet_container_restarts_total{namespace="${p.pod.metadata.namespace}",pod="${p.pod.metadata.name}",container="${s.name}"} ${s.restartCount}`);
  lines.push('# HELP nodelet_probe_results Current probe results.', '# TYPE nodelet_probe_results gauge');
  for (const [k, n] of Object.entries(agent.probeResults())) {
    const [kind, result] = k.split('/');
    lines.push(`nodelet_probe_results{probe_type="${kind}",result="${result}"} ${n}`);
  }
  lines.push('# HELP nodelet_pod_sync_duration_seconds Pod sync durations.', '# TYPE nodelet_pod_sync_duration_seconds summary');
  lines.push(`nodelet_pod_sync_duration_seconds_sum ${(agent.syncStats.totalMs / 1000).toFixed(6)}`);
  lines.push(`nodelet_pod_sync_duration_seconds_count ${agent.syncStats.count}`);
  const mem = process.memoryUsage();
  lines.push('# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${mem.rss}`);
  const cpu = process.cpuUsage();
  lines.push('# TYPE process_cpu_seconds_total counter', `process_cpu_seconds_total ${((cpu.user + cpu.system) / 1e6).toFixed(3)}`);
  return lines.join('\n') + '\n';
}
