// The kubelet server (port 10250): what the API server calls for `kubectl logs`,
// `kubectl exec`, `nodes/<n>/proxy/...` and what metrics-server scrapes.
// HTTPS (node:https) with a self-signed serving certificate (cert.ts); every
// request is authenticated (client certificate against the client CA, or a
// bearer token through TokenReview; anonymous → 401) and authorized through
// SubjectAccessReviews on nodes/<subresource> of this node (auth.ts,
// attributes.ts) before it is served:
//   GET  /healthz                                  ok
//   GET  /pods                                     PodList of the node's pods (the agent's view)
//   GET  /containerLogs/{ns}/{pod}/{container}      follow, previous, tailLines, sinceSeconds, sinceTime,
//                                                  timestamps, limitBytes, stream (src/api/server.ts streamContainerLog);
//                                                  with a WebSocket upgrade (binary.k8s.io, base64.binary.k8s.io, none)
//                                                  the log as messages, as wsstream's reader (logs.ts)
//   GET|POST /exec/{ns}/{pod}[/{uid}]/{container}   command…, input|stdin, output|stdout, error|stderr, tty;
//                                                  WebSocket v5/v4/v4.base64/base64/channel.k8s.io, or none
//                                                  (= channel.k8s.io) (src/api/exec-stream.ts), or
//                                                  Upgrade: SPDY/3.1 with v4/v3/v2/channel.k8s.io streams (spdy-exec.ts)
//   GET|POST /attach/{ns}/{pod}[/{uid}]/{container} the same streams on the container's own process
//                                                  (the shim's attach socket, native/attach.c)
//   GET|POST /portForward/{ns}/{pod}[/{uid}]       portforward.k8s.io over SPDY/3.1: Upgrade: SPDY/3.1, or a WebSocket
//                                                  SPDY/3.1+portforward.k8s.io tunnelling it (portforward.ts, spdy.ts)
//   GET  /stats/summary                            Summary API (stats.ts)
//   GET  /metrics/resource                         resource metrics (stats.ts)
//   GET  /metrics                                  nodelet's own series + kubelet_running_pods/_containers
// The API server proxies WebSocket exec/attach/port-forward to the node as is when the Node
// declares ExtendWebSocketsToKubelet (status.declaredFeatures), else it speaks SPDY/3.1 to us
// (spdy.ts): port-forward (portforward.ts) and exec/attach (spdy-exec.ts, kubelet's remotecommand
// streams; the same sessions as the WebSocket path) answer it; cluster mode declares the feature
// unless --feature-gates=ExtendWebSocketsToKubelet=false.
import { applyRequestBounds, boundsServerOptions, type RequestBounds } from '../sys/http-bounds.js';
import https from 'node:https';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { describeError, NodeletError } from '../errors.js';
import { getLogger } from '../log.js';
import type { NodeAgent, PodView } from '../agent/node-agent.js';
import type { ExecStreamOptions } from '../runtime/types.js';
import { latestStatus } from '../pod/actions.js';
import { parseLogQuery, renderMetrics, streamContainerLog } from '../api/server.js';
import { KUBELET_EXEC_PROTOCOLS, negotiateKubeletProtocol, offeredProtocols, parseExecQuery, serveExecStream, type StartExec } from '../api/exec-stream.js';
import { forbiddenMessage, normalizeExecQuery, parseKubeletRoute, requestAttributes, type KubeletRoute } from './attributes.js';
import type { DelegatedAuth, UserInfo } from './auth.js';
import { ensureServingCert } from './cert.js';
import { closePortForwards, servePortForward, UPGRADE_REQUIRED } from './portforward.js';
import { endInItsOwnWrite, LOG_WS_PROTOCOLS, LogSocketResponse, negotiateLogProtocol } from './logs.js';
import { closeSpdyExecs, serveSpdyExec, SPDY_EXEC_PROTOCOLS } from './spdy-exec.js';
import { buildSummary, CpuRates, needsSecondSample, renderResourceMetrics, renderRunningMetrics, takeSample } from './stats.js';

const log = getLogger('kubelet');

export const DEFAULT_KUBELET_PORT = 10250;

export interface KubeletServerOptions {
  agent: NodeAgent;
  nodeName: string;
  /** --kubelet-address: default 0.0.0.0 */
  address?: string;
  /** --kubelet-port; 0 is not allowed here (the caller does not start the server) */
  port: number;
  /** the node's state dir: the serving pair lives in <root>/pki */
  root: string;
  /** SANs of the serving certificate (node IPs, host names) */
  names: string[];
  /** PEM CA bundle client certificates must verify against (--client-ca-file) */
  clientCA: Buffer;
  auth: DelegatedAuth;
  /** the second sample of a CPU rate, after this many ms (default 200) */
  rateSampleMs?: number;
  /**
   * Bounds on a client before it is served: the TLS handshake and the request headers within `headersMs`
   * (default 10 s), the whole request within `requestMs` (default 60 s), else 408 and the connection closes.
   * Streams (exec, attach, port-forward, log follows) are not bounded by them.
   */
  timeouts?: RequestBounds;
}

type Outcome = { ok: true; user: UserInfo } | { ok: false; code: number; message: string };

export class KubeletServer {
  private server?: https.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 << 20, handleProtocols: (offered) => negotiateKubeletProtocol(offered) || false });
  private readonly logWss = new WebSocketServer({ noServer: true, maxPayload: 64 << 10, handleProtocols: (offered) => negotiateLogProtocol(offered) || false });
  /** exec/attach and log sockets, terminated by stop() */
  private readonly execSockets = new Set<WebSocket>();
  private readonly rates = new CpuRates();
  /** the port actually bound (tests) */
  port = 0;

  constructor(private readonly o: KubeletServerOptions) {}

  async start(): Promise<void> {
    const pair = await ensureServingCert({ dir: `${this.o.root}/pki`, nodeName: this.o.nodeName, names: this.o.names });
    const bounds = boundsServerOptions(this.o.timeouts);
    const server = https.createServer({
      cert: pair.cert, key: pair.key, ca: this.o.clientCA, requestCert: true, rejectUnauthorized: false,
      handshakeTimeout: bounds.headersMs,
      connectionsCheckingInterval: bounds.connectionsCheckingInterval,
    }, (req, res) => {
      this.handle(req, res).catch((e) => {
        log.error('kubelet API request failed', { url: req.url, error: describeError(e) });
        if (!res.headersSent) text(res, 500, `Internal Error: ${describeError(e)}\n`);
        else res.end();
      });
    });
    applyRequestBounds(server, this.o.timeouts);
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => undefined);
      this.upgrade(req, socket, head).catch((e) => {
        log.error('kubelet API upgrade failed', { url: req.url, error: describeError(e) });
        rejectUpgrade(socket, 500, `Internal Error: ${describeError(e)}\n`);
      });
    });
    server.on('tlsClientError', (e) => log.debug('kubelet API: TLS handshake failed', { error: describeError(e) }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(new NodeletError('Unavailable', 'ERR_KUBELET_LISTEN', `cannot listen on ${this.o.address ?? '0.0.0.0'}:${this.o.port} for the kubelet API: ${describeError(e)} (--kubelet-port, --kubelet-address)`, { cause: e })),
      );
      server.listen(this.o.port, this.o.address ?? '0.0.0.0', () => resolve());
    });
    this.server = server;
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : this.o.port;
    log.info('kubelet API listening', { address: this.o.address ?? '0.0.0.0', port: this.port, cert: pair.certFile });
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    for (const ws of this.execSockets) ws.terminate();
    closePortForwards(this); // upgraded sockets are not the server's connections any more
    closeSpdyExecs(this);
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  /** 401 without (valid) credentials, 403 when no attribute is allowed, 500 when a review fails. */
  private async check(req: http.IncomingMessage, pathname: string): Promise<Outcome> {
    const authn = await this.o.auth.authenticate(req).catch((e) => ({ error: describeError(e) }));
    if (!authn || 'error' in authn) {
      if (authn) log.debug('kubelet API: unauthenticated', { error: authn.error });
      return { ok: false, code: 401, message: 'Unauthorized' };
    }
    const attrs = requestAttributes(req.method, pathname, this.o.nodeName);
    try {
      if (await this.o.auth.authorize(authn.user, attrs)) return { ok: true, user: authn.user };
    } catch (e) {
      log.error('kubelet API: authorization error', { user: authn.user.username, error: describeError(e) });
      const a = attrs[0]!;
      return { ok: false, code: 500, message: `Authorization error (user=${authn.user.username}, verb=${a.verb}, resource=${a.resource}, subresource=${a.subresource})` };
    }
    log.debug('kubelet API: forbidden', { user: authn.user.username, verb: attrs[0]!.verb, subresources: attrs.map((a) => a.subresource) });
    return { ok: false, code: 403, message: forbiddenMessage(authn.user.username, attrs) };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const c = await this.check(req, url.pathname);
    if (!c.ok) return text(res, c.code, c.message);
    const route = parseKubeletRoute(url.pathname);
    const method = req.method ?? 'GET';
    const agent = this.o.agent;
    if (route.kind === 'exec') {
      if (method !== 'GET' && method !== 'POST') return text(res, 405, `method ${method} not allowed\n`);
      return text(res, 400, `Upgrade request required: ${route.attach ? 'attach' : 'exec'} streams over a WebSocket (${KUBELET_EXEC_PROTOCOLS.join(', ')}) or SPDY/3.1 (${SPDY_EXEC_PROTOCOLS.join(', ')})\n`);
    }
    if (route.kind === 'portForward') return method === 'GET' || method === 'POST' ? text(res, 400, UPGRADE_REQUIRED) : text(res, 405, `method ${method} not allowed\n`);
    if (route.kind !== 'notFound' && method !== 'GET') return text(res, 405, `method ${method} not allowed\n`);
    switch (route.kind) {
      case 'healthz':
        return text(res, 200, 'ok');
      case 'pods':
        return json(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: agent.listPods().map((v) => v.pod) });
      case 'containerLogs': {
        const v = agent.findPod(route.namespace, route.pod);
        if (!v) return text(res, 404, `pod "${route.pod}" in namespace "${route.namespace}" does not exist\n`);
        const q = new URLSearchParams(url.searchParams);
        q.set('container', route.container);
        const o = parseLogQuery(q);
        if ('error' in o) return text(res, 400, `${o.error}\n`);
        endInItsOwnWrite(res); // the API server's WebSocket reader loses a last chunk that comes with the end (logs.ts)
        return streamContainerLog(agent, v, o, res, (code, message) => text(res, code, `${message}\n`));
      }
      case 'statsSummary':
        return json(res, 200, await this.summary());
      case 'metricsResource': {
        const s = await takeSample(agent, this.o.root);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        return void res.end(renderResourceMetrics(s));
      }
      case 'metrics': {
        let pods = 0;
        let containers = 0;
        for (const v of agent.listPods()) {
          const running = (await agent.podContainers(v.pod.metadata.uid!).catch(() => [])).filter((s) => s.state === 'running').length;
          containers += running;
          if (running > 0) pods++;
        }
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        return void res.end(renderMetrics(agent) + renderRunningMetrics({ pods, containers }));
      }
      default:
        return text(res, 404, '404 page not found\n');
    }
  }

  private async summary(): Promise<Record<string, unknown>> {
    let s = await takeSample(this.o.agent, this.o.root);
    if (needsSecondSample(s, this.rates)) {
      buildSummary(this.o.nodeName, s, this.rates, Date.now());
      await new Promise((r) => setTimeout(r, this.o.rateSampleMs ?? 200));
      s = await takeSample(this.o.agent, this.o.root);
    }
    return buildSummary(this.o.nodeName, s, this.rates, Date.now());
  }

  /** The running container of an exec or attach, or why there is none. */
  private async execTarget(r: Extract<KubeletRoute, { kind: 'exec' }>): Promise<{ id: string; view: PodView; keepsStdin: boolean } | { code: number; message: string }> {
    const v = this.o.agent.findPod(r.namespace, r.pod);
    if (!v || (r.uid && v.pod.metadata.uid !== r.uid)) return { code: 404, message: `pod "${r.pod}" in namespace "${r.namespace}" does not exist` };
    const spec = [...(v.pod.spec.initContainers ?? []), ...v.pod.spec.containers].find((c) => c.name === r.container);
    if (!spec) return { code: 404, message: `container "${r.container}" not found in pod "${r.pod}"` };
    const s = latestStatus(await this.o.agent.podContainers(v.pod.metadata.uid!), r.container);
    if (!s || s.state !== 'running') return { code: 400, message: `container ${r.container} is not running in pod ${r.pod}` };
    return { id: s.id, view: v, keepsStdin: spec.stdin === true };
  }

  /** /containerLogs with a WebSocket upgrade: the log as binary (or base64 text) messages (logs.ts). */
  private async logsOverWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, url: URL, route: Extract<KubeletRoute, { kind: 'containerLogs' }>): Promise<void> {
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    const protocol = negotiateLogProtocol(offered);
    if (protocol === undefined) return rejectUpgrade(socket, 400, `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${LOG_WS_PROTOCOLS.join(' ')}] or none\n`);
    const v = this.o.agent.findPod(route.namespace, route.pod);
    if (!v) return rejectUpgrade(socket, 404, `pod "${route.pod}" in namespace "${route.namespace}" does not exist\n`);
    const q = new URLSearchParams(url.searchParams);
    q.set('container', route.container);
    const o = parseLogQuery(q);
    if ('error' in o) return rejectUpgrade(socket, 400, `${o.error}\n`);
    if (req.method === 'POST') req.method = 'GET';
    const res = new LogSocketResponse(socket, protocol, (cb) =>
      this.logWss.handleUpgrade(req, socket, head, (ws) => {
        this.execSockets.add(ws);
        ws.once('close', () => this.execSockets.delete(ws));
        cb(ws);
      }),
    );
    try {
      await streamContainerLog(this.o.agent, v, o, res as unknown as http.ServerResponse, (code, message) => rejectUpgrade(socket, code, `${message}\n`));
    } catch (e) {
      if (!res.headersSent) throw e;
      log.error('kubelet log stream failed', { url: req.url, error: describeError(e) });
      res.end();
    }
  }

  private async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const c = await this.check(req, url.pathname);
    if (!c.ok) return rejectUpgrade(socket, c.code, c.message);
    const route = parseKubeletRoute(url.pathname);
    // kubectl port-forward: SPDY/3.1, on the socket or tunnelled in a WebSocket (portforward.ts)
    if (route.kind === 'portForward') return servePortForward(req, socket, head, { agent: this.o.agent, route, user: c.user.username, owner: this });
    if (route.kind === 'containerLogs' && (req.headers.upgrade ?? '').toLowerCase() === 'websocket') return this.logsOverWebSocket(req, socket, head, url, route);
    if (route.kind !== 'exec') return rejectUpgrade(socket, 404, '404 page not found\n');
    // not a WebSocket: SPDY/3.1 (the API server's towards a node without ExtendWebSocketsToKubelet), spdy-exec.ts
    const viaSpdy = (req.headers.upgrade ?? '').toLowerCase() !== 'websocket';
    // a WebSocket without a subprotocol: channel.k8s.io's semantics (kubelet's "" entry)
    const protocol = viaSpdy ? undefined : negotiateKubeletProtocol(offeredProtocols(req.headers['sec-websocket-protocol']));
    if (protocol === undefined && !viaSpdy)
      return rejectUpgrade(socket, 400, `requested protocol(s) are not supported: [${offeredProtocols(req.headers['sec-websocket-protocol']).join(' ')}]; supports [${KUBELET_EXEC_PROTOCOLS.join(' ')}]\n`);
    const q = parseExecQuery(normalizeExecQuery(url.searchParams, route.container), { attach: route.attach });
    if ('error' in q) return rejectUpgrade(socket, 400, `${q.error}\n`);
    const t = await this.execTarget(route);
    if ('code' in t) return rejectUpgrade(socket, t.code, `${t.message}\n`);
    if (req.method === 'POST') req.method = 'GET';
    const runtime = this.o.agent.runtime;
    // attach: stdin only where the container keeps it open (containerd's attach drops it otherwise)
    const attach = async (o: ExecStreamOptions) => {
      const s = await runtime.attach(t.id, { stdin: o.stdin === true && t.keepsStdin });
      if (o.size) s.resize(o.size.cols, o.size.rows);
      return s;
    };
    const start: StartExec = route.attach ? attach : (o) => runtime.exec(t.id, q.command, o);
    if (protocol === undefined)
      return serveSpdyExec(req, socket, head, { request: q, start, attach: route.attach, owner: this, fields: { pod: `${route.namespace}/${route.pod}`, container: route.container, user: c.user.username } });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.execSockets.add(ws);
      ws.once('close', () => this.execSockets.delete(ws));
      log.debug(route.attach ? 'kubelet attach stream' : 'kubelet exec stream', { pod: `${route.namespace}/${route.pod}`, container: route.container, command: q.command, tty: q.tty, protocol, user: c.user.username });
      serveExecStream(ws, protocol, q, start, undefined, route.attach).catch((e) => {
        log.error('kubelet exec stream failed', { pod: `${route.namespace}/${route.pod}`, error: describeError(e) });
        ws.terminate();
      });
    });
  }
}

function text(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  const t = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(t) });
  res.end(t);
}

function rejectUpgrade(socket: Duplex, code: number, body: string): void {
  if (socket.destroyed) return;
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error' }[code] ?? 'Error';
  socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
