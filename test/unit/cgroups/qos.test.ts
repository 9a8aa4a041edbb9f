import { describe, expect, it } from 'vitest';
import { computePodResources, cpuQuotaFromMilli, cpuSharesFromMilli, cpuWeightFromMilli, oomScoreAdj, qosClassOf } from '../../../src/cgroups/index.js';

const GiB = 1024 ** 3;

describe('kubelet formulas', () => {
  it('cpu shares: 1024 per core, min 2, max 262144', () => {
    expect(cpuSharesFromMilli(undefined)).toBe(2);
    expect(cpuSharesFromMilli(0)).toBe(2);
    expect(cpuSharesFromMilli(1)).toBe(2);
    expect(cpuSharesFromMilli(100)).toBe(102);
    expect(cpuSharesFromMilli(250)).toBe(256);
    expect(cpuSharesFromMilli(1000)).toBe(1024);
    expect(cpuSharesFromMilli(1_000_000)).toBe(262144);
  });

  it('cpu weight: 1 + (shares-2)*9999/262142 (integer), from the request', () => {
    expect(cpuWeightFromMilli(undefined)).toBe(1);
    expect(cpuWeightFromMilli(1000)).toBe(39);
    expect(cpuWeightFromMilli(100)).toBe(4);
    expect(cpuWeightFromMilli(256_000)).toBe(10000);
  });

  it('cpu quota: milli * period / 1000, min 1000us, 0 → none', () => {
    expect(cpuQuotaFromMilli(0)).toBe(0);
    expect(cpuQuotaFromMilli(1)).toBe(1000);
    expect(cpuQuotaFromMilli(250)).toBe(25000);
    expect(cpuQuotaFromMilli(1500)).toBe(150000);
    expect(cpuQuotaFromMilli(500, 50000)).toBe(25000);
  });

  it('oom_score_adj per QoS class', () => {
    expect(oomScoreAdj('Guaranteed', GiB, 8 * GiB)).toBe(-997);
    expect(oomScoreAdj('BestEffort', undefined, 8 * GiB)).toBe(1000);
    expect(oomScoreAdj('Burstable', 2 * GiB, 8 * GiB)).toBe(750);
    expect(oomScoreAdj('Burstable', undefined, 8 * GiB)).toBe(999);
    expect(oomScoreAdj('Burstable', 1, 8 * GiB)).toBe(999);
    expect(oomScoreAdj('Burstable', 8 * GiB, 8 * GiB)).toBe(3);
    expect(oomScoreAdj('Burstable', 16 * GiB, 8 * GiB)).toBe(3);
    expect(oomScoreAdj('Burstable', 32 * 1024 ** 2, 8 * GiB)).toBe(997); // 1000 - (1000*32Mi)/8Gi = 1000 - 3 (integer division), not trunc(996.09)
  });
});

describe('qosClassOf (GetPodQOS)', () => {
  const c = (requests: { cpu?: number; memory?: number }, limits: { cpu?: number; memory?: number }) => ({ requests, limits });
  it('BestEffort when nothing is set', () => {
    expect(qosClassOf([c({}, {}), c({}, {})])).toBe('BestEffort');
    expect(qosClassOf([c({ cpu: 0 }, {})])).toBe('BestEffort');
  });
  it('Guaranteed when every container has equal cpu and memory requests and limits', () => {
    expect(qosClassOf([c({ cpu: 500, memory: GiB }, { cpu: 500, memory: GiB })])).toBe('Guaranteed');
    // request defaults to the limit
    expect(qosClassOf([c({}, { cpu: 500, memory: GiB }), c({ cpu: 100, memory: 1 }, { cpu: 100, memory: 1 })])).toBe('Guaranteed');
  });
  it('Burstable otherwise', () => {
    expect(qosClassOf([c({ cpu: 100 }, {})])).toBe('Burstable');
    expect(qosClassOf([c({ cpu: 100, memory: GiB }, { cpu: 200, memory: GiB })])).toBe('Burstable');
    expect(qosClassOf([c({}, { memory: GiB })])).toBe('Burstable');
    expect(qosClassOf([c({ cpu: 500, memory: GiB }, { cpu: 500, memory: GiB }), c({}, {})])).toBe('Burstable');
  });
});

describe('computePodResources (ResourceConfigForPod)', () => {
  const c = (requests: { cpu?: number; memory?: number }, limits: { cpu?: number; memory?: number }) => ({ requests, limits });
  it('sums containers; limits only when every container declares one', () => {
    expect(computePodResources([c({ cpu: 100, memory: GiB }, { cpu: 200, memory: 2 * GiB }), c({ cpu: 50 }, { cpu: 100, memory: GiB })])).toEqual({
      cpuRequestMilli: 150, memoryRequestBytes: 2 * GiB, cpuLimitMilli: 300, memoryLimitBytes: 3 * GiB,
    });
    expect(computePodResources([c({}, { cpu: 200, memory: GiB }), c({ cpu: 50 }, {})])).toEqual({ cpuRequestMilli: 250, memoryRequestBytes: GiB });
    expect(computePodResources([c({}, {})])).toEqual({});
  });
  it('an init container larger than the sum raises it', () => {
    const r = computePodResources([c({}, { cpu: 100, memory: GiB })], [c({}, { cpu: 500, memory: GiB / 2 })]);
    expect(r).toEqual({ cpuRequestMilli: 500, memoryRequestBytes: GiB, cpuLimitMilli: 500, memoryLimitBytes: GiB });
    // only app containers decide whether a limit is declared
    expect(computePodResources([c({}, { cpu: 100, memory: GiB })], [c({ cpu: 10 }, {})]).memoryLimitBytes).toBe(GiB);
  });
});
