// The agent's seams on their own: pod workers (serial per pod, coalescing,
// terminating → terminated), the status manager (versions move only on change)
// and the pod config (sources reconciled into ADD / UPDATE / DELETE).
import { describe, expect, it, vi } from 'vitest';
import { PodWorkers } from '../../../src/agent/pod-workers.js';
import { StatusManager, type PodChange } from '../../../src/agent/status-manager.js';
import { PodConfig, SOURCE_ANNOTATION } from '../../../src/agent/pod-config.js';
import type { Pod, PodStatus } from '../../../src/pod/api-types.js';

const pod = (uid: string, name = uid, image = 'a'): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid }, spec: { containers: [{ name: 'c', image }] } }) as Pod;

describe('PodWorkers', () => {
  it('never runs two syncs of one pod at once and coalesces requests made meanwhile', async () => {
    let running = 0, maxRunning = 0, syncs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = new PodWorkers({
      async syncPod() {
        running++; maxRunning = Math.max(maxRunning, running); syncs++;
        if (syncs === 1) await gate;
        running--;
      },
      async syncTerminatingPod() {}, async syncTerminatedPod() {}, onSyncError() {},
    });
    w.update('a');
    for (let i = 0; i < 10; i++) w.update('a');
    release();
    await vi.waitFor(() => expect(w.state('a')).toBe('syncing'));
    await w.whenIdle('a');
    expect(maxRunning).toBe(1);
    expect(syncs).toBe(2); // the first, then one for the ten requests made while it ran
  });

  it('terminate runs terminating then terminated once, with the shortest grace period, and forgets the pod', async () => {
    const calls: string[] = [];
    const w = new PodWorkers({
      async syncPod(uid) { calls.push(`sync:${uid}`); },
      async syncTerminatingPod(uid, g) { calls.push(`terminating:${uid}:${g}`); },
      async syncTerminatedPod(uid) { calls.push(`terminated:${uid}`); },
      onSyncError() {},
    });
    w.update('a');
    const a = w.terminate('a', 30);
    const b = w.terminate('a', 5);
    await Promise.all([a, b]);
    expect(calls.filter((c) => c.startsWith('terminat'))).toEqual(['terminating:a:5', 'terminated:a']);
    expect(w.state('a')).toBeUndefined();
    w.update('a'); // a new worker for a new pod with that uid is possible again
    await w.whenIdle('a');
    expect(calls.at(-1)).toBe('sync:a');
  });

  it('a failing sync is reported and retried', async () => {
    let n = 0;
    const errors: unknown[] = [];
    const w = new PodWorkers({
      async syncPod() { if (++n === 1) throw new Error('boom'); },
      async syncTerminatingPod() {}, async syncTerminatedPod() {},
      onSyncError(_u, e) { errors.push(e); },
    }, { retryMs: 30 });
    w.update('a');
    await vi.waitFor(() => expect(n).toBe(2), { timeout: 2000, interval: 10 });
    expect((errors[0] as Error).message).toBe('boom');
    await w.close();
  });
});

describe('StatusManager', () => {
  it('publishes and versions only real changes; versions grow across pods', () => {
    const m = new StatusManager();
    const seen: PodChange[] = [];
    m.subscribe((c) => seen.push(c));
    const s1 = { phase: 'Pending' } as PodStatus;
    const a = m.add(pod('a'), s1);
    const b = m.add(pod('b'), s1);
    expect(b.resourceVersion).toBeGreaterThan(a.resourceVersion);
    expect(m.setStatus('a', { phase: 'Pending' } as PodStatus)).toBe(false);
    expect(m.setStatus('a', { phase: 'Running' } as PodStatus)).toBe(true);
    expect(m.get('a')!.resourceVersion).toBeGreaterThan(b.resourceVersion);
    expect(m.get('a')!.pod.metadata.resourceVersion).toBe(String(m.get('a')!.resourceVersion));
    m.remove('a');
    expect(seen.map((c) => `${c.type}:${c.pod.pod.metadata.uid}:${c.pod.status.phase}`)).toEqual(['ADDED:a:Pending', 'ADDED:b:Pending', 'MODIFIED:a:Running', 'DELETED:a:Running']);
    expect(m.get('a')).toBeUndefined();
  });
});

describe('PodConfig', () => {
  it('reconciles a source set into adds, updates and deletes, tagging the source', async () => {
    const ops: string[] = [];
    const c = new PodConfig({
      add: (p) => ops.push(`ADD:${p.metadata.uid}:${p.metadata.annotations?.[SOURCE_ANNOTATION]}`),
      update: (p) => ops.push(`UPDATE:${p.metadata.uid}:${p.spec.containers[0]!.image}`),
      delete: async (uid) => void ops.push(`DELETE:${uid}`),
    });
    const files = c.source('file');
    files.set([{ pod: pod('a') }, { pod: pod('b') }]);
    files.set([{ pod: pod('a') }, { pod: pod('b') }]); // nothing changed
    files.set([{ pod: pod('a', 'a', 'a2') }]);
    expect(ops).toEqual(['ADD:a:file', 'ADD:b:file', 'DELETE:b', 'UPDATE:a:a2']);
    expect([...files.pods().keys()]).toEqual(['a']);
    // another source's pods are its own
    c.source('api').add(pod('x'));
    files.set([]);
    expect(ops.slice(-2)).toEqual(['ADD:x:api', 'DELETE:a']);
  });
});
