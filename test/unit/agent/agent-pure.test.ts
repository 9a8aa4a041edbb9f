// Pure parts of the agent, API and CLI: CRI log decoding, log following
// across rotation (real files on tmpfs), event dedup, API routing, kubectl
// STATUS column, exit code descriptions, pod exit code.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CriDecoder, followLog, parseCriLine, readLog } from '../../../src/agent/logs.js';
import { EventRecorder } from '../../../src/agent/events.js';
import { podExitCode } from '../../../src/agent/node-agent.js';
import { parseRoute, statusObject } from '../../../src/api/server.js';
import { age, podStatusReason } from '../../../src/cli/client-commands.js';
import { describeExit } from '../../../src/cli/describe.js';
import { staticPodUid } from '../../../src/agent/file-source.js';
import type { Pod } from '../../../src/pod/api-types.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const tmp = () => (dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'nodelet-test-')));

describe('CRI logs', () => {
  it('parses lines and joins partial records per stream', () => {
    expect(parseCriLine('2024-01-01T00:00:00.000000001Z stdout F hello world')).toEqual({ time: '2024-01-01T00:00:00.000000001Z', stream: 'stdout', partial: false, text: 'hello world' });
    expect(parseCriLine('2024-01-01T00:00:00Z stderr F')?.text).toBe('');
    expect(parseCriLine('garbage')).toBeUndefined();
    const d = new CriDecoder();
    expect(d.push('t stdout P abc')).toBeUndefined();
    expect(d.push('t stderr F err')).toEqual({ time: 't', stream: 'stderr', text: 'err' });
    expect(d.push('t stdout F def')).toEqual({ time: 't', stream: 'stdout', text: 'abcdef' });
  });

  it('reads rotated files oldest first and tails text', () => {
    const d = tmp();
    const f = path.join(d, '0.log');
    fs.writeFileSync(`${f}.2`, 't stdout F one\n');
    fs.writeFileSync(`${f}.1`, 't stdout F two\n');
    fs.writeFileSync(f, 't stdout F three\nt stderr F four\n');
    expect(readLog(f, { withRotated: true }).map((r) => r.text)).toEqual(['one', 'two', 'three', 'four']);
    expect(readLog(f).map((r) => r.text)).toEqual(['three', 'four']);
  });

  it('follows a file across several rotations without losing or repeating lines', async () => {
    const d = tmp();
    const f = path.join(d, '0.log');
    fs.writeFileSync(f, '');
    const got: string[] = [];
    let stop = false;
    const follower = followLog(f, (r) => got.push(r.text), { pollMs: 20, done: () => stop });
    let n = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++) fs.appendFileSync(f, `t stdout F line${++n}\n`);
      await new Promise((r) => setTimeout(r, 50));
      // rotate like the shim: .1 → .2, current → .1, new current (twice in a row in round 2)
      for (let k = 0; k < (round === 2 ? 2 : 1); k++) {
        if (fs.existsSync(`${f}.1`)) fs.renameSync(`${f}.1`, `${f}.2`);
        fs.renameSync(f, `${f}.1`);
        fs.writeFileSync(f, `t stdout F line${++n}\n`);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await follower;
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `line${i + 1}`));
  });
});

const pod = (over: Partial<Pod> = {}): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u1' }, spec: { containers: [{ name: 'c', image: 'x' }] }, ...over });

describe('events', () => {
  it('aggregates repeats into one event with a count and first/last timestamps', () => {
    const seen: number[] = [];
    const r = new EventRecorder((e) => seen.push(e.count));
    r.record(pod(), 'Warning', 'BackOff', 'back-off', 'spec.containers{c}', new Date('2024-01-01T00:00:00Z'));
    const e = r.record(pod(), 'Warning', 'BackOff', 'back-off', 'spec.containers{c}', new Date('2024-01-01T00:01:00Z'));
    r.record(pod(), 'Normal', 'Started', 'Started container c', 'spec.containers{c}');
    expect(e.count).toBe(2);
    expect(e.firstTimestamp).toBe('2024-01-01T00:00:00Z');
    expect(e.lastTimestamp).toBe('2024-01-01T00:01:00Z');
    expect(r.list({ name: 'p' }).map((x) => x.reason)).toEqual(['BackOff', 'Started']);
    expect(seen).toEqual([1, 2, 1]);
    r.forget('u1');
    expect(r.list()).toEqual([]);
  });
});

describe('API routing', () => {
  it('maps Kubernetes-shaped paths', () => {
    expect(parseRoute('/api/v1/pods')).toEqual({ kind: 'pods' });
    expect(parseRoute('/api/v1/namespaces/kube-system/pods/')).toEqual({ kind: 'pods', namespace: 'kube-system' });
    expect(parseRoute('/api/v1/namespaces/default/pods/web')).toEqual({ kind: 'pod', namespace: 'default', name: 'web' });
    expect(parseRoute('/api/v1/namespaces/default/pods/web/log')).toEqual({ kind: 'log', namespace: 'default', name: 'web' });
    expect(parseRoute('/api/v1/namespaces/default/pods/web/exec')).toEqual({ kind: 'exec', namespace: 'default', name: 'web' });
    expect(parseRoute('/api/v1/events')).toEqual({ kind: 'events' });
    expect(parseRoute('/healthz')).toEqual({ kind: 'healthz' });
    expect(parseRoute('/api/v2/x')).toEqual({ kind: 'notFound' });
    expect(statusObject(404, 'NotFound', 'pods "x" not found')).toMatchObject({ kind: 'Status', status: 'Failure', code: 404, reason: 'NotFound' });
  });
});

describe('kubectl-like output', () => {
  it('computes the STATUS column like kubectl', () => {
    const waiting = pod({ status: { phase: 'Running', containerStatuses: [{ name: 'c', ready: false, restartCount: 3, image: 'x', imageID: '', state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: {} }] } });
    expect(podStatusReason(waiting)).toBe('CrashLoopBackOff');
    const init = pod({ spec: { initContainers: [{ name: 'i', image: 'x' }], containers: [{ name: 'c', image: 'x' }] }, status: { phase: 'Pending', initContainerStatuses: [{ name: 'i', ready: false, restartCount: 0, image: 'x', imageID: '', state: { running: {} }, lastState: {} }] } });
    expect(podStatusReason(init)).toBe('Init:0/1');
    const done = pod({ status: { phase: 'Succeeded', containerStatuses: [{ name: 'c', ready: false, restartCount: 0, image: 'x', imageID: '', state: { terminated: { exitCode: 0, reason: 'Completed' } }, lastState: {} }] } });
    expect(podStatusReason(done)).toBe('Completed');
    expect(podStatusReason({ ...done, metadata: { ...done.metadata, deletionTimestamp: 'x' } })).toBe('Terminating');
    expect(age(new Date(Date.now() - 5000).toISOString())).toBe('5s');
    expect(age(new Date(Date.now() - 3 * 3600_000).toISOString())).toBe('3h');
  });

  it('explains exit codes', () => {
    expect(describeExit(137)).toMatch(/SIGKILL/);
    expect(describeExit(137, 'OOMKilled', true)).toMatch(/container hit its memory limit/);
    expect(describeExit(137, 'OOMKilled', false)).toMatch(/pod hit its memory limit/);
    expect(describeExit(127)).toBe('command not found');
    expect(describeExit(0)).toBe('');
  });

  it('derives the pod exit code', () => {
    expect(podExitCode({ phase: 'Succeeded' })).toBe(0);
    expect(podExitCode({ phase: 'Failed', containerStatuses: [{ name: 'a', ready: false, restartCount: 0, image: '', imageID: '', state: { terminated: { exitCode: 0 } }, lastState: {} }, { name: 'b', ready: false, restartCount: 0, image: '', imageID: '', state: { terminated: { exitCode: 9 } }, lastState: {} }] })).toBe(9);
    expect(podExitCode(undefined)).toBe(1);
  });

  it('gives a static pod a stable uid per file and content', () => {
    const a = staticPodUid('/m/a.yaml', pod());
    expect(staticPodUid('/m/a.yaml', pod())).toBe(a);
    expect(staticPodUid('/m/b.yaml', pod())).not.toBe(a);
    expect(staticPodUid('/m/a.yaml', pod({ spec: { containers: [{ name: 'c', image: 'y' }] } }))).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
