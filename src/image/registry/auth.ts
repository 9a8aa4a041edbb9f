// Registry authentication: WWW-Authenticate challenge parsing (RFC 7235),
// credentials from --creds / auth files / docker credential helpers
// (credHelpers, credsStore: cred-helpers.ts), and the Bearer token flow of the
// distribution token spec (GET realm?service=&scope=, answers {token} or
// {access_token}).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { invalidArgument } from '../../errors.js';
import { runCredentialHelper } from './cred-helpers.js';

export interface Challenge {
  scheme: string; // lowercased: "bearer", "basic"
  params: Record<string, string>; // keys lowercased
}

/** Parses a WWW-Authenticate header value into challenges. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipWs();
    while (s[i] === ',') {
      i++;
      skipWs();
    }
    const scheme = token();
    if (!scheme) break;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    // params: k=v or k="v", comma separated, until the next scheme token
    for (;;) {
      skipWs();
      const save = i;
      const key = token();
      skipWs();
      if (!key || s[i] !== '=') {
        i = save; // the next challenge's scheme (or a token68, ignored)
        break;
      }
      i++; // '='
      skipWs();
      let val = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          val += s[i++];
        }
        i++;
      } else {
        const m = /^[^,\s]*/.exec(s.slice(i))!; // lenient, like docker's parser
        val = m[0];
        i += val.length;
      }
      ch.params[key.toLowerCase()] = val;
      skipWs();
      if (s[i] === ',') {
        i++;
        continue;
      }
      break;
    }
  }
  return out;
}

export interface Credentials {
  username: string;
  password: string;
  /** A registry identity token (docker "identitytoken") for the OAuth2 refresh flow. */
  identityToken?: string;
}

/** "user:pass" -> Credentials; the password may contain ':'. */
export function parseCreds(creds: string): Credentials {
  const i = creds.indexOf(':');
  if (i <= 0) throw invalidArgument('ERR_IMAGE_CREDS_INVALID', 'invalid --creds: want "USERNAME:PASSWORD"');
  return { username: creds.slice(0, i), password: creds.slice(i + 1) };
}

/** Normalises an auths key ("https://index.docker.io/v1/", "host:5000/path") to a registry host. */
function authKeyHost(key: string): string {
  let k = key.replace(/^https?:\/\//, '');
  const slash = k.indexOf('/');
  const host = slash < 0 ? k : k.slice(0, slash);
  k = host;
  if (k === 'index.docker.io' || k === 'registry-1.docker.io' || k === 'registry.hub.docker.com') return 'docker.io';
  return k;
}

/**
 * Looks up credentials for a registry in a docker config.json / podman
 * auth.json object. Keys may be "host", "host/repo/path" (podman: most specific
 * wins) or URLs.
 */
export function credentialsFromAuthConfig(cfg: unknown, domain: string, repoPath?: string): Credentials | undefined {
  const auths = (cfg as { auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }> })
    ?.auths;
  if (!auths || typeof auths !== 'object') return undefined;
  const full = repoPath ? `${domain}/${repoPath}` : domain;
  let best: { len: number; entry: (typeof auths)[string] } | undefined;
  for (const [key, entry] of Object.entries(auths)) {
    const stripped = key.replace(/^https?:\/\//, '').replace(/\/+$/, '');
    const host = authKeyHost(key);
    let matchLen = -1;
    if (host === domain && (stripped === host || !stripped.includes('/') || /\/v[12]\/?$/.test(key))) matchLen = 0;
    else if (stripped.includes('/') && (full === stripped || full.startsWith(stripped + '/'))) matchLen = stripped.length;
    if (matchLen >= 0 && (!best || matchLen > best.len)) best = { len: matchLen, entry };
  }
  if (!best) return undefined;
  const e = best.entry ?? {};
  if (e.auth) {
    const dec = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) throw invalidArgument('ERR_IMAGE_AUTHFILE_INVALID', `auth entry for "${domain}" is not base64 of "user:password"`);
    return { username: dec.slice(0, i), password: dec.slice(i + 1), ...(e.identitytoken ? { identityToken: e.identitytoken } : {}) };
  }
  if (e.username !== undefined && e.password !== undefined) return { username: e.username, password: e.password };
  if (e.identitytoken) return { username: '<token>', password: e.identitytoken, identityToken: e.identitytoken };
  return undefined;
}

/** Default auth file locations, podman's order: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.docker/config.json. */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE];
  if (env.XDG_RUNTIME_DIR) out.push(path.join(env.XDG_RUNTIME_DIR, 'containers/auth.json'));
  out.push('/run/containers/0/auth.json');
  out.push(path.join(env.HOME ?? os.homedir(), '.docker/config.json'));
  return out;
}

export function readAuthFile(file: string, required: boolean): unknown | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalidArgument('ERR_IMAGE_AUTHFILE_INVALID', `cannot read auth file ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidArgument('ERR_IMAGE_AUTHFILE_INVALID', `auth file ${file} is not valid JSON`, { cause: e });
  }
}

/** The per-registry helper of a docker config / auth.json: `credHelpers` keys are normalised like `auths` keys. */
export function credHelperFor(cfg: unknown, domain: string): { helper: string; key: string } | undefined {
  const helpers = (cfg as { credHelpers?: unknown })?.credHelpers;
  if (!helpers || typeof helpers !== 'object') return undefined;
  for (const [key, helper] of Object.entries(helpers as Record<string, unknown>)) {
    if (typeof helper === 'string' && helper && authKeyHost(key) === domain) return { helper, key };
  }
  return undefined;
}

/** The server names a helper is asked for: Docker Hub as `docker login` stores it, then as podman does. */
export function helperServers(domain: string): string[] {
  return domain === 'docker.io' ? ['https://index.docker.io/v1/', 'docker.io'] : [domain];
}

async function askHelper(helper: string, domain: string, o: { env?: NodeJS.ProcessEnv; source: string; timeoutMs?: number }): Promise<Credentials | undefined> {
  for (const server of helperServers(domain)) {
    const c = await runCredentialHelper(helper, server, o);
    if (c) return c;
  }
  return undefined;
}

/**
 * Resolve credentials: --creds beats --authfile beats $REGISTRY_AUTH_FILE / default files. In each file, as docker
 * and podman: the registry's `credHelpers` helper, then its `auths` entry, then the `credsStore` helper; a helper with
 * nothing for the registry ("credentials not found") passes on to the next source. `env` is also the helpers' env.
 */
export async function resolveCredentials(
  domain: string,
  repoPath: string,
  o: { creds?: string; authFile?: string; env?: NodeJS.ProcessEnv; helperTimeoutMs?: number },
): Promise<Credentials | undefined> {
  if (o.creds) return parseCreds(o.creds);
  const files = o.authFile ? [o.authFile] : defaultAuthFiles(o.env);
  const run = { ...(o.env ? { env: o.env } : {}), ...(o.helperTimeoutMs ? { timeoutMs: o.helperTimeoutMs } : {}) };
  for (const f of files) {
    const cfg = readAuthFile(f, f === o.authFile || f === (o.env ?? process.env).REGISTRY_AUTH_FILE);
    if (cfg === undefined) continue;
    const ch = credHelperFor(cfg, domain);
    if (ch) {
      const c = await askHelper(ch.helper, domain, { ...run, source: `credHelpers[${JSON.stringify(ch.key)}] in ${f}` });
      if (c) return c;
    }
    const c = credentialsFromAuthConfig(cfg, domain, repoPath);
    if (c) return c;
    const store = (cfg as { credsStore?: unknown })?.credsStore;
    if (typeof store === 'string' && store) {
      const s = await askHelper(store, domain, { ...run, source: `credsStore in ${f}` });
      if (s) return s;
    }
  }
  return undefined;
}

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

/** The part of a host that one operator controls: an IP or single-label name itself, else its last two labels. */
function hostFamily(host: string): string {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (/^[\d.]+$/.test(h) || h.includes(':') || !h.includes('.')) return h;
  return h.split('.').slice(-2).join('.');
}

/**
 * Why a Bearer challenge's realm must not be followed, or undefined when it may: it is a URL, http(s) (plain
 * http only for a plain-http registry), and on the registry's own host family (registry-1.docker.io →
 * auth.docker.io, registry.gitlab.com → gitlab.com; by the last two labels, no public-suffix list), so
 * credentials never go to a host a registry names at will.
 */
export function realmProblem(registryBase: string, realm: string): string | undefined {
  let u: URL;
  try {
    u = new URL(realm);
  } catch {
    return `its token realm ${JSON.stringify(realm)} is not a URL`;
  }
  const reg = new URL(registryBase);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `its token realm ${JSON.stringify(realm)} is not http(s)`;
  if (u.protocol === 'http:' && reg.protocol === 'https:') return `its token realm ${JSON.stringify(realm)} is plain http while the registry is https`;
  if (hostFamily(u.hostname) !== hostFamily(reg.hostname)) return `its token realm host ${u.hostname} is not the registry's own (${reg.hostname})`;
  return undefined;
}
