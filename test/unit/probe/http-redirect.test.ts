// kubelet pkg/probe/http: a redirect to another host is not followed (RedirectChecker(false) →
// http.ErrUseLastResponse) and a 3xx response ends the probe with probe.Warning,
// "Probe terminated redirects, Response body: <body>"; same-host redirects are followed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runProbe } from '../../../src/probe/probers.js';

let server: http.Server;
let port = 0;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/other-host') res.writeHead(302, { Location: 'http://other.invalid:8080/healthz' }).end('moved away');
    else if (req.url === '/same-host') res.writeHead(301, { Location: '/ok' }).end();
    else if (req.url === '/no-location') res.writeHead(304).end();
    else res.writeHead(200).end('fine');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const probe = (path: string) => runProbe({ httpGet: { path, port }, timeoutSeconds: 2 }, { podIP: '127.0.0.1', containerId: 'c', runtime: { execSync: async () => { throw new Error('no exec'); } }, ports: [] });

describe('httpGet probe redirects', () => {
  it('another host: not followed, a warning with the 3xx body', async () => {
    expect(await probe('/other-host')).toEqual({ result: 'warning', output: 'Probe terminated redirects, Response body: moved away' });
  });
  it('same host: followed', async () => {
    expect(await probe('/same-host')).toEqual({ result: 'success', output: 'fine' });
  });
  it('a 3xx without Location: the response itself, a warning', async () => {
    expect(await probe('/no-location')).toEqual({ result: 'warning', output: 'Probe terminated redirects, Response body: ' });
  });
});
