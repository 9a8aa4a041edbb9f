// Service environment variables as kubelet makes them (pkg/kubelet/envvars
// FromServices and getServiceEnvVarMap, v1.36): with enableServiceLinks (the
// default) every Service with a cluster IP in the pod's namespace; always the
// `kubernetes` Service of the `default` namespace (its "master services"),
// unless the namespace has its own `kubernetes`. The container's env and
// envFrom override them (src/pod/env.ts). For `kubernetes` with a cluster IP
// 10.0.0.1 and port https/443/TCP that is:
//
//   KUBERNETES_SERVICE_HOST=10.0.0.1
//   KUBERNETES_SERVICE_PORT=443
//   KUBERNETES_SERVICE_PORT_HTTPS=443
//   KUBERNETES_PORT=tcp://10.0.0.1:443
//   KUBERNETES_PORT_443_TCP=tcp://10.0.0.1:443
//   KUBERNETES_PORT_443_TCP_PROTO=tcp
//   KUBERNETES_PORT_443_TCP_PORT=443
//   KUBERNETES_PORT_443_TCP_ADDR=10.0.0.1
//
// (an IPv6 cluster IP is bracketed in the URLs, as net.JoinHostPort does).
import { listWatch, type ListWatch, type ListWatchOptions } from '../kube/informer.js';
import type { KubeClient, KubeObject } from '../kube/types.js';

export interface ServicePort {
  name?: string;
  port: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP' | string;
}

/** The parts of a core/v1 Service the env vars come from. */
export interface ServiceForEnv {
  name: string;
  clusterIP?: string;
  ports: ServicePort[];
}

/** makeEnvVariableName: upper case, '-' → '_'. */
function envName(s: string): string {
  return s.replace(/-/g, '_').toUpperCase();
}

function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** v1helper.IsServiceIPSet: a cluster IP that is neither empty nor "None". */
export function isServiceIPSet(s: { clusterIP?: string }): boolean {
  return !!s.clusterIP && s.clusterIP !== 'None';
}

/** envvars.FromServices: the env vars for these services, in kubelet's order (services without a cluster IP or ports are skipped). */
export function serviceEnvVars(services: ServiceForEnv[]): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const svc of services) {
    if (!isServiceIPSet(svc) || svc.ports.length === 0) continue;
    const ip = svc.clusterIP!;
    const prefix = envName(svc.name);
    out.push({ name: `${prefix}_SERVICE_HOST`, value: ip });
    out.push({ name: `${prefix}_SERVICE_PORT`, value: String(svc.ports[0]!.port) });
    for (const p of svc.ports) if (p.name) out.push({ name: `${prefix}_SERVICE_PORT_${envName(p.name)}`, value: String(p.port) });
    svc.ports.forEach((p, i) => {
      const proto = p.protocol || 'TCP';
      const url = `${proto.toLowerCase()}://${joinHostPort(ip, p.port)}`;
      if (i === 0) out.push({ name: `${prefix}_PORT`, value: url });
      const pp = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
      out.push({ name: pp, value: url });
      out.push({ name: `${pp}_PROTO`, value: proto.toLowerCase() });
      out.push({ name: `${pp}_PORT`, value: String(p.port) });
      out.push({ name: `${pp}_ADDR`, value: ip });
    });
  }
  return out;
}

/**
 * kubelet's env vars for the `kubernetes` Service (default namespace), whose
 * single port the API server names "https" (TCP). Empty when there is no cluster IP.
 */
export function kubernetesServiceEnv(service: { clusterIP: string; port: number; portName?: string; protocol?: string }): Record<string, string> {
  const vars = serviceEnvVars([{ name: 'kubernetes', clusterIP: service.clusterIP, ports: [{ name: service.portName ?? 'https', port: service.port, protocol: service.protocol ?? 'TCP' }] }]);
  return Object.fromEntries(vars.map((v) => [v.name, v.value]));
}

export interface ServiceObject extends KubeObject {
  spec?: { clusterIP?: string; ports?: { name?: string; port?: number; protocol?: string }[] };
}

/** A Service as the env cache keeps it: its namespace besides the env parts. */
export interface NamespacedService extends ServiceForEnv {
  namespace: string;
}

/** kubelet's masterServices: the default namespace's services every pod gets, even with enableServiceLinks false. */
const MASTER_SERVICES = new Set(['kubernetes']);

/**
 * getServiceEnvVarMap (pkg/kubelet/kubelet_pods.go): the env of the services with a cluster IP in the pod's
 * namespace (only with enableServiceLinks), and of the master services of `default` (always) unless the
 * namespace has a service of that name; a map (kubelet's too), here in name order.
 */
export function serviceEnvMap(services: Iterable<NamespacedService>, namespace: string, enableServiceLinks: boolean): Record<string, string> {
  const chosen = new Map<string, NamespacedService>();
  for (const s of services) {
    if (!isServiceIPSet(s)) continue;
    if (s.namespace === 'default' && MASTER_SERVICES.has(s.name)) {
      if (!chosen.has(s.name)) chosen.set(s.name, s);
    } else if (s.namespace === namespace && enableServiceLinks) chosen.set(s.name, s);
  }
  const sorted = [...chosen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Object.fromEntries(serviceEnvVars(sorted).map((v) => [v.name, v.value]));
}

/** The env parts of a core/v1 Service object (ports without a number are dropped). */
export function toNamespacedService(svc: ServiceObject): NamespacedService {
  const ports: ServicePort[] = (svc.spec?.ports ?? [])
    .filter((p): p is { name?: string; port: number; protocol?: string } => typeof p.port === 'number')
    .map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, ...(p.protocol ? { protocol: p.protocol } : {}) }));
  const clusterIP = svc.spec?.clusterIP;
  return { namespace: svc.metadata.namespace ?? '', name: svc.metadata.name ?? '', ...(clusterIP !== undefined ? { clusterIP } : {}), ports };
}

/**
 * kubelet's service lister: every Service of the cluster through one list+watch (src/kube/informer.ts),
 * so a container's service env is that of the services existing when its pod's env is made.
 */
export class ServiceEnvCache {
  private readonly services = new Map<string, NamespacedService>();
  private lw?: ListWatch;

  constructor(private readonly client: KubeClient, private readonly opts: Omit<ListWatchOptions, 'fieldSelector' | 'labelSelector'> = {}) {}

  start(): void {
    if (this.lw) return;
    const put = (o: ServiceObject) => {
      const s = toNamespacedService(o);
      this.services.set(`${s.namespace}/${s.name}`, s);
    };
    this.lw = listWatch<ServiceObject>(this.client, { group: '', version: 'v1', resource: 'services' }, this.opts, {
      onSync: (items) => {
        this.services.clear();
        for (const o of items) put(o);
      },
      onEvent: (type, o) => {
        if (type === 'DELETED') this.services.delete(`${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`);
        else put(o);
      },
    });
  }

  /** Resolves true after the first list, false when stopped before it. */
  get synced(): Promise<boolean> {
    return this.lw?.synced ?? Promise.resolve(false);
  }

  hasSynced(): boolean {
    return this.lw?.hasSynced() ?? false;
  }

  /** The service env of a container of a pod in `namespace` (getServiceEnvVarMap). */
  envFor(namespace: string, enableServiceLinks: boolean): Record<string, string> {
    return serviceEnvMap(this.services.values(), namespace, enableServiceLinks);
  }

  async stop(): Promise<void> {
    await this.lw?.stop();
    this.lw = undefined;
  }
}
