// Local ephemeral-storage eviction through `nodelet run` (issue 12): a pod
// whose disk emptyDir outgrows its sizeLimit and one whose container writes
// past its ephemeral-storage limit are evicted as kubelet's eviction manager
// does it (Failed, reason Evicted, kubelet's message, a Warning event); a pod
// within its limits on the same node runs to completion.
import { afterEach, describe, expect, it } from 'vitest';
import { BUSYBOX, leftovers, makeEnv, run, writeManifest, type Env } from './helpers.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('local storage eviction', () => {
  it('evicts an emptyDir over its sizeLimit and a container over its ephemeral-storage limit; spares a pod within them', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'evict.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: big-dir }
spec:
  restartPolicy: Never
  volumes: [{ name: scratch, emptyDir: { sizeLimit: 1Mi } }]
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "dd if=/dev/zero of=/scratch/f bs=1M count=4 2>/dev/null && echo wrote && sleep 60"]
      volumeMounts: [{ name: scratch, mountPath: /scratch }]
---
apiVersion: v1
kind: Pod
metadata: { name: big-layer }
spec:
  restartPolicy: Never
  containers:
    - name: writer
      image: ${BUSYBOX}
      resources: { limits: { ephemeral-storage: 1Mi } }
      command: ["sh", "-c", "dd if=/dev/zero of=/tmp/f bs=1M count=3 2>/dev/null && echo wrote && sleep 60"]
    # the pod's total limit is 65Mi: the container's own limit is the one that fires (kubelet checks the pod's first)
    - name: idle
      image: ${BUSYBOX}
      resources: { limits: { ephemeral-storage: 64Mi } }
      command: ["sleep", "60"]
---
apiVersion: v1
kind: Pod
metadata: { name: small }
spec:
  restartPolicy: Never
  volumes: [{ name: scratch, emptyDir: { sizeLimit: 8Mi } }]
  containers:
    - name: c
      image: ${BUSYBOX}
      resources: { limits: { ephemeral-storage: 8Mi } }
      command: ["sh", "-c", "dd if=/dev/zero of=/scratch/f bs=1M count=1 2>/dev/null && sleep 12 && echo done"]
      volumeMounts: [{ name: scratch, mountPath: /scratch }]
`);
    const r = await run([...env.globals, 'run', ...env.nodeFlags, f], 120_000);
    expect(r.stderr).toMatch(/pod\/big-dir: Failed \(Evicted\)/);
    expect(r.stderr).toMatch(/pod\/big-layer: Failed \(Evicted\)/);
    expect(r.stderr).toMatch(/pod\/small: Succeeded/);
    expect(r.stderr).toContain('Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".');
    expect(r.stderr).toContain('Container writer exceeded its local ephemeral storage limit "1Mi".');
    expect(r.stdout).toContain('[small/c] done');
    expect(r.code).not.toBe(0);
    expect(leftovers(env).join('\n')).toBe('');
  }, 180_000);
});
