// grpc probes (kubelet pkg/probe/grpc): grpc.health.v1.Health/Check over h2c,
// with a hand-coded protobuf request and response.

import net from 'node:net';
import type { ProbeOutcome } from '../pod/probe.js';

/** protobuf HealthCheckRequest { string service = 1; } in a gRPC length-prefixed frame. */
export function encodeHealthRequest(service: string): Buffer {
  const s = Buffer.from(service, 'utf8');
  const msg = s.length ? Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]) : Buffer.alloc(0);
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** Decode HealthCheckResponse { ServingStatus status = 1; } from a gRPC frame; returns the enum value. */
export function decodeHealthResponse(buf: Buffer): number {
  if (buf.length < 5) throw new Error('short gRPC frame');
  const len = buf.readUInt32BE(1);
  const msg = buf.subarray(5, 5 + len);
  let status = 0;
  let i = 0;
  while (i < msg.length) {
    const key = msg[i++]!;
    const field = key >> 3;
    const wt = key & 7;
    if (wt === 0) {
      let v = 0, shift = 0, b;
      do {
        b = msg[i++]!;
        v |= (b & 0x7f) << shift;
        shift += 7;
      } while (b & 0x80);
      if (field === 1) status = v;
    } else if (wt === 2) {
      let l = 0, shift = 0, b;
      do {
        b = msg[i++]!;
        l |= (b & 0x7f) << shift;
        shift += 7;
      } while (b & 0x80);
      i += l;
    } else throw new Error(`unexpected protobuf wire type ${wt}`);
  }
  return status;
}

export async function grpcProbe(host: string, port: number, service: string, timeoutMs: number): Promise<ProbeOutcome> {
  const http2 = await import('node:http2'); // loaded on first use (~10 ms)
  return new Promise((resolve) => {
    const target = `${host}:${port}`;
    let settled = false;
    const finish = (o: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(o);
    };
    const hostPart = net.isIPv6(host) ? `[${host}]` : host;
    const session = http2.connect(`http://${hostPart}:${port}`);
    const timer = setTimeout(() => finish({ result: 'failure', output: `timeout: health rpc did not complete within ${timeoutMs / 1000}s` }), timeoutMs);
    session.on('error', (e) => finish({ result: 'failure', output: `timeout: failed to connect service "${target}" within ${timeoutMs / 1000}s: ${e.message}` }));
    const req = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'kube-probe/1.34',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status'] ?? grpcStatus ?? '');
      grpcMessage = decodeURIComponent(String(t['grpc-message'] ?? ''));
    });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e) => finish({ result: 'failure', output: `rpc error: ${e.message}` }));
    req.on('end', () => {
      if (grpcStatus !== '0') {
        const msg = grpcStatus === '12' ? 'this server does not implement the grpc health protocol (grpc.health.v1.Health)' : grpcMessage;
        return finish({ result: 'failure', output: `rpc error: code = ${grpcStatus ?? 'unknown'} desc = ${msg}` });
      }
      try {
        const st = decodeHealthResponse(Buffer.concat(chunks));
        if (st === 1) finish({ result: 'success', output: '' });
        else finish({ result: 'failure', output: `service unhealthy (responded with "${SERVING_STATUS[st] ?? st}")` });
      } catch (e) {
        finish({ result: 'failure', output: `rpc error: ${(e as Error).message}` });
      }
    });
    req.end(encodeHealthRequest(service));
  });
}
