// kubelet's /portForward/{ns}/{pod}[/{uid}]: the portforward.k8s.io protocol
// over SPDY/3.1 (spdy.ts), as kubelet + a CRI runtime serve it
// (k8s.io/cri-streaming portforward/httpstream.go, containerd's PortForward).
//
// Two ways in, one protocol:
//   - a WebSocket with subprotocol SPDY/3.1+portforward.k8s.io whose binary
//     messages carry SPDY (kubectl → the v1.36 API server → us, passed through
//     as is when the Node declares ExtendWebSocketsToKubelet);
//   - `Upgrade: SPDY/3.1` + `X-Stream-Protocol-Version: portforward.k8s.io`, then
//     SPDY on the socket (the API server's own tunnel towards a node that does
//     not declare the feature, or an old client).
// The client opens one stream pair per forwarded connection: headers
// `streamtype: error|data`, `port`, `requestid`. Each stream is answered
// (SYN_REPLY); a complete pair dials 127.0.0.1:<port> (then [::1]) inside the
// pod's network namespace through `nodelet-shim dial` (Node cannot setns a
// thread) and copies bytes both ways with half-closes. A failure is written as
// text on the error stream and both streams are reset, kubelet's wording.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { describeError } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import type { NodeAgent } from '../agent/node-agent.js';
import { DEFAULT_SHIM_BINARY } from '../runtime/shim/index.js';
import type { KubeletRoute } from './attributes.js';
import { duplexTransport, SpdySession, webSocketTransport, type SpdyStream, type SpdyTransport } from './spdy.js';

const log = getLogger('kubelet');

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
export const SPDY_UPGRADE = 'SPDY/3.1';
export const TUNNELING_PREFIX = 'SPDY/3.1+';
export const TUNNELING_PROTOCOL = TUNNELING_PREFIX + PORT_FORWARD_PROTOCOL;
/** kubelet's streamCreationTimeout: both streams of a pair within this, else the pair is dropped */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** bytes queued on the connection beyond which a pod's output is paused */
export const HIGH_WATER = 1 << 20;
/** `nodelet-shim dial` exit codes (native/dial.c) */
export const DIAL_EXIT = { relayError: 1, setupError: 2, connectRefused: 3 } as const;

export const UPGRADE_REQUIRED = `Upgrade request required: port-forward streams over ${SPDY_UPGRADE} (Upgrade: ${SPDY_UPGRADE}, X-Stream-Protocol-Version: ${PORT_FORWARD_PROTOCOL}) or a WebSocket with subprotocol ${TUNNELING_PROTOCOL}\n`;

type Refusal = { code: number; message: string; headers?: Record<string, string> };
export type Negotiated = { kind: 'websocket'; protocol: string } | { kind: 'spdy'; protocol: string };

const list = (v: string | string[] | undefined) =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);

/**
 * Which upgrade this is and the protocol agreed, or kubelet's refusal: the tunnel handler's
 * (`no tunneling spdy protocols provided`) and httpstream.Handshake's (missing header 400, no common protocol 403).
 */
export function negotiatePortForward(h: http.IncomingHttpHeaders): Negotiated | Refusal {
  const upgrade = (h.upgrade ?? '').toLowerCase();
  if (upgrade === 'websocket') {
    const offered = list(h['sec-websocket-protocol']);
    const spdy = offered.filter((p) => p.startsWith(TUNNELING_PREFIX) && p.endsWith('.k8s.io')).map((p) => p.slice(TUNNELING_PREFIX.length));
    if (!spdy.length) return { code: 400, message: 'unable to upgrade: no tunneling spdy protocols provided\n' };
    if (!spdy.includes(PORT_FORWARD_PROTOCOL))
      return { code: 403, message: `unable to upgrade: unable to negotiate protocol: client supports [${spdy.join(' ')}], server accepts [${PORT_FORWARD_PROTOCOL}]\n` };
    return { kind: 'websocket', protocol: TUNNELING_PROTOCOL };
  }
  if (upgrade.includes(SPDY_UPGRADE.toLowerCase())) {
    const offered = list(h['x-stream-protocol-version']);
    if (h['x-stream-protocol-version'] === undefined) return { code: 400, message: 'unable to upgrade: header X-Stream-Protocol-Version does not exist in request\n' };
    if (!offered.includes(PORT_FORWARD_PROTOCOL))
      return {
        code: 403,
        message: `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${PORT_FORWARD_PROTOCOL}]\n`,
        headers: { 'X-Accepted-Stream-Protocol-Versions': PORT_FORWARD_PROTOCOL },
      };
    return { kind: 'spdy', protocol: PORT_FORWARD_PROTOCOL };
  }
  return { code: 400, message: `unable to upgrade: "Upgrade: ${h.upgrade ?? ''}" is neither websocket (${TUNNELING_PROTOCOL}) nor ${SPDY_UPGRADE}\n` };
}

export type StreamKind = 'data' | 'error';

/** kubelet's httpStreamReceived: a valid port (1..65535) and stream type, else the stream is rejected. */
export function checkStreamHeaders(h: { port?: string; streamtype?: string }): { port: number; kind: StreamKind } | { error: string } {
  if (!h.port) return { error: '"port" header is required' };
  if (!/^\d+$/.test(h.port) || Number(h.port) > 65535) return { error: `unable to parse "${h.port}" as a port` };
  const port = Number(h.port);
  if (port < 1) return { error: `port "${h.port}" must be > 0` };
  if (!h.streamtype) return { error: '"streamType" header is required' };
  if (h.streamtype !== 'error' && h.streamtype !== 'data') return { error: `invalid stream type "${h.streamtype}"` };
  return { port, kind: h.streamtype };
}

/** The pair a stream belongs to: its requestID, or for old clients a pseudo id from the stream id (kubelet's). */
export function pairRequestId(requestId: string | undefined, kind: StreamKind, streamId: number): string {
  if (requestId) return requestId;
  return String(kind === 'error' ? streamId : streamId - 2);
}

/**
 * What the error stream says when the dial or the copy failed: kubelet's `error forwarding port…` around
 * containerd's `failed to connect to localhost:<port> inside namespace…` (the shim's stderr: one line per address).
 */
export function forwardErrorMessage(port: number, sandboxId: string, exit: { code: number | null; stderr: string }): string {
  const lines = exit.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  let why: string;
  if (exit.code === DIAL_EXIT.connectRefused) {
    const v4 = lines.find((l) => l.startsWith('dial tcp4')) ?? 'no IPv4 attempt';
    const v6 = lines.find((l) => l.startsWith('dial tcp6')) ?? 'no IPv6 attempt';
    why = `failed to connect to localhost:${port} inside namespace "${sandboxId}", IPv4: ${v4} IPv6 ${v6} `;
  } else {
    why = lines.join('; ') || `the dialer exited with code ${exit.code}`;
  }
  return `error forwarding port ${port} to pod ${sandboxId}, uid : ${why}`;
}

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  uid: string;
  sandboxId: string;
  /** the pinned network namespace; undefined: hostNetwork (dial in the host's) */
  netns?: string;
}

/** The pod's running sandbox, or kubelet's answer when there is none (404 before 500). */
export async function findPortForwardTarget(agent: NodeAgent, r: { namespace: string; pod: string; uid?: string }): Promise<PortForwardTarget | Refusal> {
  const v = agent.findPod(r.namespace, r.pod);
  if (!v) return { code: 404, message: 'pod does not exist\n' };
  const uid = v.pod.metadata.uid!;
  if (r.uid && r.uid !== uid) return { code: 404, message: 'pod not found\n' };
  const sb = (await agent.runtime.listPodSandboxes())
    .filter((s) => s.config.uid === uid && s.state === 'ready')
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0];
  if (!sb) return { code: 500, message: `failed to find sandboxID for pod ${r.pod}_${r.namespace}(${uid})\n` };
  return { namespace: r.namespace, pod: r.pod, uid, sandboxId: sb.id, netns: sb.config.hostNetwork ? undefined : sb.namespaces.net };
}

export interface ServePortForwardOptions {
  agent: NodeAgent;
  route: Extract<KubeletRoute, { kind: 'portForward' }>;
  user: string;
  /** whose sessions these are: closePortForwards(owner) ends them (the server's stop) */
  owner: object;
  /** default native/build/nodelet-shim */
  shimBinary?: string;
}

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 17 << 20, // a message may carry a whole data frame (up to 16 MiB)
  perMessageDeflate: false,
  handleProtocols: (offered) => (offered.has(TUNNELING_PROTOCOL) ? TUNNELING_PROTOCOL : false),
});
const sessions = new WeakMap<object, Set<SpdySession>>();

/** End every port-forward connection of `owner` (GOAWAY; the transports go within a second). */
export function closePortForwards(owner: object): void {
  for (const s of sessions.get(owner) ?? []) s.close();
}

/** Handle an upgrade on /portForward/...: refuse it as kubelet would, or run the session until the client leaves. */
export async function servePortForward(req: http.IncomingMessage, socket: Duplex, head: Buffer, o: ServePortForwardOptions): Promise<void> {
  const n = negotiatePortForward(req.headers);
  if ('code' in n) return refuse(socket, n);
  const target = await findPortForwardTarget(o.agent, o.route);
  if ('code' in target) return refuse(socket, target);
  if (socket.destroyed) return;
  const plog = log.child({ pod: `${target.namespace}/${target.pod}`, user: o.user, via: n.kind });
  const start = (t: SpdyTransport) => {
    const set = sessions.get(o.owner) ?? new Set<SpdySession>();
    sessions.set(o.owner, set);
    const session = startPortForwardSession(t, target, { shimBinary: o.shimBinary, log: plog });
    set.add(session);
    session.once('close', () => set.delete(session));
  };
  if (n.kind === 'websocket') {
    if (req.method === 'POST') req.method = 'GET'; // ws accepts GET only; kubelet's routes take both
    wss.handleUpgrade(req, socket, head, (ws) => start(webSocketTransport(ws)));
    return;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${SPDY_UPGRADE}\r\nX-Stream-Protocol-Version: ${n.protocol}\r\n\r\n`);
  if (head.length) socket.unshift(head);
  start(duplexTransport(socket));
}

/** The server side of one port-forward connection on a transport: stream pairs → dialers into the pod. */
export function startPortForwardSession(t: SpdyTransport, target: PortForwardTarget, o: { shimBinary?: string; log?: Logger } = {}): SpdySession {
  const plog = o.log ?? log.child({ pod: `${target.namespace}/${target.pod}` });
  const fwd = new Forwarder(target, o.shimBinary ?? DEFAULT_SHIM_BINARY, plog);
  const session = new SpdySession(t, { server: true, log: plog, onStream: (s) => fwd.stream(s) });
  fwd.session = session;
  session.once('close', () => {
    fwd.closeAll();
    plog.debug('port-forward connection closed', { sandbox: target.sandboxId.slice(0, 12) });
  });
  plog.debug('port-forward connection', { sandbox: target.sandboxId.slice(0, 12), netns: target.netns ?? 'host' });
  return session;
}

function refuse(socket: Duplex, r: Refusal): void {
  if (socket.destroyed) return;
  const reason = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error' }[r.code] ?? 'Error';
  const extra = Object.entries(r.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${r.code} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(r.message)}\r\n${extra}Connection: close\r\n\r\n${r.message}`);
}

interface Pair {
  id: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** One connection's stream pairs and their dialers. */
class Forwarder {
  session!: SpdySession;
  private readonly pending = new Map<string, Pair>();
  private readonly dials = new Set<ChildProcessWithoutNullStreams>();
  /** dialers whose stdin is full: the connection's input is paused while there is any */
  private readonly congested = new Set<ChildProcessWithoutNullStreams>();

  constructor(private readonly target: PortForwardTarget, private readonly shim: string, private readonly log: Logger) {}

  stream(s: SpdyStream): void {
    const c = checkStreamHeaders({ port: s.header('port'), streamtype: s.header('streamtype') });
    if ('error' in c) {
      this.log.warn('port-forward stream rejected', { stream: s.id, error: c.error });
      return s.reset();
    }
    s.reply();
    const id = pairRequestId(s.header('requestid'), c.kind, s.id);
    let p = this.pending.get(id);
    if (!p) {
      const pair: Pair = { id, timer: setTimeout(() => this.timedOut(pair), STREAM_CREATION_TIMEOUT_MS) };
      pair.timer.unref();
      this.pending.set(id, pair);
      p = pair;
    }
    if (p[c.kind]) {
      this.printError(p, `error processing stream for request ${id}: ${c.kind} stream already assigned`);
      return s.reset();
    }
    p[c.kind] = s;
    const pair = p;
    s.once('close', () => {
      if (this.pending.get(id) === pair && !(pair.data && pair.error)) this.drop(pair);
    });
    if (p.data && p.error) {
      this.drop(p);
      this.forward(p.data, p.error, c.port);
    }
  }

  closeAll(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const d of this.dials) d.kill('SIGKILL');
  }

  private drop(p: Pair): void {
    clearTimeout(p.timer);
    if (this.pending.get(p.id) === p) this.pending.delete(p.id);
  }

  private timedOut(p: Pair): void {
    this.drop(p);
    this.log.warn('port-forward: timed out waiting for streams', { request: p.id });
    this.printError(p, `(request=${p.id}) timed out waiting for streams`);
    p.error?.reset();
    p.data?.reset();
  }

  private printError(p: Pair, message: string): void {
    p.error?.write(Buffer.from(message));
  }

  private forward(data: SpdyStream, error: SpdyStream, port: number): void {
    const t = this.target;
    const session = this.session;
    const child = spawn(this.shim, ['dial', t.netns ?? '-', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.dials.add(child);
    let stderr = '';
    let killed = false;
    let finished = false;
    const kill = () => {
      killed = true;
      child.kill('SIGKILL');
    };
    const uncongest = () => {
      if (this.congested.delete(child) && this.congested.size === 0) session.resumeInput();
    };
    // client → pod; the pod not reading fills the pipe: stop reading the connection until it drains
    data.on('data', (b: Buffer) => {
      if (!child.stdin.writable) return;
      if (!child.stdin.write(b) && !this.congested.has(child)) {
        this.congested.add(child);
        session.pauseInput();
        child.stdin.once('drain', uncongest);
      }
    });
    data.on('end', () => child.stdin.end());
    child.stdin.on('error', (e) => this.log.debug('port-forward: dialer stdin', { port, error: describeError(e) })); // EPIPE after it exited
    // pod → client, paused while the connection is backed up
    child.stdout.on('data', (b: Buffer) => {
      if (session.backlog < HIGH_WATER) return data.write(b);
      child.stdout.pause();
      data.write(b, () => child.stdout.resume());
    });
    child.stdout.on('end', () => data.end());
    child.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 4096) stderr += b.toString('utf8');
    });
    // the client resets the data stream once it has read our end (kubectl), or gives up: the dialer goes
    data.once('reset', (status: number, byPeer: boolean) => {
      this.log.debug('port-forward data stream reset', { port, stream: data.id, status, byPeer });
      kill();
    });
    error.once('reset', (status: number, byPeer: boolean) => {
      this.log.debug('port-forward error stream reset', { port, stream: error.id, status, byPeer });
      kill();
      data.reset();
    });
    const done = (code: number | null, spawnError?: Error) => {
      if (finished) return;
      finished = true;
      this.log.debug('port-forward dialer exited', { port, code, killed, stream: data.id });
      this.dials.delete(child);
      uncongest();
      // the exit code decides, not the order of events: a dialer that could not connect has closed its stdout
      // (FIN on the data stream) before 'close', and kubectl may have reset the data stream meanwhile
      if (!spawnError && (code === 0 || (killed && code === null))) {
        error.end();
        data.end();
        return;
      }
      const msg = spawnError
        ? `error forwarding port ${port} to pod ${t.sandboxId}, uid : cannot run ${this.shim}: ${describeError(spawnError)}`
        : forwardErrorMessage(port, t.sandboxId, { code, stderr });
      this.log.debug('port-forward failed', { port, error: msg });
      error.write(Buffer.from(msg));
      data.reset();
      error.reset();
    };
    child.once('error', (e) => done(null, e));
    child.once('close', (code) => done(code));
  }
}
