import { describe, expect, it } from 'vitest';
import { applyDefaults, defaultPullPolicy, formatFieldError, loadManifests, ManifestError, parseManifests, validatePod, validatePodFull } from '../../../src/pod/manifest.js';
import type { Pod } from '../../../src/pod/api-types.js';

const pod = (spec: Partial<Pod['spec']> = {}, name = 'web'): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { containers: [{ name: 'app', image: 'busybox:1.36' }], ...spec },
});

describe('parseManifests', () => {
  it('reads multi-document YAML with ConfigMap and Secret', () => {
    const r = parseManifests(`
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {a: aGVsbG8=}
stringData: {b: world}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: app, image: busybox}]
`);
    expect(r.pods.map((p) => p.metadata.name)).toEqual(['web']);
    expect(r.configMaps[0]!.data).toEqual({ mode: 'fast' });
    expect(r.secrets[0]!.data).toEqual({ a: 'aGVsbG8=', b: Buffer.from('world').toString('base64') });
    expect(r.secrets[0]!.stringData).toBeUndefined();
    expect(r.warnings).toEqual([]);
  });
  it('reads JSON and kind: List', () => {
    const r = parseManifests(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pod(), pod({}, 'b')] }));
    expect(r.pods.map((p) => p.metadata.name)).toEqual(['web', 'b']);
  });
  it('warns about unsupported kinds and skips them, like podman kube play', () => {
    const r = parseManifests('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n' + JSON.stringify(pod()));
    expect(r.pods).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/kind Deployment .* not supported/);
  });
  it('rejects YAML syntax errors, missing kind and wrong apiVersion, all together', () => {
    let err: ManifestError | undefined;
    try {
      parseManifests('a: [1, 2\n---\nmetadata: {name: x}\n---\napiVersion: v2\nkind: Pod\n');
    } catch (e) {
      err = e as ManifestError;
    }
    expect(err).toBeInstanceOf(ManifestError);
    expect(err!.errors.map((e) => e.field)).toEqual(['document 1', 'document 2: kind', 'document 3: Pod apiVersion']);
  });
  it('YAML 1.1 like kubectl: octal modes, timestamps and 1:20 stay strings', () => {
    const r = parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, creationTimestamp: 2026-01-01T00:00:00Z}\ndata: {when: 2026-01-01, ratio: 1:20}\n---\n' +
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\n  volumes: [{name: s, secret: {secretName: x, defaultMode: 0400}}]\n');
    expect(r.configMaps[0]!.data).toEqual({ when: '2026-01-01', ratio: '1:20' });
    expect(r.configMaps[0]!.metadata.creationTimestamp).toBe('2026-01-01T00:00:00Z');
    expect(r.pods[0]!.spec.volumes![0]!.secret!.defaultMode).toBe(0o400);
  });
  it('rejects non-string ConfigMap values with a hint', () => {
    expect(() => parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {port: 8080}\n')).toThrow(/data\[port\]: Invalid value: 8080: must be a string/);
  });
});

describe('applyDefaults', () => {
  it('applies API server defaults', () => {
    const p = applyDefaults(
      pod({
        containers: [
          {
            name: 'app',
            image: 'nginx',
            ports: [{ containerPort: 80 }],
            livenessProbe: { httpGet: { port: 80 } },
            resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } },
          },
          { name: 'b', image: 'nginx:1.25' },
          { name: 'c', image: 'reg:5000/x@sha256:' + 'a'.repeat(64) },
        ],
      }),
      { uid: () => 'u1', now: new Date('2026-01-01T00:00:00Z') },
    );
    expect(p.metadata).toMatchObject({ namespace: 'default', uid: 'u1', creationTimestamp: '2026-01-01T00:00:00Z' });
    expect(p.spec).toMatchObject({ restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst' });
    const [a, b, c] = p.spec.containers;
    expect(a!.imagePullPolicy).toBe('Always');
    expect(b!.imagePullPolicy).toBe('IfNotPresent');
    expect(c!.imagePullPolicy).toBe('IfNotPresent');
    expect(a!.terminationMessagePath).toBe('/dev/termination-log');
    expect(a!.terminationMessagePolicy).toBe('File');
    expect(a!.ports![0]!.protocol).toBe('TCP');
    expect(a!.livenessProbe).toMatchObject({ periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, initialDelaySeconds: 0, httpGet: { path: '/', scheme: 'HTTP' } });
    expect(a!.resources!.requests).toEqual({ cpu: '500m', memory: '1Gi' });
  });
  it('does not modify its input and generates distinct uids', () => {
    const input = pod();
    const a = applyDefaults(input);
    const b = applyDefaults(input);
    expect(input.metadata.uid).toBeUndefined();
    expect(a.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.metadata.uid).not.toBe(b.metadata.uid);
  });
  it('pull policy by reference', () => {
    expect(defaultPullPolicy('busybox')).toBe('Always');
    expect(defaultPullPolicy('busybox:latest')).toBe('Always');
    expect(defaultPullPolicy('localhost:5000/busybox')).toBe('Always');
    expect(defaultPullPolicy('localhost:5000/busybox:1')).toBe('IfNotPresent');
  });
});

describe('validatePod', () => {
  it('accepts a full valid pod', () => {
    const p = applyDefaults(
      pod({
        initContainers: [{ name: 'init', image: 'busybox' }, { name: 'side', image: 'busybox', restartPolicy: 'Always', readinessProbe: { exec: { command: ['true'] } } }],
        containers: [
          {
            name: 'web',
            image: 'busybox',
            ports: [{ name: 'http', containerPort: 8080 }],
            env: [{ name: 'A', value: '1' }, { name: 'POD', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }, { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } }],
            livenessProbe: { httpGet: { port: 'http' } },
            volumeMounts: [{ name: 'data', mountPath: '/data', subPath: 'x/y' }],
            resources: { limits: { cpu: '500m', memory: '128Mi' } },
          },
        ],
        volumes: [{ name: 'data', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }],
      }),
    );
    expect(validatePod(p)).toEqual([]);
  });
  it('reports several errors together, rendered like kubectl', () => {
    const errs = validatePod(applyDefaults(pod({ restartPolicy: 'Sometimes' as never, containers: [{ name: 'Web', image: '' }] })));
    const lines = errs.map(formatFieldError);
    expect(lines).toContain('spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"');
    expect(lines).toContain('spec.containers[0].image: Required value');
    expect(lines.some((l) => l.startsWith('spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label'))).toBe(true);
  });
  it('warns about unsupported fields by name', () => {
    const p = applyDefaults({ ...pod(), spec: { ...pod().spec, affinity: {}, tolerations: [] } as never });
    const r = validatePodFull(p);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^spec.affinity: /), expect.stringMatching(/^spec.tolerations: /)]));
  });
  it('accepts pod sysctls without a warning and refuses a duplicate name', () => {
    const ok = validatePodFull(applyDefaults(pod({ securityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '1024' }] } })));
    expect(ok.errors).toEqual([]);
    expect(ok.warnings.filter((w) => w.includes('sysctls'))).toEqual([]);
    const dup = validatePodFull(applyDefaults(pod({ securityContext: { sysctls: [{ name: 'kernel.shm_rmid_forced', value: '1' }, { name: 'kernel.shm_rmid_forced', value: '0' }] } })));
    expect(dup.errors).toEqual([expect.objectContaining({ field: 'spec.securityContext.sysctls[1].name', type: 'Duplicate' })]);
  });
  it('ephemeralContainers: refused in a manifest as the API server refuses them on create; in cluster mode a warning, never silence', () => {
    const p = applyDefaults(pod({ ephemeralContainers: [{ name: 'debugger', image: 'busybox' }] } as Partial<Pod['spec']>));
    const standalone = validatePodFull(p, { configMaps: [], secrets: [] });
    expect(standalone.errors).toEqual([expect.objectContaining({ field: 'spec.ephemeralContainers', type: 'Forbidden' })]);
    expect(formatFieldError(standalone.errors[0]!)).toBe('spec.ephemeralContainers: Forbidden: cannot be set on create');
    const cluster = validatePodFull(p);
    expect(cluster.errors).toEqual([]);
    expect(cluster.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^spec.ephemeralContainers: nodelet does not run ephemeral containers yet; the 1 of this pod/)]));
  });
  it('imagePullSecrets: no warning in cluster mode (no objects); without an API server, one per Secret the manifest lacks', () => {
    const p = applyDefaults(pod({ imagePullSecrets: [{ name: 'have' }, { name: 'lack' }] }));
    expect(validatePodFull(p).warnings.filter((w) => w.includes('imagePullSecrets'))).toEqual([]);
    const have = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'have', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', data: {} };
    const r = validatePodFull(p, { configMaps: [], secrets: [have] });
    expect(r.errors).toEqual([]);
    expect(r.warnings.filter((w) => w.includes('imagePullSecrets'))).toEqual([
      'spec.imagePullSecrets[1]: Secret "lack" not found in namespace "default": without an API server nodelet uses only the manifest\'s Secrets; add it there or configure registry credentials with an auth file',
    ]);
  });
  it('checks references only when objects are given', () => {
    const p = applyDefaults(pod({ volumes: [{ name: 'c', configMap: { name: 'cfg' } }] }));
    expect(validatePod(p)).toEqual([]);
    expect(validatePod(p, { configMaps: [], secrets: [] }).map((e) => e.field)).toEqual(['spec.volumes[0].configMap.name']);
  });
  it('loadManifests names each pod when several fail', () => {
    try {
      loadManifests(JSON.stringify(pod({}, 'A')) + '\n---\n' + JSON.stringify(pod({}, 'B_')));
      expect.unreachable();
    } catch (e) {
      expect((e as ManifestError).errors.map((x) => x.field)).toEqual(['Pod "A": metadata.name', 'Pod "B_": metadata.name']);
    }
  });
});

describe('malformed input never crashes', () => {
  const docs = [
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: {name: x}}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [1, "x", null]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {initContainers: 3, containers: [{name: a, image: b}]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b, ports: [{containerPort: "80"}], env: {A: b}}]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b}], volumes: [{name: v, configMap: "x"}]}',
    'apiVersion: v1\nkind: Pod\nmetadata: []\nspec: []',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b, livenessProbe: {httpGet: {}}, resources: {limits: [1]}}]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b, volumeMounts: [{name: v}]}], volumes: [{name: v}]}',
    '[1, 2]',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [null]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b, ports: [null], env: [~]}], volumes: [null]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b, volumeMounts: [{name: ~, mountPath: ~}], livenessProbe: {exec: ~}}]}',
    'apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: b, lifecycle: {preStop: 1}, livenessProbe: [], resources: "x"}]}',
    '"just a string"',
  ];
  for (const d of docs) {
    it(JSON.stringify(d.slice(-60)), () => {
      expect(() => loadManifests(d)).toThrow(ManifestError);
    });
  }
});
