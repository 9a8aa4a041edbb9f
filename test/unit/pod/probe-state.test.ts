import { describe, expect, it } from 'vitest';
import { computeProbeState, initialProbeState, probeDue, resolvePort } from '../../../src/pod/probe.js';
import type { Probe } from '../../../src/pod/api-types.js';

const probe: Probe = { exec: { command: ['true'] }, periodSeconds: 10, failureThreshold: 3, successThreshold: 1, initialDelaySeconds: 5 };

describe('probe worker logic', () => {
  it('liveness: failure published only after failureThreshold consecutive failures, then on hold', () => {
    let st = initialProbeState('liveness', 'c1');
    expect(st.result).toBe('success');
    const seq = ['failure', 'failure', 'success', 'failure', 'failure', 'failure'] as const;
    const published: string[] = [];
    for (const r of seq) {
      const x = computeProbeState(st, r, probe, 'liveness');
      st = x.state;
      published.push(st.result);
    }
    expect(published).toEqual(['success', 'success', 'success', 'success', 'success', 'failure']);
    expect(st.onHold).toBe(true);
    expect(probeDue(st, { kind: 'liveness', probe, containerId: 'c1', running: true, startedAt: 0, started: true, now: 60_000 }).due).toBe(false);
    // a new container resets the worker
    const fresh = probeDue(st, { kind: 'liveness', probe, containerId: 'c2', running: true, startedAt: 0, started: true, now: 60_000 });
    expect(fresh).toMatchObject({ due: true, state: { onHold: false, result: 'success', containerId: 'c2' } });
  });
  it('readiness: starts failed, successThreshold, flips both ways', () => {
    const p = { ...probe, successThreshold: 2, failureThreshold: 1 };
    let st = initialProbeState('readiness', 'c');
    expect(st.result).toBe('failure');
    let r = computeProbeState(st, 'success', p, 'readiness');
    expect([r.state.result, r.changed]).toEqual(['failure', false]);
    r = computeProbeState(r.state, 'success', p, 'readiness');
    expect([r.state.result, r.changed]).toEqual(['success', true]);
    r = computeProbeState(r.state, 'unknown', p, 'readiness');
    expect([r.state.result, r.changed, r.state.onHold]).toEqual(['failure', true, false]);
  });
  it('initial delay, startup gating, stopped containers', () => {
    const i = { kind: 'liveness' as const, probe, containerId: 'c', running: true, startedAt: 1000, started: true, now: 5999 };
    expect(probeDue(undefined, i).due).toBe(false);
    expect(probeDue(undefined, { ...i, now: 6000 }).due).toBe(true);
    expect(probeDue(undefined, { ...i, now: 6000, started: false }).due).toBe(false);
    expect(probeDue(undefined, { ...i, kind: 'startup', now: 6000, started: false }).due).toBe(true);
    expect(probeDue(undefined, { ...i, kind: 'startup', now: 6000, started: true }).due).toBe(false);
    const ready = { ...initialProbeState('readiness', 'c'), result: 'success' as const };
    expect(probeDue(ready, { ...i, kind: 'readiness', running: false }).state.result).toBe('failure');
  });
  it('named ports', () => {
    expect(resolvePort('http', [{ name: 'http', containerPort: 8080 }])).toBe(8080);
    expect(resolvePort('9000', [])).toBe(9000);
    expect(() => resolvePort('nope', [])).toThrow(/couldn't find port "nope"/);
  });
});
