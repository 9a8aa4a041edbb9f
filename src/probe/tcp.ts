// tcpSocket probes (kubelet pkg/probe/tcp): success when a connection opens within the timeout.

import net from 'node:net';
import type { ProbeOutcome } from '../pod/probe.js';

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ result: 'failure', output: `dial tcp ${host}:${port}: i/o timeout` });
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ result: 'success', output: '' });
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      resolve({ result: 'failure', output: `dial tcp ${host}:${port}: ${e.message}` });
    });
  });
}
