// Pull-secret credentials as kubelet uses them (pkg/credentialprovider/keyring.go, secrets/secrets.go):
// a Secret of type kubernetes.io/dockerconfigjson (key .dockerconfigjson, {"auths": {...}}) or
// kubernetes.io/dockercfg (key .dockercfg, the bare map) gives registry entries; an entry's key is
// normalised once (scheme dropped, a /v1/ or /v2/ path prefix dropped), the keys are ordered most
// specific first (reverse lexical order), and an image's repository matches a key when the port is
// the same, the host has as many dot-separated labels, each label matches as a glob (`*.example.com`),
// and the key's path is a prefix of the repository's path. Every matching entry is returned, in that
// order, so a pull tries each. Pure: no files, no network.
import { invalidArgument } from '../../errors.js';
import type { Credentials } from './auth.js';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
export const DOCKERCFG_TYPE = 'kubernetes.io/dockercfg';
export const DOCKERCFG_KEY = '.dockercfg';

/** The parts of a Secret this needs (a core/v1 Secret: `data` values are base64). */
export interface PullSecretLike {
  metadata?: { name?: string; namespace?: string; uid?: string };
  type?: string;
  data?: Record<string, string>;
}

export interface KeyringEntry {
  /** the normalised key: host[:port][/path] */
  key: string;
  credentials: Credentials;
  /** the Secret it came from (namespace/name) */
  source: string;
  secret: { namespace: string; name: string; uid: string };
}

/** kubelet's decodeDockerConfigFieldAuth: base64 (padded or not) of "user:password". */
function decodeAuthField(field: string, where: string): { username: string; password: string } {
  const t = field.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || (t.endsWith('=') && t.length % 4 !== 0))
    throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: "auth" is not base64`);
  const dec = Buffer.from(t, 'base64').toString('utf8');
  const i = dec.indexOf(':');
  if (i < 0) throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: unable to parse auth field, must be formatted as base64(username:password)`);
  return { username: dec.slice(0, i), password: dec.slice(i + 1) };
}

/** A docker config's registry → entry map as kubelet reads it: `auth` wins over username/password. */
export function dockerConfigEntries(cfg: unknown, where: string): { location: string; credentials: Credentials }[] {
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: not a JSON object`);
  const out: { location: string; credentials: Credentials }[] = [];
  for (const [location, e] of Object.entries(cfg as Record<string, unknown>)) {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: entry ${JSON.stringify(location)} is not an object`);
    const ent = e as { auth?: unknown; username?: unknown; password?: unknown };
    const str = (v: unknown, f: string): string => {
      if (v === undefined || v === null) return '';
      if (typeof v !== 'string') throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: ${JSON.stringify(location)}.${f} is not a string`);
      return v;
    };
    const auth = str(ent.auth, 'auth');
    const credentials = auth ? decodeAuthField(auth, `${where}: ${JSON.stringify(location)}`) : { username: str(ent.username, 'username'), password: str(ent.password, 'password') };
    out.push({ location, credentials });
  }
  return out;
}

/**
 * The registry entries of one pull secret, or undefined when it is not a docker config secret (another
 * type, or the type's key missing or empty: kubelet skips it). Malformed JSON throws
 * ERR_IMAGE_PULL_SECRET_INVALID (kubelet fails the pull with the parse error).
 */
export function pullSecretEntries(secret: PullSecretLike): { location: string; credentials: Credentials }[] | undefined {
  const where = `image pull secret "${secret.metadata?.name ?? '?'}"`;
  const key = secret.type === DOCKER_CONFIG_JSON_TYPE ? DOCKER_CONFIG_JSON_KEY : secret.type === DOCKERCFG_TYPE ? DOCKERCFG_KEY : undefined;
  const b64 = key ? secret.data?.[key] : undefined;
  if (!key || !b64) return undefined;
  const text = Buffer.from(b64, 'base64').toString('utf8');
  if (!text) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: ${key} is not valid JSON`, { cause: e });
  }
  if (key === DOCKER_CONFIG_JSON_KEY) {
    const auths = (parsed as { auths?: unknown } | null)?.auths;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidArgument('ERR_IMAGE_PULL_SECRET_INVALID', `${where}: ${key} is not a JSON object`);
    return auths === undefined || auths === null ? [] : dockerConfigEntries(auths, where);
  }
  return dockerConfigEntries(parsed, where);
}

/** Go's url.Parse("https://" + s) split into host and path, the query and fragment dropped. */
function splitSchemeless(s: string): { host: string; path: string } {
  const cut = s.search(/[?#]/);
  const t = cut < 0 ? s : s.slice(0, cut);
  const slash = t.indexOf('/');
  const authority = slash < 0 ? t : t.slice(0, slash);
  const at = authority.lastIndexOf('@');
  return { host: at < 0 ? authority : authority.slice(at + 1), path: slash < 0 ? '' : t.slice(slash) };
}

/** An entry's location as kubelet's BasicDockerKeyring.Add normalises it: host[:port][/path]. */
export function normaliseLocation(location: string): string {
  const { host, path } = splitSchemeless(location.replace(/^https?:\/\//, ''));
  let p = path;
  if (p.startsWith('/v2/') || p.startsWith('/v1/')) p = p.slice(3);
  return p && p !== '/' ? host + p : host;
}

/** net.SplitHostPort, or the whole host with no port when it has none. */
function splitHostPort(hostport: string): { labels: string[]; port: string } {
  let host = hostport;
  let port = '';
  const m = /^\[([^\]]*)\]:(\d*)$/.exec(hostport) ?? /^([^:[\]]*):(\d*)$/.exec(hostport);
  if (m) {
    host = m[1]!;
    port = m[2]!;
  }
  return { labels: host.split('.'), port };
}

/** filepath.Match for one host label: `*` any run of characters, `?` one, `[...]` a class, `\` escapes. */
export function labelGlobMatch(glob: string, label: string): boolean {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '\\' && i + 1 < glob.length) re += '\\' + glob[++i];
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) return false; // malformed pattern: filepath.Match errors, kubelet treats it as no match
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('^')) cls = '^' + cls.slice(1).replace(/[\]\\]/g, '\\$&');
      else cls = cls.replace(/[\]\\^]/g, '\\$&');
      re += `[${cls}]`;
      i = end;
    } else re += ch.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  try {
    return new RegExp(`^${re}$`, 's').test(label);
  } catch {
    return false;
  }
}

/** kubelet's URLsMatchStr(key, repository): same port, same number of labels, label globs, path prefix. */
export function keyMatches(key: string, repository: string): boolean {
  const g = splitSchemeless(key);
  const t = splitSchemeless(repository);
  const gh = splitHostPort(g.host);
  const th = splitHostPort(t.host);
  if (gh.port !== th.port) return false;
  if (gh.labels.length !== th.labels.length) return false;
  if (!t.path.startsWith(g.path)) return false;
  return gh.labels.every((l, i) => labelGlobMatch(l, th.labels[i]!));
}

/** kubelet's isDefaultRegistryMatch: the repository is on Docker Hub. */
function isDefaultRegistry(repository: string): boolean {
  const parts = repository.split('/');
  if (!parts[0]) return false;
  if (parts.length === 1) return true;
  if (parts[0] === 'docker.io' || parts[0] === 'index.docker.io') return true;
  return !/[.:]/.test(parts[0]);
}

/**
 * The keyring of a pod's pull secrets, in the pod's order: every entry of every docker config secret,
 * keys normalised; skipped secrets (other types) contribute nothing.
 */
export function keyringFromSecrets(secrets: PullSecretLike[]): KeyringEntry[] {
  const out: KeyringEntry[] = [];
  for (const s of secrets) {
    const entries = pullSecretEntries(s);
    if (!entries) continue;
    const secret = { namespace: s.metadata?.namespace ?? '', name: s.metadata?.name ?? '', uid: s.metadata?.uid ?? '' };
    const source = `${secret.namespace}/${secret.name}`;
    for (const e of entries) out.push({ key: normaliseLocation(e.location), credentials: e.credentials, source, secret });
  }
  return out;
}

/**
 * The credentials to try for a repository (`host[:port]/path`, as kubelet's ParseImageName gives it:
 * `docker.io/library/busybox`), most specific key first; for a key with several entries, in the order
 * they were added. Docker Hub repositories fall back to an `index.docker.io` entry.
 */
export function lookupKeyring(keyring: KeyringEntry[], repository: string): KeyringEntry[] {
  const byKey = new Map<string, KeyringEntry[]>();
  for (const e of keyring) {
    const l = byKey.get(e.key);
    if (l) l.push(e);
    else byKey.set(e.key, [e]);
  }
  // Go's sort.Reverse(sort.StringSlice): byte order, descending
  const index = [...byKey.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const out: KeyringEntry[] = [];
  for (const k of index) if (keyMatches(k, repository)) out.push(...byKey.get(k)!);
  if (out.length > 0) return out;
  if (isDefaultRegistry(repository)) return byKey.get('index.docker.io') ?? [];
  return [];
}
