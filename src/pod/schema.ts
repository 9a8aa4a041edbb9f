// The shape of every object field nodelet implements, used to (1) warn about
// fields of the Kubernetes API present in a manifest that nodelet does not
// implement, by name, (2) reject fields the Kubernetes API does not have (a typo
// such as `comand`), as kube-apiserver's strict decoding does for `kubectl apply`
// (fieldValidation=Strict, its default): `strict decoding error: unknown field
// "spec.containers[0].comand"`, and (3) reject values of the wrong JSON type, as
// the API server's decoder does.

import { invalid, unknownField, type FieldError } from './field-errors.js';

/** Leaf kinds: s string, i integer, b boolean, q quantity, is int-or-string, map string→string, any (not checked). */
type Leaf = 's' | 'i' | 'b' | 'q' | 'is' | 'map' | 'any';
type Ref = Leaf | string | [Leaf | string];
type Shape = Record<string, Ref>;

const keySel: Shape = { name: 's', key: 's', optional: 'b' };
const keyToPath: Shape = { key: 's', path: 's', mode: 'i' };
const fieldSel: Shape = { apiVersion: 's', fieldPath: 's' };
const resSel: Shape = { containerName: 's', resource: 's', divisor: 'q' };
const dapiFile: Shape = { path: 's', fieldRef: 'fieldSel', resourceFieldRef: 'resSel', mode: 'i' };
const httpGet: Shape = { path: 's', port: 'is', host: 's', scheme: 's', httpHeaders: ['header'] };
const handler: Shape = { exec: 'exec', httpGet: 'httpGet', tcpSocket: 'tcpSocket', grpc: 'grpc' };
const security: Shape = {
  privileged: 'b',
  runAsUser: 'i',
  runAsGroup: 'i',
  runAsNonRoot: 'b',
  readOnlyRootFilesystem: 'b',
  allowPrivilegeEscalation: 'b',
  capabilities: 'caps',
  procMount: 's',
  seccompProfile: 'seccomp',
  appArmorProfile: 'seccomp', // the same shape: type, localhostProfile (admitted by src/pod/security-admission.ts)
};
const container: Shape = {
  name: 's',
  image: 's',
  imagePullPolicy: 's',
  command: ['s'],
  args: ['s'],
  workingDir: 's',
  env: ['env'],
  envFrom: ['envFrom'],
  ports: ['port'],
  resources: 'resources',
  volumeMounts: ['volumeMount'],
  livenessProbe: 'probe',
  readinessProbe: 'probe',
  startupProbe: 'probe',
  lifecycle: 'lifecycle',
  securityContext: 'security',
  stdin: 'b',
  stdinOnce: 'b',
  tty: 'b',
  terminationMessagePath: 's',
  terminationMessagePolicy: 's',
  restartPolicy: 's',
  restartPolicyRules: ['restartRule'],
};

export const SHAPES: Record<string, Shape> = {
  meta: {
    name: 's',
    generateName: 's',
    namespace: 's',
    uid: 's',
    labels: 'map',
    annotations: 'map',
    creationTimestamp: 'any',
    deletionTimestamp: 'any',
    deletionGracePeriodSeconds: 'i',
    resourceVersion: 's',
    generation: 'i',
    managedFields: 'any',
  },
  pod: { apiVersion: 's', kind: 's', metadata: 'meta', spec: 'podSpec', status: 'any' },
  configMap: { apiVersion: 's', kind: 's', metadata: 'meta', data: 'map', binaryData: 'map', immutable: 'b' },
  secret: { apiVersion: 's', kind: 's', metadata: 'meta', data: 'map', stringData: 'map', type: 's', immutable: 'b' },
  podSpec: {
    containers: ['container'],
    initContainers: ['container'],
    volumes: ['volume'],
    restartPolicy: 's',
    terminationGracePeriodSeconds: 'i',
    activeDeadlineSeconds: 'i',
    hostNetwork: 'b',
    hostPID: 'b',
    hostIPC: 'b',
    hostUsers: 'b', // false is refused by admission (src/pod/security-admission.ts)
    shareProcessNamespace: 'b',
    hostname: 's',
    subdomain: 's',
    hostnameOverride: 's',
    nodeName: 's',
    serviceAccountName: 's',
    serviceAccount: 's',
    automountServiceAccountToken: 'b',
    securityContext: 'podSecurity',
    dnsPolicy: 's',
    dnsConfig: 'dnsConfig',
    hostAliases: ['hostAlias'],
    imagePullSecrets: ['localRef'],
    enableServiceLinks: 'b',
    priority: 'i',
    priorityClassName: 's',
    resources: 'resources', // pod-level (PodLevelResources): src/pod/qos.ts, validated in src/pod/validation.ts
  },
  container,
  restartRule: { action: 's', exitCodes: 'restartRuleExitCodes' },
  restartRuleExitCodes: { operator: 's', values: ['i'] },
  env: { name: 's', value: 's', valueFrom: 'envSource' },
  envSource: { fieldRef: 'fieldSel', resourceFieldRef: 'resSel', configMapKeyRef: 'keySel', secretKeyRef: 'keySel', fileKeyRef: 'fileKeySel' },
  fileKeySel: { volumeName: 's', path: 's', key: 's', optional: 'b' },
  envFrom: { prefix: 's', configMapRef: 'optRef', secretRef: 'optRef' },
  optRef: { name: 's', optional: 'b' },
  localRef: { name: 's' },
  keySel,
  fieldSel,
  resSel,
  port: { name: 's', containerPort: 'i', hostPort: 'i', hostIP: 's', protocol: 's' },
  resources: { limits: 'quantities', requests: 'quantities' },
  volumeMount: { name: 's', mountPath: 's', readOnly: 'b', subPath: 's', subPathExpr: 's', mountPropagation: 's' },
  probe: {
    ...handler,
    initialDelaySeconds: 'i',
    timeoutSeconds: 'i',
    periodSeconds: 'i',
    successThreshold: 'i',
    failureThreshold: 'i',
    terminationGracePeriodSeconds: 'i',
  },
  exec: { command: ['s'] },
  httpGet,
  header: { name: 's', value: 's' },
  tcpSocket: { port: 'is', host: 's' },
  grpc: { port: 'i', service: 's' },
  lifecycle: { postStart: 'lifecycleHandler', preStop: 'lifecycleHandler' },
  lifecycleHandler: { exec: 'exec', httpGet: 'httpGet', tcpSocket: 'tcpSocket', sleep: 'sleep' },
  sleep: { seconds: 'i' },
  security,
  caps: { add: ['s'], drop: ['s'] },
  podSecurity: { runAsUser: 'i', runAsGroup: 'i', runAsNonRoot: 'b', fsGroup: 'i', supplementalGroups: ['i'], supplementalGroupsPolicy: 's', sysctls: ['sysctl'], seccompProfile: 'seccomp', appArmorProfile: 'seccomp' },
  seccomp: { type: 's', localhostProfile: 's' },
  sysctl: { name: 's', value: 's' },
  dnsConfig: { nameservers: ['s'], searches: ['s'], options: ['dnsOption'] },
  dnsOption: { name: 's', value: 's' },
  hostAlias: { ip: 's', hostnames: ['s'] },
  volume: {
    name: 's',
    emptyDir: 'emptyDir',
    hostPath: 'hostPath',
    configMap: 'cmVolume',
    secret: 'secretVolume',
    downwardAPI: 'dapiVolume',
    projected: 'projected',
  },
  emptyDir: { medium: 's', sizeLimit: 'q' },
  hostPath: { path: 's', type: 's' },
  cmVolume: { name: 's', items: ['keyToPath'], defaultMode: 'i', optional: 'b' },
  secretVolume: { secretName: 's', items: ['keyToPath'], defaultMode: 'i', optional: 'b' },
  keyToPath,
  dapiVolume: { items: ['dapiFile'], defaultMode: 'i' },
  dapiFile,
  projected: { sources: ['projection'], defaultMode: 'i' },
  projection: { configMap: 'projRef', secret: 'projRef', downwardAPI: 'projDapi', serviceAccountToken: 'saToken' },
  projRef: { name: 's', items: ['keyToPath'], optional: 'b' },
  projDapi: { items: ['dapiFile'] },
  saToken: { audience: 's', expirationSeconds: 'i', path: 's' },
};

/**
 * The JSON field names of each shape's Kubernetes type (k8s.io/api v0.36.3 core/v1 and meta/v1, inline
 * members included): a field of the type that nodelet does not implement is a warning, any other an error.
 */
const K8S_FIELDS: Record<string, string> = {
  meta: "annotations creationTimestamp deletionGracePeriodSeconds deletionTimestamp finalizers generateName generation labels managedFields name namespace ownerReferences resourceVersion selfLink uid",
  pod: "apiVersion kind metadata spec status",
  configMap: "apiVersion binaryData data immutable kind metadata",
  secret: "apiVersion data immutable kind metadata stringData type",
  podSpec: "activeDeadlineSeconds affinity automountServiceAccountToken containers dnsConfig dnsPolicy enableServiceLinks ephemeralContainers hostAliases hostIPC hostNetwork hostPID hostUsers hostname hostnameOverride imagePullSecrets initContainers nodeName nodeSelector os overhead preemptionPolicy priority priorityClassName readinessGates resourceClaims resources restartPolicy runtimeClassName schedulerName schedulingGates schedulingGroup securityContext serviceAccount serviceAccountName setHostnameAsFQDN shareProcessNamespace subdomain terminationGracePeriodSeconds tolerations topologySpreadConstraints volumes",
  container: "args command env envFrom image imagePullPolicy lifecycle livenessProbe name ports readinessProbe resizePolicy resources restartPolicy restartPolicyRules securityContext startupProbe stdin stdinOnce terminationMessagePath terminationMessagePolicy tty volumeDevices volumeMounts workingDir",
  restartRule: "action exitCodes",
  restartRuleExitCodes: "operator values",
  env: "name value valueFrom",
  envSource: "configMapKeyRef fieldRef fileKeyRef resourceFieldRef secretKeyRef",
  envFrom: "configMapRef prefix secretRef",
  optRef: "name optional",
  localRef: "name",
  keySel: "key name optional",
  fileKeySel: "key optional path volumeName",
  fieldSel: "apiVersion fieldPath",
  resSel: "containerName divisor resource",
  port: "containerPort hostIP hostPort name protocol",
  resources: "claims limits requests",
  volumeMount: "mountPath mountPropagation name readOnly recursiveReadOnly subPath subPathExpr",
  probe: "exec failureThreshold grpc httpGet initialDelaySeconds periodSeconds successThreshold tcpSocket terminationGracePeriodSeconds timeoutSeconds",
  exec: "command",
  httpGet: "host httpHeaders path port scheme",
  header: "name value",
  tcpSocket: "host port",
  grpc: "port service",
  lifecycle: "postStart preStop stopSignal",
  lifecycleHandler: "exec httpGet sleep tcpSocket",
  sleep: "seconds",
  security: "allowPrivilegeEscalation appArmorProfile capabilities privileged procMount readOnlyRootFilesystem runAsGroup runAsNonRoot runAsUser seLinuxOptions seccompProfile windowsOptions",
  caps: "add drop",
  podSecurity: "appArmorProfile fsGroup fsGroupChangePolicy runAsGroup runAsNonRoot runAsUser seLinuxChangePolicy seLinuxOptions seccompProfile supplementalGroups supplementalGroupsPolicy sysctls windowsOptions",
  seccomp: "localhostProfile type",
  sysctl: "name value",
  dnsConfig: "nameservers options searches",
  dnsOption: "name value",
  hostAlias: "hostnames ip",
  volume: "awsElasticBlockStore azureDisk azureFile cephfs cinder configMap csi downwardAPI emptyDir ephemeral fc flexVolume flocker gcePersistentDisk gitRepo glusterfs hostPath image iscsi name nfs persistentVolumeClaim photonPersistentDisk portworxVolume projected quobyte rbd scaleIO secret storageos vsphereVolume",
  emptyDir: "medium sizeLimit",
  hostPath: "path type",
  cmVolume: "defaultMode items name optional",
  secretVolume: "defaultMode items optional secretName",
  keyToPath: "key mode path",
  dapiVolume: "defaultMode items",
  dapiFile: "fieldRef mode path resourceFieldRef",
  projected: "defaultMode sources",
  projection: "clusterTrustBundle configMap downwardAPI podCertificate secret serviceAccountToken",
  projRef: "items name optional",
  projDapi: "items",
  saToken: "audience expirationSeconds path",
};
const K8S_FIELD_SETS = new Map(Object.entries(K8S_FIELDS).map(([k, v]) => [k, new Set(v.split(' '))]));

/** Whether `field` is a field of the Kubernetes type behind `shape` (unknown shapes: assumed so). */
export function isKubernetesField(shape: string, field: string): boolean {
  const set = K8S_FIELD_SETS.get(shape);
  return !set || set.has(field);
}

/** Volume sources Kubernetes has and nodelet does not implement: an error when used (the mount would be missing). */
export const UNSUPPORTED_VOLUME_SOURCES = [
  'persistentVolumeClaim', 'nfs', 'iscsi', 'csi', 'ephemeral', 'image', 'gitRepo', 'glusterfs', 'rbd', 'cephfs',
  'cinder', 'fc', 'flocker', 'flexVolume', 'azureFile', 'azureDisk', 'vsphereVolume', 'quobyte', 'photonPersistentDisk',
  'portworxVolume', 'scaleIO', 'storageos', 'gcePersistentDisk', 'awsElasticBlockStore', 'clusterTrustBundle',
];

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function checkLeaf(leaf: Leaf, v: unknown, path: string, errors: FieldError[]): void {
  if (v === null || v === undefined) return;
  switch (leaf) {
    case 's':
      if (typeof v !== 'string') errors.push(invalid(path, v, `must be a string, not ${typeName(v)} (quote it in YAML)`));
      return;
    case 'i':
      if (typeof v !== 'number' || !Number.isInteger(v)) errors.push(invalid(path, v, `must be an integer, not ${typeName(v)}`));
      return;
    case 'b':
      if (typeof v !== 'boolean') errors.push(invalid(path, v, `must be a boolean, not ${typeName(v)}`));
      return;
    case 'q':
      if (typeof v !== 'string' && typeof v !== 'number') errors.push(invalid(path, v, 'must be a quantity (string or number)'));
      return;
    case 'is':
      if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v)))
        errors.push(invalid(path, v, 'must be an integer or a string'));
      return;
    case 'map':
      if (typeof v !== 'object' || Array.isArray(v)) {
        errors.push(invalid(path, v, 'must be a map of strings'));
        return;
      }
      for (const [k, x] of Object.entries(v as object)) {
        if (typeof x !== 'string') errors.push(invalid(`${path}[${k}]`, x, `must be a string, not ${typeName(x)} (quote it in YAML)`));
      }
      return;
    case 'any':
      return;
  }
}

const LEAVES = new Set(['s', 'i', 'b', 'q', 'is', 'map', 'any']);

/**
 * Walk `value` against the named shape. Unknown fields go to `warnings`
 * ("spec.affinity: unknown or unsupported field, ignored"), wrong types to `errors`.
 */
export function checkShape(shape: string, value: unknown, path: string, errors: FieldError[], warnings: string[]): void {
  if (value === null || value === undefined) return;
  if (shape === 'quantities') {
    if (typeof value !== 'object' || Array.isArray(value)) errors.push(invalid(path, value, 'must be a map of resource name to quantity'));
    else for (const [k, v] of Object.entries(value as object)) checkLeaf('q', v, `${path}.${k}`, errors);
    return;
  }
  const s = SHAPES[shape];
  if (!s) throw new Error(`schema: unknown shape ${shape}`);
  if (typeof value !== 'object' || Array.isArray(value)) {
    errors.push(invalid(path, value, `must be an object, not ${typeName(value)}`));
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = path ? `${path}.${k}` : k;
    const ref = s[k];
    if (ref === undefined) {
      if (!isKubernetesField(shape, k)) {
        errors.push(unknownField(p));
        continue;
      }
      if (shape === 'volume' && UNSUPPORTED_VOLUME_SOURCES.includes(k)) continue; // validation rejects it
      warnings.push(`${p}: field is not supported by nodelet and is ignored`);
      continue;
    }
    checkRef(ref, v, p, errors, warnings);
  }
}

function checkRef(ref: Ref, v: unknown, p: string, errors: FieldError[], warnings: string[]): void {
  if (v === null || v === undefined) return;
  if (Array.isArray(ref)) {
    if (!Array.isArray(v)) {
      errors.push(invalid(p, v, `must be a list, not ${typeName(v)}`));
      return;
    }
    v.forEach((x, i) => {
      if (x === null || x === undefined) errors.push(invalid(`${p}[${i}]`, null, 'must not be null'));
      else checkRef(ref[0], x, `${p}[${i}]`, errors, warnings);
    });
  } else if (LEAVES.has(ref)) checkLeaf(ref as Leaf, v, p, errors);
  else checkShape(ref, v, p, errors, warnings);
}
