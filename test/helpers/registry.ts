// Test harness: a real Distribution registry (`docker-registry serve`) on
// 127.0.0.1 with temporary storage, optionally with TLS (a CA made by
// openssl here), htpasswd Basic auth, or token auth (a node:http token server
// signing RS256 JWTs with a test key listed in the registry's rootcertbundle).
// pushImage()/pushIndex() upload over the registry HTTP API; startProxy()
// puts a fault-injecting HTTP proxy in front of a registry.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, sign as cryptoSign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { Agent, request } from 'undici';

export function tmpRoot(prefix = 'nodelet-test-'): string {
  mkdirSync('/dev/shm', { recursive: true });
  return mkdtempSync(path.join('/dev/shm', prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export interface RegistryOptions {
  tls?: boolean;
  basic?: { user: string; pass: string };
  /** token auth; with user/pass the token endpoint requires them. */
  token?: { user?: string; pass?: string; field?: 'token' | 'access_token' };
}

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  url: string;
  dir: string;
  /** certs.d-style directory holding <host>/ca.crt (TLS only) */
  certsDir?: string;
  caFile?: string;
  /** token requests seen by the token server */
  tokenRequests: { scope: string | null; service: string | null; authorization?: string }[];
  /** Authorization header for pushes. */
  adminAuth(scope: string): string | undefined;
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** CA + server cert for 127.0.0.1/localhost, and a self-signed token signing cert. */
function makeCerts(dir: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=nodelet test CA'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf'], dir);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = tmpRoot('nodelet-test-registry-');
  const procs: ChildProcess[] = [];
  const servers: http.Server[] = [];
  const tokenRequests: TestRegistry['tokenRequests'] = [];
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/storage`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
    ];
    let certsDir: string | undefined;
    let caFile: string | undefined;
    if (opts.tls) {
      makeCerts(dir);
      lines.push('  tls:', `    certificate: ${dir}/server.crt`, `    key: ${dir}/server.key`);
      certsDir = path.join(dir, 'certs.d');
      mkdirSync(path.join(certsDir, host), { recursive: true });
      caFile = path.join(dir, 'ca.crt');
      writeFileSync(path.join(certsDir, host, 'ca.crt'), readFileSync(caFile));
    }
    let adminAuth: (scope: string) => string | undefined = () => undefined;
    if (opts.basic) {
      const line = execFileSync('htpasswd', ['-Bbn', opts.basic.user, opts.basic.pass], { encoding: 'utf8' }).trim();
      writeFileSync(path.join(dir, 'htpasswd'), line + '\n');
      lines.push('auth:', '  htpasswd:', '    realm: nodelet-test', `    path: ${dir}/htpasswd`);
      const b = 'Basic ' + Buffer.from(`${opts.basic.user}:${opts.basic.pass}`).toString('base64');
      adminAuth = () => b;
    }
    if (opts.token) {
      openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=nodelet test token issuer'], dir);
      const key = readFileSync(path.join(dir, 'token.key'), 'utf8');
      const der = Buffer.from(
        readFileSync(path.join(dir, 'token.crt'), 'utf8').replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
        'base64',
      );
      const service = 'nodelet-test-registry';
      const issuer = 'nodelet-test-issuer';
      const mint = (scope: string | null, sub: string): string => {
        const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
        const now = Math.floor(Date.now() / 1000);
        const access = [];
        if (scope) {
          for (const s of scope.split(' ')) {
            const [type, name, actions] = s.split(':');
            if (type && name && actions) access.push({ type, name, actions: actions.split(',') });
          }
        }
        const claims = { iss: issuer, sub, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
        const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
        return `${input}.${b64url(cryptoSign('sha256', Buffer.from(input), key))}`;
      };
      const tok = opts.token;
      const srv = http.createServer((req, res) => {
        const u = new URL(req.url ?? '/', 'http://x');
        tokenRequests.push({ scope: u.searchParams.get('scope'), service: u.searchParams.get('service'), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
        if (tok.user !== undefined) {
          const want = 'Basic ' + Buffer.from(`${tok.user}:${tok.pass}`).toString('base64');
          if (req.headers.authorization !== want) {
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
            return;
          }
        }
        const t = mint(u.searchParams.get('scope'), tok.user ?? 'anonymous');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(tok.field === 'access_token' ? { access_token: t, expires_in: 300 } : { token: t, expires_in: 300 }));
      });
      servers.push(srv);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const realm = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/token`;
      lines.push('auth:', '  token:', `    realm: ${realm}`, `    service: ${service}`, `    issuer: ${issuer}`, `    rootcertbundle: ${dir}/token.crt`);
      adminAuth = (scope) => `Bearer ${mint(scope, 'admin')}`;
    }
    writeFileSync(path.join(dir, 'config.yml'), lines.join('\n') + '\n');
    const proc = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(proc);
    let stderr = '';
    let spawnError: Error | undefined;
    proc.on('error', (e) => (spawnError = e)); // not installed (scripts/setup), or not executable
    proc.stderr!.on('data', (d) => (stderr += d));
    const url = `${opts.tls ? 'https' : 'http'}://${host}`;
    const agent = new Agent({ connect: { rejectUnauthorized: false } });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (spawnError) throw new Error(`cannot start docker-registry (scripts/setup installs it): ${spawnError.message}`);
      if (proc.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
      try {
        const r = await request(`${url}/v2/`, { dispatcher: agent });
        await r.body.dump();
        if (r.statusCode === 200 || r.statusCode === 401) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not come up: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await agent.close();
    const stop = async () => {
      for (const p of procs) {
        if (p.exitCode === null) {
          p.kill('SIGTERM');
          await new Promise((r) => p.once('exit', r));
        }
      }
      for (const s of servers) await new Promise((r) => s.close(r));
      rmSync(dir, { recursive: true, force: true });
    };
    return { host, url, dir, ...(certsDir ? { certsDir, caFile } : {}), tokenRequests, adminAuth, stop };
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

// ---- image building --------------------------------------------------------

export interface LayerEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string | Buffer;
  mode?: number;
  linkname?: string;
}

export interface BuiltLayer {
  blob: Buffer;
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
}

export async function tarOf(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const hdr = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(1_700_000_000_000), ...(e.linkname ? { linkname: e.linkname } : {}) };
    if (type === 'file') pack.entry(hdr, typeof e.content === 'string' ? Buffer.from(e.content) : e.content ?? Buffer.alloc(0));
    else pack.entry(hdr);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function makeLayer(entries: LayerEntry[], compression: 'gzip' | 'none' = 'gzip'): Promise<BuiltLayer> {
  const raw = await tarOf(entries);
  const blob = compression === 'gzip' ? gzipSync(raw) : raw;
  return {
    blob,
    digest: sha256(blob),
    diffId: sha256(raw),
    mediaType: compression === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
    size: blob.length,
  };
}

export interface BuiltImage {
  layers: BuiltLayer[];
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
}

export function makeImage(
  layers: BuiltLayer[],
  o: { os?: string; architecture?: string; variant?: string; config?: Record<string, unknown>; docker?: boolean; diffIds?: string[] } = {},
): BuiltImage {
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: o.architecture ?? 'amd64',
      os: o.os ?? 'linux',
      ...(o.variant ? { variant: o.variant } : {}),
      config: o.config ?? { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: o.diffIds ?? layers.map((l) => l.diffId) },
    }),
  );
  const manifestMediaType = o.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestMediaType,
      config: { mediaType: o.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({
        mediaType: o.docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : l.mediaType,
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  return { layers, config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest), manifestMediaType };
}

// ---- pushing over the registry API -------------------------------------------

function clientFor(reg: TestRegistry): Agent {
  return new Agent({ connect: reg.caFile ? { ca: readFileSync(reg.caFile, 'utf8') } : {} });
}

export async function pushBlob(reg: TestRegistry, repo: string, blob: Buffer, agent = clientFor(reg)): Promise<string> {
  const digest = sha256(blob);
  const auth = reg.adminAuth(`repository:${repo}:pull,push`);
  const h: Record<string, string> = auth ? { authorization: auth } : {};
  const post = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: h, dispatcher: agent });
  await post.body.dump();
  if (post.statusCode !== 202) throw new Error(`POST upload: ${post.statusCode}`);
  const loc = new URL(String(post.headers.location), reg.url);
  loc.searchParams.set('digest', digest);
  const put = await request(loc.toString(), {
    method: 'PUT',
    headers: { ...h, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
    body: blob,
    dispatcher: agent,
  });
  const t = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`PUT blob: ${put.statusCode} ${t}`);
  return digest;
}

export async function pushManifest(reg: TestRegistry, repo: string, ref: string, body: Buffer, mediaType: string, agent = clientFor(reg)): Promise<string> {
  const auth = reg.adminAuth(`repository:${repo}:pull,push`);
  const res = await request(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    headers: { ...(auth ? { authorization: auth } : {}), 'content-type': mediaType },
    body,
    dispatcher: agent,
  });
  const t = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT manifest: ${res.statusCode} ${t}`);
  return sha256(body);
}

/** Uploads layers, config and manifest; tags it `tag` (or only by digest when tag is undefined). */
export async function pushImage(reg: TestRegistry, repo: string, tag: string | undefined, img: BuiltImage): Promise<string> {
  const agent = clientFor(reg);
  try {
    for (const l of img.layers) await pushBlob(reg, repo, l.blob, agent);
    await pushBlob(reg, repo, img.config, agent);
    return await pushManifest(reg, repo, tag ?? img.manifestDigest, img.manifest, img.manifestMediaType, agent);
  } finally {
    await agent.close();
  }
}

/** Pushes the images and an OCI index (or Docker manifest list) over them, tagged `tag`. */
export async function pushIndex(
  reg: TestRegistry,
  repo: string,
  tag: string,
  entries: { image: BuiltImage; platform: { os: string; architecture: string; variant?: string } }[],
  o: { docker?: boolean } = {},
): Promise<string> {
  for (const e of entries) await pushImage(reg, repo, undefined, e.image);
  const mediaType = o.docker ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json';
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: entries.map((e) => ({ mediaType: e.image.manifestMediaType, digest: e.image.manifestDigest, size: e.image.manifest.length, platform: e.platform })),
    }),
  );
  return pushManifest(reg, repo, tag, body, mediaType);
}

// ---- fault proxy -------------------------------------------------------------

export type ProxyAction =
  | { kind: 'pass' }
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  /** forward, but cut the connection after `bytes` body bytes */
  | { kind: 'truncate'; bytes: number }
  /** forward, replacing the response body (same length kept if possible) */
  | { kind: 'corrupt' };

export interface FaultProxy {
  host: string;
  url: string;
  requests: { method: string; url: string; range?: string }[];
  stop(): Promise<void>;
}

/** An HTTP proxy in front of a plain-HTTP registry; `decide` picks an action per request. */
export async function startProxy(targetUrl: string, decide: (req: http.IncomingMessage, n: number) => ProxyAction): Promise<FaultProxy> {
  const requests: FaultProxy['requests'] = [];
  let n = 0;
  const sockets = new Set<net.Socket>();
  const srv = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '', ...(req.headers.range ? { range: String(req.headers.range) } : {}) });
    const action = decide(req, n++);
    if (action.kind === 'status') {
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(action.body ?? '{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}');
      return;
    }
    const t = new URL(targetUrl);
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
      (ures) => {
        const headers = { ...ures.headers };
        if (headers.location) headers.location = String(headers.location).replace(targetUrl, `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`);
        res.writeHead(ures.statusCode ?? 502, headers);
        if (action.kind === 'truncate') {
          let sent = 0;
          ures.on('data', (c: Buffer) => {
            if (sent >= action.bytes) return;
            const part = c.subarray(0, action.bytes - sent);
            sent += part.length;
            res.write(part);
            if (sent >= action.bytes) {
              ures.destroy();
              setTimeout(() => res.socket?.destroy(), 20);
            }
          });
          ures.on('end', () => res.end());
        } else if (action.kind === 'corrupt') {
          ures.on('data', (c: Buffer) => {
            const x = Buffer.from(c);
            x[0] = x[0]! ^ 0xff;
            res.write(x);
          });
          ures.on('end', () => res.end());
        } else ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}
