// kubelet v1.36 parity of the prober manager, against the fake runtime: readiness keeps running while a pod
// terminates (StopLivenessAndStartup, RemovePod once the containers stopped), and a probe's Warning result
// (an HTTP redirect to another host) is a success recorded as a ProbeWarning event.
import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeAgent, type NodeAgentDeps } from '../../../src/agent/node-agent.js';
import type { Prober } from '../../../src/agent/prober-manager.js';
import type { Pod } from '../../../src/pod/api-types.js';
import type { ProbeOutcome } from '../../../src/pod/probe.js';
import { computeProbeState, initialProbeState } from '../../../src/pod/probe.js';
import { FakeImages, FakeRuntime } from '../../helpers/fake-runtime.js';

const dirs: string[] = [];
const agents: NodeAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function makeAgent(rt: FakeRuntime, extra: Partial<NodeAgentDeps> = {}) {
  const root = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'nodelet-parity-'));
  dirs.push(root);
  const volumes = { async setUp() { return {}; }, async update() {}, async tearDown() {} };
  const a = new NodeAgent({ root, runRoot: path.join(root, 'run'), runtime: rt, images: new FakeImages(), volumes, backoff: { initialMs: 200, maxMs: 800 }, hostIPs: ['192.0.2.10'], nodeName: 'node-a', ...extra } as NodeAgentDeps);
  agents.push(a);
  return a;
}

let seq = 0;
function pod(spec: Record<string, unknown>): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: `00000000-0000-4000-8100-${String(++seq).padStart(12, '0')}` }, spec: { restartPolicy: 'Always', terminationGracePeriodSeconds: 5, ...spec } } as Pod;
}
const probe = (kind: string) => ({ exec: { command: [kind] }, periodSeconds: 1, failureThreshold: 1 });
const wait = (fn: () => void, timeout = 5000) => vi.waitFor(fn, { timeout, interval: 20 });

/** Results by probe kind (the first word of the exec command); every run counted. */
function scripted(results: Map<string, ProbeOutcome>) {
  const runs: string[] = [];
  const fn: Prober = async (p) => {
    const kind = p.exec?.command?.[0] ?? '?';
    runs.push(kind);
    return results.get(kind) ?? { result: 'success', output: '' };
  };
  return { fn, runs };
}

describe('readiness during termination (kubelet StopLivenessAndStartup)', () => {
  it('keeps probing readiness through preStop: Ready turns False while the pod terminates; liveness stops at once', async () => {
    const rt = new FakeRuntime();
    const results = new Map<string, ProbeOutcome>();
    const pr = scripted(results);
    const a = makeAgent(rt, { prober: pr.fn });
    const p = pod({ containers: [{ name: 'web', image: 'img:1', readinessProbe: probe('readiness'), livenessProbe: probe('liveness'), lifecycle: { preStop: { sleep: { seconds: 4 } } } }] });
    const uid = p.metadata.uid!;
    a.addPod(p);
    await wait(() => expect(a.getPod(uid)?.status.containerStatuses?.[0]?.ready).toBe(true));
    const deleted = a.deletePod(uid, 5);
    await new Promise((r) => setTimeout(r, 100)); // in preStop now
    const livenessRuns = pr.runs.filter((k) => k === 'liveness').length;
    results.set('readiness', { result: 'failure', output: 'shutting down' });
    // published while the worker is still busy with preStop (the container is still running)
    await wait(() => {
      const s = a.getPod(uid)?.status;
      expect(s?.containerStatuses?.[0]?.state?.running).toBeDefined();
      expect(s?.containerStatuses?.[0]?.ready).toBe(false);
      expect(s?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
    }, 3000);
    expect(a.events({ uid }).some((e) => e.reason === 'Unhealthy' && e.message === 'Readiness probe failed: shutting down')).toBe(true);
    expect(pr.runs.filter((k) => k === 'liveness').length).toBe(livenessRuns); // liveness stopped at deletion
    await deleted;
    const after = pr.runs.length;
    await new Promise((r) => setTimeout(r, 1300));
    expect(pr.runs.length).toBe(after); // nothing probes a removed pod
  }, 15_000);
});

describe('probe Warning (kubelet prober.go: probe.Warning → success + ProbeWarning)', () => {
  it('a warning result counts as a success for the thresholds', () => {
    const p = { successThreshold: 1, failureThreshold: 1 };
    const s = computeProbeState(initialProbeState('readiness', 'c1'), 'warning', p, 'readiness');
    expect(s).toMatchObject({ changed: true, state: { result: 'success' } });
  });

  it('a readiness probe that warns makes the container Ready and records a ProbeWarning event (no Unhealthy)', async () => {
    const rt = new FakeRuntime();
    const results = new Map<string, ProbeOutcome>([['readiness', { result: 'warning', output: 'Probe terminated redirects, Response body: <a href="http://other.example/">Found</a>.' }]]);
    const a = makeAgent(rt, { prober: scripted(results).fn });
    const p = pod({ containers: [{ name: 'web', image: 'img:1', readinessProbe: probe('readiness') }] });
    const uid = p.metadata.uid!;
    a.addPod(p);
    await wait(() => expect(a.getPod(uid)?.status.containerStatuses?.[0]?.ready).toBe(true));
    const ev = a.events({ uid }).find((e) => e.reason === 'ProbeWarning');
    expect(ev).toMatchObject({ type: 'Warning', message: 'Readiness probe warning: Probe terminated redirects, Response body: <a href="http://other.example/">Found</a>.' });
    expect(a.events({ uid }).some((e) => e.reason === 'Unhealthy')).toBe(false);
    expect(a.probeTotals()['readiness/success']).toBeGreaterThan(0);
  });
});
