// A scripted HTTPS server standing in for kube-apiserver in the client's unit
// tests: a throwaway CA, a serving certificate for 127.0.0.1 and client
// certificates, all made by openssl in a temp dir; it asks for a client
// certificate and records the CN each request came with.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createKubeClient, type HttpKubeClient, type KubeClientOptions } from '../../../src/kube/client.js';

export interface Pki {
  dir: string;
  caFile: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCertFile: string;
  clientKeyFile: string;
  /** a CA that signed nothing here (for TLS failures) */
  otherCaFile: string;
  cleanup(): void;
}

function ossl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makePki(clientCN = 'system:node:test-node', clientO = 'system:nodes'): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodelet-kube-pki-'));
  const ec = (name: string) => ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  for (const ca of ['ca', 'other-ca']) {
    ec(ca);
    ossl(['req', '-x509', '-new', '-key', `${ca}.key`, '-subj', `/CN=${ca}`, '-days', '2', '-out', `${ca}.crt`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,digitalSignature'], dir);
  }
  const leaf = (name: string, subj: string, ext: string) => {
    ec(name);
    ossl(['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`], dir);
    writeFileSync(path.join(dir, `${name}.ext`), `[ext]\nbasicConstraints=CA:FALSE\n${ext}\n`);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', `${name}.ext`, '-extensions', 'ext', '-out', `${name}.crt`], dir);
  };
  leaf('server', '/CN=fake-apiserver', 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost');
  leaf('client', `/O=${clientO}/CN=${clientCN}`, 'extendedKeyUsage=clientAuth');
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    caFile: f('ca.crt'),
    ca: readFileSync(f('ca.crt')),
    serverCert: readFileSync(f('server.crt')),
    serverKey: readFileSync(f('server.key')),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
    otherCaFile: f('other-ca.crt'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface SeenRequest {
  method: string;
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  /** CN of the verified client certificate, if one was sent */
  clientCN?: string;
}

export type Handler = (req: SeenRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface FakeApiServer {
  url: string;
  port: number;
  requests: SeenRequest[];
  handler: Handler;
  /** destroys every open connection (a server crash, as seen by the client) */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startFakeApiServer(pki: Pki, handler: Handler): Promise<FakeApiServer> {
  const sockets = new Set<Socket>();
  const requests: SeenRequest[] = [];
  const state = { handler };
  const server = https.createServer(
    { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: false },
    (raw, res) => {
      const chunks: Buffer[] = [];
      raw.on('data', (c: Buffer) => chunks.push(c));
      raw.on('end', () => {
        const u = new URL(raw.url ?? '/', 'https://127.0.0.1');
        const tls = raw.socket as TLSSocket;
        const peer = tls.authorized ? tls.getPeerCertificate() : undefined;
        const seen: SeenRequest = {
          method: raw.method ?? 'GET',
          url: raw.url ?? '/',
          path: u.pathname,
          query: u.searchParams,
          headers: raw.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          ...(peer && peer.subject ? { clientCN: String(peer.subject.CN) } : {}),
        };
        requests.push(seen);
        Promise.resolve(state.handler(seen, res, raw)).catch((e) => {
          if (!res.headersSent) res.writeHead(599);
          res.end(String(e));
        });
      });
    },
  );
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    get handler() {
      return state.handler;
    },
    set handler(h: Handler) {
      state.handler = h;
    },
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** A kubeconfig in pki.dir pointing at `server` with the client pair (as file paths, relative). */
export function writeKubeconfig(pki: Pki, server: string, name = 'kubeconfig'): string {
  const file = path.join(pki.dir, name);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: ${server}
    certificate-authority: ca.crt
users:
- name: node
  user:
    client-certificate: client.crt
    client-key: client.key
contexts:
- name: node@fake
  context: {cluster: fake, user: node}
current-context: node@fake
`,
  );
  return file;
}

export interface FakeCluster {
  pki: Pki;
  srv: FakeApiServer;
  client: HttpKubeClient;
  /** closes the client and the server, removes the PKI */
  close(): Promise<void>;
}

/**
 * The kube tests' fixture: a PKI (client certificate for `clientCN`), a fake API server that answers 500
 * until a test sets its handler, and an HttpKubeClient of it through a kubeconfig.
 */
export async function startFakeCluster(opts: { clientCN?: string; client?: KubeClientOptions } = {}): Promise<FakeCluster> {
  const pki = makePki(opts.clientCN);
  let srv: FakeApiServer | undefined;
  try {
    srv = await startFakeApiServer(pki, (_r, res) => sendJson(res, 500, status(500, 'InternalError', 'no handler')));
    const client = createKubeClient(writeKubeconfig(pki, srv.url), opts.client);
    const s = srv;
    return {
      pki,
      srv: s,
      client,
      close: async () => {
        await client.close();
        await s.close();
        pki.cleanup();
      },
    };
  } catch (e) {
    await srv?.close();
    pki.cleanup();
    throw e;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
