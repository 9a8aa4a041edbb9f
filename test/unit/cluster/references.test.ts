import { describe, expect, it } from 'vitest';
import { objectKey, podReferences, referencedObjects, tokenKey } from '../../../src/cluster/references.js';
import type { Pod } from '../../../src/pod/api-types.js';

function pod(spec: Partial<Pod['spec']> & Record<string, unknown>, ns = 'team'): Pod {
  return { metadata: { name: 'p', namespace: ns, uid: 'u1' }, spec: { containers: [], ...spec } as Pod['spec'] };
}

describe('podReferences', () => {
  it('finds every kind of reference in init, app and ephemeral containers and in volumes', () => {
    const r = podReferences(
      pod({
        imagePullSecrets: [{ name: 'pull' }],
        initContainers: [
          { name: 'init', env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cm-init-env', key: 'a' } } }], envFrom: [{ secretRef: { name: 'sec-init-from' } }] },
        ],
        containers: [
          {
            name: 'app',
            env: [
              { name: 'PLAIN', value: 'x' },
              { name: 'F', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'S', valueFrom: { secretKeyRef: { name: 'sec-env', key: 'k' } } },
            ],
            envFrom: [{ configMapRef: { name: 'cm-from' }, prefix: 'P_' }],
          },
        ],
        ephemeralContainers: [{ name: 'debug', envFrom: [{ configMapRef: { name: 'cm-ephemeral' } }] }],
        volumes: [
          { name: 'v1', configMap: { name: 'cm-vol' } },
          { name: 'v2', secret: { secretName: 'sec-vol' } },
          { name: 'v3', emptyDir: {} },
          {
            name: 'v4',
            projected: {
              sources: [
                { configMap: { name: 'cm-proj' } },
                { secret: { name: 'sec-proj' } },
                { downwardAPI: { items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
                { serviceAccountToken: { path: 'token' } },
                { serviceAccountToken: { path: 'vault', audience: 'vault', expirationSeconds: 600 } },
              ],
            },
          },
        ],
      }),
    );
    expect(r.namespace).toBe('team');
    expect(r.serviceAccountName).toBe('default');
    expect(r.configMaps).toEqual(['cm-init-env', 'cm-from', 'cm-ephemeral', 'cm-vol', 'cm-proj']);
    expect(r.secrets).toEqual(['pull', 'sec-init-from', 'sec-env', 'sec-vol', 'sec-proj']);
    expect(r.tokens).toEqual([
      { audience: '', expirationSeconds: 3600 },
      { audience: 'vault', expirationSeconds: 600 },
    ]);
  });

  it('dedupes names and tokens, skips empty names, defaults the namespace and reads the service account', () => {
    const p: Pod = {
      metadata: { name: 'p', uid: 'u' },
      spec: {
        serviceAccountName: 'builder',
        containers: [
          { name: 'a', envFrom: [{ configMapRef: { name: 'shared' } }, { configMapRef: { name: '' } }], env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'shared', key: 'x' } } }] },
          { name: 'b', env: [{ name: 'Y', valueFrom: { secretKeyRef: { name: 's', key: 'y' } } }] },
        ],
        volumes: [
          { name: 'c', configMap: { name: 'shared' } },
          { name: 's', secret: { secretName: 's' } },
          { name: 't1', projected: { sources: [{ serviceAccountToken: { path: 'a', expirationSeconds: 3607 } }, { configMap: { name: 'kube-root-ca.crt' } }] } },
          { name: 't2', projected: { sources: [{ serviceAccountToken: { path: 'b', expirationSeconds: 3607 } }] } },
        ],
      },
    };
    const r = podReferences(p);
    expect(r.namespace).toBe('default');
    expect(r.serviceAccountName).toBe('builder');
    expect(r.configMaps).toEqual(['shared', 'kube-root-ca.crt']);
    expect(r.secrets).toEqual(['s']);
    expect(r.tokens).toEqual([{ audience: '', expirationSeconds: 3607 }]);
  });

  it('uses the deprecated spec.serviceAccount when serviceAccountName is unset', () => {
    expect(podReferences(pod({ serviceAccount: 'old' })).serviceAccountName).toBe('old');
  });

  it('a pod with no references has none', () => {
    expect(podReferences(pod({ containers: [{ name: 'a', image: 'x' }], volumes: [{ name: 'e', emptyDir: {} }, { name: 'h', hostPath: { path: '/tmp' } }] }))).toEqual({
      namespace: 'team',
      serviceAccountName: 'default',
      configMaps: [],
      secrets: [],
      tokens: [],
    });
  });

  it('referencedObjects and the keys', () => {
    const refs = referencedObjects(pod({ containers: [{ name: 'a', envFrom: [{ secretRef: { name: 's' } }, { configMapRef: { name: 'c' } }] }] }));
    expect(refs).toEqual([
      { kind: 'ConfigMap', namespace: 'team', name: 'c' },
      { kind: 'Secret', namespace: 'team', name: 's' },
    ]);
    expect(refs.map(objectKey)).toEqual(['ConfigMap/team/c', 'Secret/team/s']);
    expect(tokenKey({ audience: '', expirationSeconds: 3607 })).toBe('|3607');
  });
});
