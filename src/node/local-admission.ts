// kubelet's resource admission where there is no API server (the standalone daemon, `nodelet run`):
// the same computePodAdmission (src/pod/admission.ts) cluster mode runs against the Node object, here
// against the Node this host would be — its allocatable (capacity minus --kube-reserved,
// --system-reserved and the hard eviction threshold, as src/node/status.ts computes it) and the labels
// kubelet sets. A pod asking for more memory than the machine has is Failed with OutOfmemory and
// kubelet's message, never started.
import type { Pod } from '../pod/api-types.js';
import { computePodAdmission, rejectionMessage, type AdmissionPod } from '../pod/admission.js';
import { readHostInfo, type HostInfo } from './host-info.js';
import { computeAllocatable, computeCapacity, defaultNodeStatusConfig, nodeLabels, type NodeStatusConfig } from './status.js';

export type Admit = (pod: Pod, admitted: Pod[]) => { reason: string; message: string } | undefined;

/** The admission function for a node described by `host` (pure; tests give it a HostInfo). */
export function admitterFor(host: HostInfo, nodeName: string, status: Partial<NodeStatusConfig> = {}): Admit {
  const config = defaultNodeStatusConfig(status);
  const allocatable = computeAllocatable(computeCapacity(host, config.maxPods), config);
  const node = {
    name: nodeName,
    labels: nodeLabels({ hostname: nodeName, operatingSystem: host.operatingSystem, architecture: host.architecture }),
    allocatable,
  };
  return (pod, admitted) => {
    const r = computePodAdmission(pod as unknown as AdmissionPod, node, admitted as unknown as AdmissionPod[]);
    return r.admit ? undefined : { reason: r.reason, message: rejectionMessage(r.message) };
  };
}

/** Reads this host once (capacity does not change while the agent runs) and admits against it. */
export async function localAdmitter(o: { rootDir: string; nodeName?: string; status?: Partial<NodeStatusConfig> }): Promise<Admit> {
  const host = await readHostInfo({ rootDir: o.rootDir });
  return admitterFor(host, o.nodeName ?? host.hostname, o.status);
}
