// nodelet run's give-up on images (src/cli/pod-run.ts PullGiveUp): one attempt per entry into ErrImagePull.
import { describe, expect, it } from 'vitest';
import { PullGiveUp } from '../../../src/cli/pod-run.js';
import type { PodStatus } from '../../../src/pod/api-types.js';

const st = (reason: string | undefined, message = ''): PodStatus => ({
  phase: 'Pending',
  containerStatuses: [{ name: 'c', image: 'r/x:1', imageID: '', ready: false, restartCount: 0, state: reason ? { waiting: { reason, message } } : { running: { startedAt: 't' } } }],
} as unknown as PodStatus);

describe('PullGiveUp', () => {
  it('counts entries into ErrImagePull, not repeated statuses, and gives up at the limit with the last message', () => {
    const g = new PullGiveUp(3);
    const seq = ['ContainerCreating', 'ErrImagePull', 'ErrImagePull', 'ImagePullBackOff', 'ErrImagePull', 'ImagePullBackOff'];
    for (const r of seq) expect(g.observe('u', st(r, `pull failed (${r})`))).toBeUndefined();
    expect(g.observe('u', st('ErrImagePull', 'connect ECONNREFUSED'))).toEqual({ container: 'c', image: 'r/x:1', attempts: 3, message: 'connect ECONNREFUSED' });
  });
  it('0 attempts: never gives up; containers of other pods count apart', () => {
    const never = new PullGiveUp(0);
    for (let i = 0; i < 10; i++) {
      expect(never.observe('u', st('ErrImagePull'))).toBeUndefined();
      expect(never.observe('u', st('ImagePullBackOff'))).toBeUndefined();
    }
    const g = new PullGiveUp(1);
    expect(g.observe('a', st('ImagePullBackOff'))).toBeUndefined();
    expect(g.observe('b', st('ErrImagePull'))?.attempts).toBe(1);
  });
});
