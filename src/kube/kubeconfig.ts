// Loads a kubeconfig file (clientcmd's format) into what the client needs:
// the server URL, the CA, and the credentials of the current context's user
// (client certificate + key, bearer token, or a token file). Relative paths
// are resolved against the kubeconfig's directory, as kubectl does.
//
// Error codes (NodeletError, category InvalidArgument unless said otherwise;
// `details.field` names the offending field, `details.path` the file):
//   ERR_KUBECONFIG_READ              the kubeconfig (or a file it names) cannot be read (NotFound if missing)
//   ERR_KUBECONFIG_PARSE             not YAML, or not a mapping
//   ERR_KUBECONFIG_NO_CONTEXT        no current-context and no context chosen
//   ERR_KUBECONFIG_CONTEXT_NOT_FOUND / _CLUSTER_NOT_FOUND / _USER_NOT_FOUND
//   ERR_KUBECONFIG_FIELD             a field has the wrong type, bad base64, bad PEM, or a bad server URL
//   ERR_KUBECONFIG_CREDENTIALS       a client certificate without its key (or the reverse), or no usable credentials
//   ERR_KUBECONFIG_UNSUPPORTED       exec / auth-provider credentials (not implemented)
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { NodeletError, invalidArgument } from '../errors.js';

export interface KubeConfig {
  /** the kubeconfig file, when loaded from one */
  file?: string;
  contextName: string;
  clusterName: string;
  userName: string;
  /** e.g. https://127.0.0.1:6443 (no trailing slash) */
  server: string;
  /** context namespace, when set */
  namespace?: string;
  /** PEM of the cluster CA (certificate-authority(-data)); absent: system roots */
  ca?: Buffer;
  insecureSkipTLSVerify?: boolean;
  tlsServerName?: string;
  /** PEM client certificate and key */
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  /** re-read by the client (bound service-account tokens rotate) */
  tokenFile?: string;
  /** the client certificate's subject CN (e.g. system:node:n1), when there is one */
  certCommonName?: string;
}

export interface LoadKubeconfigOptions {
  /** use this context instead of current-context */
  context?: string;
}

type Dict = Record<string, unknown>;

function fieldError(field: string, message: string, file?: string, cause?: unknown): NodeletError {
  return invalidArgument('ERR_KUBECONFIG_FIELD', `kubeconfig${file ? ` ${file}` : ''}: ${field}: ${message}`, {
    details: { field, path: file },
    ...(cause !== undefined ? { cause } : {}),
  });
}

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(obj: Dict, key: string, field: string, file?: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw fieldError(`${field}.${key}`, `must be a string, got ${typeof v}`, file);
  return v;
}

/** The named entry of a list such as `clusters: [{name, cluster: {...}}]`. */
function findNamed(doc: Dict, listKey: 'clusters' | 'users' | 'contexts', innerKey: string, name: string, file?: string): Dict | undefined {
  const list = doc[listKey];
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw fieldError(listKey, 'must be a list', file);
  for (const [i, entry] of list.entries()) {
    if (!isDict(entry)) throw fieldError(`${listKey}[${i}]`, 'must be a mapping', file);
    if (entry.name !== name) continue;
    const inner = entry[innerKey];
    if (inner === undefined || inner === null) return {};
    if (!isDict(inner)) throw fieldError(`${listKey}[name=${name}].${innerKey}`, 'must be a mapping', file);
    return inner;
  }
  return undefined;
}

function readReferenced(p: string, baseDir: string, field: string, file?: string): Buffer {
  const abs = path.resolve(baseDir, p);
  try {
    return readFileSync(abs);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NodeletError(err.code === 'ENOENT' ? 'NotFound' : 'InvalidArgument', 'ERR_KUBECONFIG_READ',
      `kubeconfig${file ? ` ${file}` : ''}: ${field}: cannot read ${abs}: ${err.code ?? err.message}`, { cause: e, details: { field, path: abs } });
  }
}

function decodeData(v: string, field: string, file?: string): Buffer {
  const clean = v.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) throw fieldError(field, 'is not valid base64', file);
  return Buffer.from(clean, 'base64');
}

function requirePem(buf: Buffer, kind: 'CERTIFICATE' | 'PRIVATE KEY', field: string, file?: string): Buffer {
  const text = buf.toString('latin1');
  const ok = kind === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/.test(text) : /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(text);
  if (!ok) throw fieldError(field, `does not hold a PEM ${kind.toLowerCase()}`, file);
  return buf;
}

/** `X-data` inline (base64) or `X` (a file path); both set: the data wins, as in clientcmd. */
function dataOrFile(obj: Dict, key: string, field: string, baseDir: string, file?: string): Buffer | undefined {
  const data = optString(obj, `${key}-data`, field, file);
  if (data !== undefined) return decodeData(data, `${field}.${key}-data`, file);
  const p = optString(obj, key, field, file);
  if (p !== undefined) return readReferenced(p, baseDir, `${field}.${key}`, file);
  return undefined;
}

/** Parses kubeconfig text; `baseDir` resolves relative paths. */
export function parseKubeconfig(text: string, baseDir: string, opts: LoadKubeconfigOptions & { file?: string } = {}): KubeConfig {
  const file = opts.file;
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw invalidArgument('ERR_KUBECONFIG_PARSE', `kubeconfig${file ? ` ${file}` : ''} is not valid YAML: ${(e as Error).message}`, {
      cause: e,
      details: { path: file },
    });
  }
  if (!isDict(doc)) throw invalidArgument('ERR_KUBECONFIG_PARSE', `kubeconfig${file ? ` ${file}` : ''} is not a YAML mapping`, { details: { path: file } });

  const contextName = opts.context ?? optString(doc, 'current-context', '', file);
  if (!contextName) {
    throw invalidArgument('ERR_KUBECONFIG_NO_CONTEXT', `kubeconfig${file ? ` ${file}` : ''}: current-context is not set and no context was chosen`, {
      details: { field: 'current-context', path: file },
    });
  }
  const ctx = findNamed(doc, 'contexts', 'context', contextName, file);
  if (!ctx) {
    throw invalidArgument('ERR_KUBECONFIG_CONTEXT_NOT_FOUND', `kubeconfig${file ? ` ${file}` : ''}: context "${contextName}" is not in contexts`, {
      details: { field: `contexts[name=${contextName}]`, path: file },
    });
  }
  const cf = `contexts[name=${contextName}].context`;
  const clusterName = optString(ctx, 'cluster', cf, file);
  if (!clusterName) throw fieldError(`${cf}.cluster`, 'is not set', file);
  const userName = optString(ctx, 'user', cf, file) ?? '';
  const namespace = optString(ctx, 'namespace', cf, file);

  const cluster = findNamed(doc, 'clusters', 'cluster', clusterName, file);
  if (!cluster) {
    throw invalidArgument('ERR_KUBECONFIG_CLUSTER_NOT_FOUND', `kubeconfig${file ? ` ${file}` : ''}: cluster "${clusterName}" (of context "${contextName}") is not in clusters`, {
      details: { field: `clusters[name=${clusterName}]`, path: file },
    });
  }
  const clf = `clusters[name=${clusterName}].cluster`;
  const serverRaw = optString(cluster, 'server', clf, file);
  if (!serverRaw) throw fieldError(`${clf}.server`, 'is not set', file);
  let url: URL;
  try {
    url = new URL(serverRaw);
  } catch (e) {
    throw fieldError(`${clf}.server`, `"${serverRaw}" is not a URL`, file, e);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fieldError(`${clf}.server`, `"${serverRaw}" must be an https:// (or http://) URL`, file);
  const server = serverRaw.replace(/\/+$/, '');
  const ca = dataOrFile(cluster, 'certificate-authority', clf, baseDir, file);
  if (ca) requirePem(ca, 'CERTIFICATE', `${clf}.certificate-authority`, file);
  const insecure = cluster['insecure-skip-tls-verify'];
  if (insecure !== undefined && typeof insecure !== 'boolean') throw fieldError(`${clf}.insecure-skip-tls-verify`, 'must be a boolean', file);
  const tlsServerName = optString(cluster, 'tls-server-name', clf, file);

  const out: KubeConfig = { contextName, clusterName, userName, server };
  if (file) out.file = file;
  if (namespace) out.namespace = namespace;
  if (ca) out.ca = ca;
  if (insecure === true) out.insecureSkipTLSVerify = true;
  if (tlsServerName) out.tlsServerName = tlsServerName;

  if (userName) {
    const user = findNamed(doc, 'users', 'user', userName, file);
    if (!user) {
      throw invalidArgument('ERR_KUBECONFIG_USER_NOT_FOUND', `kubeconfig${file ? ` ${file}` : ''}: user "${userName}" (of context "${contextName}") is not in users`, {
        details: { field: `users[name=${userName}]`, path: file },
      });
    }
    const uf = `users[name=${userName}].user`;
    if (user.exec !== undefined || user['auth-provider'] !== undefined) {
      const which = user.exec !== undefined ? 'exec' : 'auth-provider';
      const hasOther = user['client-certificate'] || user['client-certificate-data'] || user.token || user.tokenFile;
      if (!hasOther) {
        throw invalidArgument('ERR_KUBECONFIG_UNSUPPORTED', `kubeconfig${file ? ` ${file}` : ''}: ${uf}.${which}: exec/auth-provider credentials are not supported; use a client certificate or a token`, {
          details: { field: `${uf}.${which}`, path: file },
        });
      }
    }
    const cert = dataOrFile(user, 'client-certificate', uf, baseDir, file);
    const key = dataOrFile(user, 'client-key', uf, baseDir, file);
    if (cert && !key) {
      throw invalidArgument('ERR_KUBECONFIG_CREDENTIALS', `kubeconfig${file ? ` ${file}` : ''}: ${uf}: client-certificate is set but client-key is not`, {
        details: { field: `${uf}.client-key`, path: file },
      });
    }
    if (key && !cert) {
      throw invalidArgument('ERR_KUBECONFIG_CREDENTIALS', `kubeconfig${file ? ` ${file}` : ''}: ${uf}: client-key is set but client-certificate is not`, {
        details: { field: `${uf}.client-certificate`, path: file },
      });
    }
    if (cert && key) {
      requirePem(cert, 'CERTIFICATE', `${uf}.client-certificate`, file);
      requirePem(key, 'PRIVATE KEY', `${uf}.client-key`, file);
      out.cert = cert;
      out.key = key;
      try {
        const m = /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(cert).subject);
        if (m) out.certCommonName = m[1];
      } catch (e) {
        throw fieldError(`${uf}.client-certificate`, `is not a valid X.509 certificate: ${(e as Error).message}`, file, e);
      }
    }
    const token = optString(user, 'token', uf, file);
    const tokenFile = optString(user, 'tokenFile', uf, file);
    if (token) out.token = token;
    else if (tokenFile) {
      out.tokenFile = path.resolve(baseDir, tokenFile);
      readReferenced(out.tokenFile, baseDir, `${uf}.tokenFile`, file); // fail early if it is not there
    }
    const username = optString(user, 'username', uf, file);
    if (username && !out.cert && !out.token && !out.tokenFile) {
      throw invalidArgument('ERR_KUBECONFIG_UNSUPPORTED', `kubeconfig${file ? ` ${file}` : ''}: ${uf}: basic auth (username/password) is not supported`, {
        details: { field: `${uf}.username`, path: file },
      });
    }
  }
  return out;
}

/** Reads and parses a kubeconfig file. */
export function loadKubeconfig(file: string, opts: LoadKubeconfigOptions = {}): KubeConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NodeletError(err.code === 'ENOENT' ? 'NotFound' : 'InvalidArgument', 'ERR_KUBECONFIG_READ', `cannot read kubeconfig ${abs}: ${err.code ?? err.message}`, {
      cause: e,
      details: { path: abs },
    });
  }
  return parseKubeconfig(text, path.dirname(abs), { ...opts, file: abs });
}
