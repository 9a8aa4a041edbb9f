// Cluster mode's entry to the kubelet server: the client CA (--client-ca-file,
// else the kubeconfig's cluster CA, which signs the API server's kubelet client
// certificate in scripts/control-plane and kubeadm clusters), the serving
// certificate's names (node IP, node name, host name) and the delegated auth
// through the node's own API client.
import fs from 'node:fs';
import os from 'node:os';
import { describeError, invalidArgument } from '../errors.js';
import { loadKubeconfig } from '../kube/kubeconfig.js';
import type { KubeClient } from '../kube/types.js';
import type { NodeAgent } from '../agent/node-agent.js';
import { primaryIPv4Sync } from '../node/host-info.js';
import { DelegatedAuth } from './auth.js';
import { DEFAULT_KUBELET_PORT, KubeletServer } from './server.js';

export { KubeletServer, DEFAULT_KUBELET_PORT } from './server.js';

export interface StartKubeletOptions {
  agent: NodeAgent;
  client: KubeClient;
  kubeconfig: string;
  nodeName: string;
  nodeIP?: string;
  root: string;
  port?: number;
  address?: string;
  clientCAFile?: string;
}

export function clientCA(o: { kubeconfig: string; clientCAFile?: string }): Buffer {
  if (o.clientCAFile) {
    try {
      return fs.readFileSync(o.clientCAFile);
    } catch (e) {
      throw invalidArgument('ERR_KUBELET_CLIENT_CA', `--client-ca-file ${o.clientCAFile}: ${describeError(e)}`, { cause: e });
    }
  }
  const ca = loadKubeconfig(o.kubeconfig).ca;
  if (!ca) throw invalidArgument('ERR_KUBELET_CLIENT_CA', `the kubeconfig ${o.kubeconfig} has no certificate-authority for its cluster: give the kubelet server a --client-ca-file (or --kubelet-port 0)`);
  return ca;
}

export async function startKubeletServer(o: StartKubeletOptions): Promise<KubeletServer> {
  const nodeIP = o.nodeIP ?? primaryIPv4Sync();
  const s = new KubeletServer({
    agent: o.agent,
    nodeName: o.nodeName,
    port: o.port ?? DEFAULT_KUBELET_PORT,
    address: o.address,
    root: o.root,
    names: [nodeIP, o.nodeName, os.hostname().toLowerCase()],
    clientCA: clientCA(o),
    auth: new DelegatedAuth({ client: o.client }),
  });
  await s.start();
  return s;
}
