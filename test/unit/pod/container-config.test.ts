import { describe, expect, it } from 'vitest';
import { expand, resolveEnv } from '../../../src/pod/env.js';
import { buildContainerConfig, buildSandboxConfig, computeArgv, computeDNS, podHostname } from '../../../src/pod/container-config.js';
import { validatePod, validatePodFull } from '../../../src/pod/validation.js';
import { getPodQOS, podResources } from '../../../src/pod/qos.js';
import { applyDefaults } from '../../../src/pod/manifest.js';
import type { Container, Pod } from '../../../src/pod/api-types.js';
import type { ImageRecord } from '../../../src/image/types.js';
import { isNodeletError } from '../../../src/errors.js';

const noSubPaths = (): string => {
  throw new Error('no subPath mounts in this test');
};

const mk = (containers: Container[], extra: Partial<Pod['spec']> = {}): Pod =>
  applyDefaults({ metadata: { name: 'web', namespace: 'ns1', labels: { app: 'web' } }, spec: { containers, ...extra } }, { uid: () => 'uid-1' });

const image: ImageRecord = {
  id: 'sha256:img',
  manifestDigest: 'sha256:m',
  names: ['busybox:1.36'],
  repoDigests: [],
  config: { os: 'linux', architecture: 'amd64', entrypoint: ['/bin/ep'], cmd: ['--cmd'], env: ['PATH=/bin', 'A=image'], exposedPorts: [], labels: {}, diffIds: [], stopSignal: 'SIGQUIT', workingDir: '/srv' },
  chainIds: [],
  size: 0,
  pulledAt: '',
};

describe('expand (k8s expansion.Expand)', () => {
  const env = new Map([['A', 'x'], ['B', 'y']]);
  const cases: [string, string][] = [
    ['$(A)', 'x'],
    ['$(A)-$(B)', 'x-y'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$x'],
    ['$(C)', '$(C)'],
    ['$(A', '$(A'],
    ['a$b', 'a$b'],
    ['$', '$'],
    ['$()', '$()'],
    ['pre$(A)post', 'prexpost'],
  ];
  for (const [i, o] of cases) it(`${i} → ${o}`, () => expect(expand(i, (n) => env.get(n))).toBe(o));
});

describe('command and args', () => {
  const env = new Map([['X', '1']]);
  it('image entrypoint+cmd by default', () => expect(computeArgv({ name: 'a' }, image.config, env)).toEqual(['/bin/ep', '--cmd']));
  it('args replace CMD', () => expect(computeArgv({ name: 'a', args: ['$(X)'] }, image.config, env)).toEqual(['/bin/ep', '1']));
  it('command drops ENTRYPOINT and CMD', () => expect(computeArgv({ name: 'a', command: ['sh'] }, image.config, env)).toEqual(['sh']));
  it('command and args', () => expect(computeArgv({ name: 'a', command: ['sh', '-c'], args: ['echo $$(X) $(X)'] }, image.config, env)).toEqual(['sh', '-c', 'echo $(X) 1']));
});

describe('resolveEnv', () => {
  const objects = {
    configMaps: [{ metadata: { name: 'cfg', namespace: 'ns1' }, data: { MODE: 'fast', A: 'cm', 'bad=key': 'x' } }],
    secrets: [{ metadata: { name: 'sec', namespace: 'ns1' }, data: { pw: Buffer.from('hunter2').toString('base64') } }],
  };
  it('envFrom first, then env in order with expansion; later wins', () => {
    const p = mk([
      {
        name: 'app',
        image: 'busybox',
        envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }, { configMapRef: { name: 'cfg' } }],
        env: [
          { name: 'A', value: 'env-$(MODE)' },
          { name: 'PW', valueFrom: { secretKeyRef: { name: 'sec', key: 'pw' } } },
          { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'LBL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
          { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          // the API server stores an omitted divisor as "0": kubelet divides by 1
          { name: 'CPU0', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '0' } } },
          { name: 'MEM0', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '0' } } },
          { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'nope', key: 'x', optional: true } } },
          { name: 'REF', value: '$(NAME)/$(UNSET)' },
        ],
        resources: { limits: { cpu: '250m' } },
      },
    ]);
    const r = resolveEnv(p, p.spec.containers[0]!, { objects, podIPs: ['10.1.0.5'], nodeAllocatable: { cpuMilli: 2000, memoryBytes: 2 ** 30 } });
    // a limit that falls back to node allocatable needs it as input
    expect(() => resolveEnv(p, p.spec.containers[0]!, { objects, podIPs: ['10.1.0.5'] })).toThrow(expect.objectContaining({ code: 'ERR_NODE_ALLOCATABLE_UNKNOWN' }));
    const e = Object.fromEntries(r.env);
    expect(e).toMatchObject({ CFG_MODE: 'fast', MODE: 'fast', A: 'env-fast', PW: 'hunter2', NAME: 'web', LBL: 'web', IP: '10.1.0.5', CPU: '250', MEM: '1024', CPU0: '1', MEM0: String(2 ** 30), REF: 'web/$(UNSET)' });
    expect(validatePod(p).filter((x) => x.field.includes('divisor'))).toEqual([]); // "0" is valid (unset)
    expect(e).not.toHaveProperty('OPT');
    expect(r.warnings).toEqual([expect.stringMatching(/^Keys \[bad=key\] from the EnvFrom configmap ns1\/cfg were skipped/), expect.stringMatching(/^Keys \[bad=key\]/)]);
    expect(e).not.toHaveProperty('CFG_bad=key');
  });
  it('missing ConfigMap key → CreateContainerConfigError naming container and key', () => {
    const p = mk([{ name: 'app', image: 'busybox', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'missing' } } }] }]);
    try {
      resolveEnv(p, p.spec.containers[0]!, { objects });
      expect.unreachable();
    } catch (e) {
      expect(isNodeletError(e, 'ERR_CREATE_CONTAINER_CONFIG')).toBe(true);
      expect((e as Error).message).toBe(`container "app": couldn't find key missing in ConfigMap ns1/cfg`);
    }
  });
  it('missing Secret → error', () => {
    const p = mk([{ name: 'app', image: 'busybox', envFrom: [{ secretRef: { name: 'other' } }] }]);
    expect(() => resolveEnv(p, p.spec.containers[0]!, { objects })).toThrow(/secret "other" not found/);
  });
});

describe('buildContainerConfig', () => {
  it('builds argv, env, mounts, resources, security, logPath', () => {
    const p = mk(
      [
        {
          name: 'app',
          image: 'busybox:1.36',
          args: ['--port', '$(PORT)'],
          env: [{ name: 'PORT', value: '8080' }, { name: 'A', value: 'pod' }],
          volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }, { name: 'data', mountPath: '/sub', subPath: 'x' }],
          resources: { limits: { cpu: '1', memory: '64Mi' } },
          securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          tty: true,
        },
      ],
      { volumes: [{ name: 'data', emptyDir: {} }], securityContext: { runAsUser: 5, runAsGroup: 6, fsGroup: 7, supplementalGroups: [8] } },
    );
    const { config } = buildContainerConfig({
      pod: p,
      container: p.spec.containers[0]!,
      image,
      attempt: 2,
      podLogsDir: '/logs/ns1_web_uid-1',
      volumePaths: { data: '/vol/data' },
      objects: { configMaps: [], secrets: [] },
      subPathResolver: (v, s) => `${v}/${s}`,
    });
    expect(config.argv).toEqual(['/bin/ep', '--port', '8080']);
    expect(config.env).toEqual(['PATH=/bin', 'A=pod', 'PORT=8080']);
    expect(config.workingDir).toBe('/srv');
    expect(config.mounts).toEqual([
      { hostPath: '/vol/data', containerPath: '/data', readOnly: true, propagation: 'private' },
      { hostPath: '/vol/data/x', containerPath: '/sub', readOnly: false, propagation: 'private' },
    ]);
    expect(config.resources).toEqual({ cpuRequestMilli: 1000, cpuLimitMilli: 1000, memoryRequestBytes: 64 * 2 ** 20, memoryLimitBytes: 64 * 2 ** 20 });
    expect(config.security).toMatchObject({ runAsUser: 1000, runAsGroup: 6, supplementalGroups: [8, 7], noNewPrivs: true, capabilitiesDrop: ['ALL'], privileged: false });
    expect(config.logPath).toBe('/logs/ns1_web_uid-1/app/2.log');
    expect(config.stopSignal).toBe('SIGQUIT');
    expect(config.tty).toBe(true);
    expect(config.labels['io.kubernetes.pod.uid']).toBe('uid-1');
  });
  it('refuses an image without entrypoint and cmd when no command is given', () => {
    const p = mk([{ name: 'app', image: 'scratch' }]);
    const bare = { ...image, config: { ...image.config, entrypoint: undefined, cmd: undefined } };
    expect(() => buildContainerConfig({ pod: p, container: p.spec.containers[0]!, image: bare, attempt: 0, podLogsDir: '/l', volumePaths: {}, objects: { configMaps: [], secrets: [] }, subPathResolver: noSubPaths })).toThrow(/no command specified/);
  });
});

describe('runAsNonRoot (kubelet verifyRunAsNonRoot)', () => {
  const build = (sc: Container['securityContext'], user?: string) => {
    const p = mk([{ name: 'app', image: 'x', securityContext: sc }]);
    return buildContainerConfig({ pod: p, container: p.spec.containers[0]!, image: { ...image, config: { ...image.config, user } }, attempt: 0, podLogsDir: '/l', volumePaths: {}, objects: { configMaps: [], secrets: [] }, subPathResolver: noSubPaths });
  };
  it('accepts a non-zero uid from the spec or a numeric image USER', () => {
    expect(build({ runAsNonRoot: true, runAsUser: 1000 }).config.security.runAsUser).toBe(1000);
    expect(build({ runAsNonRoot: true }, '1000:1000').config.security.runAsNonRoot).toBe(true);
  });
  it('refuses root and unverifiable users', () => {
    expect(() => build({ runAsNonRoot: true, runAsUser: 0 })).toThrow(/runAsUser breaks non-root policy/);
    expect(() => build({ runAsNonRoot: true })).toThrow(/image will run as root/);
    expect(() => build({ runAsNonRoot: true }, 'nobody')).toThrow(/non-numeric user \(nobody\)/);
  });
});

describe('sandbox config, QoS and pod resources', () => {
  it('QoS classes', () => {
    expect(getPodQOS(mk([{ name: 'a', image: 'x' }]))).toBe('BestEffort');
    expect(getPodQOS(mk([{ name: 'a', image: 'x', resources: { limits: { cpu: '1', memory: '1Gi' } } }]))).toBe('Guaranteed');
    expect(getPodQOS(mk([{ name: 'a', image: 'x', resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } }]))).toBe('Burstable');
    expect(getPodQOS(mk([{ name: 'a', image: 'x', resources: { limits: { cpu: '1', memory: '1Gi' } } }, { name: 'b', image: 'x' }]))).toBe('Burstable');
  });
  it('pod resources: sum of app containers, init max rule, limits only when all set', () => {
    const p = mk(
      [
        { name: 'a', image: 'x', resources: { limits: { cpu: '500m', memory: '100Mi' } } },
        { name: 'b', image: 'x', resources: { limits: { cpu: '500m', memory: '100Mi' } } },
      ],
      { initContainers: [{ name: 'i', image: 'x', resources: { limits: { cpu: '2', memory: '50Mi' } } }] },
    );
    expect(podResources(p)).toEqual({ cpuLimitMilli: 2000, memoryLimitBytes: 200 * 2 ** 20, cpuRequestMilli: 2000, memoryRequestBytes: 200 * 2 ** 20 });
    const q = mk([{ name: 'a', image: 'x', resources: { limits: { memory: '100Mi' } } }, { name: 'b', image: 'x' }]);
    expect(podResources(q)).toEqual({ memoryRequestBytes: 100 * 2 ** 20 });
  });
  it('hostname rules', () => {
    expect(podHostname(mk([{ name: 'a', image: 'x' }]))).toBe('web');
    expect(podHostname(mk([{ name: 'a', image: 'x' }], { hostname: 'h1' }))).toBe('h1');
    const long = mk([{ name: 'a', image: 'x' }]);
    long.metadata.name = 'a'.repeat(62) + '-b' + 'c'.repeat(10);
    expect(podHostname(long)).toBe('a'.repeat(62));
    expect(podHostname(mk([{ name: 'a', image: 'x' }], { hostNetwork: true }), 'node1')).toBe('node1');
    // the node's hostname is an input: never read from the host here
    expect(() => podHostname(mk([{ name: 'a', image: 'x' }], { hostNetwork: true }))).toThrow(expect.objectContaining({ code: 'ERR_NODE_HOSTNAME_REQUIRED' }));
  });
  it('hostnameOverride is the hostname, before hostname and subdomain (GeneratePodHostNameAndDomain)', () => {
    const c = [{ name: 'a', image: 'x' }];
    expect(podHostname(mk(c, { hostnameOverride: 'override.example.host' }))).toBe('override.example.host');
    expect(podHostname(mk(c, { hostname: 'custom-host', hostnameOverride: 'override-host' }))).toBe('override-host');
    expect(podHostname(mk(c, { subdomain: 't', hostnameOverride: 'override-host' }))).toBe('override-host');
    // 64 is valid, the UTS name holds 63: truncated like any other, trailing '-'/'.' dropped
    expect(podHostname(mk(c, { hostnameOverride: 'a'.repeat(62) + '.b' }))).toBe('a'.repeat(62));
    const sb = buildSandboxConfig(mk(c, { hostname: 'h1', hostnameOverride: 'o.example' }), { hostResolvConf: { nameservers: [], searches: [], options: [] }, nodeHostname: 'node1' });
    expect(sb.hostname).toBe('o.example');
  });
  it('hostnameOverride validation (validatePodHostName)', () => {
    const c = [{ name: 'a', image: 'x' }];
    const errs = (extra: Partial<Pod['spec']>) => validatePod(mk(c, extra)).filter((e) => e.field === 'spec.hostnameOverride').map((e) => e.type);
    expect(errs({ hostnameOverride: 'override.example.host' })).toEqual([]);
    expect(errs({ hostnameOverride: 'a'.repeat(64) })).toEqual([]);
    expect(errs({ hostnameOverride: 'Not-RFC1123' })).toEqual(['Invalid']);
    expect(errs({ hostnameOverride: 'a'.repeat(65) })).toEqual(['TooLong']);
    expect(errs({ hostnameOverride: 'o', setHostnameAsFQDN: true })).toEqual(['Forbidden']);
    expect(errs({ hostnameOverride: 'o', hostNetwork: true })).toEqual(['Forbidden']);
    expect(errs({ hostnameOverride: 'o', setHostnameAsFQDN: false })).toEqual([]);
    // a manifest's hostnameOverride is a supported field now: no "ignored" warning
    expect(validatePodFull(mk(c, { hostnameOverride: 'o' })).warnings.filter((w) => w.includes('hostnameOverride'))).toEqual([]);
  });
  it('DNS policies', () => {
    const host = { nameservers: ['192.0.2.53'], searches: ['example.com'], options: ['ndots:1'] };
    expect(computeDNS(mk([{ name: 'a', image: 'x' }]), host)).toEqual(host);
    const none = mk([{ name: 'a', image: 'x' }], { dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'], options: [{ name: 'ndots', value: '5' }] } });
    expect(computeDNS(none, host)).toEqual({ nameservers: ['1.1.1.1'], searches: [], options: ['ndots:5'] });
    const merged = mk([{ name: 'a', image: 'x' }], { dnsConfig: { searches: ['svc.local'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } });
    expect(computeDNS(merged, host)).toEqual({ nameservers: ['192.0.2.53'], searches: ['example.com', 'svc.local'], options: ['ndots:2', 'edns0'] });
  });
  it('port mappings and the rest of the sandbox config', () => {
    const p = mk([{ name: 'a', image: 'x', ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81 }] }], { hostAliases: [{ ip: '10.0.0.1', hostnames: ['db'] }] });
    const s = buildSandboxConfig(p, { hostResolvConf: { nameservers: [], searches: [], options: [] }, nodeHostname: 'node1' });
    expect(s).toMatchObject({ uid: 'uid-1', name: 'web', namespace: 'ns1', hostname: 'web', qosClass: 'BestEffort', portMappings: [{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }], hostAliases: [{ ip: '10.0.0.1', hostnames: ['db'] }], labels: { app: 'web' } });
  });
  it('--pod-max-pids becomes the pod cgroup\'s pids limit; -1 or unset is none', () => {
    const p = mk([{ name: 'a', image: 'x' }]);
    const base = { hostResolvConf: { nameservers: [], searches: [], options: [] }, nodeHostname: 'node1' };
    expect(buildSandboxConfig(p, { ...base, podPidsLimit: 1024 }).resources.pidsLimit).toBe(1024);
    expect(buildSandboxConfig(p, { ...base, podPidsLimit: -1 }).resources).not.toHaveProperty('pidsLimit');
    expect(buildSandboxConfig(p, base).resources).not.toHaveProperty('pidsLimit');
  });
});
