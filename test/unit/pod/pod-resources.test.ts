// Pod-level spec.resources (PodLevelResources, beta and on by default in v1.36): the API server's
// defaulting and validation, GetPodQOS, ResourceConfigForPod for the pod cgroup, containers without
// limits under pod-level limits, the downward API, admission. The expected values are what the v1.36.3
// Go code returns for the same pods (legacyscheme defaulting, ValidatePodCreate, v1qos.ComputePodQOS,
// cm.ResourceConfigForPod, resourcehelper.PodRequests, qos.GetContainerOOMScoreAdjust, run from the
// module cache).
import { describe, expect, it } from 'vitest';
import { applyDefaults } from '../../../src/pod/defaults.js';
import { validatePodFull } from '../../../src/pod/validation.js';
import { formatFieldError } from '../../../src/pod/field-errors.js';
import {
  canonicalQuantity,
  effectiveContainerLimits,
  formatQuantity,
  getPodQOS,
  podLevelMemoryRequestPerContainer,
  podLevelResources,
  podResources,
  toAmount,
} from '../../../src/pod/qos.js';
import { buildContainerConfig, buildSandboxConfig } from '../../../src/pod/container-config.js';
import { computePodAdmission, podRequests, type AdmissionNode } from '../../../src/pod/admission.js';
import { cpuQuotaFromMilli, cpuSharesFromMilli } from '../../../src/cgroups/qos.js';
import { loadManifests } from '../../../src/pod/manifest.js';
import type { Container, Pod } from '../../../src/pod/api-types.js';
import type { ImageRecord } from '../../../src/image/types.js';

const c = (name: string, resources?: Container['resources'], extra: Partial<Container> = {}): Container => ({ name, image: 'busybox', ...(resources ? { resources } : {}), ...extra });
const pod = (spec: Partial<Pod['spec']>, containers: Container[] = [c('a')]): Pod =>
  applyDefaults({ metadata: { name: 'p', namespace: 'default' }, spec: { restartPolicy: 'Never', containers, ...spec } } as Pod, { uid: () => 'uid-1' });
const errorsOf = (p: Pod) => validatePodFull(p).errors.map(formatFieldError).sort();
const Mi = 2 ** 20;

describe('QoS class and the pod cgroup (GetPodQOS, ResourceConfigForPod)', () => {
  // [pod, QoS, cpu.shares, cfs quota (undefined = none), memory limit (undefined = none)] as v1.36 computes them
  const cases: [string, Pod, string, number, number | undefined, number | undefined][] = [
    ['limits only: requests default to them', pod({ resources: { limits: { memory: '64Mi', cpu: '500m' } } }, [c('a'), c('b')]), 'Guaranteed', 512, 50000, 64 * Mi],
    ['a memory limit only', pod({ resources: { limits: { memory: '64Mi' } } }), 'Burstable', 2, undefined, 64 * Mi],
    ['requests only', pod({ resources: { requests: { memory: '64Mi', cpu: '250m' } } }, [c('a'), c('b', { requests: { memory: '16Mi' } })]), 'Burstable', 256, undefined, undefined],
    ['requests and limits', pod({ resources: { requests: { memory: '32Mi', cpu: '600m' }, limits: { memory: '64Mi', cpu: '1' } } }, [c('a', { requests: { cpu: '100m' } }), c('b', { limits: { memory: '32Mi', cpu: '500m' } })]), 'Burstable', 614, 100000, 64 * Mi],
    // a set but empty spec.resources: only pod-level values count, and there are none
    ['`resources: {}` over containers with limits', pod({ resources: {} }, [c('a', { limits: { cpu: '1', memory: '1Gi' } })]), 'BestEffort', 2, undefined, undefined],
    ['requests default to the containers\' aggregate (init max rule)', pod({ resources: { limits: { memory: '256Mi', cpu: '2' } }, initContainers: [c('i', { requests: { memory: '200Mi', cpu: '1500m' } })] }, [c('a', { requests: { memory: '100Mi' } }), c('b', { limits: { cpu: '500m' } })]), 'Burstable', 1536, 200000, 256 * Mi],
    ['sidecars add to the aggregate', pod({ resources: { limits: { memory: '256Mi' } }, initContainers: [c('s', { requests: { memory: '20Mi' } }, { restartPolicy: 'Always' }), c('i', { requests: { memory: '100Mi' } })] }, [c('a', { requests: { memory: '10Mi' } })]), 'Burstable', 2, undefined, 256 * Mi],
    ['pod limits with container requests and limits', pod({ resources: { limits: { memory: '1Gi', cpu: '2' }, requests: { memory: '512Mi', cpu: '1' } } }, [c('a', { requests: { memory: '100Mi' } }), c('b')]), 'Burstable', 1024, 200000, 1024 * Mi],
    // without pod-level resources: an init container without a memory limit leaves the pod without one
    ['no pod level: an init container without limits', pod({ initContainers: [c('i', { requests: { memory: '16Mi' } })] }, [c('a', { limits: { memory: '64Mi', cpu: '100m' }, requests: { memory: '32Mi', cpu: '100m' } })]), 'Burstable', 102, undefined, undefined],
    // ... a sidecar without one after a sidecar with one does not (the running sidecar sum is what counts)
    ['no pod level: sidecars', pod({ initContainers: [c('s1', { limits: { memory: '10Mi' } }, { restartPolicy: 'Always' }), c('s2', { requests: { memory: '5Mi' } }, { restartPolicy: 'Always' })] }, [c('a', { limits: { memory: '64Mi' }, requests: { memory: '32Mi' } })]), 'Burstable', 2, undefined, 74 * Mi],
  ];
  it.each(cases)('%s', (_, p, qos, shares, quota, memory) => {
    expect(errorsOf(p)).toEqual([]);
    expect(getPodQOS(p)).toBe(qos);
    const r = podResources(p);
    expect(cpuSharesFromMilli(r.cpuRequestMilli)).toBe(shares);
    expect(r.cpuLimitMilli === undefined ? undefined : cpuQuotaFromMilli(r.cpuLimitMilli)).toBe(quota);
    expect(r.memoryLimitBytes).toBe(memory);
    const sb = buildSandboxConfig(p, { hostResolvConf: { nameservers: [], searches: [], options: [] }, nodeHostname: 'n' });
    expect(sb.qosClass).toBe(qos);
    expect(sb.resources).toEqual(r);
  });

  it('hugepages alone at pod level (refused by validation) are BestEffort', () => {
    expect(getPodQOS(pod({ resources: { limits: { 'hugepages-2Mi': '4Mi' } } }))).toBe('BestEffort');
  });

  it('spec.resources as the API server stores it (defaultHugePagePodLimits, defaultPodRequests)', () => {
    expect(podLevelResources(pod({}))).toBeUndefined();
    expect(podLevelResources(pod({ resources: {} }))).toEqual({ requests: {}, limits: {} });
    expect(podLevelResources(pod({ resources: { limits: { memory: '64Mi', cpu: '500m' } } }))).toEqual({ limits: { memory: '64Mi', cpu: '500m' }, requests: { memory: '64Mi', cpu: '500m' } });
    // cpu from the containers (their requests, defaulted from limits), memory from the pod limit
    expect(podLevelResources(pod({ resources: { limits: { memory: '256Mi', cpu: '2' } } }, [c('a', { limits: { cpu: '500m' } }), c('b', { requests: { cpu: '0.25' } })]))!.requests).toEqual({ cpu: '750m', memory: '256Mi' });
    // a hugepages limit of the containers becomes the pod's, and its request
    expect(podLevelResources(pod({ resources: { limits: { memory: '64Mi' } } }, [c('a', { limits: { 'hugepages-2Mi': '4Mi', memory: '32Mi' } })]))).toEqual({
      limits: { memory: '64Mi', 'hugepages-2Mi': '4Mi' },
      requests: { memory: '32Mi', 'hugepages-2Mi': '4Mi' },
    });
    // requests alone are not defaulted
    expect(podLevelResources(pod({ resources: { requests: { cpu: '1' } } }, [c('a', { requests: { memory: '1Gi' } })]))).toEqual({ requests: { cpu: '1' }, limits: {} });
  });

  it('the manifest field is implemented: no "not supported" warning', () => {
    const m = loadManifests('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  resources: {limits: {memory: 64Mi}}\n  containers: [{name: a, image: busybox}]\n', 'p.yaml');
    expect(m.warnings).toEqual([]);
    expect(m.pods[0]!.spec.resources).toMatchObject({ limits: { memory: '64Mi' } });
  });
});

describe('containers under pod-level limits (kuberuntime getCPULimit / getMemoryLimit)', () => {
  const image: ImageRecord = {
    id: 'sha256:img', manifestDigest: 'sha256:m', names: ['busybox'], repoDigests: [], chainIds: [], size: 0, pulledAt: '',
    config: { os: 'linux', architecture: 'amd64', cmd: ['sh'], env: [], exposedPorts: [], labels: {}, diffIds: [] },
  };
  const build = (p: Pod, name: string, nodeAllocatable?: { cpuMilli: number; memoryBytes: number }) => {
    const ctr = [...p.spec.containers, ...(p.spec.initContainers ?? [])].find((x) => x.name === name)!;
    return buildContainerConfig({
      pod: p, container: ctr, image, attempt: 0, podLogsDir: '/l', volumePaths: {}, objects: { configMaps: [], secrets: [] },
      nodeAllocatable, subPathResolver: () => { throw new Error('none'); },
    }).config;
  };
  const env = [
    { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
    { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
    { name: 'B_MEM', valueFrom: { resourceFieldRef: { containerName: 'b', resource: 'limits.memory', divisor: '1Mi' } } },
    { name: 'REQ', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
  ];
  const alloc = { cpuMilli: 2000, memoryBytes: 8192 * Mi };

  it('a container without its own limit gets the pod-level one in its cgroup; its own limit wins', () => {
    const p = pod({ resources: { limits: { memory: '64Mi', cpu: '500m' } } }, [c('a', undefined, { env }), c('b', { limits: { memory: '32Mi' } })]);
    expect(effectiveContainerLimits(p, p.spec.containers[0]!)).toEqual({ cpu: 500, memory: 64 * Mi });
    expect(effectiveContainerLimits(p, p.spec.containers[1]!)).toEqual({ cpu: 500, memory: 32 * Mi });
    // no cpu request: the weight follows the (pod-level) cpu limit, as calculateLinuxResources does
    expect(build(p, 'a', alloc).resources).toEqual({ cpuRequestMilli: undefined, cpuLimitMilli: 500, memoryRequestBytes: undefined, memoryLimitBytes: 64 * Mi });
    expect(build(p, 'b', alloc).resources).toMatchObject({ cpuLimitMilli: 500, memoryLimitBytes: 32 * Mi, memoryRequestBytes: 32 * Mi });
    // requests alone at the pod level: no limit for the containers
    const q = pod({ resources: { requests: { memory: '64Mi' } } });
    expect(effectiveContainerLimits(q, q.spec.containers[0]!)).toEqual({});
    // no pod-level resources: the container's own
    const r = pod({}, [c('a', { limits: { memory: '16Mi' } })]);
    expect(build(r, 'a').resources).toMatchObject({ memoryLimitBytes: 16 * Mi, cpuLimitMilli: undefined });
  });

  it('downward API env: a missing limit reads the pod-level limit, else the node allocatable (defaultPodLimitsForDownwardAPI)', () => {
    const p = pod({ resources: { limits: { memory: '64Mi', cpu: '500m' } } }, [c('a', undefined, { env }), c('b')]);
    const e = (cfg: ReturnType<typeof build>) => Object.fromEntries(cfg.env.map((kv) => kv.split('=')));
    expect(e(build(p, 'a', alloc))).toMatchObject({ CPU: '500', MEM: '64', B_MEM: '64', REQ: '0' });
    // the pod-level values also stand in for an unknown allocatable
    expect(e(build(p, 'a'))).toMatchObject({ CPU: '500', MEM: '64' });
    // only memory at the pod level: cpu falls back to the node
    const m = pod({ resources: { limits: { memory: '64Mi' } } }, [c('a', undefined, { env }), c('b', { limits: { memory: '8Mi' } })]);
    expect(e(build(m, 'a', alloc))).toMatchObject({ CPU: '2000', MEM: '64', B_MEM: '8' });
    // no pod-level limits: the node's allocatable
    const n = pod({ resources: { requests: { memory: '32Mi' } } }, [c('a', undefined, { env }), c('b')]);
    expect(e(build(n, 'a', alloc))).toMatchObject({ CPU: '2000', MEM: '8192' });
  });

  it('OOM score share of the pod-level memory request (remainingPodMemReqPerContainer)', () => {
    expect(podLevelMemoryRequestPerContainer(pod({ resources: { requests: { memory: '64Mi', cpu: '250m' } } }, [c('a'), c('b', { requests: { memory: '16Mi' } })]))).toBe(24 * Mi);
    expect(podLevelMemoryRequestPerContainer(pod({ resources: { limits: { memory: '64Mi' } } }))).toBe(64 * Mi);
    expect(podLevelMemoryRequestPerContainer(pod({ resources: { requests: { cpu: '1' } } }))).toBe(0);
    expect(podLevelMemoryRequestPerContainer(pod({}))).toBe(0);
  });
});

describe('validation (validatePodResources, v1.36 wording and paths)', () => {
  const v = (spec: Partial<Pod['spec']>, containers?: Container[]) => errorsOf(pod(spec, containers));
  it('resource names: cpu, memory, hugepages-* only', () => {
    expect(v({ resources: { limits: { 'ephemeral-storage': '1Gi', memory: '1Gi', 'example.com/foo': '1', 'Bad_Name!': '1', pods: '1.5' } } })).toEqual([
      `spec.resources.limits[Bad_Name!]: Invalid value: "Bad_Name!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
      'spec.resources.limits[ephemeral-storage]: Unsupported value: "ephemeral-storage": supported values: "cpu", "hugepages-", "memory"',
      'spec.resources.limits[example.com/foo]: Unsupported value: "example.com/foo": supported values: "cpu", "hugepages-", "memory"',
      'spec.resources.limits[pods]: Invalid value: "1500m": must be an integer',
      'spec.resources.limits[pods]: Unsupported value: "pods": supported values: "cpu", "hugepages-", "memory"',
    ]);
  });
  it('requests <= limits (values as Quantity.String() prints them)', () => {
    expect(v({ resources: { requests: { memory: '128Mi', cpu: '0.5' }, limits: { memory: '64Mi', cpu: '250m' } } })).toEqual([
      'spec.resources.requests: Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi',
      'spec.resources.requests: Invalid value: "500m": must be less than or equal to cpu limit of 250m',
    ]);
    expect(v({ resources: { requests: { memory: '1.5Gi' }, limits: { memory: '1000M' } } })).toEqual(['spec.resources.requests: Invalid value: "1536Mi": must be less than or equal to memory limit of 1G']);
    // a container request above the pod limit: the defaulted pod request is too
    expect(v({ resources: { limits: { memory: '64Mi' } } }, [c('a', { requests: { memory: '100Mi' } })])).toEqual(['spec.resources.requests: Invalid value: "100Mi": must be less than or equal to memory limit of 64Mi']);
  });
  it('pod-level requests >= the containers\' aggregate; each container limit <= the pod limit', () => {
    expect(v({ resources: { requests: { memory: '64Mi', cpu: '100m' } } }, [c('a', { requests: { memory: '50Mi', cpu: '100m' } }), c('b', { requests: { memory: '50Mi', cpu: '50m' } })])).toEqual([
      'spec.resources.requests[cpu]: Invalid value: "100m": must be greater than or equal to aggregate container requests of 150m',
      'spec.resources.requests[memory]: Invalid value: "64Mi": must be greater than or equal to aggregate container requests of 100Mi',
    ]);
    expect(v({ resources: { limits: { memory: '64Mi', cpu: '500m' } } }, [c('a', { limits: { memory: '128Mi' } }), c('b', { limits: { cpu: '1' } })])).toEqual([
      'spec.resources.containers[0][memory].limits: Invalid value: "128Mi": must be less than or equal to pod limits of 64Mi',
      'spec.resources.containers[1][cpu].limits: Invalid value: "1": must be less than or equal to pod limits of 500m',
      'spec.resources.requests: Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi',
      'spec.resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m',
    ].sort());
    // the sum of container limits may exceed the pod's (they share it)
    expect(v({ resources: { limits: { memory: '64Mi' } } }, [c('a', { limits: { memory: '64Mi' }, requests: { memory: '8Mi' } }), c('b', { limits: { memory: '64Mi' }, requests: { memory: '8Mi' } })])).toEqual([]);
  });
  it('hugepages, claims, negative values, windows', () => {
    expect(v({ resources: { limits: { 'hugepages-2Mi': '4Mi' } } })).toEqual(['spec.resources: Forbidden: HugePages require cpu or memory']);
    expect(v({ resources: { limits: { 'hugepages-2Mi': '3Mi', memory: '64Mi' }, requests: { 'hugepages-2Mi': '2Mi' } } }, [c('a', { limits: { 'hugepages-2Mi': '8Mi', memory: '32Mi' } })])).toEqual([
      'spec.resources.containers[0][hugepages-2Mi].limits: Invalid value: "8Mi": must be less than or equal to pod limits of 3Mi',
      'spec.resources.limits[hugepages-2Mi]: Invalid value: "3Mi": 3Mi is not positive integer multiple of hugepages-2Mi',
      'spec.resources.limits[hugepages-2Mi]: Invalid value: "3Mi": must be greater than or equal to aggregate container limits of 8Mi',
      'spec.resources.requests: Invalid value: "2Mi": must be equal to hugepages-2Mi limit of 3Mi',
      'spec.resources.requests[hugepages-2Mi]: Invalid value: "2Mi": must be greater than or equal to aggregate container requests of 8Mi',
    ]);
    expect(v({ resources: { requests: { 'hugepages-2Mi': '2Mi', memory: '64Mi' } } })).toEqual(['spec.resources.limits: Required value: Limit must be set for non overcommitable resources']);
    expect(v({ resources: { claims: [{ name: 'gpu' }], limits: { memory: '64Mi' } } })).toEqual([
      'spec.resources.claims: Forbidden: claims may not be set for Resources at pod-level',
      'spec.resources.claims[0]: Not found: "gpu": must be one of the names in pod.spec.resourceClaims which is empty',
    ]);
    expect(v({ resources: { limits: { memory: '-1Mi' } } })).toEqual([
      'spec.resources.limits[memory]: Invalid value: "-1Mi": must be greater than or equal to 0',
      'spec.resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0',
    ]);
    expect(v({ os: { name: 'windows' }, resources: { limits: { memory: '64Mi' } } } as Partial<Pod['spec']>)).toEqual(['spec.resources: Forbidden: may not be set for a windows pod']);
  });
});

describe('Quantity.String() and admission', () => {
  it('formats quantities as the API server prints them', () => {
    // apimachinery v0.36.3 resource.Quantity String() of each (after an Add, so not the cached input text)
    const cases: [string, string][] = [
      ['0.5', '500m'], ['1.5Gi', '1536Mi'], ['1024Mi', '1Gi'], ['1000M', '1G'], ['1e3', '1e3'], ['1500e-3', '1500e-3'], ['1.5e3', '1500'],
      ['512', '512'], ['1023Ki', '1023Ki'], ['0.5Ki', '512'], ['100m', '100m'], ['2000', '2k'], ['-1Mi', '-1Mi'], ['0', '0'], ['1n', '1n'],
      ['1.5', '1500m'], ['129e6', '129e6'], ['1025', '1025'], ['2048', '2048'], ['1.0000000001', '1000000001n'],
      ['12345678901234567890', '12345678901234567890'], ['1k', '1k'], ['1000m', '1'], ['1Ei', '1Ei'],
    ];
    for (const [q, want] of cases) expect(canonicalQuantity(q), q).toBe(want);
    expect(formatQuantity({ nano: 150_000_000n, format: 'DecimalSI' })).toBe('150m');
    expect(toAmount('64Mi')).toEqual({ nano: 64n * 2n ** 20n * 1_000_000_000n, format: 'BinarySI' });
  });

  it('admission uses the defaulted pod-level requests (PodRequests): limits alone request the limits', () => {
    const node: AdmissionNode = { name: 'n', allocatable: { cpu: '2', memory: '1Gi', pods: '110' } };
    const p = pod({ resources: { limits: { memory: '2Gi', cpu: '500m' } } }, [c('a'), c('b')]);
    expect(podRequests(p).get('memory')).toBe(2n * 2n ** 30n * 1_000_000_000n);
    expect(computePodAdmission(p, node, [])).toMatchObject({ admit: false, reason: 'OutOfmemory' });
    expect(computePodAdmission(pod({ resources: { limits: { memory: '512Mi', cpu: '500m' } } }), node, [])).toEqual({ admit: true });
  });
});
