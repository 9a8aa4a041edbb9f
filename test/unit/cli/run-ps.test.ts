// `nodelet ps`: the pods of `nodelet run` on a --root, from their records, with the owner's liveness.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PodStore } from '../../../src/agent/pod-store.js';
import { listRunPods } from '../../../src/cli/run-ps.js';
import type { Pod } from '../../../src/pod/api-types.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const rec = (uid: string, name: string, annotations: Record<string, string>, created: string): { pod: Pod; objects: { configMaps: []; secrets: [] } } => ({
  pod: { metadata: { uid, name, namespace: 'default', annotations, creationTimestamp: created }, spec: { containers: [{ name: 'c', image: 'i' }] } },
  objects: { configMaps: [], secrets: [] },
});

describe('listRunPods', () => {
  it('lists run pods only, Running while the owner (pid + start time) lives, Orphaned after; sorted; ages as kubectl', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-ps-'));
    const store = new PodStore({ root: dir });
    store.save(rec('u1', 'web', { 'nodelet.io/run-owner': '100:555' }, '2026-01-02T15:00:00Z') as never);
    store.save(rec('u2', 'api', { 'nodelet.io/run-owner': '200:777' }, '2026-01-02T15:09:00Z') as never);
    store.save(rec('u3', 'static', { 'kubernetes.io/config.source': 'file' }, '2026-01-02T15:00:00Z') as never);
    const procs: Record<number, string> = { 100: '555', 200: '999' }; // 200 is another process now
    const rows = listRunPods(dir, Date.parse('2026-01-02T15:10:00Z'), (pid) => procs[pid]);
    expect(rows.map(({ uid: _u, ...r }) => r)).toEqual([
      { name: 'api', namespace: 'default', status: 'Orphaned', ownerPid: 200, age: '60s' },
      { name: 'web', namespace: 'default', status: 'Running', ownerPid: 100, age: '10m' },
    ]);
  });
  it('no pods directory: nothing', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-ps-'));
    expect(listRunPods(dir)).toEqual([]);
  });
});
