// OCI distribution client on undici: endpoint selection (https, plain http
// only for loopback or tlsVerify=false), TLS trust (system CAs + certs.d),
// auth by challenge (Bearer token / Basic), retries with backoff, redirects,
// manifest fetch with a size limit, blob GET with Range for resume.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { NodeletError, unavailable } from '../../errors.js';
import { getLogger } from '../../log.js';
import { sleep } from '../../sys/proc.js';
import { hostOf, isLoopbackHost } from '../reference.js';
import { basicHeader, parseChallenges, realmProblem, type Challenge, type Credentials } from './auth.js';

const log = getLogger('registry');

export const DEFAULT_CERTS_DIRS = ['/etc/nodelet/certs.d', '/etc/containers/certs.d', '/etc/docker/certs.d'];
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerV1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5000 };

export interface RegistryClientOptions {
  /** Registry host[:port] as in the reference ("docker.io" maps to registry-1.docker.io). */
  domain: string;
  /** Override the endpoint, e.g. a mirror "https://mirror.example:5000". */
  endpoint?: string;
  credentials?: Credentials;
  /** false: allow plain HTTP and unverified TLS for any host. */
  tlsVerify?: boolean;
  certsDirs?: string[];
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  userAgent?: string;
}

/** Error from the registry API, with the registry's error code when given. */
export class RegistryError extends NodeletError {}

export function isRetriableError(e: unknown): boolean {
  if (e instanceof RegistryError) return e.details.retriable === true;
  const code = (e as { code?: string })?.code;
  return (
    typeof code === 'string' &&
    [
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'ETIMEDOUT',
      'EAI_AGAIN',
      'UND_ERR_SOCKET',
      'UND_ERR_CLOSED',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
      'UND_ERR_BODY_TIMEOUT',
      'ERR_IMAGE_BLOB_TRUNCATED',
    ].includes(code)
  );
}

export function backoffDelay(attempt: number, p: RetryPolicy, retryAfter?: number): number {
  if (retryAfter !== undefined && Number.isFinite(retryAfter)) return Math.min(retryAfter * 1000, p.maxDelayMs);
  const d = Math.min(p.baseDelayMs * 2 ** attempt, p.maxDelayMs);
  return d / 2 + Math.random() * (d / 2);
}


/** CA bundle and client cert for a registry host from certs.d directories. */
export function loadHostTls(domain: string, certsDirs: string[]): { ca: string[]; cert?: string; key?: string } {
  const ca: string[] = [];
  let cert: string | undefined;
  let key: string | undefined;
  const names = [domain];
  if (hostOf(domain) !== domain) names.push(hostOf(domain));
  for (const dir of certsDirs) {
    for (const name of names) {
      const d = path.join(dir, name);
      let entries: string[];
      try {
        entries = readdirSync(d);
      } catch {
        continue;
      }
      for (const f of entries.sort()) {
        const full = path.join(d, f);
        if (f.endsWith('.crt')) ca.push(readFileSync(full, 'utf8'));
        else if (f.endsWith('.cert') && !cert) {
          cert = readFileSync(full, 'utf8');
          const k = path.join(d, f.slice(0, -'.cert'.length) + '.key');
          key = readFileSync(k, 'utf8');
        }
      }
    }
  }
  return { ca, ...(cert ? { cert, key } : {}) };
}

let systemCas: string[] | undefined;
function systemCaBundle(): string[] {
  if (systemCas) return systemCas;
  const out = [...rootCertificates];
  for (const f of ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt']) {
    try {
      out.push(readFileSync(f, 'utf8'));
      break;
    } catch {
      /* next */
    }
  }
  systemCas = out;
  return out;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}
/** Bearer tokens cached per realm+service+scope+user (process-wide, like containerd's docker authorizer). */
const tokenCache = new Map<string, CachedToken>();

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  /** sha256 of bytes */
  digest: string;
}

export interface BlobResponse {
  body: AsyncIterable<Buffer> & { destroy(err?: Error): void };
  /** true when the server honoured the Range request (206). */
  partial: boolean;
  /** Content-Length of this response, if given. */
  length?: number;
}

interface RawResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

function header(h: RawResponse['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export class RegistryClient {
  readonly domain: string;
  private base!: string;
  private readonly dispatcher: Agent;
  private readonly insecureDispatcher?: Agent;
  private readonly retry: RetryPolicy;
  private authHeaders = new Map<string, string>(); // scope -> Authorization
  private challenge: Challenge | undefined;
  private pinged = false;
  private readonly explicitEndpoint: boolean;

  constructor(private readonly opts: RegistryClientOptions) {
    this.domain = opts.domain;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.explicitEndpoint = opts.endpoint !== undefined;
    if (opts.endpoint) this.base = opts.endpoint.replace(/\/+$/, '');
    else this.base = `https://${opts.domain === 'docker.io' ? 'registry-1.docker.io' : opts.domain}`;
    const tlsHost = new URL(this.base).host;
    const hostTls = loadHostTls(tlsHost, opts.certsDirs ?? DEFAULT_CERTS_DIRS);
    const connect = {
      ...(hostTls.ca.length ? { ca: [...systemCaBundle(), ...hostTls.ca] } : {}),
      ...(hostTls.cert ? { cert: hostTls.cert, key: hostTls.key } : {}),
      rejectUnauthorized: opts.tlsVerify !== false,
    };
    this.dispatcher = new Agent({ connect, connections: 16, keepAliveTimeout: 10_000, bodyTimeout: 60_000, headersTimeout: 60_000 });
  }

  private allowPlainHttp(): boolean {
    const host = new URL(this.base).host;
    return this.opts.tlsVerify === false || isLoopbackHost(host);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** GET /v2/: decides http vs https and records the auth challenge. */
  async ping(): Promise<void> {
    if (this.pinged) return;
    let res: RawResponse;
    try {
      res = await this.rawWithRetry('GET', `${this.base}/v2/`, {});
    } catch (e) {
      if (this.base.startsWith('https://') && !this.explicitEndpoint && this.allowPlainHttp() && !isAbort(e)) {
        // registries on loopback (or marked insecure) commonly speak plain HTTP
        log.debug('https ping failed, trying http', { domain: this.domain, error: (e as Error).message });
        const httpBase = this.base.replace(/^https:/, 'http:');
        let plain: RawResponse;
        try {
          plain = await this.rawWithRetry('GET', `${httpBase}/v2/`, {});
        } catch {
          throw this.connectError(e); // report the https failure, it is the useful one
        }
        if (plain.statusCode !== 200 && plain.statusCode !== 401) {
          await plain.body.dump();
          throw this.connectError(e); // e.g. an HTTPS-only server answering 400 to plain HTTP
        }
        res = plain;
        this.base = httpBase;
      } else throw this.connectError(e);
    }
    await res.body.dump();
    if (res.statusCode === 401) {
      const h = header(res.headers, 'www-authenticate');
      const chs = h ? parseChallenges(h) : [];
      this.challenge = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic');
      if (!this.challenge) throw this.challengeError(h ? `its challenge ${JSON.stringify(h.slice(0, 200))} is neither Bearer nor Basic (or cannot be parsed)` : 'it sent no WWW-Authenticate challenge');
    } else if (res.statusCode >= 400 && res.statusCode !== 404) {
      throw this.apiError(res.statusCode, undefined, `GET /v2/ answered ${res.statusCode}`);
    }
    this.pinged = true;
  }

  get endpoint(): string {
    return this.base;
  }

  private connectError(e: unknown): Error {
    if (e instanceof NodeletError) return e;
    const code = (e as { code?: string }).code ?? '';
    const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|SSL|TLS/i.test(code + (e as Error).message)
      ? ` (TLS failed: put the registry's CA in certs.d/${this.domain}/ca.crt, or use --tls-verify=false)`
      : '';
    return unavailable('ERR_IMAGE_REGISTRY_UNREACHABLE', `cannot reach registry ${this.domain} at ${this.base}: ${(e as Error).message}${hint}`, {
      cause: e,
      details: { registry: this.domain },
    });
  }

  private apiError(status: number, body: string | undefined, fallback: string): RegistryError {
    let code: string | undefined;
    let message: string | undefined;
    if (body) {
      try {
        const j = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
        code = j.errors?.[0]?.code;
        message = j.errors?.[0]?.message;
      } catch {
        /* not JSON */
      }
    }
    const retriable = status >= 500 || status === 429 || status === 408;
    const category = status === 404 ? 'NotFound' : status === 401 || status === 403 ? 'PermissionDenied' : retriable ? 'Unavailable' : 'Internal';
    return new RegistryError(category, `ERR_IMAGE_REGISTRY_${status}`, message ? `${message} (${code ?? status})` : fallback, {
      details: { status, registryCode: code, retriable },
    });
  }

  /** One request with manual redirects (Authorization dropped when the host changes). */
  private async raw(method: string, url: string, headers: Record<string, string>, redirects = 5): Promise<RawResponse> {
    let cur = url;
    let hdrs = headers;
    for (let i = 0; ; i++) {
      const u = new URL(cur);
      if (u.protocol === 'http:' && this.opts.tlsVerify !== false && !isLoopbackHost(u.host)) {
        throw unavailable('ERR_IMAGE_INSECURE_REGISTRY', `refusing plain HTTP to ${u.host}: use --tls-verify=false for insecure registries`);
      }
      const res = (await request(cur, {
        method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': this.opts.userAgent ?? 'nodelet/0.1', ...hdrs },
        dispatcher: this.dispatcher,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      })) as unknown as RawResponse;
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && header(res.headers, 'location') && i < redirects) {
        await res.body.dump();
        const next = new URL(header(res.headers, 'location')!, cur);
        if (next.host !== u.host) {
          const { authorization: _a, ...rest } = hdrs;
          void _a;
          hdrs = rest;
        }
        cur = next.toString();
        continue;
      }
      return res;
    }
  }

  /** raw() plus retries on connection errors, 5xx and 429. The caller consumes the body. */
  private async rawWithRetry(method: string, url: string, headers: Record<string, string>): Promise<RawResponse> {
    for (let attempt = 0; ; attempt++) {
      let retryAfter: number | undefined;
      try {
        const res = await this.raw(method, url, headers);
        if (!(res.statusCode >= 500 || res.statusCode === 429) || attempt + 1 >= this.retry.attempts) return res;
        const ra = header(res.headers, 'retry-after');
        retryAfter = ra !== undefined && /^\d+$/.test(ra) ? Number(ra) : undefined;
        await res.body.dump();
        log.debug('registry answered, retrying', { url, status: res.statusCode, attempt });
      } catch (e) {
        if (isAbort(e) || !isRetriableError(e) || attempt + 1 >= this.retry.attempts) throw e;
        log.debug('request failed, retrying', { url, error: (e as Error).message, attempt });
      }
      await sleep(backoffDelay(attempt, this.retry, retryAfter), this.opts.signal);
    }
  }

  private async token(scope: string): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    const creds = this.opts.credentials;
    if (ch.scheme === 'basic') {
      if (!creds) throw this.unauthorized();
      return basicHeader(creds);
    }
    const realm = ch.params.realm;
    if (!realm) throw this.challengeError('its Bearer challenge names no token realm');
    const bad = realmProblem(this.base, realm);
    if (bad) throw this.challengeError(bad);
    const who = creds ? createHash('sha256').update(`${creds.username}:${creds.password}:${creds.identityToken ?? ''}`).digest('hex') : '';
    const key = `${realm}|${ch.params.service ?? ''}|${scope}|${who}`;
    const cached = tokenCache.get(key);
    if (cached && cached.expiresAt > Date.now() + 5000) return `Bearer ${cached.token}`;
    const u = new URL(realm);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    u.searchParams.set('scope', scope);
    if (creds?.identityToken) u.searchParams.set('offline_token', 'true');
    const hdrs: Record<string, string> = {};
    if (creds) hdrs.authorization = basicHeader(creds);
    const res = await this.rawWithRetry('GET', u.toString(), hdrs);
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) throw this.unauthorized(`token server ${u.host} refused: ${res.statusCode}`);
    if (res.statusCode !== 200) throw this.apiError(res.statusCode, text, `token server ${u.host} answered ${res.statusCode}`);
    let j: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw this.apiError(502, undefined, `token server ${u.host} answered invalid JSON`);
    }
    const tok = j.token || j.access_token;
    if (!tok) throw this.apiError(502, undefined, `token server ${u.host} answered no token`);
    const expiresIn = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
    tokenCache.set(key, { token: tok, expiresAt: Date.now() + expiresIn * 1000 });
    return `Bearer ${tok}`;
  }

  /** A 401 whose challenge nodelet will not or cannot follow. */
  private challengeError(why: string): RegistryError {
    return new RegistryError('PermissionDenied', 'ERR_IMAGE_AUTH_CHALLENGE', `registry ${this.domain} asks for authentication, but ${why}: nodelet does not authenticate there`, {
      details: { registry: this.domain },
    });
  }

  private unauthorized(extra?: string): RegistryError {
    return new RegistryError(
      'PermissionDenied',
      'ERR_IMAGE_UNAUTHORIZED',
      `authentication required by ${this.domain}${extra ? ` (${extra})` : ''}: give --creds USER:PASS or --authfile`,
      { details: { registry: this.domain } },
    );
  }

  /** Authenticated request against the registry API for one repository. */
  async apiRequest(method: string, repo: string, p: string, headers: Record<string, string> = {}): Promise<RawResponse> {
    await this.ping();
    const scope = `repository:${repo}:pull`;
    const url = `${this.base}/v2/${repo}/${p}`;
    for (let round = 0; ; round++) {
      const auth = this.authHeaders.get(scope) ?? (await this.token(scope));
      if (auth) this.authHeaders.set(scope, auth);
      const res = await this.rawWithRetry(method, url, auth ? { ...headers, authorization: auth } : headers);
      if (res.statusCode === 401 && round === 0) {
        // token expired or the challenge changed (scope-specific realm): re-negotiate once
        const h = header(res.headers, 'www-authenticate');
        await res.body.dump();
        const chs = h ? parseChallenges(h) : [];
        const ch = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic');
        if (ch) this.challenge = ch;
        this.authHeaders.delete(scope);
        for (const [k, v] of tokenCache) if (auth && `Bearer ${v.token}` === auth) tokenCache.delete(k);
        continue;
      }
      if (res.statusCode === 401) {
        await res.body.dump();
        throw this.unauthorized(this.opts.credentials ? 'credentials rejected' : undefined);
      }
      return res;
    }
  }

  /** GET a manifest by tag or digest (limit 4 MiB). */
  async getManifest(repo: string, reference: string): Promise<FetchedManifest> {
    const res = await this.apiRequest('GET', repo, `manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (res.statusCode !== 200) {
      const text = await readLimited(res.body, 64 * 1024).then((b) => b.toString('utf8'), () => '');
      const err = this.apiError(res.statusCode, text, `registry answered ${res.statusCode}`);
      const rc = err.details.registryCode;
      if (res.statusCode === 404 || rc === 'MANIFEST_UNKNOWN' || rc === 'NAME_UNKNOWN') {
        const why = rc === 'NAME_UNKNOWN' ? 'repository not found' : 'manifest unknown (does the tag exist?)';
        throw new RegistryError('NotFound', 'ERR_IMAGE_NOT_FOUND', why, { details: { ...err.details } });
      }
      throw err;
    }
    const cl = Number(header(res.headers, 'content-length') ?? NaN);
    if (cl > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw manifestTooBig();
    }
    const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES);
    const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
    const ct = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    return { bytes, mediaType: ct, digest };
  }

  /** GET a blob, from `offset` with a Range header. Follows redirects to storage backends. */
  async getBlob(repo: string, digest: string, offset = 0): Promise<BlobResponse> {
    const hdrs: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.apiRequest('GET', repo, `blobs/${digest}`, hdrs);
    if (res.statusCode === 200 || res.statusCode === 206) {
      const cl = header(res.headers, 'content-length');
      return { body: res.body, partial: res.statusCode === 206, ...(cl !== undefined ? { length: Number(cl) } : {}) };
    }
    const text = await readLimited(res.body, 64 * 1024).then((b) => b.toString('utf8'), () => '');
    if (res.statusCode === 416 && offset > 0) return this.getBlob(repo, digest, 0);
    const err = this.apiError(res.statusCode, text, `GET blob ${digest} answered ${res.statusCode}`);
    if (res.statusCode === 404) throw new RegistryError('NotFound', 'ERR_IMAGE_BLOB_NOT_FOUND', `blob ${digest} unknown to the registry`, { details: err.details });
    throw err;
  }
}

function manifestTooBig(): NodeletError {
  return new RegistryError('InvalidArgument', 'ERR_IMAGE_MANIFEST_TOO_BIG', `manifest larger than ${MAX_MANIFEST_BYTES} bytes`);
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(e?: Error): void }, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw manifestTooBig();
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function isAbort(e: unknown): boolean {
  const n = (e as { name?: string })?.name;
  return n === 'AbortError' || (e as { code?: string })?.code === 'UND_ERR_ABORTED';
}
