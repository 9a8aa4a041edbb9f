// Cluster mode: nodelet as a node of a real Kubernetes control plane.
//
//   NodeController   registers (or adopts) the Node, posts its status every 10 s when it changed
//   LeaseController  kube-node-lease/<node>, renewed every 10 s
//   ApiServerPodSource  list+watch of the pods bound to the node → the agent's 'apiserver' source
//   ObjectResolver   ConfigMaps, Secrets and service-account tokens those pods reference
//   ServiceEnvCache  every Service (list+watch): the containers' service env (kubelet's service lister)
//   StatusSyncer     pod status PATCHes, the final DELETE after a graceful deletion
//   EventSink        core/v1 Events for the API server's pods
//   MirrorPods       the API server's read-only copies of the static pods
// plus kubelet's node-level admission (OutOfcpu/OutOfmemory/OutOfpods …) against the Node's allocatable.
// The agent itself knows none of this: it sees one more pod source and one more status subscriber.
import os from 'node:os';
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import { createKubeClient } from '../kube/client.js';
import type { KubeClient } from '../kube/types.js';
import { NodeController } from '../node/controller.js';
import { LeaseController } from '../node/lease.js';
import { readHostInfo } from '../node/host-info.js';
import type { NodeStatusConfig } from '../node/status.js';
import { computePodAdmission, rejectionMessage, type AdmissionPod } from '../pod/admission.js';
import type { Pod } from '../pod/api-types.js';
import type { NodeAgent } from '../agent/node-agent.js';
import { SOURCE_ANNOTATION } from '../agent/pod-config.js';
import type { RecordedEvent } from '../agent/events.js';
import { ObjectResolver } from './objects.js';
import { ApiServerPodSource, APISERVER_SOURCE, type ApiPod } from './pod-source.js';
import { StatusSyncer } from './status-syncer.js';
import { EventSink } from './events.js';
import { MirrorPods } from './mirror-pods.js';
import { ServiceEnvCache } from './service-env.js';
import { startKubeletServer, type KubeletServer } from '../kubelet/index.js';
import { declaredFeatures, DEFAULT_FEATURE_GATES, type FeatureGates } from '../node/feature-gates.js';

const log = getLogger('cluster');

const SERVICES_SYNC_WAIT_MS = 10_000;

/** true once `synced` resolved true within `ms`; false when it did not (or the informer stopped). */
async function waitSynced(synced: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([synced, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ClusterOptions {
  kubeconfig: string;
  /** --node-name; default the host name, lower-cased */
  nodeName?: string;
  /** --node-ip: the InternalIP to report */
  nodeIP?: string;
  /** the node's state dir (its filesystem is the nodefs) */
  root: string;
  statusConfig?: Partial<NodeStatusConfig>;
  labels?: Record<string, string>;
  /** intervals for tests (ms) */
  nodeStatusUpdateMs?: number;
  leaseRenewMs?: number;
  /** --kubelet-port (default 10250; 0: no kubelet server), --kubelet-address (default 0.0.0.0), --client-ca-file (default the kubeconfig's CA) */
  kubeletPort?: number;
  kubeletAddress?: string;
  clientCAFile?: string;
  /** --feature-gates: ExtendWebSocketsToKubelet (default true) makes the Node declare it while the kubelet server runs */
  featureGates?: FeatureGates;
}

export function defaultNodeName(): string {
  return os.hostname().toLowerCase();
}

export const isApiServerPod = (pod: Pod) => pod.metadata.annotations?.[SOURCE_ANNOTATION] === APISERVER_SOURCE;

export class ClusterMode {
  readonly nodeName: string;
  readonly client: KubeClient;
  readonly node: NodeController;
  readonly lease: LeaseController;
  readonly objects: ObjectResolver;
  readonly pods: ApiServerPodSource;
  readonly status: StatusSyncer;
  readonly events: EventSink;
  readonly mirrors: MirrorPods;
  private readonly apiPods = new Map<string, ApiPod>();
  readonly services: ServiceEnvCache;
  private offEvents?: () => void;
  private kubelet?: KubeletServer;

  private constructor(private readonly agent: NodeAgent, private readonly o: ClusterOptions, client: KubeClient, kubeletPort: number) {
    this.nodeName = o.nodeName ?? defaultNodeName();
    this.client = client;
    this.node = new NodeController({
      client: this.client,
      nodeName: this.nodeName,
      readHost: () => readHostInfo({ rootDir: o.root, nodeIP: o.nodeIP, hostname: this.nodeName }),
      // the kubelet server's port is advertised; the API server proxies WebSocket exec to it as is
      statusConfig: { kubeletPort, ...(kubeletPort ? { declaredFeatures: declaredFeatures(o.featureGates ?? DEFAULT_FEATURE_GATES) } : {}), ...o.statusConfig },
      labels: o.labels,
      ...(o.nodeStatusUpdateMs ? { updateFrequencyMs: o.nodeStatusUpdateMs } : {}),
    });
    this.lease = new LeaseController({ client: this.client, nodeName: this.nodeName, nodeUid: () => this.node.nodeUid, ...(o.leaseRenewMs ? { renewIntervalMs: o.leaseRenewMs } : {}) });
    this.services = new ServiceEnvCache(this.client);
    this.objects = new ObjectResolver({ client: this.client, nodeName: this.nodeName });
    this.mirrors = new MirrorPods({ client: this.client, status: agent.status, nodeName: this.nodeName, nodeUid: () => this.node.nodeUid });
    this.pods = new ApiServerPodSource({
      client: this.client,
      nodeName: this.nodeName,
      source: agent.config.source(APISERVER_SOURCE),
      objects: this.objects,
      known: (uid) => !!agent.getPod(uid),
      serviceEnv: (pod) => this.services.envFor(pod.metadata.namespace ?? 'default', pod.spec.enableServiceLinks !== false),
      onApiPod: (uid, obj) => {
        if (!obj) return void this.apiPods.delete(uid);
        this.apiPods.set(uid, obj);
        this.status?.observed(uid, obj); // readiness gates: conditions others set
      },
      onMirrorPod: (key, obj) => this.mirrors.observe(key, obj),
    });
    this.status = new StatusSyncer({ client: this.client, status: agent.status, isApiPod: isApiServerPod, apiPod: (uid) => this.apiPods.get(uid) });
    this.events = new EventSink({ client: this.client, nodeName: this.nodeName });
  }

  /** Join the cluster: register the node, then take pods. Resolves once the Node is registered. */
  static async start(agent: NodeAgent, o: ClusterOptions): Promise<ClusterMode> {
    const client = createKubeClient(o.kubeconfig);
    const nodeName = o.nodeName ?? defaultNodeName();
    // the kubelet server first: the Node advertises its port (0 when there is none)
    let kubelet: KubeletServer | undefined;
    if (o.kubeletPort !== 0) {
      try {
        kubelet = await startKubeletServer({ agent, client, kubeconfig: o.kubeconfig, nodeName, nodeIP: o.nodeIP, root: o.root, port: o.kubeletPort, address: o.kubeletAddress, clientCAFile: o.clientCAFile });
      } catch (err) {
        // the default port taken (another node agent on this host): run without, loudly; an explicit port must work
        if (o.kubeletPort !== undefined || (err as { cause?: { code?: string } }).cause?.code !== 'EADDRINUSE') {
          await client.close();
          throw err;
        }
        log.warn('the kubelet API port is in use: running without the kubelet server (no kubectl logs/exec through the API server); set --kubelet-port', { error: describeError(err) });
      }
    }
    const c = new ClusterMode(agent, o, client, kubelet?.port ?? 0);
    c.kubelet = kubelet;
    c.node.start();
    c.lease.start();
    c.status.start();
    const onEvent = (e: RecordedEvent) => {
      const v = agent.getPod(e.involvedObject.uid ?? '');
      if (v && isApiServerPod(v.pod)) c.events.send(e);
    };
    agent.on('event', onEvent);
    c.offEvents = () => agent.off('event', onEvent);
    await c.node.onRegistered;
    // kubelet's service environment (the Services of the pod's namespace, enableServiceLinks, and `kubernetes`
    // of default): kubelet makes no container env before its service lister synced; we wait for it a while
    c.services.start();
    if (!(await waitSynced(c.services.synced, SERVICES_SYNC_WAIT_MS)))
      log.warn(`the Services are not listed after ${SERVICES_SYNC_WAIT_MS / 1000} s: containers started meanwhile get no service env (KUBERNETES_SERVICE_HOST ...)`);
    // kubelet starts the pod source once the node informer synced; we need the Node for admission
    c.pods.start();
    c.mirrors.start();
    log.info('joined the cluster', { node: c.nodeName, server: c.client.server, user: c.client.user });
    return c;
  }

  /**
   * kubelet's node-level admission (lifecycle/predicate.go) against the Node's allocatable and the
   * pods admitted so far; undefined admits. Before the Node is known, everything is admitted.
   */
  admit(pod: Pod, admitted: Pod[]): { reason: string; message: string } | undefined {
    const node = this.node.node;
    if (!node?.status?.allocatable) return undefined;
    const r = computePodAdmission(pod as unknown as AdmissionPod, {
      name: this.nodeName,
      labels: node.metadata.labels,
      allocatable: node.status.allocatable as never,
      taints: (node.spec as { taints?: never[] } | undefined)?.taints,
    }, admitted as unknown as AdmissionPod[]);
    return r.admit ? undefined : { reason: r.reason, message: rejectionMessage(r.message) };
  }

  async stop(): Promise<void> {
    this.offEvents?.();
    await this.kubelet?.stop();
    this.mirrors.stop();
    await this.pods.stop().catch((e) => log.warn('stopping the pod watch failed', { error: describeError(e) }));
    this.objects.stop();
    await this.services.stop().catch((e) => log.warn('stopping the service watch failed', { error: describeError(e) }));
    this.status.stop();
    this.events.stop();
    await this.lease.stop();
    await this.node.stop();
    await this.client.close();
  }
}
