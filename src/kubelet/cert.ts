// The kubelet server's serving certificate: self-signed per node, like kubelet
// without --tls-cert-file (pkg/kubelet/certificate: a self-signed pair under
// its cert dir). Node 20 can read X.509 (crypto.X509Certificate) but not make
// it, so `openssl` (OpenSSL ≥ 1.1.1, for -addext) makes it: EC P-256, CN=<node>,
// SANs = the node's IPs and host names, serverAuth, a year. Kept in
// <root>/pki/kubelet.{crt,key} (0600) and reused while it is valid for more
// than a day and names the same SANs.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { internal } from '../errors.js';
import { getLogger } from '../log.js';

const log = getLogger('kubelet');

export interface ServingCertOptions {
  /** <root>/pki is created (0700) */
  dir: string;
  nodeName: string;
  /** IPs and DNS names for subjectAltName (IPs are recognised) */
  names: string[];
  /** default 365 */
  days?: number;
  now?: () => number;
}

export interface ServingCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** true when this call made a new pair */
  created: boolean;
}

const DAY_MS = 86_400_000;

/** `IP:127.0.0.1,DNS:node-a` for the given names (deduplicated, in order). */
export function subjectAltNames(names: string[]): string {
  return [...new Set(names.filter(Boolean))].map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/** Does this PEM certificate serve these names and stay valid for at least a day more? */
export function certStillGood(pem: Buffer, names: string[], now = Date.now()): boolean {
  try {
    const x = new X509Certificate(pem);
    if (Date.parse(x.validTo) - now < DAY_MS || Date.parse(x.validFrom) > now) return false;
    const have = new Set((x.subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^IP Address:/, 'IP:')));
    return subjectAltNames(names).split(',').every((n) => have.has(n));
  } catch {
    return false;
  }
}

function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(internal('ERR_KUBELET_SERVING_CERT', `openssl ${args[0]} failed making the kubelet serving certificate: ${String(stderr).trim() || err.message} (is openssl ≥ 1.1.1 installed?)`, { cause: err }));
      else resolve();
    });
  });
}

export async function ensureServingCert(o: ServingCertOptions): Promise<ServingCert> {
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(o.dir, 'kubelet.crt');
  const keyFile = path.join(o.dir, 'kubelet.key');
  const now = o.now?.() ?? Date.now();
  try {
    const cert = fs.readFileSync(certFile);
    const key = fs.readFileSync(keyFile);
    if (certStillGood(cert, o.names, now)) return { certFile, keyFile, cert, key, created: false };
    log.info('kubelet serving certificate expires soon or names other addresses: making a new one', { file: certFile });
  } catch { /* none yet */ }
  const tmpKey = `${keyFile}.tmp`;
  const tmpCert = `${certFile}.tmp`;
  const old = process.umask(0o077);
  try {
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', tmpKey, '-out', tmpCert,
      '-days', String(o.days ?? 365), '-sha256', '-subj', `/CN=${o.nodeName.replace(/[/\\]/g, '_')}`,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
      '-addext', 'extendedKeyUsage=serverAuth', '-addext', `subjectAltName=${subjectAltNames(o.names)}`]);
  } finally {
    process.umask(old);
  }
  fs.chmodSync(tmpKey, 0o600);
  fs.chmodSync(tmpCert, 0o600);
  fs.renameSync(tmpKey, keyFile);
  fs.renameSync(tmpCert, certFile);
  log.info('made the kubelet serving certificate', { file: certFile, names: subjectAltNames(o.names) });
  return { certFile, keyFile, cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), created: true };
}
