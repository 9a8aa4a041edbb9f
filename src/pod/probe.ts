// Probes as kubelet runs them (pkg/probe/{exec,http,tcp,grpc}, pkg/kubelet/prober):
// runProbe performs one check; probeDue and computeProbeState are the pure
// parts of kubelet's prober worker (initial delay, startup gating,
// success/failure thresholds, hold after a liveness/startup failure).

import type http from 'node:http';
import net from 'node:net';
import { inSharedReadBuffer, sharedOnread } from '../sys/shared-read.js';
import type { ContainerRuntime } from '../runtime/types.js';
import type { HTTPGetAction, Probe } from './api-types.js';

export type ProbeResultKind = 'success' | 'failure' | 'unknown';
export type ProbeKind = 'liveness' | 'readiness' | 'startup';

export interface ProbeOutcome {
  result: ProbeResultKind;
  output: string;
}

export interface ProbeContext {
  /** Pod IP; absent with hostNetwork → 127.0.0.1 (the host). */
  podIP?: string;
  containerId: string;
  runtime: Pick<ContainerRuntime, 'execSync'>;
  /** The container's declared ports, to resolve named ports. */
  ports: { name?: string; containerPort: number }[];
  /** kubelet's User-Agent version. */
  kubeVersion?: string;
}

export const MAX_OUTPUT = 10 * 1024;
const MAX_REDIRECTS = 10;

function truncate(s: string): string {
  return s.length > MAX_OUTPUT ? s.slice(0, MAX_OUTPUT) : s;
}

export function resolvePort(port: number | string, ports: ProbeContext['ports']): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = ports.find((x) => x.name === port);
  if (!p) throw new Error(`couldn't find port "${port}" in the container's ports`);
  return p.containerPort;
}

function hostFor(ctx: ProbeContext, host?: string): string {
  return host || ctx.podIP || '127.0.0.1';
}

export async function runProbe(probe: Probe, ctx: ProbeContext): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.exec) return await execProbe(probe.exec.command ?? [], timeoutMs, ctx);
    if (probe.httpGet) return await httpProbe(probe.httpGet, timeoutMs, ctx);
    if (probe.tcpSocket) return await tcpProbe(hostFor(ctx, probe.tcpSocket.host), resolvePort(probe.tcpSocket.port, ctx.ports), timeoutMs);
    if (probe.grpc) return await grpcProbe(hostFor(ctx), probe.grpc.port, probe.grpc.service ?? '', timeoutMs);
  } catch (e) {
    return { result: 'failure', output: (e as Error).message };
  }
  return { result: 'unknown', output: 'missing probe handler' };
}

async function execProbe(command: string[], timeoutMs: number, ctx: ProbeContext): Promise<ProbeOutcome> {
  let r;
  try {
    r = await ctx.runtime.execSync(ctx.containerId, command, { timeoutMs });
  } catch (e) {
    return { result: 'unknown', output: (e as Error).message };
  }
  const out = truncate(Buffer.concat([r.stdout, r.stderr]).toString('utf8'));
  if (r.timedOut) return { result: 'failure', output: `command ${JSON.stringify(command)} timed out after ${timeoutMs / 1000}s` + (out ? `: ${out}` : '') };
  return { result: r.exitCode === 0 ? 'success' : 'failure', output: out };
}

export async function httpProbe(h: HTTPGetAction, timeoutMs: number, ctx: ProbeContext): Promise<ProbeOutcome> {
  const port = resolvePort(h.port, ctx.ports);
  const host = hostFor(ctx, h.host);
  const scheme = (h.scheme ?? 'HTTP').toLowerCase();
  let path = h.path || '/';
  if (!path.startsWith('/')) path = '/' + path;
  const hostPart = net.isIPv6(host) ? `[${host}]` : host;
  let url = new URL(`${scheme}://${hostPart}:${port}${path}`);
  const headers: Record<string, string> = { 'User-Agent': `kube-probe/${ctx.kubeVersion ?? '1.34'}`, Accept: '*/*' };
  for (const hh of h.httpHeaders ?? []) {
    const existing = Object.keys(headers).find((k) => k.toLowerCase() === hh.name.toLowerCase());
    if (existing) delete headers[existing];
    headers[hh.name] = hh.value;
  }
  const deadline = Date.now() + timeoutMs;
  for (let hop = 0; ; hop++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { result: 'failure', output: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` };
    // node:https (TLS) is loaded only for HTTPS probes: it costs ~10 ms of startup otherwise. Plain
    // HTTP goes over a bare socket: at hundreds of probed pods node:http's per-request machinery
    // (agent, ClientRequest, IncomingMessage, llhttp) is the larger part of a probe's CPU.
    const res = url.protocol === 'https:' ? await httpGet(await import('node:https'), url, headers, remaining) : await httpGetPlain(url, headers, remaining);
    const { status, location } = res;
    if (status >= 300 && status < 400 && location) {
      const next = new URL(location, url);
      if (next.hostname !== url.hostname) {
        // kubelet stops at a redirect to another host and reports a warning (counted as success)
        return { result: 'success', output: `Probe terminated redirects, Response body: ${res.body}` };
      }
      if (hop + 1 >= MAX_REDIRECTS) return { result: 'failure', output: `Get "${next}": stopped after ${MAX_REDIRECTS} redirects` };
      url = next;
      continue;
    }
    if (status >= 200 && status < 400) return { result: 'success', output: res.body };
    return { result: 'failure', output: `HTTP probe failed with statuscode: ${status}` + (res.body ? `, body: ${res.body}` : '') };
  }
}

function httpGet(mod: Pick<typeof http, 'request'>, url: URL, headers: Record<string, string>, timeoutMs: number): Promise<HttpGetResult> {
  return new Promise((resolve, reject) => {
    const hostHeader = Object.entries(headers).find(([k]) => k.toLowerCase() === 'host')?.[1];
    const req = mod.request(
      url,
      {
        method: 'GET',
        headers,
        ...(url.protocol === 'https:' ? { rejectUnauthorized: false, servername: hostHeader && !net.isIP(hostHeader) ? hostHeader : undefined } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          if (size < MAX_OUTPUT) chunks.push(d);
          size += d.length;
          if (size >= MAX_OUTPUT) res.destroy();
        });
        const done = () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: truncate(Buffer.concat(chunks).toString('utf8')) });
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(e.message.startsWith('Get "') ? e.message : `Get "${url}": ${e.message}`));
    });
    req.end();
  });
}

type HttpGetResult = { status: number; location?: string; body: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** node:http's limit on a response's status line and headers (--max-http-header-size). */
const MAX_HEAD_BYTES = 16 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');

/** The request node:http sends for `GET url` with these headers and agent: false (Host unless
 * given, then Connection: close), with its header validation. */
function plainRequest(url: URL, headers: Record<string, string>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\n`;
  let host = false;
  for (const [k, v] of Object.entries(headers)) {
    if (!TOKEN.test(k)) throw new Error(`Header name must be a valid HTTP token ["${k}"]`);
    if (BAD_VALUE.test(v)) throw new Error(`Invalid character in header content ["${k}"]`);
    if (k.toLowerCase() === 'host') host = true;
    head += `${k}: ${v}\r\n`;
  }
  if (!host) head += `Host: ${url.host}\r\n`;
  return head + 'Connection: close\r\n\r\n';
}

/**
 * GET over a plain socket with node:http's observable behaviour for a probe: the same request,
 * status and Location from the response head, body by Content-Length, chunked or until close (at
 * most MAX_OUTPUT bytes kept, then the connection is dropped), 1xx responses skipped, the same
 * error texts (`Get "<url>": ...`) and the deadline over connect, head and body.
 */
function httpGetPlain(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<HttpGetResult> {
  return new Promise((resolve, reject) => {
    let request: string;
    try {
      request = plainRequest(url, headers);
    } catch (e) {
      return reject(e); // as node:http throws it: without the Get "<url>" prefix
    }
    const port = Number(url.port || 80);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    // onread: the bytes go to the callback from one reused buffer (no Readable stream per probe); what is kept is copied
    const sock = net.connect({ host, port, onread: sharedOnread((chunk) => onData(chunk)) });
    let settled = false;
    let pending: Buffer | undefined; // bytes not yet parsed
    let status = 0;
    let location: string | undefined;
    let mode: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'close' = 'head';
    let left = 0; // body bytes (length) or chunk bytes still to come
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(new Error(err.message.startsWith('Get "') ? err.message : `Get "${url}": ${err.message}`));
      else resolve({ status, ...(location !== undefined ? { location } : {}), body: truncate(Buffer.concat(chunks).toString('utf8')) });
    };
    // after the head, an error ends the body (as res 'error'/'close' did); the deadline fails the probe either way
    const end = (err: Error) => finish(mode === 'head' ? err : undefined);
    const timer = setTimeout(() => finish(new Error(`Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`)), timeoutMs);
    const body = (b: Buffer): boolean => {
      if (size < MAX_OUTPUT) chunks.push(Buffer.from(b));
      size += b.length;
      if (size < MAX_OUTPUT) return true;
      finish();
      return false;
    };
    /** Parses the response head at the start of buf; returns the bytes after it, or undefined if incomplete. */
    const parseHead = (buf: Buffer): Buffer | undefined => {
      const at = buf.indexOf(CRLF2);
      if (at < 0) {
        if (buf.length > MAX_HEAD_BYTES) throw new Error('Parse Error: Header overflow');
        return undefined;
      }
      const lines = buf.toString('latin1', 0, at).split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
      if (!m) throw new Error('Parse Error: Expected HTTP/, RTSP/ or ICE/');
      const code = Number(m[1]);
      let length: number | undefined;
      let chunked = false;
      let loc: string | undefined;
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        if (colon <= 0) throw new Error('Parse Error: Invalid header token');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'content-length') {
          if (!/^\d+$/.test(value) || (length !== undefined && length !== Number(value))) throw new Error('Parse Error: Invalid character in Content-Length');
          length = Number(value);
        } else if (name === 'transfer-encoding') {
          chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
        } else if (name === 'location' && loc === undefined) {
          loc = value;
        }
      }
      const rest = buf.subarray(at + 4);
      if (code >= 100 && code < 200 && code !== 101) return rest; // informational: the response follows
      status = code;
      location = loc;
      if (code === 204 || code === 304) mode = 'length';
      else if (chunked) mode = 'chunk-size';
      else if (length !== undefined) mode = 'length';
      else mode = 'close';
      left = mode === 'length' ? (code === 204 || code === 304 ? 0 : length!) : 0;
      return rest;
    };
    /** Consumes buf; false once the response is complete (or failed). */
    const consume = (buf: Buffer): boolean => {
      let b = buf;
      for (;;) {
        if (mode === 'head') {
          const rest = parseHead(b);
          if (!rest) {
            pending = b;
            return true;
          }
          b = rest;
          continue;
        }
        if (mode === 'close') return b.length === 0 || body(b);
        if (mode === 'length') {
          if (left === 0) {
            finish();
            return false;
          }
          if (b.length === 0) return true;
          const take = b.subarray(0, left);
          left -= take.length;
          if (!body(take)) return false;
          b = b.subarray(take.length);
          continue;
        }
        if (mode === 'chunk-size' || mode === 'chunk-crlf') {
          const nl = b.indexOf('\r\n');
          if (nl < 0) {
            if (b.length > 1024) throw new Error('Parse Error: Invalid character in chunk size');
            pending = b.length ? b : undefined;
            return true;
          }
          const line = b.toString('latin1', 0, nl);
          b = b.subarray(nl + 2);
          if (mode === 'chunk-crlf') {
            if (line !== '') throw new Error('Parse Error: Expected LF after chunk data');
            mode = 'chunk-size';
            continue;
          }
          const sizeText = line.split(';')[0]!.trim();
          if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error('Parse Error: Invalid character in chunk size');
          left = parseInt(sizeText, 16);
          if (left === 0) {
            finish(); // trailers are not needed
            return false;
          }
          mode = 'chunk-data';
          continue;
        }
        // chunk-data
        if (b.length === 0) return true;
        const take = b.subarray(0, left);
        left -= take.length;
        if (!body(take)) return false;
        b = b.subarray(take.length);
        if (left === 0) mode = 'chunk-crlf';
      }
    };
    sock.on('connect', () => sock.write(request, 'latin1'));
    function onData(chunk: Buffer): void {
      if (settled) return;
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      try {
        consume(buf);
      } catch (e) {
        end(e as Error);
      }
      const rest = pending as Buffer | undefined; // set by consume()
      if (rest && inSharedReadBuffer(rest)) pending = Buffer.from(rest);
    }
    sock.on('end', () => {
      if (mode !== 'head') return finish(); // the end of a 'close' body; a body cut short ends as node:http's 'close' did
      end(new Error('socket hang up'));
    });
    sock.on('close', () => end(new Error('socket hang up')));
    sock.on('error', (e) => end(e));
  });
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ result: 'failure', output: `dial tcp ${host}:${port}: i/o timeout` });
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ result: 'success', output: '' });
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      resolve({ result: 'failure', output: `dial tcp ${host}:${port}: ${e.message}` });
    });
  });
}

// ----------------------------------------------------------------- gRPC health

/** protobuf HealthCheckRequest { string service = 1; } in a gRPC length-prefixed frame. */
export function encodeHealthRequest(service: string): Buffer {
  const s = Buffer.from(service, 'utf8');
  const msg = s.length ? Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]) : Buffer.alloc(0);
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** Decode HealthCheckResponse { ServingStatus status = 1; } from a gRPC frame; returns the enum value. */
export function decodeHealthResponse(buf: Buffer): number {
  if (buf.length < 5) throw new Error('short gRPC frame');
  const len = buf.readUInt32BE(1);
  const msg = buf.subarray(5, 5 + len);
  let status = 0;
  let i = 0;
  while (i < msg.length) {
    const key = msg[i++]!;
    const field = key >> 3;
    const wt = key & 7;
    if (wt === 0) {
      let v = 0, shift = 0, b;
      do {
        b = msg[i++]!;
        v |= (b & 0x7f) << shift;
        shift += 7;
      } while (b & 0x80);
      if (field === 1) status = v;
    } else if (wt === 2) {
      let l = 0, shift = 0, b;
      do {
        b = msg[i++]!;
        l |= (b & 0x7f) << shift;
        shift += 7;
      } while (b & 0x80);
      i += l;
    } else throw new Error(`unexpected protobuf wire type ${wt}`);
  }
  return status;
}

export async function grpcProbe(host: string, port: number, service: string, timeoutMs: number): Promise<ProbeOutcome> {
  const http2 = await import('node:http2'); // loaded on first use (~10 ms)
  return new Promise((resolve) => {
    const target = `${host}:${port}`;
    let settled = false;
    const finish = (o: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(o);
    };
    const hostPart = net.isIPv6(host) ? `[${host}]` : host;
    const session = http2.connect(`http://${hostPart}:${port}`);
    const timer = setTimeout(() => finish({ result: 'failure', output: `timeout: health rpc did not complete within ${timeoutMs / 1000}s` }), timeoutMs);
    session.on('error', (e) => finish({ result: 'failure', output: `timeout: failed to connect service "${target}" within ${timeoutMs / 1000}s: ${e.message}` }));
    const req = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'kube-probe/1.34',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status'] ?? grpcStatus ?? '');
      grpcMessage = decodeURIComponent(String(t['grpc-message'] ?? ''));
    });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e) => finish({ result: 'failure', output: `rpc error: ${e.message}` }));
    req.on('end', () => {
      if (grpcStatus !== '0') {
        const msg = grpcStatus === '12' ? 'this server does not implement the grpc health protocol (grpc.health.v1.Health)' : grpcMessage;
        return finish({ result: 'failure', output: `rpc error: code = ${grpcStatus ?? 'unknown'} desc = ${msg}` });
      }
      try {
        const st = decodeHealthResponse(Buffer.concat(chunks));
        if (st === 1) finish({ result: 'success', output: '' });
        else finish({ result: 'failure', output: `service unhealthy (responded with "${SERVING_STATUS[st] ?? st}")` });
      } catch (e) {
        finish({ result: 'failure', output: `rpc error: ${(e as Error).message}` });
      }
    });
    req.end(encodeHealthRequest(service));
  });
}

// ----------------------------------------------------------------- worker logic

export interface ProbeWorkerState {
  /** container the state belongs to; a new container resets it */
  containerId?: string;
  /** the result kubelet publishes (results manager) */
  result: ProbeResultKind;
  lastResult?: ProbeResultKind;
  resultRun: number;
  /** after a liveness/startup failure: stop probing until a new container */
  onHold: boolean;
}

/** kubelet's initial results: readiness Failure, liveness Success, startup Unknown. */
export function initialProbeState(kind: ProbeKind, containerId?: string): ProbeWorkerState {
  return { containerId, result: kind === 'readiness' ? 'failure' : kind === 'liveness' ? 'success' : 'unknown', resultRun: 0, onHold: false };
}

export interface ProbeDueInput {
  kind: ProbeKind;
  probe: Probe;
  containerId: string;
  running: boolean;
  /** epoch ms the container started */
  startedAt: number;
  /** startup probe passed (or the container has none) */
  started: boolean;
  now: number;
}

/**
 * Whether a probe should run now and the state to keep (kubelet worker.doProbe
 * preamble): a new container resets the state; a stopped container makes
 * readiness fail; liveness/readiness wait for the startup probe; nothing runs
 * before initialDelaySeconds or while on hold.
 */
export function probeDue(prev: ProbeWorkerState | undefined, i: ProbeDueInput): { due: boolean; state: ProbeWorkerState } {
  let state = prev && prev.containerId === i.containerId ? prev : initialProbeState(i.kind, i.containerId);
  if (!i.running) {
    if (i.kind === 'readiness' && state.result !== 'failure') state = { ...state, result: 'failure' };
    return { due: false, state };
  }
  if (state.onHold) return { due: false, state };
  if (i.kind === 'startup' && i.started) return { due: false, state };
  if (i.kind !== 'startup' && !i.started) return { due: false, state };
  if (i.now - i.startedAt < (i.probe.initialDelaySeconds ?? 0) * 1000) return { due: false, state };
  return { due: true, state };
}

/** Apply one probe result with success/failure thresholds; `changed` when the published result flips. */
export function computeProbeState(prev: ProbeWorkerState, result: ProbeResultKind, probe: Probe, kind: ProbeKind): { state: ProbeWorkerState; changed: boolean } {
  const r: ProbeResultKind = result === 'success' ? 'success' : 'failure'; // errors count as failures
  const run = prev.lastResult === r ? prev.resultRun + 1 : 1;
  const next: ProbeWorkerState = { ...prev, lastResult: r, resultRun: run };
  const failT = probe.failureThreshold ?? 3;
  const succT = probe.successThreshold ?? 1;
  if ((r === 'failure' && run < failT) || (r === 'success' && run < succT)) return { state: next, changed: false };
  const changed = next.result !== r;
  next.result = r;
  if ((kind === 'liveness' || kind === 'startup') && r === 'failure') {
    next.onHold = true;
    next.resultRun = 0;
  }
  return { state: next, changed };
}
