// httpGet probes (kubelet pkg/probe/http): host = `host` or pod IP or 127.0.0.1,
// HTTPS without verification, `User-Agent: kube-probe/<version>`, 200–399
// succeed, same-host redirects followed (10 max), another host (or a 3xx without Location) stops
// with a warning (success + ProbeWarning event) "Probe terminated redirects, Response body: ...", body cut to 10 KiB. Plain HTTP goes
// over a bare net.Socket with a small HTTP/1.1 reader; HTTPS uses node:https.

import type http from 'node:http';
import net from 'node:net';
import { inSharedReadBuffer, sharedOnread } from '../sys/shared-read.js';
import type { HTTPGetAction } from '../pod/api-types.js';
import { resolvePort, type ProbeOutcome } from '../pod/probe.js';
import { hostFor, MAX_OUTPUT, truncate, type ProbeContext } from './common.js';

const MAX_REDIRECTS = 10;

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
        // kubelet (RedirectChecker(false)) does not follow a redirect to another host: the 3xx itself is
        // the response, probe.Warning (a success with a ProbeWarning event)
        return { result: 'warning', output: `Probe terminated redirects, Response body: ${res.body}` };
      }
      if (hop + 1 >= MAX_REDIRECTS) return { result: 'failure', output: `Get "${next}": stopped after ${MAX_REDIRECTS} redirects` };
      url = next;
      continue;
    }
    // a 3xx that is not followed (no Location) is kubelet's Warning too (http.go: 300–399 → Warning)
    if (status >= 300 && status < 400) return { result: 'warning', output: `Probe terminated redirects, Response body: ${res.body}` };
    if (status >= 200 && status < 300) return { result: 'success', output: res.body };
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

