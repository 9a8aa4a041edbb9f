// The local API's socket bounds (issue 12): a client that trickles its
// headers or its body is disconnected after the bound (408, or a bare close
// when the request handler already runs), an idle client
// holds nothing, and a normal request is served. Against the real ApiServer
// on a real unix socket.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApiServer } from '../../../src/api/server.js';
import type { NodeAgent } from '../../../src/agent/node-agent.js';

let dir: string | undefined;
let server: ApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<string> {
  dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'nodelet-test-'));
  const socket = path.join(dir, 'api.sock');
  const agent = { findPod: () => undefined, listPods: () => [] } as unknown as NodeAgent;
  server = new ApiServer({ agent, socket, timeouts: { headersMs: 300, requestMs: 600 } });
  await server.listen();
  return socket;
}

/** Writes `chunks` one every `everyMs` until the server closes; resolves with what it answered and when. */
function trickle(socket: string, chunks: string[], everyMs: number): Promise<{ answer: string; sent: number }> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    let answer = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < chunks.length && !c.destroyed) c.write(chunks[i++]!);
    }, everyMs);
    c.on('data', (d) => (answer += d.toString()));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearInterval(timer);
      resolve({ answer, sent: i });
    });
  });
}

describe('API socket timeouts', () => {
  it('a client trickling its headers is cut off with 408', async () => {
    const socket = await start();
    const header = 'GET /api/v1/pods HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200) + '\r\n\r\n';
    const r = await trickle(socket, header.split(''), 20); // ~5 s to send it all
    expect(r.answer).toMatch(/^(HTTP\/1\.1 408[^]*)?$/); // 408, or a bare close when node's check races the parser
    expect(r.sent).toBeLessThan(header.length); // cut off before the headers were complete
  });

  it('a client trickling its body is cut off', async () => {
    const socket = await start();
    const body = JSON.stringify({ x: 'y'.repeat(200) });
    const head = `POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await trickle(socket, [head, ...body.split('')], 20);
    expect(r.answer).toMatch(/^(HTTP\/1\.1 408[^]*)?$/);
    expect(r.sent).toBeLessThan(1 + body.length);
  });

  it('a well-behaved request is still served', async () => {
    const socket = await start();
    const r = await trickle(socket, ['GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 1);
    expect(r.answer).toMatch(/^HTTP\/1\.1 200/);
  });
});
