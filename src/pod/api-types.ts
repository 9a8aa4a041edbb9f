// TypeScript shapes of the Kubernetes core/v1 objects nodelet supports
// (Pod, ConfigMap, Secret, Event and their parts). Field names and meanings
// are exactly the Kubernetes API's; optional everywhere the API is optional.
// Only the fields nodelet implements are modelled: anything else found in a
// manifest is reported as a warning by src/pod/manifest.ts.

// Enums shared with lower layers are defined there: the image side's pull policy, the QoS class (src/cri/types.ts).
import type { QosClass } from '../runtime/types.js';
import type { PullPolicy } from '../image/types.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';
/** A container's own restartPolicy (KEP-5307 ContainerRestartRules): on an init container `Always` makes it a sidecar. */
export type ContainerRestartPolicy = 'Always' | 'OnFailure' | 'Never';
export type DNSPolicy = 'ClusterFirst' | 'ClusterFirstWithHostNet' | 'Default' | 'None';
export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
export type ConditionStatus = 'True' | 'False' | 'Unknown';
export type TerminationMessagePolicy = 'File' | 'FallbackToLogsOnError';
export type HostPathType =
  | ''
  | 'DirectoryOrCreate'
  | 'Directory'
  | 'FileOrCreate'
  | 'File'
  | 'Socket'
  | 'CharDevice'
  | 'BlockDevice';
export type StorageMedium = '' | 'Memory';

/** A resource.Quantity as written: "500m", "128Mi", 1, 0.5 ... */
export type Quantity = string | number;
export type ResourceList = Partial<Record<'cpu' | 'memory' | 'ephemeral-storage' | string, Quantity>>;

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** RFC 3339 */
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  resourceVersion?: string;
  generation?: number;
}

export interface TypeMeta {
  apiVersion?: string;
  kind?: string;
}

// ---------------------------------------------------------------- env

export interface ConfigMapKeySelector {
  name: string;
  key: string;
  optional?: boolean;
}
export type SecretKeySelector = ConfigMapKeySelector;

export interface ObjectFieldSelector {
  apiVersion?: string;
  /** metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'],
   * metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
   * status.podIP, status.podIPs, status.hostIP, status.hostIPs */
  fieldPath: string;
}

export interface ResourceFieldSelector {
  containerName?: string;
  /** limits.cpu, limits.memory, limits.ephemeral-storage, requests.cpu, requests.memory, requests.ephemeral-storage */
  resource: string;
  divisor?: Quantity;
}

export interface EnvVarSource {
  fieldRef?: ObjectFieldSelector;
  resourceFieldRef?: ResourceFieldSelector;
  configMapKeyRef?: ConfigMapKeySelector;
  secretKeyRef?: SecretKeySelector;
  /** EnvFiles (beta, on by default since 1.35): a key of a `KEY='value'` file in an emptyDir volume */
  fileKeyRef?: FileKeySelector;
}

export interface FileKeySelector {
  /** an emptyDir volume of the pod */
  volumeName: string;
  /** relative path of the env file in the volume */
  path: string;
  key: string;
  optional?: boolean;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: EnvVarSource;
}

export interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

// ---------------------------------------------------------------- ports, resources, mounts

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: Protocol;
}

export interface ResourceRequirements {
  limits?: ResourceList;
  requests?: ResourceList;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
  subPathExpr?: string;
  mountPropagation?: 'None' | 'HostToContainer' | 'Bidirectional';
}

// ---------------------------------------------------------------- probes and lifecycle

export interface ExecAction {
  command?: string[];
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPGetAction {
  path?: string;
  /** number or IANA_SVC_NAME of a container port */
  port: number | string;
  host?: string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: HTTPHeader[];
}

export interface TCPSocketAction {
  port: number | string;
  host?: string;
}

export interface GRPCAction {
  port: number;
  service?: string;
}

export interface SleepAction {
  seconds: number;
}

export interface ProbeHandler {
  exec?: ExecAction;
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  grpc?: GRPCAction;
}

export interface Probe extends ProbeHandler {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  terminationGracePeriodSeconds?: number;
}

export interface LifecycleHandler {
  exec?: ExecAction;
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  sleep?: SleepAction;
}

export interface Lifecycle {
  postStart?: LifecycleHandler;
  preStop?: LifecycleHandler;
}

// ---------------------------------------------------------------- security

export interface Capabilities {
  add?: string[];
  drop?: string[];
}

export interface SecurityContext {
  privileged?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: Capabilities;
  procMount?: 'Default' | 'Unmasked';
  seccompProfile?: SeccompProfile;
  appArmorProfile?: AppArmorProfile;
}

/** RuntimeDefault: the runtime's default profile; Localhost: a profile loaded on the node; Unconfined: none. */
export interface AppArmorProfile {
  type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  /** Localhost only: the name of a profile loaded on the node */
  localhostProfile?: string;
}

/** RuntimeDefault: the runtime's default filter; Localhost: a file under <root>/seccomp; Unconfined: none. */
export interface SeccompProfile {
  type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  /** Localhost only: a path relative to the node's seccomp profile root */
  localhostProfile?: string;
}

export interface Sysctl {
  name: string;
  value: string;
}

export interface PodSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  fsGroup?: number;
  supplementalGroups?: number[];
  /** Merge (default): also the groups of the image's /etc/group; Strict: only fsGroup, supplementalGroups and the primary gid. */
  supplementalGroupsPolicy?: 'Merge' | 'Strict';
  sysctls?: Sysctl[];
  seccompProfile?: SeccompProfile;
  appArmorProfile?: AppArmorProfile;
}

// ---------------------------------------------------------------- container

export interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: PullPolicy;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  ports?: ContainerPort[];
  resources?: ResourceRequirements;
  volumeMounts?: VolumeMount[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: Lifecycle;
  securityContext?: SecurityContext;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  terminationMessagePath?: string;
  terminationMessagePolicy?: TerminationMessagePolicy;
  /**
   * Overrides the pod's restartPolicy for this container (Always | OnFailure | Never; kubelet ≥1.35,
   * ContainerRestartRules). On an init container, `Always` makes it a native sidecar.
   */
  restartPolicy?: ContainerRestartPolicy;
  /** Evaluated in order when the container exits; the first match decides. Requires `restartPolicy`. */
  restartPolicyRules?: ContainerRestartRule[];
}

/** core/v1 ContainerRestartRule: `Restart` when the exit code matches (`RestartAllContainers` is refused by validation). */
export interface ContainerRestartRule {
  action: 'Restart' | 'RestartAllContainers';
  exitCodes?: ContainerRestartRuleOnExitCodes;
}

export interface ContainerRestartRuleOnExitCodes {
  operator: 'In' | 'NotIn';
  /** at most 255 */
  values?: number[];
}

// ---------------------------------------------------------------- volumes

export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}

export interface EmptyDirVolumeSource {
  medium?: StorageMedium;
  sizeLimit?: Quantity;
}

export interface HostPathVolumeSource {
  path: string;
  type?: HostPathType;
}

export interface ConfigMapVolumeSource {
  name: string;
  items?: KeyToPath[];
  defaultMode?: number;
  optional?: boolean;
}

export interface SecretVolumeSource {
  secretName: string;
  items?: KeyToPath[];
  defaultMode?: number;
  optional?: boolean;
}

export interface DownwardAPIVolumeFile {
  path: string;
  fieldRef?: ObjectFieldSelector;
  resourceFieldRef?: ResourceFieldSelector;
  mode?: number;
}

export interface DownwardAPIVolumeSource {
  items?: DownwardAPIVolumeFile[];
  defaultMode?: number;
}

export interface ServiceAccountTokenProjection {
  audience?: string;
  expirationSeconds?: number;
  path: string;
}

export interface VolumeProjection {
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  secret?: { name: string; items?: KeyToPath[]; optional?: boolean };
  downwardAPI?: { items?: DownwardAPIVolumeFile[] };
  serviceAccountToken?: ServiceAccountTokenProjection;
}

export interface ProjectedVolumeSource {
  sources?: VolumeProjection[];
  defaultMode?: number;
}

export interface Volume {
  name: string;
  emptyDir?: EmptyDirVolumeSource;
  hostPath?: HostPathVolumeSource;
  configMap?: ConfigMapVolumeSource;
  secret?: SecretVolumeSource;
  downwardAPI?: DownwardAPIVolumeSource;
  projected?: ProjectedVolumeSource;
}

/** The volume source kinds nodelet implements, in the order they are checked. */
export const VOLUME_SOURCE_KINDS = ['emptyDir', 'hostPath', 'configMap', 'secret', 'downwardAPI', 'projected'] as const;
export type VolumeSourceKind = (typeof VOLUME_SOURCE_KINDS)[number];

// ---------------------------------------------------------------- pod spec

export interface PodDNSConfigOption {
  name: string;
  value?: string;
}

export interface PodDNSConfig {
  nameservers?: string[];
  searches?: string[];
  options?: PodDNSConfigOption[];
}

export interface HostAlias {
  ip: string;
  hostnames?: string[];
}

export interface LocalObjectReference {
  name: string;
}

export interface PodSpec {
  containers: Container[];
  /** conditions others set (through pods/status) that must be True for the pod to be Ready */
  readinessGates?: { conditionType: string }[];
  initContainers?: Container[];
  volumes?: Volume[];
  restartPolicy?: RestartPolicy;
  terminationGracePeriodSeconds?: number;
  activeDeadlineSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  /** false: a user namespace per pod (refused by admission: src/pod/security-admission.ts) */
  hostUsers?: boolean;
  shareProcessNamespace?: boolean;
  hostname?: string;
  subdomain?: string;
  /** HostnameOverride (beta, on in v1.36): the pod's hostname, exactly; takes precedence over hostname and subdomain */
  hostnameOverride?: string;
  /** not implemented (a warning); read only to refuse it beside hostnameOverride */
  setHostnameAsFQDN?: boolean;
  nodeName?: string;
  serviceAccountName?: string;
  /** deprecated alias of serviceAccountName */
  serviceAccount?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: PodSecurityContext;
  dnsPolicy?: DNSPolicy;
  dnsConfig?: PodDNSConfig;
  hostAliases?: HostAlias[];
  imagePullSecrets?: LocalObjectReference[];
  enableServiceLinks?: boolean;
  /** used by kubelet only for IsCriticalPod (oom_score_adj of node-critical pods) */
  priority?: number;
  priorityClassName?: string;
  /**
   * Pod-level requests and limits (PodLevelResources, beta and on by default since v1.34): cpu, memory,
   * hugepages-*. Set (even `{}`), they decide the QoS class; the pod cgroup gets their limits (src/pod/qos.ts).
   * `claims` is refused by validation, as the API server does.
   */
  resources?: ResourceRequirements & { claims?: { name?: string; request?: string }[] };
}

// ---------------------------------------------------------------- status

export interface ContainerStateWaiting {
  /** ContainerCreating, PodInitializing, CrashLoopBackOff, ErrImagePull, ImagePullBackOff, CreateContainerConfigError, CreateContainerError, RunContainerError */
  reason?: string;
  message?: string;
}

export interface ContainerStateRunning {
  startedAt?: string;
}

export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  /** Completed, Error, OOMKilled, ContainerCannotRun, StartError ... */
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  containerID?: string;
}

/** At most one member is set. */
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state: ContainerState;
  lastState: ContainerState;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  /** "nodelet://<id>" */
  containerID?: string;
  /** The identity the runtime resolved (KEP-3619): uid, primary gid, every supplementary gid. */
  user?: { linux?: { uid: number; gid: number; supplementalGroups?: number[] } };
}

export type PodConditionType = 'PodScheduled' | 'PodReadyToStartContainers' | 'Initialized' | 'ContainersReady' | 'Ready';

export interface PodCondition {
  type: PodConditionType | string;
  status: ConditionStatus;
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface PodIP {
  ip: string;
}

export interface PodStatus {
  phase?: PodPhase;
  conditions?: PodCondition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  hostIPs?: PodIP[];
  podIP?: string;
  podIPs?: PodIP[];
  startTime?: string;
  initContainerStatuses?: ContainerStatus[];
  containerStatuses?: ContainerStatus[];
  qosClass?: QosClass;
}

// ---------------------------------------------------------------- top-level objects

export interface Pod extends TypeMeta {
  apiVersion?: 'v1' | string;
  kind?: 'Pod' | string;
  metadata: ObjectMeta;
  spec: PodSpec;
  status?: PodStatus;
}

export interface ConfigMap extends TypeMeta {
  metadata: ObjectMeta;
  data?: Record<string, string>;
  /** base64 values */
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

export interface Secret extends TypeMeta {
  metadata: ObjectMeta;
  /** base64 values */
  data?: Record<string, string>;
  /** plain values; merged into data (stringData wins) by parseManifests */
  stringData?: Record<string, string>;
  type?: string;
  immutable?: boolean;
}

export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiVersion?: string;
  /** e.g. "spec.containers{web}" as kubelet sets it */
  fieldPath?: string;
}

export interface EventSource {
  component?: string;
  host?: string;
}

export interface Event extends TypeMeta {
  metadata: ObjectMeta;
  involvedObject: ObjectReference;
  /** Pulling, Pulled, Created, Started, Killing, Unhealthy, BackOff, Failed ... */
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: EventSource;
  reportingComponent?: string;
  reportingInstance?: string;
}

export interface List<T = unknown> extends TypeMeta {
  kind: 'List' | string;
  metadata?: { resourceVersion?: string };
  items: T[];
}

/** Secret and ConfigMap lookup used by validation, env and volumes (by namespace/name). */
export interface PodObjects {
  configMaps: ConfigMap[];
  secrets: Secret[];
  /** Service-account tokens for projected serviceAccountToken sources, fetched by the pod's source
   * (cluster mode: the TokenRequest API); without one, the volume manager signs a local token. */
  serviceAccountTokens?: { audience: string; expirationSeconds: number; token: string }[];
  /** Environment kubelet gives every container from Services (cluster mode: KUBERNETES_SERVICE_HOST, _PORT ...);
   * the container's own env and envFrom override it. */
  serviceEnv?: Record<string, string>;
}

/** Helper: every container of a pod with its field-path prefix. */
export function allContainers(spec: PodSpec): { c: Container; path: string; init: boolean; index: number }[] {
  const out: { c: Container; path: string; init: boolean; index: number }[] = [];
  (spec.initContainers ?? []).forEach((c, i) => out.push({ c, path: `spec.initContainers[${i}]`, init: true, index: i }));
  (spec.containers ?? []).forEach((c, i) => out.push({ c, path: `spec.containers[${i}]`, init: false, index: i }));
  return out;
}

/** A native sidecar: an init container with restartPolicy Always (call it for init containers only). */
export function isSidecar(c: Container): boolean {
  return c.restartPolicy === 'Always';
}
