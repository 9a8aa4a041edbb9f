// The Kubernetes API client (the KubeClient port of src/kube/types.ts) on
// undici: one keep-alive Agent per client holding the kubeconfig's client
// certificate and CA; JSON in and out; watches as NDJSON streams.
//
// Behaviour worth knowing:
// - Every non-watch request has a total timeout (`requestTimeoutMs`, default
//   30 s: ERR_KUBE_TIMEOUT). A watch has no total timeout (the server ends it
//   after `timeoutSeconds`); it fails when no byte arrives for
//   timeoutSeconds + 60 s (or 1 h without timeoutSeconds).
// - Non-2xx answers throw KubeApiError (src/kube/errors.ts) with the Status
//   the server sent; HTTP 410 on a watch instead comes back as one ERROR event
//   whose object is that Status (code 410), then the stream ends, so a watch
//   consumer handles "too old resource version" in one place whether the
//   server says it in the status line or inside the stream.
// - Aborting a watch's signal (or close()) ends its iteration quietly; other
//   requests reject with ERR_KUBE_CANCELED. A watch whose connection breaks
//   mid-stream throws ERR_KUBE_WATCH_BROKEN (Unavailable).
// - No retries here: callers (the informer, the lease loop) decide.
// - `Warning:` headers go to `onWarning` (default: a warn log line).
import { readFileSync, statSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { NodeletError, invalidArgument } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { NODELET_VERSION } from '../version.js';
import { KubeApiError, isStatus } from './errors.js';
import { loadKubeconfig, type KubeConfig, type LoadKubeconfigOptions } from './kubeconfig.js';
import type {
  DeleteOptions,
  KubeClient,
  KubeList,
  KubeObject,
  KubeStatus,
  ListOptions,
  PatchType,
  ResourceRef,
  WatchEvent,
  WatchOptions,
  WriteOptions,
} from './types.js';
import { LineSplitter, listQuery, parseWarnings, patchContentType, queryString, resourcePath, watchQuery, type Query } from './wire.js';

export const defaultUserAgent = `nodelet/${NODELET_VERSION} (${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch})`;

export interface KubeClientOptions {
  userAgent?: string;
  /** total time for a non-watch request, headers and body (default 30 000 ms) */
  requestTimeoutMs?: number;
  /** time to connect, TLS included (default 10 000 ms) */
  connectTimeoutMs?: number;
  /** each text of a `Warning: 299 - "..."` header */
  onWarning?: (warning: string, ctx: { method: string; path: string }) => void;
  logger?: Logger;
  /** a dispatcher to use instead of the client's own Agent (tests) */
  dispatcher?: Dispatcher;
}

export interface RawRequest {
  query?: Query;
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

interface Response {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Buffer> & { text(): Promise<string>; dump(): Promise<void>; destroy(err?: Error): unknown };
}

const transportUnreachable = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT', 'EADDRNOTAVAIL',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_DESTROYED',
]);
const transportTimeout = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCodes(e: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') out.push(c);
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

function isTlsCode(c: string): boolean {
  return /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_OSSL_)/.test(c);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function header(h: Response['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function bodyText(body: unknown): string | undefined {
  if (body === undefined) return undefined;
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return JSON.stringify(body);
}

export class HttpKubeClient implements KubeClient {
  readonly server: string;
  readonly user?: string;
  private readonly config: KubeConfig;
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: boolean;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly onWarning: NonNullable<KubeClientOptions['onWarning']>;
  private readonly log: Logger;
  private readonly active = new Set<AbortController>();
  private closed = false;
  private tokenCache?: { token: string; readAt: number; mtimeMs: number };

  constructor(config: KubeConfig, opts: KubeClientOptions = {}) {
    this.config = config;
    this.server = config.server;
    const user = config.certCommonName ?? (config.userName || undefined);
    if (user !== undefined) this.user = user;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.userAgent = opts.userAgent ?? defaultUserAgent;
    this.log = opts.logger ?? getLogger('kube-client');
    this.onWarning = opts.onWarning ?? ((w, ctx) => this.log.warn('API server warning', { warning: w, method: ctx.method, path: ctx.path }));
    if (opts.dispatcher) {
      this.dispatcher = opts.dispatcher;
      this.ownDispatcher = false;
    } else {
      const connect: Record<string, unknown> = { timeout: opts.connectTimeoutMs ?? 10_000 };
      if (config.ca) connect.ca = config.ca;
      if (config.cert) connect.cert = config.cert;
      if (config.key) connect.key = config.key;
      if (config.insecureSkipTLSVerify) connect.rejectUnauthorized = false;
      if (config.tlsServerName) connect.servername = config.tlsServerName;
      this.dispatcher = new Agent({
        connect,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 300_000,
        headersTimeout: this.requestTimeoutMs,
        bodyTimeout: this.requestTimeoutMs,
      });
      this.ownDispatcher = true;
    }
  }

  // ------------------------------------------------------------ KubeClient

  async get<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath(ref, name));
  }

  async list<T extends KubeObject = KubeObject>(ref: ResourceRef, opts: ListOptions = {}): Promise<KubeList<T>> {
    const l = await this.request<KubeList<T>>('GET', resourcePath(ref), { query: listQuery(opts), signal: opts.signal });
    if (!Array.isArray(l.items)) l.items = [];
    if (!l.metadata) l.metadata = {};
    // list items come without kind/apiVersion on the wire; fill them in as client-go's decoder does
    const kind = typeof l.kind === 'string' && l.kind.endsWith('List') ? l.kind.slice(0, -4) : undefined;
    for (const it of l.items) {
      if (it && typeof it === 'object') {
        if (it.apiVersion === undefined && l.apiVersion) it.apiVersion = l.apiVersion;
        if (it.kind === undefined && kind) it.kind = kind;
      }
    }
    return l;
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, body: unknown, opts: WriteOptions & { name?: string } = {}): Promise<T> {
    return this.request<T>('POST', resourcePath(ref, ref.subresource ? opts.name : undefined), { query: writeQuery(opts), body });
  }

  async update<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, body: unknown, opts: WriteOptions = {}): Promise<T> {
    return this.request<T>('PUT', resourcePath(ref, name), { query: writeQuery(opts), body });
  }

  async patch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: { fieldManager?: string; force?: boolean; fieldValidation?: 'Strict' | 'Warn' | 'Ignore'; dryRun?: boolean } = {},
  ): Promise<T> {
    const contentType = patchContentType[type];
    if (!contentType) throw invalidArgument('ERR_KUBE_PATCH_TYPE', `unknown patch type "${String(type)}" (strategic, merge, json, apply)`);
    if (type === 'apply' && !opts.fieldManager) {
      throw invalidArgument('ERR_KUBE_FIELD_MANAGER', `server-side apply of ${ref.resource}/${name} needs a fieldManager`);
    }
    if (opts.force && type !== 'apply') throw invalidArgument('ERR_KUBE_PATCH_FORCE', 'force is only allowed for apply patches');
    return this.request<T>('PATCH', resourcePath(ref, name), {
      query: { fieldManager: opts.fieldManager, force: opts.force ? true : undefined, fieldValidation: opts.fieldValidation, dryRun: opts.dryRun ? 'All' : undefined },
      body: patch,
      contentType,
    });
  }

  async delete(ref: ResourceRef, name: string, opts: DeleteOptions = {}): Promise<KubeObject | KubeStatus> {
    const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    return this.request<KubeObject | KubeStatus>('DELETE', resourcePath(ref, name), { body });
  }

  watch<T extends KubeObject = KubeObject>(ref: ResourceRef, opts: WatchOptions = {}): AsyncIterable<WatchEvent<T>> {
    const path = resourcePath(ref) + queryString(watchQuery(opts));
    return { [Symbol.asyncIterator]: () => this.watchStream<T>(path, opts)[Symbol.asyncIterator]() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.active) c.abort();
    if (this.ownDispatcher) await this.dispatcher.close();
  }

  // ------------------------------------------------------------ raw access

  /**
   * One request to any path (e.g. '/readyz', '/version'), JSON unless `accept`
   * says otherwise (then the text comes back as a string). Non-2xx → KubeApiError.
   */
  async request<T = unknown>(method: string, path: string, req: RawRequest = {}): Promise<T> {
    const full = path + queryString(req.query ?? {});
    const timeoutMs = req.timeoutMs ?? this.requestTimeoutMs;
    const timer = AbortSignal.timeout(timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timer]) : timer;
    const started = Date.now();
    let res: Response;
    const text = bodyText(req.body);
    try {
      res = await this.dispatch(method, full, {
        signal,
        body: text,
        contentType: text === undefined ? undefined : (req.contentType ?? 'application/json'),
        accept: req.accept,
      });
    } catch (e) {
      throw this.transportError(e, method, path, { timedOut: timer.aborted, timeoutMs, canceled: req.signal?.aborted });
    }
    let raw: string;
    try {
      raw = await res.body.text();
    } catch (e) {
      throw this.transportError(e, method, path, { timedOut: timer.aborted, timeoutMs, canceled: req.signal?.aborted });
    }
    this.log.debug('request', { method, path, status: res.statusCode, ms: Date.now() - started });
    if (res.statusCode < 200 || res.statusCode >= 300) throw this.apiError(res, raw, method, path);
    if (req.accept && !/json/.test(req.accept)) return raw as T;
    if (raw === '') return {} as T;
    try {
      return JSON.parse(raw) as T;
    } catch (e) {
      throw new NodeletError('Internal', 'ERR_KUBE_DECODE', `${method} ${path}: the answer of ${this.server} is not JSON: ${raw.slice(0, 200)}`, {
        cause: e,
        details: { method, path, server: this.server },
      });
    }
  }

  // ------------------------------------------------------------ internals

  private token(): string | undefined {
    if (this.config.token) return this.config.token;
    const f = this.config.tokenFile;
    if (!f) return undefined;
    const now = Date.now();
    // re-read at most once a minute, or when the file changed (client-go re-reads every minute)
    let mtimeMs = -1;
    try {
      mtimeMs = statSync(f).mtimeMs;
    } catch {
      /* keep the cached one */
    }
    if (this.tokenCache && now - this.tokenCache.readAt < 60_000 && this.tokenCache.mtimeMs === mtimeMs) return this.tokenCache.token;
    try {
      const token = readFileSync(f, 'utf8').trim();
      this.tokenCache = { token, readAt: now, mtimeMs };
      return token;
    } catch (e) {
      if (this.tokenCache) return this.tokenCache.token;
      throw new NodeletError('FailedPrecondition', 'ERR_KUBECONFIG_READ', `cannot read the token file ${f}: ${messageOf(e)}`, { cause: e, details: { path: f } });
    }
  }

  private async dispatch(
    method: string,
    pathAndQuery: string,
    o: { signal: AbortSignal; body?: string; contentType?: string; accept?: string; headersTimeout?: number; bodyTimeout?: number },
  ): Promise<Response> {
    if (this.closed) throw new NodeletError('Canceled', 'ERR_KUBE_CLOSED', `the client for ${this.server} is closed`);
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      accept: o.accept ?? 'application/json',
    };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (o.contentType) headers['content-type'] = o.contentType;
    const res = (await request(this.server + pathAndQuery, {
      method: method as Dispatcher.HttpMethod,
      headers,
      body: o.body,
      dispatcher: this.dispatcher,
      signal: o.signal,
      ...(o.headersTimeout !== undefined ? { headersTimeout: o.headersTimeout } : {}),
      ...(o.bodyTimeout !== undefined ? { bodyTimeout: o.bodyTimeout } : {}),
    })) as unknown as Response;
    const w = parseWarnings(res.headers.warning);
    for (const text of w) {
      try {
        this.onWarning(text, { method, path: pathAndQuery.split('?')[0] });
      } catch {
        /* a callback's bug must not fail the request */
      }
    }
    return res;
  }

  private apiError(res: Response, raw: string, method: string, path: string): KubeApiError {
    let status: KubeStatus | undefined;
    try {
      const j: unknown = JSON.parse(raw);
      if (isStatus(j)) status = j;
    } catch {
      /* not JSON */
    }
    status ??= { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: res.statusCode, message: raw.trim().slice(0, 500) || `HTTP ${res.statusCode}` };
    const ra = header(res.headers, 'retry-after');
    return new KubeApiError({
      httpStatus: res.statusCode,
      status,
      method,
      path,
      server: this.server,
      ...(ra !== undefined && /^\d+$/.test(ra) ? { retryAfterSeconds: Number(ra) } : {}),
    });
  }

  private transportError(
    e: unknown,
    method: string,
    path: string,
    o: { timedOut?: boolean; timeoutMs?: number; canceled?: boolean },
  ): NodeletError {
    if (e instanceof NodeletError) return e;
    const details = { method, path, server: this.server };
    if (o.canceled || this.closed) {
      return new NodeletError('Canceled', 'ERR_KUBE_CANCELED', `${method} ${path} on ${this.server} was canceled`, { cause: e, details });
    }
    const codes = errorCodes(e);
    if (o.timedOut || codes.some((c) => transportTimeout.has(c))) {
      return new NodeletError('DeadlineExceeded', 'ERR_KUBE_TIMEOUT', `${method} ${path}: no answer from the Kubernetes API server ${this.server} within ${o.timeoutMs ?? this.requestTimeoutMs} ms`, {
        cause: e,
        details,
      });
    }
    const tls = codes.find(isTlsCode);
    if (tls) {
      return new NodeletError('FailedPrecondition', 'ERR_KUBE_TLS', `${method} ${path}: TLS with the Kubernetes API server ${this.server} failed (${tls}): ${messageOf(e)}; check the kubeconfig's certificate-authority and client certificate`, {
        cause: e,
        details: { ...details, tlsCode: tls },
      });
    }
    return new NodeletError('Unavailable', 'ERR_KUBE_UNREACHABLE', `${method} ${path}: cannot reach the Kubernetes API server ${this.server}: ${codes[0] ? `${codes[0]} ` : ''}${messageOf(e)}`, {
      cause: e,
      details: { ...details, errorCode: codes[0] },
    });
  }

  private async *watchStream<T extends KubeObject>(pathAndQuery: string, opts: WatchOptions): AsyncGenerator<WatchEvent<T>> {
    const path = pathAndQuery.split('?')[0];
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort();
    if (opts.signal?.aborted) return;
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.active.add(ctrl);
    const quiet = () => ctrl.signal.aborted || this.closed;
    let res: Response | undefined;
    try {
      try {
        res = await this.dispatch('GET', pathAndQuery, {
          signal: ctrl.signal,
          headersTimeout: this.requestTimeoutMs,
          bodyTimeout: ((opts.timeoutSeconds ?? 3600) + 60) * 1000,
        });
      } catch (e) {
        if (quiet()) return;
        throw this.transportError(e, 'GET', path, {});
      }
      if (res.statusCode === 410) {
        const raw = await res.body.text().catch(() => '');
        yield { type: 'ERROR', object: this.apiError(res, raw, 'GET', path).status as unknown as T };
        return;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const raw = await res.body.text().catch(() => '');
        throw this.apiError(res, raw, 'GET', path);
      }
      const decoder = new TextDecoder('utf-8');
      const lines = new LineSplitter();
      const decode = (line: string): WatchEvent<T> => {
        let ev: unknown;
        try {
          ev = JSON.parse(line);
        } catch (e) {
          throw new NodeletError('Internal', 'ERR_KUBE_DECODE', `watch ${path} on ${this.server}: a line is not JSON: ${line.slice(0, 200)}`, { cause: e, details: { path, server: this.server } });
        }
        const t = (ev as { type?: unknown }).type;
        const obj = (ev as { object?: unknown }).object;
        if (typeof t !== 'string' || typeof obj !== 'object' || obj === null) {
          throw new NodeletError('Internal', 'ERR_KUBE_DECODE', `watch ${path} on ${this.server}: not a watch event: ${line.slice(0, 200)}`, { details: { path, server: this.server } });
        }
        return ev as WatchEvent<T>;
      };
      try {
        for await (const chunk of res.body) {
          for (const line of lines.push(decoder.decode(chunk, { stream: true }))) yield decode(line);
          if (lines.pending > 128 * 1024 * 1024) {
            throw new NodeletError('Internal', 'ERR_KUBE_DECODE', `watch ${path} on ${this.server}: a line longer than 128 MiB`);
          }
        }
        for (const line of [...lines.push(decoder.decode()), ...lines.flush()]) yield decode(line);
      } catch (e) {
        if (quiet()) return;
        if (e instanceof NodeletError) throw e;
        const t = this.transportError(e, 'GET', path, {});
        throw new NodeletError(t.category === 'DeadlineExceeded' ? 'DeadlineExceeded' : 'Unavailable', 'ERR_KUBE_WATCH_BROKEN', `watch ${path} on ${this.server} broke: ${t.message}`, {
          cause: e,
          details: { path, server: this.server },
        });
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.active.delete(ctrl);
      if (!ctrl.signal.aborted) ctrl.abort();
      try {
        res?.body.destroy();
      } catch {
        /* already gone */
      }
    }
  }
}

function writeQuery(opts: WriteOptions): Query {
  return { fieldValidation: opts.fieldValidation, fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined };
}

/** A client from a kubeconfig file. */
export function createKubeClient(kubeconfigPath: string, opts: KubeClientOptions & LoadKubeconfigOptions = {}): HttpKubeClient {
  const cfg = loadKubeconfig(kubeconfigPath, opts.context !== undefined ? { context: opts.context } : {});
  return new HttpKubeClient(cfg, opts);
}
