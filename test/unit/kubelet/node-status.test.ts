import { describe, expect, it } from 'vitest';
import { computeNodeStatus } from '../../../src/node/status.js';
import type { HostInfo } from '../../../src/node/host-info.js';

const host: HostInfo = {
  hostname: 'n1', nodeIP: '10.0.0.2', cpuCount: 2, memory: { totalBytes: 4 << 30, availableBytes: 2 << 30, swapTotalBytes: 0 }, hugepages: {},
  nodefs: { capacityBytes: 100 << 30, availableBytes: 50 << 30, inodes: 1000, inodesFree: 500 }, imagefs: { capacityBytes: 100 << 30, availableBytes: 50 << 30, inodes: 1000, inodesFree: 500 },
  pids: { max: 4096, running: 100 }, kernelVersion: '6.1', osImage: 'x', operatingSystem: 'linux', architecture: 'amd64', machineID: 'm', systemUUID: 'u', bootID: 'b',
};

describe('the Node status for the kubelet server', () => {
  it('advertises the kubelet port and the declared features (sorted); none declared → no field, even if the server had one', () => {
    const s = computeNodeStatus({ host, now: new Date('2026-01-01T00:00:00Z'), config: { kubeletPort: 31234, declaredFeatures: ['ZFeature', 'ExtendWebSocketsToKubelet'] } } as never);
    expect(s.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 31234 } });
    expect(s.declaredFeatures).toEqual(['ExtendWebSocketsToKubelet', 'ZFeature']);
    const t = computeNodeStatus({ host, now: new Date('2026-01-01T00:00:00Z'), previous: s, config: { kubeletPort: 0 } } as never);
    expect(t).not.toHaveProperty('declaredFeatures');
    expect(t.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 0 } });
  });
});
