// The cluster status syncer against a small in-memory pods/status endpoint that
// applies strategic-merge patches as the API server does for a pod's status
// (conditions merged by type, other fields replaced): readiness gates set by
// someone else through pods/status decide Ready, and those conditions survive
// the node's own status updates.
import { afterEach, describe, expect, it } from 'vitest';
import { StatusSyncer, mergePodStatus } from '../../../src/cluster/status-syncer.js';
import type { ApiPod } from '../../../src/cluster/pod-source.js';
import { StatusManager } from '../../../src/agent/status-manager.js';
import { computePodStatus } from '../../../src/pod/status.js';
import type { Pod, PodCondition, PodStatus } from '../../../src/pod/api-types.js';
import type { KubeClient } from '../../../src/kube/types.js';

type Status = Record<string, unknown> & { conditions?: PodCondition[] };

/** One pod's status on the "server": a strategic-merge PATCH of pods/status, a resourceVersion per write. */
class PodStatusServer {
  rv = 10;
  status: Status;
  patches: Record<string, unknown>[] = [];
  constructor(readonly pod: Pod, status: Status) {
    this.status = structuredClone(status);
  }
  object(): ApiPod {
    return { apiVersion: 'v1', kind: 'Pod', metadata: { ...this.pod.metadata, resourceVersion: String(this.rv) }, spec: this.pod.spec as never, status: structuredClone(this.status) as never };
  }
  apply(patch: { status?: Record<string, unknown> }): void {
    const next: Status = structuredClone(this.status);
    for (const [k, v] of Object.entries(patch.status ?? {})) {
      if (k.startsWith('$')) continue;
      if (k === 'conditions') {
        const conds = [...(next.conditions ?? [])];
        for (const c of v as (PodCondition & { $patch?: string })[]) {
          const i = conds.findIndex((x) => x.type === c.type);
          if (c.$patch === 'delete') { if (i >= 0) conds.splice(i, 1); continue; }
          if (i >= 0) conds[i] = Object.fromEntries(Object.entries({ ...conds[i], ...c }).filter(([, x]) => x !== null)) as PodCondition;
          else conds.push(c);
        }
        next.conditions = conds;
      } else if (v === null) delete next[k];
      else next[k] = v;
    }
    this.status = next;
    this.rv++;
  }
  /** someone else (a controller) sets a condition through pods/status */
  setCondition(type: string, status: 'True' | 'False'): ApiPod {
    this.apply({ status: { conditions: [{ type, status }] } });
    return this.object();
  }
  client(): KubeClient {
    return {
      server: 'fake',
      patch: async (_ref: unknown, _name: string, _type: string, p: { status?: Record<string, unknown> }) => {
        this.patches.push(p as Record<string, unknown>);
        this.apply(p);
        return this.object();
      },
    } as unknown as KubeClient;
  }
}

const syncers: StatusSyncer[] = [];
afterEach(() => {
  for (const s of syncers.splice(0)) s.stop();
});

const T0 = Date.parse('2026-01-01T00:00:00Z');
const gated: Pod = {
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name: 'pod-ready', namespace: 'ns', uid: 'u-1', annotations: { 'kubernetes.io/config.source': 'apiserver' } },
  spec: { containers: [{ name: 'c', image: 'busybox' }], readinessGates: [{ conditionType: 'k8s.io/test-condition1' }, { conditionType: 'k8s.io/test-condition2' }] },
} as Pod;
/** What the agent computes for the running pod (it knows no gate condition). */
const agentStatus = (pod: Pod, at = T0 + 1000): PodStatus =>
  computePodStatus(pod, [{ id: 'c0', sandboxId: 's', name: 'c', attempt: 0, state: 'running', createdAt: new Date(T0).toISOString(), startedAt: new Date(T0).toISOString(), oomKilled: false, imageRef: 'busybox', imageId: 'sha256:1', logPath: '/l', labels: {}, annotations: {} }], {}, { now: new Date(at), podIPs: ['10.0.0.2'], hostIPs: ['192.0.2.1'], sandboxReady: true });
const cond = (s: Status, t: string) => s.conditions?.find((c) => c.type === t);

function setup(pod: Pod) {
  const server = new PodStatusServer(pod, { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }] });
  const status = new StatusManager();
  status.add(pod, agentStatus(pod));
  const syncer = new StatusSyncer({ client: server.client(), status, isApiPod: () => true, apiPod: () => server.object(), reconcileMs: 3_600_000 });
  syncers.push(syncer);
  syncer.start();
  return { server, status, syncer };
}

describe('StatusSyncer and readiness gates', () => {
  it('Ready stays False until every gate condition set through pods/status is True; the gate conditions survive the node\'s updates', async () => {
    const { server, status, syncer } = setup(gated);
    await syncer.idle();
    expect(cond(server.status, 'ContainersReady')?.status).toBe('True');
    expect(cond(server.status, 'Ready')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady', message: 'corresponding condition of pod readiness gate "k8s.io/test-condition1" does not exist., corresponding condition of pod readiness gate "k8s.io/test-condition2" does not exist.' });

    syncer.observed('u-1', server.setCondition('k8s.io/test-condition1', 'True'));
    await syncer.idle();
    expect(cond(server.status, 'Ready')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady', message: 'corresponding condition of pod readiness gate "k8s.io/test-condition2" does not exist.' });

    syncer.observed('u-1', server.setCondition('k8s.io/test-condition2', 'True'));
    await syncer.idle();
    expect(cond(server.status, 'Ready')?.status).toBe('True');
    expect(cond(server.status, 'Ready')?.reason).toBeUndefined();

    // the node's next status (a later sync) keeps both gate conditions and Ready True
    status.setStatus('u-1', { ...agentStatus(gated, T0 + 5000), startTime: '2026-01-01T00:00:05Z' });
    await syncer.idle();
    expect(cond(server.status, 'k8s.io/test-condition1')?.status).toBe('True');
    expect(cond(server.status, 'k8s.io/test-condition2')?.status).toBe('True');
    expect(cond(server.status, 'Ready')?.status).toBe('True');

    syncer.observed('u-1', server.setCondition('k8s.io/test-condition1', 'False'));
    await syncer.idle();
    expect(cond(server.status, 'Ready')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady', message: 'the status of pod readiness gate "k8s.io/test-condition1" is not "True", but False' });
    expect(cond(server.status, 'k8s.io/test-condition1')?.status).toBe('False');
  });

  it('an older watch event does not replace the status a patch returned; an unrelated one sends nothing', async () => {
    const { server, syncer } = setup(gated);
    const stale = server.object(); // before the first patch
    await syncer.idle();
    const n = server.patches.length;
    syncer.observed('u-1', stale);
    await syncer.idle();
    expect(server.patches.length).toBe(n);
    syncer.observed('u-1', server.object()); // the watch event of our own patch
    await syncer.idle();
    expect(server.patches.length).toBe(n);
  });
});

describe('mergePodStatus with readiness gates', () => {
  it('a pod without gates: Ready as the agent computed it', () => {
    const pod = { ...gated, spec: { ...gated.spec, readinessGates: undefined } } as Pod;
    const m = mergePodStatus(undefined, agentStatus(pod), pod) as Status;
    expect(cond(m, 'Ready')?.status).toBe('True');
  });
  it('ContainersReady False: Ready says the same, whatever the gates', () => {
    const ours = agentStatus(gated);
    ours.conditions = ours.conditions!.map((c) => (c.type === 'ContainersReady' ? { ...c, status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [c]' } : c));
    const api = { conditions: [{ type: 'k8s.io/test-condition1', status: 'True' }, { type: 'k8s.io/test-condition2', status: 'True' }] };
    const m = mergePodStatus(api, ours, gated) as Status;
    expect(cond(m, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [c]' });
  });
  it('all gates True: Ready True, its lastTransitionTime kept while the API server has it True', () => {
    const api = { conditions: [{ type: 'k8s.io/test-condition1', status: 'True' }, { type: 'k8s.io/test-condition2', status: 'True' }, { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:03Z' }] };
    const m = mergePodStatus(api, agentStatus(gated), gated, new Date(T0 + 9000)) as Status;
    expect(cond(m, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-01-01T00:00:03Z' });
    const flipped = mergePodStatus({ conditions: api.conditions.slice(0, 2) }, agentStatus(gated), gated, new Date(T0 + 9000)) as Status;
    expect(cond(flipped, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-01-01T00:00:09Z' });
  });
});
