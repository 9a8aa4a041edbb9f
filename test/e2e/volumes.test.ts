// ConfigMap/Secret/downwardAPI env and volumes, subPath, emptyDir shared,
// readOnly mounts, and invalid manifests (rejected with the field path,
// nothing created) through `nodelet run`.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX, leftovers, makeEnv, run, writeManifest, type Env } from './helpers.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('volumes and env', () => {
  it('projects ConfigMap, Secret and downward API into env and volumes; subPath; emptyDir shared by two containers; readOnly refuses writes', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'feat.yaml', `
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { greeting: hello, file.txt: from-configmap }
---
apiVersion: v1
kind: Secret
metadata: { name: sec }
stringData: { password: s3cret }
---
apiVersion: v1
kind: Pod
metadata: { name: feat, labels: { app: feat } }
spec:
  restartPolicy: Never
  volumes:
    - { name: cm, configMap: { name: cfg } }
    - { name: sec, secret: { secretName: sec, defaultMode: 0400 } }
    - { name: info, downwardAPI: { items: [{ path: labels, fieldRef: { fieldPath: metadata.labels } }] } }
    - { name: data, emptyDir: {} }
  initContainers:
    - name: writer
      image: ${BUSYBOX}
      command: ["sh", "-c", "mkdir -p /data/nested/dir && echo shared-ok > /data/nested/dir/f"]
      volumeMounts: [{ name: data, mountPath: /data }]
  containers:
    - name: c
      image: ${BUSYBOX}
      env:
        - { name: GREETING, valueFrom: { configMapKeyRef: { name: cfg, key: greeting } } }
        - { name: PASSWORD, valueFrom: { secretKeyRef: { name: sec, key: password } } }
        - { name: POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
        - { name: MSG, value: "$(GREETING) from $(POD_NAME) $$(NOT)" }
      command:
        - sh
        - -c
        - |
          echo "env=$MSG pw=$PASSWORD"
          echo "cm=$(cat /cm/file.txt)"
          echo "secret=$(cat /sec/password) mode=$(stat -L -c %a /sec/password)"
          echo "labels=$(cat /info/labels)"
          echo "sub=$(cat /sub/f)"
          if touch /ro/z 2>/dev/null; then echo ro=WRITABLE; else echo ro=refused; fi
          if echo x > /cm/new 2>/dev/null; then echo cmwrite=WRITABLE; else echo cmwrite=refused; fi
      volumeMounts:
        - { name: cm, mountPath: /cm }
        - { name: sec, mountPath: /sec }
        - { name: info, mountPath: /info }
        - { name: data, mountPath: /sub, subPath: nested/dir }
        - { name: data, mountPath: /ro, readOnly: true }
`);
    const r = await run([...env.globals, 'run', ...env.nodeFlags, f]);
    expect(r.stderr).toMatch(/pod\/feat: Succeeded/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[c] env=hello from feat $(NOT) pw=s3cret');
    expect(r.stdout).toContain('[c] cm=from-configmap');
    expect(r.stdout).toContain('[c] secret=s3cret mode=400');
    expect(r.stdout).toContain('[c] labels=app="feat"');
    expect(r.stdout).toContain('[c] sub=shared-ok');
    expect(r.stdout).toContain('[c] ro=refused');
    expect(r.stdout).toContain('[c] cmwrite=refused');
    expect(leftovers(env).join('\n')).toBe('');
  });
});

const base = (spec: string, meta = 'name: p') => `apiVersion: v1
kind: Pod
metadata: { ${meta} }
spec:
${spec}`;
const c0 = (extra = '') => `  containers:\n    - { name: c, image: ${BUSYBOX}${extra} }`;

// [manifest, expected field path in the error]
const BAD: [string, string][] = [
  [base(c0(), 'name: Bad_Name'), 'metadata.name'],
  [base(c0()), ''], // placeholder replaced below (valid: sanity)
  [base(`  restartPolicy: Sometimes\n${c0()}`), 'spec.restartPolicy'],
  [base('  containers: []'), 'spec.containers'],
  [base(`  containers:\n    - { name: c }`), 'spec.containers[0].image'],
  [base(`  containers:\n    - { name: c, image: ${BUSYBOX} }\n    - { name: c, image: ${BUSYBOX} }`), 'spec.containers[1].name'],
  [base(c0(', livenessProbe: { exec: { command: ["true"] }, tcpSocket: { port: 80 } }')), 'spec.containers[0].livenessProbe'],
  [base(c0(', livenessProbe: { periodSeconds: 5 }')), 'spec.containers[0].livenessProbe'],
  [base(c0(', readinessProbe: { httpGet: { port: 70000 } }')), 'spec.containers[0].readinessProbe.httpGet.port'],
  [base(c0(', resources: { limits: { memory: 12XY } }')), 'spec.containers[0].resources.limits.memory'],
  [base(c0(', resources: { limits: { cpu: 100m }, requests: { cpu: 200m } }')), 'spec.containers[0].resources.requests'],
  [base(c0(', volumeMounts: [{ name: missing, mountPath: /x }]')), 'spec.containers[0].volumeMounts[0].name'],
  [base(`  volumes: [{ name: v, emptyDir: {} }, { name: v, emptyDir: {} }]\n${c0()}`), 'spec.volumes[1].name'],
  [base(`  volumes: [{ name: v, emptyDir: {}, hostPath: { path: /tmp } }]\n${c0()}`), 'spec.volumes[0]'],
  [base(c0(', ports: [{ name: http, containerPort: 80 }, { name: http, containerPort: 81 }]')), 'spec.containers[0].ports[1].name'],
  [base(c0(', ports: [{ containerPort: 0 }]')), 'spec.containers[0].ports[0].containerPort'],
  [base(c0(', env: [{ name: "A=B", value: x }]')), 'spec.containers[0].env[0].name'],
  [base(c0(', imagePullPolicy: Sometimes')), 'spec.containers[0].imagePullPolicy'],
  [base(`  terminationGracePeriodSeconds: -1\n${c0()}`), 'spec.terminationGracePeriodSeconds'],
  [base(c0(', volumeMounts: [{ name: v, mountPath: relative }]').replace('  containers:', '  volumes: [{ name: v, emptyDir: {} }]\n  containers:')), 'spec.containers[0].volumeMounts[0].mountPath'],
  [base(c0(', env: [{ name: X, valueFrom: { configMapKeyRef: { name: nocm, key: k } } }]')), 'spec.containers[0].env[0].valueFrom.configMapKeyRef'],
];

describe('invalid manifests', () => {
  it('rejects each with the field path and creates nothing', async () => {
    env = makeEnv();
    const cases = BAD.filter(([, field]) => field);
    expect(cases.length).toBeGreaterThanOrEqual(20);
    const results: string[] = [];
    for (let i = 0; i < cases.length; i += 7) {
      await Promise.all(
        cases.slice(i, i + 7).map(async ([text, field], j) => {
          const f = writeManifest(env!, `bad-${i + j}.yaml`, text);
          const r = await run([...env!.globals, 'run', ...env!.nodeFlags, f], 30_000);
          if (r.code === 0 || !r.stderr.includes(field)) results.push(`case ${i + j} (${field}): code ${r.code}: ${r.stderr.trim()}`);
        }),
      );
    }
    expect(results.join('\n')).toBe('');
    expect(fs.existsSync(env.runRoot)).toBe(false);
    expect(fs.existsSync(path.join(env.root))).toBe(false);
  });
});
