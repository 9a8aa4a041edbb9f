// Defaults the Kubernetes API server applies to a Pod (pkg/apis/core/v1/defaults.go),
// plus a generated uid, creationTimestamp and generateName expansion.
// applyDefaults returns a new object; the input is not modified.

import { randomUUID, randomInt } from 'node:crypto';
import type { Container, Pod, Probe, HTTPGetAction } from './api-types.js';

/** Kubernetes' imagePullPolicy default: Always for ":latest" or no tag (and no digest), else IfNotPresent. */
export function defaultPullPolicy(image: string | undefined): 'Always' | 'IfNotPresent' {
  if (typeof image !== 'string' || !image) return 'IfNotPresent';
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  if (colon < 0) return 'Always';
  return last.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

const isObj = (x: unknown): x is Record<string, any> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Zero or unset means "use the default", as for Go's zero values in the API server. */
function dflt(v: number | undefined, d: number): number {
  return v === undefined || v === null || v === 0 ? d : v;
}

function defaultHttpGet(h: HTTPGetAction | undefined): void {
  if (!isObj(h)) return;
  if (!h.path) h.path = '/';
  if (!h.scheme) h.scheme = 'HTTP';
}

function defaultProbe(p: Probe | undefined): void {
  if (!isObj(p)) return;
  p.initialDelaySeconds ??= 0;
  p.timeoutSeconds = dflt(p.timeoutSeconds, 1);
  p.periodSeconds = dflt(p.periodSeconds, 10);
  p.successThreshold = dflt(p.successThreshold, 1);
  p.failureThreshold = dflt(p.failureThreshold, 3);
  defaultHttpGet(p.httpGet);
}

function defaultContainer(c: Container): void {
  c.imagePullPolicy ??= defaultPullPolicy(c.image);
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  if (Array.isArray(c.ports)) for (const p of c.ports) if (isObj(p)) p.protocol ??= 'TCP';
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  if (isObj(c.lifecycle)) {
    if (isObj(c.lifecycle.postStart)) defaultHttpGet(c.lifecycle.postStart.httpGet);
    if (isObj(c.lifecycle.preStop)) defaultHttpGet(c.lifecycle.preStop.httpGet);
  }
  // requests default to limits for every resource with a limit and no request
  const limits = isObj(c.resources) ? c.resources.limits : undefined;
  if (isObj(limits) && Object.keys(limits).length > 0) {
    c.resources!.requests ??= {};
    if (!isObj(c.resources!.requests)) return;
    for (const [k, v] of Object.entries(limits)) {
      if (c.resources!.requests[k] === undefined) c.resources!.requests[k] = v;
    }
  }
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

export interface DefaultOptions {
  now?: Date;
  uid?: () => string;
}

export function applyDefaults(pod: Pod, opts: DefaultOptions = {}): Pod {
  const p = structuredClone(pod) as Pod;
  p.apiVersion ??= 'v1';
  p.kind ??= 'Pod';
  p.metadata ??= {};
  if (!isObj(p.metadata)) return p; // validation reports it
  const m = p.metadata;
  if (!m.name && m.generateName) {
    let s = '';
    for (let i = 0; i < 5; i++) s += NAME_CHARS[randomInt(NAME_CHARS.length)];
    m.name = m.generateName + s;
  }
  m.namespace ||= 'default';
  m.uid ||= (opts.uid ?? randomUUID)();
  m.creationTimestamp ||= (opts.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  m.labels ??= {};
  m.annotations ??= {};
  if (!isObj(p.spec)) return p;
  const s = p.spec;
  s.restartPolicy ??= 'Always';
  s.terminationGracePeriodSeconds ??= 30;
  s.dnsPolicy ??= 'ClusterFirst';
  s.securityContext ??= {};
  if (!isObj(s.securityContext)) return p;
  s.hostNetwork ??= false;
  s.hostPID ??= false;
  s.hostIPC ??= false;
  s.shareProcessNamespace ??= false;
  s.enableServiceLinks ??= true;
  if (s.serviceAccount && !s.serviceAccountName) s.serviceAccountName = s.serviceAccount;
  s.serviceAccountName ??= 'default';
  const list = <T>(x: T[] | undefined): T[] => (Array.isArray(x) ? x : []); // wrong shapes: validation reports them
  for (const c of [...list(s.initContainers), ...list(s.containers)]) if (c && typeof c === 'object' && !Array.isArray(c)) defaultContainer(c);
  for (const v of list(s.volumes)) {
    if (!isObj(v)) continue;
    if (isObj(v.configMap)) v.configMap.defaultMode ??= 0o644;
    if (isObj(v.secret)) v.secret.defaultMode ??= 0o644;
    if (isObj(v.downwardAPI)) v.downwardAPI.defaultMode ??= 0o644;
    if (isObj(v.projected)) {
      v.projected.defaultMode ??= 0o644;
      for (const src of list(v.projected.sources)) {
        if (isObj(src) && isObj(src.serviceAccountToken)) src.serviceAccountToken.expirationSeconds ??= 3600;
      }
    }
    if (isObj(v.hostPath)) v.hostPath.type ??= '';
  }
  return p;
}
