import { describe, expect, test } from 'vitest';
import { toShimState } from '../../../src/runtime/shim/index.js';

describe('toShimState', () => {
  const base = { containerId: 'c', shimPid: 10, shimStartTime: 5, pid: 11, startedAt: '2026-01-01T00:00:00.000000000Z' };
  test('running', () => {
    expect(toShimState({ ...base, status: 'running' })).toEqual({ containerId: 'c', shimPid: 10, pid: 11, status: 'running', startedAt: base.startedAt });
  });
  test('exited normally keeps WEXITSTATUS', () => {
    expect(toShimState({ ...base, status: 'exited', finishedAt: 'f', exitCode: 3, oomKilled: false })).toMatchObject({ exitCode: 3, oomKilled: false, status: 'exited' });
  });
  test('killed by a signal: exitCode 128+N and the signal name', () => {
    const s = toShimState({ ...base, status: 'exited', finishedAt: 'f', exitCode: 0, signal: 'SIGKILL', oomKilled: true });
    expect(s).toMatchObject({ exitCode: 137, signal: 'SIGKILL', oomKilled: true });
    expect(toShimState({ ...base, status: 'exited', finishedAt: 'f', exitCode: 0, signal: 'SIGTERM' }).exitCode).toBe(143);
  });
});
