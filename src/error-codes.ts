// Every machine-readable code a NodeletError can carry, in one place: one code
// per condition, so that a typo or a second name for the same failure is a
// type error. Grouped by the subsystem that raises them; a code shared by two
// subsystems sits with the one that owns the condition.
//
// Add a code here before throwing it, and reuse an existing one when the
// condition is the same (same object, same cause, same remedy).

/** Host helpers (src/sys, src/volumes' atomic writer) and failed system calls. */
type SysErrorCode =
  | 'ERR_FILE_EXISTS'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_MOUNT_OPTIONS_TOO_LONG'
  | 'ERR_UNMOUNT_INCOMPLETE'
  | 'ERR_PATH_SYMLINK_LOOP'
  | 'ERR_HOST_PROC'
  | 'ERR_HOST_MEMINFO'
  | 'ERR_HOST_STATFS'
  /** SyscallError: `ERR_SYSCALL_<errno name>` (ERR_SYSCALL_ENOENT, ERR_SYSCALL_EPERM, ...). */
  | `ERR_SYSCALL_${string}`;

/** Image references, registries, the content store, archives (src/image). */
type ImageErrorCode =
  | 'ERR_IMAGE_REFERENCE_INVALID'
  | 'ERR_IMAGE_PLATFORM_INVALID'
  | 'ERR_IMAGE_PLATFORM_NOT_FOUND'
  | 'ERR_IMAGE_CONFIG_FILE_INVALID'
  | 'ERR_IMAGE_CREDS_INVALID'
  | 'ERR_IMAGE_AUTHFILE_INVALID'
  /** An image pull secret (kubernetes.io/dockerconfigjson or dockercfg) that cannot be parsed. */
  | 'ERR_IMAGE_PULL_SECRET_INVALID'
  | 'ERR_IMAGE_CREDENTIAL_HELPER'
  | 'ERR_IMAGE_INSECURE_REGISTRY'
  | 'ERR_IMAGE_REGISTRY_UNREACHABLE'
  /** A registry API answer without a more specific code: `ERR_IMAGE_REGISTRY_<HTTP status>`. */
  | `ERR_IMAGE_REGISTRY_${number}`
  | 'ERR_IMAGE_UNAUTHORIZED'
  | 'ERR_IMAGE_NOT_FOUND'
  /** Not present on the node and the pull policy is Never (kubelet's ErrImageNeverPull). */
  | 'ERR_IMAGE_NEVER_PULL'
  | 'ERR_IMAGE_ID_AMBIGUOUS'
  | 'ERR_IMAGE_PULL_FAILED'
  | 'ERR_IMAGE_MANIFEST_INVALID'
  | 'ERR_IMAGE_MANIFEST_TOO_BIG'
  | 'ERR_IMAGE_SCHEMA1_UNSUPPORTED'
  | 'ERR_IMAGE_CONFIG_INVALID'
  | 'ERR_IMAGE_DIGEST_UNSUPPORTED'
  | 'ERR_IMAGE_DIGEST_MISMATCH'
  | 'ERR_IMAGE_BLOB_NOT_FOUND'
  | 'ERR_IMAGE_BLOB_SIZE_MISMATCH'
  /** The code of a plain Error (a blob download cut short), retried by the registry client. */
  | 'ERR_IMAGE_BLOB_TRUNCATED'
  | 'ERR_IMAGE_ARCHIVE_EMPTY'
  | 'ERR_IMAGE_ARCHIVE_AMBIGUOUS'
  | 'ERR_IMAGE_MOUNT_BUSY'
  | 'ERR_ARCHIVE_NOT_FOUND'
  | 'ERR_ARCHIVE_INVALID'
  | 'ERR_ARCHIVE_PATH_INVALID'
  | 'ERR_ARCHIVE_BLOB_NOT_FOUND'
  | 'ERR_ARCHIVE_BLOB_CORRUPT'
  | 'ERR_ARCHIVE_LAYER_ENTRY'
  | 'ERR_ARCHIVE_ZSTD';

/** Layers and snapshots (src/snapshot). */
type SnapshotErrorCode =
  | 'ERR_LAYER_INVALID'
  | 'ERR_LAYER_UNSAFE_PATH'
  | 'ERR_LAYER_DECOMPRESS'
  | 'ERR_LAYER_DIFFID_MISMATCH'
  | 'ERR_LAYER_UNPACK'
  | 'ERR_LAYER_TOO_LARGE'
  | 'ERR_LAYER_NO_SPACE'
  | 'ERR_SNAPSHOT_INVALID_ID'
  | 'ERR_SNAPSHOT_INVALID_KEY'
  | 'ERR_SNAPSHOT_DRIVER_MISMATCH'
  | 'ERR_SNAPSHOT_OVERLAY_UNSUPPORTED'
  | 'ERR_SNAPSHOT_CHAIN_NOT_FOUND'
  | 'ERR_SNAPSHOT_PARENT_MISSING'
  | 'ERR_SNAPSHOT_CORRUPT'
  | 'ERR_SNAPSHOT_TOO_MANY_LAYERS'
  | 'ERR_SNAPSHOT_EXISTS'
  | 'ERR_SNAPSHOT_IN_USE'
  | 'ERR_SNAPSHOT_COPY';

/** cgroups (src/cgroups). */
type CgroupErrorCode =
  | 'ERR_CGROUP_PATH_INVALID'
  | 'ERR_CGROUP_PARENT_ROOT'
  | 'ERR_CGROUP_PARENT_IS_SELF'
  | 'ERR_CGROUP_OUTSIDE_PARENT'
  | 'ERR_CGROUP_POD_UID_INVALID'
  | 'ERR_CGROUP_QOS_INVALID'
  | 'ERR_CGROUP_LIMIT_INVALID'
  | 'ERR_CGROUP_LIMIT_APPLY'
  | 'ERR_CGROUP_CONTROLLER_MISSING'
  | 'ERR_CGROUP_CONTROLLER_ENABLE'
  | 'ERR_CGROUP_NOT_FOUND'
  | 'ERR_CGROUP_KILL_TIMEOUT'
  | 'ERR_CGROUP_BUSY';

/** Pod namespaces and networking (src/network). */
type NetworkErrorCode =
  | 'ERR_POD_HOSTNAME_INVALID'
  | 'ERR_PIN_NOTHING'
  | 'ERR_PIN_HOSTNAME_WITHOUT_UTS'
  | 'ERR_SYSCTL_INVALID'
  | 'ERR_UNSHARE_NOT_FOUND'
  | 'ERR_HOSTNAME_BIN_NOT_FOUND'
  | 'ERR_NAMESPACE_ALREADY_PINNED'
  | 'ERR_NAMESPACE_PIN_FAILED'
  | 'ERR_NAMESPACE_UNPIN_FAILED'
  | 'ERR_NETNS_NOT_FOUND'
  | 'ERR_POD_SUBNET_INVALID'
  | 'ERR_BRIDGE_NAME_INVALID'
  | 'ERR_SANDBOX_ID_INVALID'
  | 'ERR_PORT_MAPPING_INVALID'
  | 'ERR_HOSTPORT_UNSUPPORTED'
  | 'ERR_HOSTPORT_CONFLICT'
  | 'ERR_CNI_CONFIG_INVALID'
  | 'ERR_CNI_ARGS_INVALID'
  | 'ERR_CNI_PLUGIN_NOT_FOUND'
  | 'ERR_CNI_PLUGIN_EXEC_FAILED'
  | 'ERR_CNI_PLUGIN_TIMEOUT'
  | 'ERR_CNI_PLUGIN_FAILED'
  | 'ERR_CNI_RESULT_INVALID'
  | 'ERR_CNI_CHECK_UNSUPPORTED'
  | 'ERR_CNI_NO_IP'
  | 'ERR_CNI_NOT_SET_UP'
  | 'ERR_CNI_DEL_FAILED';

/** The container runtime, its plans, seccomp and the shim (src/runtime). */
type RuntimeErrorCode =
  | 'ERR_RUNTIME_CLOSED'
  | 'ERR_SANDBOX_CONFIG_INVALID'
  | 'ERR_SANDBOX_NOT_FOUND'
  | 'ERR_SANDBOX_NOT_READY'
  | 'ERR_SANDBOX_STATE'
  | 'ERR_CONTAINER_CONFIG_INVALID'
  | 'ERR_CONTAINER_USER_INVALID'
  | 'ERR_CONTAINER_RUN_AS_NON_ROOT'
  | 'ERR_CAPABILITY_UNKNOWN'
  | 'ERR_CONTAINER_NOT_FOUND'
  | 'ERR_CONTAINER_CREATE'
  | 'ERR_CONTAINER_STATE'
  | 'ERR_CONTAINER_START'
  | 'ERR_CONTAINER_RUNNING'
  | 'ERR_CONTAINER_NOT_RUNNING'
  | 'ERR_EXEC_INVALID'
  | 'ERR_EXEC_START'
  | 'ERR_EXEC_REFUSED'
  | 'ERR_EXEC_LOST'
  | 'ERR_ATTACH_LOST'
  | 'ERR_ATTACH_NO_STDIN'
  | 'ERR_API_BODY_TOO_LARGE'
  | 'ERR_IMAGE_AUTH_CHALLENGE'
  | 'ERR_EXEC_LEAK'
  | 'ERR_CANCELED'
  | 'ERR_SECCOMP_PROFILE_LOAD'
  | 'ERR_SECCOMP_PROFILE_INVALID'
  | 'ERR_SECCOMP_PROFILE_TOO_LARGE'
  | 'ERR_SECCOMP_UNSUPPORTED_ARCH'
  | 'ERR_SHIM_UNAVAILABLE'
  | 'ERR_SHIM_LOST'
  | 'ERR_SHIM_PROTOCOL'
  | 'ERR_SHIM_PLAN_INVALID'
  | 'ERR_SHIM_PLAN_TOO_LARGE';

/** Pod manifests, env and volume resolution (src/pod) and volumes (src/volumes). */
type PodErrorCode =
  | 'ERR_POD_INVALID'
  | 'ERR_KIND_NOT_SUPPORTED'
  | 'ERR_POD_NOT_FOUND'
  | 'ERR_QUANTITY_INVALID'
  | 'ERR_SYSCTL_PATTERN_INVALID'
  | 'ERR_SYSCTL_NOT_NAMESPACED'
  /** kubelet's CreateContainerConfigError: an unresolved reference in the container's config. */
  | 'ERR_CREATE_CONTAINER_CONFIG'
  | 'ERR_FIELDREF_UNSUPPORTED'
  | 'ERR_RESOURCEFIELDREF_CONTAINER'
  | 'ERR_RESOURCEFIELDREF_UNSUPPORTED'
  | 'ERR_NODE_ALLOCATABLE_UNKNOWN'
  | 'ERR_NODE_HOSTNAME_REQUIRED'
  | 'ERR_VOLUME_UNSUPPORTED'
  | 'ERR_VOLUME_CONFIGMAP_NOT_FOUND'
  | 'ERR_VOLUME_SECRET_NOT_FOUND'
  | 'ERR_VOLUME_KEY_NOT_FOUND'
  | 'ERR_VOLUME_PATH_INVALID'
  | 'ERR_VOLUME_UNMOUNT'
  | 'ERR_HOSTPATH_TYPE_CHECK'
  | 'ERR_SUBPATH_INVALID'
  | 'ERR_SUBPATH_ESCAPE';

/** The Kubernetes API client and kubeconfig (src/kube); see src/kube/errors.ts for the HTTP mapping. */
type KubeErrorCode =
  | 'ERR_KUBECONFIG_READ'
  | 'ERR_KUBECONFIG_PARSE'
  | 'ERR_KUBECONFIG_NO_CONTEXT'
  | 'ERR_KUBECONFIG_CONTEXT_NOT_FOUND'
  | 'ERR_KUBECONFIG_CLUSTER_NOT_FOUND'
  | 'ERR_KUBECONFIG_USER_NOT_FOUND'
  | 'ERR_KUBECONFIG_FIELD'
  | 'ERR_KUBECONFIG_CREDENTIALS'
  | 'ERR_KUBECONFIG_UNSUPPORTED'
  | 'ERR_KUBE_BAD_REF'
  | 'ERR_KUBE_BAD_NAME'
  | 'ERR_KUBE_PATCH_TYPE'
  | 'ERR_KUBE_PATCH_FORCE'
  | 'ERR_KUBE_FIELD_MANAGER'
  | 'ERR_KUBE_CLOSED'
  // transport: no answer
  | 'ERR_KUBE_UNREACHABLE'
  | 'ERR_KUBE_TLS'
  | 'ERR_KUBE_TIMEOUT'
  | 'ERR_KUBE_CANCELED'
  | 'ERR_KUBE_DECODE'
  | 'ERR_KUBE_WATCH_BROKEN'
  // an answer with an error status (KubeApiError)
  | 'ERR_KUBE_BAD_REQUEST'
  | 'ERR_KUBE_UNAUTHORIZED'
  | 'ERR_KUBE_FORBIDDEN'
  | 'ERR_KUBE_NOT_FOUND'
  | 'ERR_KUBE_METHOD_NOT_ALLOWED'
  | 'ERR_KUBE_UNSUPPORTED'
  | 'ERR_KUBE_ALREADY_EXISTS'
  | 'ERR_KUBE_CONFLICT'
  | 'ERR_KUBE_GONE'
  | 'ERR_KUBE_TOO_LARGE'
  | 'ERR_KUBE_INVALID'
  | 'ERR_KUBE_TOO_MANY_REQUESTS'
  | 'ERR_KUBE_INTERNAL'
  | 'ERR_KUBE_UNAVAILABLE'
  /** any other HTTP status */
  | `ERR_KUBE_HTTP_${number}`;

/** The node: host signals, Node object and lease (src/node). */
type NodeErrorCode =
  | 'ERR_NODE_IP_INVALID'
  | 'ERR_EVICTION_SIGNAL'
  | 'ERR_EVICTION_THRESHOLD'
  | 'ERR_NODE_NO_UID'
  | 'ERR_NODE_CONTROLLER_STOPPED'
  | 'ERR_LEASE_NODE_UID_UNKNOWN';

/** Cluster mode: objects a pod refers to (src/cluster). */
type ClusterErrorCode =
  | 'ERR_OBJECTS_NO_UID'
  | 'ERR_OBJECTS_UNREACHABLE'
  | 'ERR_OBJECTS_FETCH'
  | 'ERR_TOKEN_REQUEST_ANSWER'
  | 'ERR_SERVICE_ENV_FETCH';

/** The kubelet server on port 10250 (src/kubelet). */
type KubeletErrorCode =
  | 'ERR_KUBELET_SERVING_CERT'
  | 'ERR_KUBELET_CLIENT_CA'
  | 'ERR_KUBELET_LISTEN'
  | 'ERR_KUBELET_REVIEW'
  /** The kubelet server stops with an exec/attach over SPDY running: its status (src/kubelet/spdy-exec.ts). */
  | 'ERR_KUBELET_STOPPING'
  /** A SPDY/3.1 peer broke the framing or the protocol (src/kubelet/spdy.ts): the connection is closed. */
  | 'ERR_SPDY_PROTOCOL'
  | 'ERR_SPDY_HEADER_BLOCK'
  | 'ERR_SPDY_CLOSED'
  /** --feature-gates: not NAME=BOOL, or a gate nodelet does not know. */
  | 'ERR_FEATURE_GATE_INVALID';

/** The command line and its client of the daemon's API (src/cli). */
type CliErrorCode =
  | 'ERR_NOT_ROOT'
  | 'ERR_DAEMON_UNREACHABLE'
  | 'ERR_EXEC_STREAM'
  | 'ERR_EXEC_STREAM_CLOSED'
  /** An error answer of the daemon's API: `ERR_API_<Status.reason or HTTP status>` (ERR_API_NotFound, ...). */
  | `ERR_API_${string}`;

export type ErrorCode =
  | SysErrorCode
  | ImageErrorCode
  | SnapshotErrorCode
  | CgroupErrorCode
  | NetworkErrorCode
  | RuntimeErrorCode
  | PodErrorCode
  | KubeErrorCode
  | NodeErrorCode
  | ClusterErrorCode
  | KubeletErrorCode
  | CliErrorCode;
