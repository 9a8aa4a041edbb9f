// Bounds on a client of one of our HTTP servers before it is served (the local API on its unix socket, the
// kubelet API on TLS): the request headers (and the TLS handshake) within `headersMs`, the whole request within
// `requestMs`, else node answers 408 and closes. Responses that stream are not bounded by them.
import type http from 'node:http';

export interface RequestBounds {
  /** default 10 s */
  headersMs?: number;
  /** default 60 s */
  requestMs?: number;
}

/** createServer options: node checks the header and request bounds on this interval (default 30 s, too coarse for a 10 s bound). */
export function boundsServerOptions(b: RequestBounds | undefined): { connectionsCheckingInterval: number; headersMs: number } {
  const headersMs = b?.headersMs ?? 10_000;
  return { connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersMs / 4))), headersMs };
}

/** Applies the bounds and the 5 s keep-alive idle close to a created server. */
export function applyRequestBounds(server: http.Server, b: RequestBounds | undefined): void {
  server.keepAliveTimeout = 5000;
  server.headersTimeout = boundsServerOptions(b).headersMs;
  server.requestTimeout = b?.requestMs ?? 60_000;
}
