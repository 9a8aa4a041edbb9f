// A real `nodelet daemon` child per test, with an HTTP-over-unix-socket client.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { start, waitUntil, type Env, type Running } from './helpers.js';

export interface DaemonHandle {
  proc: Running;
  socket: string;
  manifestDir: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startDaemon(env: Env, extra: string[] = []): Promise<DaemonHandle> {
  const socket = path.join(env.dir, 'nodelet.sock');
  const manifestDir = path.join(env.dir, 'manifests');
  fs.mkdirSync(manifestDir, { recursive: true });
  const proc = start([...env.globals, 'daemon', ...env.nodeFlags, '--socket', socket, '--manifest-dir', manifestDir, '--rescan', '1000', ...extra]);
  await waitUntil(async () => (await api(socket, 'GET', '/healthz').catch(() => undefined))?.status === 200, 20_000, `daemon socket ${socket}\n${proc.stderr()}`);
  return {
    proc, socket, manifestDir,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.child.exitCode === null) proc.child.kill(signal);
      await proc.done;
    },
  };
}

export function api(socket: string, method: string, p: string, body?: string, type = 'application/json'): Promise<{ status: number; body: string; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: p, headers: body !== undefined ? { 'content-type': type } : {} }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => {
        let json: any;
        try { json = JSON.parse(b); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, body: b, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Collects a watch stream's events until stopped. */
export function watch(socket: string, p: string): { events: { type: string; object: any }[]; stop(): void } {
  const events: { type: string; object: any }[] = [];
  let buf = '';
  const req = http.request({ socketPath: socket, method: 'GET', path: p }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line) events.push(JSON.parse(line));
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { events, stop: () => req.destroy() };
}

export async function getPod(socket: string, name: string, ns = 'default'): Promise<any> {
  const r = await api(socket, 'GET', `/api/v1/namespaces/${ns}/pods/${name}`);
  return r.status === 200 ? r.json : undefined;
}

export async function waitPod(socket: string, name: string, pred: (p: any) => boolean, timeoutMs = 30_000): Promise<any> {
  let last: any;
  try {
    return await waitUntil(async () => {
      last = await getPod(socket, name);
      return last && pred(last) ? last : undefined;
    }, timeoutMs, `pod ${name}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  }
}

export const cstatus = (pod: any, name: string) => (pod.status?.containerStatuses ?? []).find((c: any) => c.name === name);

/** Delete every pod through the API (so the daemon tears everything down), stop the daemon, remove the env. */
export async function stopAndClean(daemon: DaemonHandle | undefined, env: Env | undefined): Promise<void> {
  if (daemon && daemon.proc.child.exitCode === null) {
    const list = await api(daemon.socket, 'GET', '/api/v1/pods').catch(() => undefined);
    const dump = setTimeout(() => console.error(`daemon stderr:\n${daemon.proc.stderr().slice(-4000)}`), 30_000);
    for (const p of list?.json?.items ?? []) await api(daemon.socket, 'DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}?gracePeriodSeconds=0&wait=1`);
    await daemon.stop();
    clearTimeout(dump);
  }
  await env?.cleanup();
}
