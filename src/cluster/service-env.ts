// Service environment variables as kubelet makes them (pkg/kubelet/envvars
// FromServices, v1.36). kubelet always adds the `kubernetes` Service of the
// `default` namespace (its "master services"), even with enableServiceLinks
// false; with a cluster IP 10.0.0.1 and port https/443/TCP that is:
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
import { NodeletError } from '../errors.js';
import { isNotFound } from '../kube/errors.js';
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

interface ServiceObject extends KubeObject {
  spec?: { clusterIP?: string; ports?: { name?: string; port?: number; protocol?: string }[] };
}

/**
 * GET services/kubernetes in `default` and return its env vars (all its ports,
 * as FromServices does). A missing Service, or one without a cluster IP, gives
 * {} (kubelet then adds nothing); other failures throw ERR_SERVICE_ENV_FETCH
 * with the API error as cause.
 */
export async function fetchKubernetesServiceEnv(client: KubeClient): Promise<Record<string, string>> {
  let svc: ServiceObject;
  try {
    svc = await client.get<ServiceObject>({ group: '', version: 'v1', resource: 'services', namespace: 'default' }, 'kubernetes');
  } catch (e) {
    if (isNotFound(e)) return {};
    const category = e instanceof NodeletError ? e.category : 'Unavailable';
    throw new NodeletError(category, 'ERR_SERVICE_ENV_FETCH', `cannot read the kubernetes Service in namespace default from ${client.server}: ${(e as Error).message}`, { cause: e });
  }
  const ports: ServicePort[] = (svc.spec?.ports ?? [])
    .filter((p): p is { name?: string; port: number; protocol?: string } => typeof p.port === 'number')
    .map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, ...(p.protocol ? { protocol: p.protocol } : {}) }));
  const clusterIP = svc.spec?.clusterIP;
  const vars = serviceEnvVars([{ name: 'kubernetes', ...(clusterIP !== undefined ? { clusterIP } : {}), ports }]);
  return Object.fromEntries(vars.map((v) => [v.name, v.value]));
}
