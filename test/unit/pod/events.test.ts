import { describe, expect, it } from 'vitest';
import { EventLog } from '../../../src/pod/events.js';
import { applyDefaults } from '../../../src/pod/manifest.js';

const pod = applyDefaults({ metadata: { name: 'web' }, spec: { initContainers: [{ name: 'init', image: 'b' }], containers: [{ name: 'app', image: 'b' }] } }, { uid: () => 'u1' });

describe('EventLog', () => {
  it('aggregates identical events with count and timestamps; names containers by fieldPath', () => {
    const log = new EventLog({ host: 'node1' });
    const seen: string[] = [];
    log.onEvent((e) => seen.push(`${e.reason}:${e.count}`));
    log.record(pod, { reason: 'Pulling', message: 'Pulling image "b"', container: 'app' }, new Date('2026-01-01T00:00:00Z'));
    log.record(pod, { reason: 'BackOff', message: 'Back-off restarting failed container app', type: 'Warning', container: 'app' }, new Date('2026-01-01T00:00:10Z'));
    const e = log.record(pod, { reason: 'BackOff', message: 'Back-off restarting failed container app', type: 'Warning', container: 'app' }, new Date('2026-01-01T00:00:30Z'));
    log.record(pod, { reason: 'Started', message: 'Started container init', container: 'init' }, new Date('2026-01-01T00:00:40Z'));
    expect(e).toMatchObject({ count: 2, firstTimestamp: '2026-01-01T00:00:10Z', lastTimestamp: '2026-01-01T00:00:30Z', type: 'Warning', involvedObject: { kind: 'Pod', name: 'web', uid: 'u1', fieldPath: 'spec.containers{app}' }, source: { component: 'nodelet', host: 'node1' } });
    expect(log.list({ uid: 'u1' }).map((x) => x.reason)).toEqual(['Pulling', 'BackOff', 'Started']);
    expect(log.list()[2]!.involvedObject.fieldPath).toBe('spec.initContainers{init}');
    expect(seen).toEqual(['Pulling:1', 'BackOff:1', 'BackOff:2', 'Started:1']);
    log.forget('u1');
    expect(log.list()).toEqual([]);
  });
  it('is bounded', () => {
    const log = new EventLog({ max: 3 });
    for (let i = 0; i < 5; i++) log.record(pod, { reason: 'R', message: `m${i}` });
    expect(log.list().map((e) => e.message)).toEqual(['m2', 'm3', 'm4']);
  });
});
