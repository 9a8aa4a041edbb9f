// seccompProfile from the pod spec to the shim plan: validation (Kubernetes' messages),
// pod-level default with the container's winning, and the plan's filter.
import { describe, expect, it } from 'vitest';
import { computeShimPlan, type ShimPlanInput } from '../../../src/runtime/compute-plan.js';
import { mergeSecurity } from '../../../src/pod/container-config.js';
import { validatePod } from '../../../src/pod/validation.js';
import { checkShape } from '../../../src/pod/schema.js';
import { formatFieldError } from '../../../src/pod/field-errors.js';
import type { Pod, SeccompProfile } from '../../../src/pod/api-types.js';
import type { ContainerConfig } from '../../../src/runtime/types.js';
import { parseProfile } from '../../../src/runtime/seccomp/index.js';
import { AUDIT_ARCH } from '../../../src/runtime/seccomp/compile.js';

const pod = (podSp?: SeccompProfile, ctrSp?: SeccompProfile, privileged?: boolean): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u' },
  spec: {
    ...(podSp ? { securityContext: { seccompProfile: podSp } } : {}),
    containers: [{ name: 'c', image: 'i', ...(ctrSp || privileged ? { securityContext: { ...(ctrSp ? { seccompProfile: ctrSp } : {}), ...(privileged ? { privileged } : {}) } } : {}) }],
  },
});
const errors = (p: Pod) => validatePod(p).map(formatFieldError);

describe('validation', () => {
  it('accepts the three types, at pod and container level', () => {
    expect(errors(pod({ type: 'RuntimeDefault' }, { type: 'Unconfined' }))).toEqual([]);
    expect(errors(pod(undefined, { type: 'Localhost', localhostProfile: 'profiles/audit.json' }))).toEqual([]);
  });
  it.each([
    [pod({ type: 'Bogus' as 'Unconfined' }), /spec\.securityContext\.seccompProfile\.type: Unsupported value: "Bogus": supported values: "Localhost", "RuntimeDefault", "Unconfined"/],
    [pod(undefined, { type: 'Localhost' }), /spec\.containers\[0\]\.securityContext\.seccompProfile\.localhostProfile: Required value: must be set when seccomp type is Localhost/],
    [pod(undefined, { type: 'Localhost', localhostProfile: '../x.json' }), /seccompProfile\.localhostProfile: Invalid value: "\.\.\/x\.json": must not contain '\.\.'/],
    [pod({ type: 'Localhost', localhostProfile: '/abs.json' }), /spec\.securityContext\.seccompProfile\.localhostProfile: Invalid value: "\/abs\.json": must be a relative path/],
    [pod({ type: 'RuntimeDefault', localhostProfile: 'x.json' }), /seccompProfile\.localhostProfile: Invalid value: .*can only be set when seccomp type is Localhost/],
    [pod({} as SeccompProfile), /spec\.securityContext\.seccompProfile\.type: Required value: type is required when seccompProfile is set/],
  ])('%#: refuses with Kubernetes\' message', (p, re) => {
    expect(errors(p).join('\n')).toMatch(re);
  });
  it('is a known field now (no "not supported" warning)', () => {
    const w: string[] = [];
    checkShape('pod', pod({ type: 'RuntimeDefault' }, { type: 'Localhost', localhostProfile: 'a.json' }), '', [], w);
    expect(w).toEqual([]);
  });
});

describe('mergeSecurity', () => {
  const sec = (p: Pod) => mergeSecurity(p, p.spec.containers[0]!).seccomp;
  it('the container wins over the pod; nothing set = none', () => {
    expect(sec(pod({ type: 'RuntimeDefault' }))).toEqual({ type: 'RuntimeDefault' });
    expect(sec(pod({ type: 'RuntimeDefault' }, { type: 'Unconfined' }))).toEqual({ type: 'Unconfined' });
    expect(sec(pod({ type: 'Unconfined' }, { type: 'Localhost', localhostProfile: 'a.json' }))).toEqual({ type: 'Localhost', localhostProfile: 'a.json' });
    expect(sec(pod())).toBeUndefined();
  });

  it('--seccomp-default fills in RuntimeDefault only where neither the pod nor the container chose', () => {
    const def = (p: Pod) => mergeSecurity(p, p.spec.containers[0]!, true).seccomp;
    expect(def(pod())).toEqual({ type: 'RuntimeDefault' });
    expect(def(pod({ type: 'Unconfined' }))).toEqual({ type: 'Unconfined' });
    expect(def(pod(undefined, { type: 'Localhost', localhostProfile: 'a.json' }))).toEqual({ type: 'Localhost', localhostProfile: 'a.json' });
  });
});

describe('computeShimPlan', () => {
  const input = (sec: Partial<ContainerConfig['security']>, over: Partial<ShimPlanInput> = {}): ShimPlanInput => {
    const p = { uid: 'u1', name: 'web', namespace: 'default', hostname: 'web', hostNetwork: false, hostPID: false, hostIPC: false, shareProcessNamespace: false, hostAliases: [], portMappings: [], qosClass: 'BestEffort' as const, resources: {}, labels: {}, annotations: {} };
    return {
      containerId: 'c'.repeat(64), stateDir: '/s', rootfs: '/r', hostArch: 'x64',
      config: {
        name: 'app', attempt: 0, imageRef: 'busybox', imageId: 'sha256:x', argv: ['sh'], env: [], mounts: [], resources: {}, tty: false, stdin: false, logPath: '/l/0.log', labels: {}, annotations: {},
        security: { privileged: false, supplementalGroups: [], capabilitiesAdd: [], capabilitiesDrop: [], readOnlyRootFilesystem: false, noNewPrivs: false, ...sec },
      },
      sandbox: { config: p, namespaces: { net: '/n', ipc: '/i', uts: '/u' }, hostsPath: '/h', hostnamePath: '/hn', resolvConfPath: '/rc', shmPath: '/shm' },
      user: { uid: 0, gid: 0, additionalGids: [], home: '/root' }, cgroupVersion: 'v2', cgroupProcsFiles: [], capLastCap: 40, nofileHardLimit: 20000,
      ...over,
    };
  };
  const first = (hex: string) => Buffer.from(hex, 'hex');

  it('RuntimeDefault puts a filter in the plan; its capability part follows capabilities.add', () => {
    const plain = computeShimPlan(input({ seccomp: { type: 'RuntimeDefault' } })).plan.seccomp!;
    const admin = computeShimPlan(input({ seccomp: { type: 'RuntimeDefault' }, capabilitiesAdd: ['SYS_ADMIN'] })).plan.seccomp!;
    expect(plain).toMatch(/^([0-9a-f]{16})+$/);
    expect(admin).not.toBe(plain);
    // the program starts by loading the architecture and checking x86_64
    expect(first(plain).readUInt16LE(0)).toBe(0x20);
    expect(first(plain).readUInt32LE(12)).toBe(AUDIT_ARCH.X86_64);
  });

  it('no filter for Unconfined, no profile, or a privileged container', () => {
    expect(computeShimPlan(input({ seccomp: { type: 'Unconfined' } })).plan.seccomp).toBeUndefined();
    expect(computeShimPlan(input({})).plan.seccomp).toBeUndefined();
    expect(computeShimPlan(input({ privileged: true, seccomp: { type: 'RuntimeDefault' } })).plan.seccomp).toBeUndefined();
  });

  it('Localhost compiles the loaded profile, and needs it loaded', () => {
    const prof = parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}', 'p');
    const sec = { seccomp: { type: 'Localhost' as const, localhostProfile: 'p.json' } };
    expect(computeShimPlan(input(sec, { seccompLocalhost: prof })).plan.seccomp).toMatch(/^([0-9a-f]{16})+$/);
    expect(() => computeShimPlan(input(sec))).toThrow(/was not loaded/);
  });
});
