// kubelet / kube-apiserver v1.36 parity of manifests: YAML scalars read as sigs.k8s.io/yaml (go-yaml v2)
// reads them, in mode fields too; env fileKeyRef (EnvFiles, beta since 1.35); unknown fields are strict
// decoding errors with their path, as `kubectl apply` (fieldValidation=Strict) reports them.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadManifests, ManifestError, parseManifests, validatePodFull } from '../../../src/pod/manifest.js';
import { applyDefaults } from '../../../src/pod/defaults.js';
import { parseEnvFile, resolveEnv } from '../../../src/pod/env.js';
import { planVolume } from '../../../src/pod/volume-plan.js';
import { readVolumeFile } from '../../../src/host/pod-config.js';
import type { Pod } from '../../../src/pod/api-types.js';

const errorsOf = (text: string): string[] => {
  try {
    loadManifests(text, 'p.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as Error).message.split('\n').slice(1).map((l) => l.replace(/^\* /, ''));
  }
  return [];
};

const podYaml = (spec: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n${spec}`;

describe('YAML 1.1 scalars as kubectl / kube-apiserver read them (sigs.k8s.io/yaml v1.6.0 → go-yaml v2)', () => {
  // ground truth: sigs.k8s.io/yaml v1.6.0 YAMLToJSON("v: " + scalar), run with Go 1.26 from the module cache
  const GO: [string, unknown][] = [
    ['0644', 420], ['01777', 1023], ['0400', 256], ['0o644', 420], ['0O644', 420], ['0x1A4', 420], ['0b101', 5], ['0_644', 420],
    ['644', 644], ['08', 8], ['+0644', 420], ['-0644', -420], ['1_000', 1000], ['0777', 511], ['007', 7], ['0x', '0x'],
    ['yes', true], ['no', false], ['on', true], ['off', false], ['y', true], ['n', false], ['Y', true], ['N', false], ['True', true], ['yES', 'yES'],
    ['1e3', 1000], ['.5', 0.5], ['1:20', '1:20'], ['2001-12-14', '2001-12-14'], ['~', undefined], ['null', undefined],
  ];
  it.each(GO)('%s reads as go-yaml v2 reads it', (scalar, want) => {
    // pods come back from parseManifests as written: only the scalar's reading matters here
    const m = parseManifests(`apiVersion: v1\nkind: Pod\nmetadata: { name: p }\nspec:\n  v: ${scalar}\n`, 'x');
    expect((m.pods[0]!.spec as unknown as { v?: unknown }).v).toEqual(want);
  });

  it('defaultMode 0644 and items[].mode 0400 are octal in configMap, secret, downwardAPI and projected volumes', () => {
    const text = `${podYaml(`  containers: [{ name: c, image: busybox }]
  volumes:
  - { name: a, configMap: { name: cm, defaultMode: 0644, items: [{ key: k, path: k, mode: 0400 }] } }
  - { name: b, secret: { secretName: s, defaultMode: 0o440 } }
  - { name: d, downwardAPI: { defaultMode: 0644, items: [{ path: name, fieldRef: { fieldPath: metadata.name }, mode: 0600 }] } }
  - { name: e, projected: { defaultMode: 0644, sources: [{ configMap: { name: cm, items: [{ key: k, path: k2, mode: 0755 }] } }] } }
`)}---
apiVersion: v1
kind: ConfigMap
metadata: { name: cm }
data: { k: v }
---
apiVersion: v1
kind: Secret
metadata: { name: s }
stringData: { x: z }
`;
    const m = loadManifests(text, 'p.yaml');
    const v = m.pods[0]!.spec.volumes!;
    expect(v[0]!.configMap).toMatchObject({ defaultMode: 0o644, items: [{ mode: 0o400 }] });
    expect(v[1]!.secret!.defaultMode).toBe(0o440);
    expect(v[2]!.downwardAPI).toMatchObject({ defaultMode: 0o644, items: [{ mode: 0o600 }] });
    expect(v[3]!.projected!.defaultMode).toBe(0o644);
    expect(v[3]!.projected!.sources![0]!.configMap!.items![0]!.mode).toBe(0o755);
    const plan = planVolume(m.pods[0]!, v[0]!, { objects: { configMaps: m.configMaps, secrets: m.secrets } } as never);
    expect(plan.kind === 'configMap' && plan.files['k']?.mode).toBe(0o400);
  });

  it('defaultMode 01777 (1023) is out of range, with the value kube-apiserver shows', () => {
    expect(errorsOf(podYaml(`  containers: [{ name: c, image: busybox }]\n  volumes: [{ name: a, secret: { secretName: s, optional: true, defaultMode: 01777 } }]\n`))).toEqual([
      'spec.volumes[0].secret.defaultMode: Invalid value: 1023: must be a number between 0 and 0777 (octal), both inclusive',
    ]);
  });

  it('emptyDir has no mode field: a strict decoding error', () => {
    expect(errorsOf(podYaml(`  containers: [{ name: c, image: busybox }]\n  volumes: [{ name: a, emptyDir: { mode: 01777 } }]\n`))).toEqual([
      'strict decoding error: unknown field "spec.volumes[0].emptyDir.mode"',
    ]);
  });
});

describe('unknown fields (kube-apiserver strict decoding, kubectl apply\'s default)', () => {
  it('a typo is an error with the field path; every unknown field is named; nothing else is checked', () => {
    expect(errorsOf(podYaml(`  containers:\n  - name: Web\n    image: busybox\n    comand: [sh]\n  restartPolicy: Sometimes\n  nodeSelecter: {}\n`))).toEqual([
      'strict decoding error: unknown field "spec.containers[0].comand"',
      'strict decoding error: unknown field "spec.nodeSelecter"',
    ]);
    expect(errorsOf(`apiVersion: v1\nkind: Pod\nmetadata: { name: p, lables: { a: b } }\nspec: { containers: [{ name: c, image: i, env: [{ name: A, valu: x }] }] }\n`)).toEqual([
      'strict decoding error: unknown field "metadata.lables"',
      'strict decoding error: unknown field "spec.containers[0].env[0].valu"',
    ]);
  });
  it('Kubernetes fields nodelet does not implement stay warnings', () => {
    const m = loadManifests(`apiVersion: v1\nkind: Pod\nmetadata: { name: p, finalizers: [x] }\nspec:\n  affinity: {}\n  priorityClassName: high\n  containers: [{ name: c, image: i, resizePolicy: [], volumeDevices: [] }]\n`, 'p.yaml');
    expect(m.warnings.join('\n')).toMatch(/spec\.affinity: field is not supported/);
    expect(m.warnings.join('\n')).toMatch(/spec\.containers\[0\]\.resizePolicy/);
    expect(m.warnings.join('\n')).toMatch(/metadata\.finalizers/);
  });
  it('in ConfigMaps and Secrets too', () => {
    expect(() => parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\ndatas: { a: b }\n', 'x')).toThrow(/strict decoding error: unknown field "datas"/);
  });
});

describe('env fileKeyRef (EnvFiles)', () => {
  const base = (env: unknown, volumes: unknown = [{ name: 'cfg', emptyDir: {} }]) =>
    applyDefaults({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { volumes, containers: [{ name: 'c', image: 'i', env }] } } as never);
  const lines = (p: Pod) => validatePodFull(p).errors.map((e) => `${e.field}: ${e.type}${e.detail ? ': ' + e.detail : ''}`);

  it('an env var with only fileKeyRef is valid (not "more than one field specified")', () => {
    expect(lines(base([{ name: 'A', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'env/a.env', key: 'A' } } }]))).toEqual([]);
  });
  it('is checked as validation.go does: required fields, volume is an emptyDir of the pod, no ".."', () => {
    const f = 'spec.containers[0].env[0].valueFrom.fileKeyRef';
    expect(lines(base([{ name: 'A', valueFrom: { fileKeyRef: { volumeName: 'nope', path: '../x', key: '' } } }]))).toEqual([
      `${f}.key: Required`, `${f}.volumeName: NotFound`, `${f}.path: Invalid: must not contain '..'`,
    ]);
    expect(lines(base([{ name: 'A', valueFrom: { fileKeyRef: { volumeName: 'h', path: 'a', key: 'A' } } }], [{ name: 'h', hostPath: { path: '/tmp' } }]))).toEqual([
      `${f}.volumeName: Invalid: referenced volume must be of type emptyDir`,
    ]);
  });
  it('none, several, or with value: the messages of validateEnvVarValueFrom', () => {
    expect(lines(base([{ name: 'A', valueFrom: {} }]))).toEqual(['spec.containers[0].env[0].valueFrom: Invalid: must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`']);
    expect(lines(base([{ name: 'A', valueFrom: { fieldRef: { fieldPath: 'metadata.name' }, fileKeyRef: { volumeName: 'cfg', path: 'a', key: 'A' } } }]))).toEqual(['spec.containers[0].env[0].valueFrom: Invalid: may not have more than one field specified at a time']);
    expect(lines(base([{ name: 'A', value: 'x', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'a', key: 'A' } } }]))).toEqual(['spec.containers[0].env[0].valueFrom: Invalid: may not be specified when `value` is not empty']);
  });
  it('a typo in fileKeyRef is a strict decoding error', () => {
    expect(lines(base([{ name: 'A', valueFrom: { fileKeyRef: { volume: 'cfg', path: 'a', key: 'A' } } }]))).toEqual(['spec.containers[0].env[0].valueFrom.fileKeyRef.volume: UnknownField']);
  });

  it("parses env files as kubelet's envutil.ParseEnv", () => {
    const text = "# comment\n  A='one'\nB='multi\nline' # trailing\nEMPTY= 'ignored'\nA='second'\n";
    expect(parseEnvFile(text, 'A')).toBe('one');
    expect(parseEnvFile(text, 'B')).toBe('multi\nline');
    expect(parseEnvFile(text, 'EMPTY')).toBe('');
    expect(parseEnvFile(text, 'MISSING')).toBeUndefined();
    expect(() => parseEnvFile('A=one\n', 'A')).toThrow("line 1: value must be enclosed in single quotes");
    expect(() => parseEnvFile("A ='x'\n", 'A')).toThrow("whitespace before '=' is not allowed");
    expect(() => parseEnvFile("A='x\n", 'A')).toThrow('unclosed single quote');
    expect(() => parseEnvFile("A='x' y\n", 'A')).toThrow('unexpected content after closing quote');
  });

  it('resolves values from the emptyDir; optional keys may be missing; a missing key is CreateContainerConfigError', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-envfile-'));
    try {
      fs.mkdirSync(path.join(dir, 'env'));
      fs.writeFileSync(path.join(dir, 'env', 'a.env'), "TOKEN='s3cr3t'\nEMPTY=''\n");
      const env = [
        { name: 'T', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'env/a.env', key: 'TOKEN' } } },
        { name: 'O', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'env/a.env', key: 'NOPE', optional: true } } },
        { name: 'E', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'env/a.env', key: 'EMPTY', optional: true } } },
      ];
      const p = base(env);
      const ctx = { objects: { configMaps: [], secrets: [] }, volumePaths: { cfg: dir }, readVolumeFile };
      expect([...resolveEnv(p, p.spec.containers[0]!, ctx).env]).toEqual([['T', 's3cr3t']]);
      const bad = base([{ name: 'X', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'env/a.env', key: 'NOPE' } } }]);
      expect(() => resolveEnv(bad, bad.spec.containers[0]!, ctx)).toThrow(`container "c": environment variable key "NOPE" not found in file "${fs.realpathSync(dir)}/env/a.env"`);
      const gone = base([{ name: 'X', valueFrom: { fileKeyRef: { volumeName: 'cfg', path: 'env/none.env', key: 'A', optional: true } } }]);
      expect(() => resolveEnv(gone, gone.spec.containers[0]!, ctx)).toThrow(`container "c": couldn't parse env file`);
      // a symlink written by a container is resolved inside the volume (securejoin), never to the host's file
      fs.writeFileSync(path.join(dir, 'passwd'), "ROOT='inside'\n");
      fs.symlinkSync('/passwd', path.join(dir, 'env', 'link.env'));
      expect(readVolumeFile(dir, 'env/link.env').text).toBe("ROOT='inside'\n");
      fs.symlinkSync('../../../../../../etc/hostname', path.join(dir, 'env', 'up.env'));
      expect(() => readVolumeFile(dir, 'env/up.env')).toThrow(/ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
