// Authentication and authorization of the kubelet server, delegated to the API
// server as kubelet does with `authentication.webhook` and `authorization.mode:
// Webhook` (k8s.io/apiserver's delegating authenticator/authorizer):
//   1. a client certificate that verifies against the client CA (--client-ca-file;
//      in cluster mode the kubeconfig's cluster CA) and allows clientAuth:
//      user = CN, groups = O (+ system:authenticated)
//   2. else `Authorization: Bearer <token>` → authentication.k8s.io/v1 TokenReview
//      (cached 2 min when authenticated, 10 s when not)
//   3. else 401 (no anonymous access)
// then one authorization.k8s.io/v1 SubjectAccessReview per attribute until one is
// allowed (cached 5 min allowed, 30 s denied). The node's own identity may create
// both: the Node authorizer grants system:node's rules (tokenreviews, subjectaccessreviews).
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { describeError, internal } from '../errors.js';
import { getLogger } from '../log.js';
import type { KubeClient, KubeObject } from '../kube/types.js';
import type { NodeAttributes } from './attributes.js';

const log = getLogger('kubelet');

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export type AuthnResult = { user: UserInfo } | { error: string };

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/** The identity of a verified client certificate (the x509 authenticator), undefined when there is none. */
export function userFromPeerCertificate(socket: TLSSocket): AuthnResult | undefined {
  const cert = socket.getPeerCertificate?.();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  if (!socket.authorized) return { error: `x509: certificate signed by unknown authority or invalid (${String(socket.authorizationError ?? 'unverified')})` };
  const eku = (cert as { ext_key_usage?: string[] }).ext_key_usage;
  if (eku && !eku.includes(CLIENT_AUTH_OID)) return { error: 'x509: certificate specifies an incompatible key usage' };
  const cn = cert.subject?.CN;
  const o = cert.subject?.O;
  const username = Array.isArray(cn) ? cn[0] : cn;
  if (!username) return { error: 'x509: the certificate has no common name' };
  const groups = o === undefined ? [] : Array.isArray(o) ? o : [o];
  return { user: { username, groups: withAuthenticated(groups) } };
}

function withAuthenticated(groups: string[]): string[] {
  return groups.includes('system:authenticated') ? groups : [...groups, 'system:authenticated'];
}

/** `Bearer <token>` → the token (RFC 6750; kubelet's bearertoken authenticator). */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1] : undefined;
}

class TtlCache<V> {
  private readonly m = new Map<string, { v: V; until: number }>();
  constructor(private readonly max = 4096) {}
  get(k: string, now: number): V | undefined {
    const e = this.m.get(k);
    if (!e) return undefined;
    if (e.until <= now) {
      this.m.delete(k);
      return undefined;
    }
    return e.v;
  }
  set(k: string, v: V, ttlMs: number, now: number): void {
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value!);
    this.m.set(k, { v, until: now + ttlMs });
  }
}

export interface DelegatedAuthOptions {
  client: KubeClient;
  now?: () => number;
  tokenTtlMs?: number;
  tokenFailTtlMs?: number;
  allowTtlMs?: number;
  denyTtlMs?: number;
}

export class DelegatedAuth {
  private readonly tokens = new TtlCache<AuthnResult>();
  private readonly decisions = new TtlCache<boolean>();
  private readonly now: () => number;

  constructor(private readonly o: DelegatedAuthOptions) {
    this.now = o.now ?? Date.now;
  }

  /** undefined: no credentials at all (anonymous). */
  async authenticate(req: http.IncomingMessage): Promise<AuthnResult | undefined> {
    const fromCert = userFromPeerCertificate(req.socket as TLSSocket);
    if (fromCert) return fromCert;
    const token = bearerToken(req.headers.authorization);
    if (!token) return undefined;
    return this.reviewToken(token);
  }

  async reviewToken(token: string): Promise<AuthnResult> {
    const cached = this.tokens.get(token, this.now());
    if (cached) return cached;
    let review: KubeObject & { status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }; error?: string } };
    try {
      review = await this.o.client.create({ group: 'authentication.k8s.io', version: 'v1', resource: 'tokenreviews' }, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    } catch (e) {
      throw internal('ERR_KUBELET_REVIEW', `TokenReview failed: ${describeError(e)}`, { cause: e });
    }
    const s = review.status ?? {};
    const r: AuthnResult = s.authenticated && s.user?.username
      ? { user: { username: s.user.username, ...(s.user.uid ? { uid: s.user.uid } : {}), groups: s.user.groups ?? [], ...(s.user.extra ? { extra: s.user.extra } : {}) } }
      : { error: s.error || 'token not authenticated' };
    this.tokens.set(token, r, 'user' in r ? (this.o.tokenTtlMs ?? 120_000) : (this.o.tokenFailTtlMs ?? 10_000), this.now());
    return r;
  }

  /** Allowed when any of the attributes is (in order); an error of the review throws (→ 500). */
  async authorize(user: UserInfo, attrs: NodeAttributes[]): Promise<boolean> {
    for (const a of attrs) if (await this.allowed(user, a)) return true;
    return false;
  }

  private async allowed(user: UserInfo, a: NodeAttributes): Promise<boolean> {
    const spec = {
      user: user.username,
      ...(user.uid ? { uid: user.uid } : {}),
      groups: user.groups,
      ...(user.extra ? { extra: user.extra } : {}),
      resourceAttributes: { verb: a.verb, version: a.version, resource: a.resource, subresource: a.subresource, name: a.name },
    };
    const key = JSON.stringify(spec);
    const cached = this.decisions.get(key, this.now());
    if (cached !== undefined) return cached;
    let review: KubeObject & { status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } };
    try {
      review = await this.o.client.create({ group: 'authorization.k8s.io', version: 'v1', resource: 'subjectaccessreviews' }, { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec });
    } catch (e) {
      throw internal('ERR_KUBELET_REVIEW', `SubjectAccessReview failed: ${describeError(e)}`, { cause: e });
    }
    const ok = review.status?.allowed === true;
    if (!ok) log.debug('kubelet API: not allowed', { user: user.username, verb: a.verb, subresource: a.subresource, reason: review.status?.reason });
    this.decisions.set(key, ok, ok ? (this.o.allowTtlMs ?? 300_000) : (this.o.denyTtlMs ?? 30_000), this.now());
    return ok;
  }
}
