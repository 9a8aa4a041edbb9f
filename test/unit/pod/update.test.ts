// Pod updates as the API server allows them (ValidatePodUpdate), the refusal of
// kinds nodelet does not run, and the `nodelet run` orphan decision.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from '../../../src/pod/api-types.js';
import { applyDefaults, loadManifests, parseManifests } from '../../../src/pod/manifest.js';
import { FORBIDDEN_POD_UPDATE, keepNodeManagedAnnotations, podUpdateChanges, podUpdateInvalidMessage, validatePodUpdate } from '../../../src/pod/update.js';
import { isOrphan, orphanWarnings, parseRunOwner, reapRunOrphans, RUN_OWNER_ANNOTATION, runOwnerValue, type ReapAgent } from '../../../src/agent/run-owner.js';

const base = (spec: Partial<Pod['spec']> & Record<string, unknown> = {}, meta: Partial<Pod['metadata']> = {}): Pod =>
  applyDefaults(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', labels: { app: 'web' }, ...meta },
      spec: {
        initContainers: [{ name: 'init', image: 'localhost/nodelet/busybox:v1', command: ['true'] }],
        containers: [{ name: 'app', image: 'localhost/nodelet/busybox:v1', ports: [{ containerPort: 80 }], resources: { limits: { memory: '1Gi' } } }],
        ...spec,
      } as Pod['spec'],
    },
    { uid: () => 'u-1', now: new Date('2026-01-01T00:00:00Z') },
  );

/** `old` changed by `edit` (a deep copy). */
function edited(old: Pod, edit: (p: Pod & { spec: Record<string, any> }) => void): Pod {
  const p = structuredClone(old) as Pod & { spec: Record<string, any> };
  edit(p);
  return p;
}

describe('podUpdateChanges', () => {
  it('finds nothing between a pod and the same manifest defaulted again', () => {
    const a = base();
    const b = applyDefaults({ ...structuredClone(a), metadata: { name: 'web', labels: { app: 'web' } } }, { uid: () => 'other' });
    expect(podUpdateChanges(a, b)).toEqual({ changes: [], images: [], metadata: false, spec: false });
  });
  it('treats unset, empty lists and empty maps alike, and equal quantities as equal', () => {
    const a = base({ volumes: [] });
    const b = edited(a, (p) => {
      delete p.spec.volumes;
      p.spec.containers[0].resources.limits.memory = '1024Mi';
      p.spec.containers[0].resources.requests.memory = '1073741824';
      p.metadata.annotations = {};
    });
    expect(podUpdateChanges(a, b).changes).toEqual([]);
  });
  it('names every changed leaf, images and metadata', () => {
    const a = base();
    const b = edited(a, (p) => {
      p.spec.containers[0].image = 'localhost/nodelet/testprog:v1';
      p.spec.initContainers[0].image = 'localhost/nodelet/testprog:v1';
      p.metadata.labels = { app: 'web', tier: 'front' };
      p.spec.containers[0].ports[0].containerPort = 8080;
    });
    const c = podUpdateChanges(a, b);
    expect(c.changes.map((x) => x.path)).toEqual(['metadata.labels.tier', 'spec.containers[0].image', 'spec.containers[0].ports[0].containerPort', 'spec.initContainers[0].image']);
    expect(c.images).toEqual([
      { name: 'app', init: false, from: 'localhost/nodelet/busybox:v1', to: 'localhost/nodelet/testprog:v1' },
      { name: 'init', init: true, from: 'localhost/nodelet/busybox:v1', to: 'localhost/nodelet/testprog:v1' },
    ]);
    expect(c.metadata).toBe(true);
    expect(c.spec).toBe(true);
  });
  it('keeps the annotations the node set itself when the manifest leaves them out', () => {
    const a = base({}, { annotations: { 'kubernetes.io/config.source': 'api', [RUN_OWNER_ANNOTATION]: '1:2', mine: 'x' } });
    const b = keepNodeManagedAnnotations(a, base({}, { annotations: { mine: 'x' } }));
    expect(b.metadata.annotations).toEqual({ mine: 'x', 'kubernetes.io/config.source': 'api', [RUN_OWNER_ANNOTATION]: '1:2' });
    // a user annotation that is removed stays removed
    expect(podUpdateChanges(a, keepNodeManagedAnnotations(a, base())).changes.map((x) => x.path)).toEqual(['metadata.annotations.mine']);
  });
});

describe('validatePodUpdate (ValidatePodUpdate)', () => {
  const ok = (a: Pod, b: Pod) => expect(validatePodUpdate(a, b).errors).toEqual([]);
  const errors = (a: Pod, b: Pod) => validatePodUpdate(a, b).errors;

  it('allows images, labels, annotations and an unchanged pod', () => {
    const a = base();
    ok(a, a);
    ok(a, edited(a, (p) => {
      p.spec.containers[0].image = 'localhost/nodelet/testprog:v1';
      p.spec.initContainers[0].image = 'localhost/nodelet/testprog:v1';
      p.metadata.labels = { app: 'other' };
      p.metadata.annotations = { note: 'hi' };
    }));
  });
  it('refuses any other spec change with the API server\'s message and a diff of the fields', () => {
    const a = base();
    const e = errors(a, edited(a, (p) => {
      p.spec.containers[0].ports[0].containerPort = 8080;
      p.spec.containers[0].image = 'localhost/nodelet/testprog:v1'; // allowed, not in the diff
    }));
    expect(e).toHaveLength(1);
    expect(e[0]).toBe(`spec: Forbidden: ${FORBIDDEN_POD_UPDATE}\n- spec.containers[0].ports[0].containerPort: 80\n+ spec.containers[0].ports[0].containerPort: 8080`);
    // the exact wording of kubernetes/kubernetes pkg/apis/core/validation/validation.go (updatablePodSpecFields joined by ",")
    expect(e[0]!.split('\n')[0]).toBe(
      'spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
    );
    expect(podUpdateInvalidMessage('web', e)).toMatch(/^Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than /);
    expect(errors(a, edited(a, (p) => (p.spec.containers[0].resources.limits.memory = '2Gi')))[0]).toMatch(/^spec: Forbidden: .*\n- spec\.containers\[0\]\.resources\.limits\.memory: "1Gi"\n\+ spec\.containers\[0\]\.resources\.limits\.memory: "2Gi"/);
    expect(errors(a, edited(a, (p) => (p.spec.restartPolicy = 'Never')))[0]).toContain('- spec.restartPolicy: "Always"\n+ spec.restartPolicy: "Never"');
    expect(errors(a, edited(a, (p) => (p.spec.containers[0].env = [{ name: 'A', value: '1' }])))[0]).toContain('- spec.containers[0].env: <unset>\n+ spec.containers[0].env: [{"name":"A","value":"1"}]');
  });
  it('refuses adding or removing containers, and empty or padded images', () => {
    const a = base();
    expect(errors(a, edited(a, (p) => p.spec.containers.push({ name: 'two', image: 'x:1' })))).toEqual(['spec.containers: Forbidden: pod updates may not add or remove containers']);
    expect(errors(a, edited(a, (p) => (p.spec.initContainers = [])))).toEqual(['spec.initContainers: Forbidden: pod updates may not add or remove containers']);
    expect(errors(a, edited(a, (p) => (p.spec.containers[0].image = ' x:1')))).toEqual(['spec.containers[0].image: Invalid value: " x:1": must not have leading or trailing whitespace']);
    expect(errors(a, edited(a, (p) => delete p.spec.containers[0].image))).toEqual(['spec.containers[0].image: Required value']);
  });
  it('activeDeadlineSeconds: may be set and lowered, not raised or removed', () => {
    const a = base();
    ok(a, edited(a, (p) => (p.spec.activeDeadlineSeconds = 60)));
    const b = base({ activeDeadlineSeconds: 60 });
    ok(b, edited(b, (p) => (p.spec.activeDeadlineSeconds = 30)));
    expect(errors(b, edited(b, (p) => (p.spec.activeDeadlineSeconds = 61)))).toEqual(['spec.activeDeadlineSeconds: Invalid value: 61: must be less than or equal to previous value']);
    expect(errors(b, edited(b, (p) => delete p.spec.activeDeadlineSeconds))).toEqual(['spec.activeDeadlineSeconds: Invalid value: "null": must not update from a positive integer to nil value']);
    expect(errors(a, edited(a, (p) => (p.spec.activeDeadlineSeconds = -1)))).toEqual(['spec.activeDeadlineSeconds: Invalid value: -1: must be between 0 and 2147483647, inclusive']);
  });
  it('tolerations: additions, and tolerationSeconds of an existing one; nothing else', () => {
    const t = { key: 'k', operator: 'Equal', value: 'v', effect: 'NoExecute', tolerationSeconds: 10 };
    const a = base({ tolerations: [t] });
    ok(a, edited(a, (p) => p.spec.tolerations.push({ key: 'other', operator: 'Exists' })));
    ok(a, edited(a, (p) => (p.spec.tolerations[0].tolerationSeconds = 99)));
    expect(errors(a, edited(a, (p) => (p.spec.tolerations[0].value = 'w')))).toEqual(['spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds']);
    expect(errors(a, edited(a, (p) => (p.spec.tolerations = [])))).toEqual(['spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds']);
  });
  it('terminationGracePeriodSeconds: only from a negative value to 1', () => {
    const neg = base({ terminationGracePeriodSeconds: -1 });
    ok(neg, edited(neg, (p) => (p.spec.terminationGracePeriodSeconds = 1)));
    expect(errors(neg, edited(neg, (p) => (p.spec.terminationGracePeriodSeconds = 2)))[0]).toContain('+ spec.terminationGracePeriodSeconds: 2');
    const a = base();
    expect(errors(a, edited(a, (p) => (p.spec.terminationGracePeriodSeconds = 1)))[0]).toMatch(/^spec: Forbidden: pod updates may not change fields other than[^]*- spec.terminationGracePeriodSeconds: 30\n\+ spec.terminationGracePeriodSeconds: 1$/);
  });
  it('metadata identity is immutable', () => {
    const a = base();
    expect(errors(a, edited(a, (p) => (p.metadata.uid = 'u-2')))).toEqual(['metadata.uid: Invalid value: "u-2": field is immutable']);
  });
});

describe('unsupported kinds', () => {
  const text = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {containers: [{name: c, image: x:1}]}
`;
  it('with unsupportedKinds: error, loadManifests refuses them, naming the kind, its apiVersion and the document', () => {
    expect(() => loadManifests(text, 'examples/x.yaml', { unsupportedKinds: 'error' })).toThrow(
      'examples/x.yaml: document 2: kind "Deployment" (apps/v1) is not supported by nodelet: only Pod, ConfigMap and Secret — run it on a cluster',
    );
    try {
      loadManifests(text, 'x.yaml', { unsupportedKinds: 'error' });
      expect.unreachable();
    } catch (e) {
      expect((e as { code?: string }).code).toBe('ERR_KIND_NOT_SUPPORTED');
    }
    const many = `apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s}}\n- {apiVersion: batch/v1, kind: Job, metadata: {name: j}}\n`;
    expect(() => loadManifests(many, 'l.yaml', { unsupportedKinds: 'error' })).toThrow(
      'l.yaml: document 1 items[0]: kind "Service" (v1) is not supported by nodelet: only Pod, ConfigMap and Secret — run it on a cluster\nl.yaml: document 1 items[1]: kind "Job" (batch/v1)',
    );
  });
  it('by default (static pods) the document is skipped with a warning; ConfigMaps and Pods still load', () => {
    const r = loadManifests(text, 'x.yaml');
    expect(r.pods.map((p) => p.metadata.name)).toEqual(['web']);
    expect(r.configMaps.map((c) => c.metadata.name)).toEqual(['cfg']);
    expect(r.warnings.join('\n')).toMatch(/document 2: kind Deployment .* not supported/);
    expect(() => parseManifests(text, 'x.yaml', { unsupportedKinds: 'error' })).toThrow(/document 2: kind "Deployment"/);
  });
});

describe('nodelet run owners (src/agent/run-owner.ts)', () => {
  const procs = new Map<number, string>([[100, '5555'], [200, '7777']]);
  const lookup = (pid: number) => procs.get(pid);
  it('an owner is gone when its pid is dead or belongs to a process started at another time', () => {
    expect(parseRunOwner('100:5555')).toEqual({ pid: 100, startTime: '5555' });
    expect(isOrphan('100:5555', lookup)).toBe(false); // alive
    expect(isOrphan('300:5555', lookup)).toBe(true); // no such pid
    expect(isOrphan('200:5555', lookup)).toBe(true); // pid reused
    expect(isOrphan(undefined, lookup)).toBe(false); // not a `run` pod
    expect(isOrphan('garbage', lookup)).toBe(false);
    expect(isOrphan('0:1', lookup)).toBe(false);
    // this process, through the real /proc
    expect(isOrphan(runOwnerValue())).toBe(false);
    expect(runOwnerValue()).toMatch(new RegExp(`^${process.pid}:\\d+$`));
  });
  it('one warning per dead run, naming its pods and pid', () => {
    expect(orphanWarnings([
      { uid: 'a', namespace: 'default', name: 'web', owner: { pid: 42, startTime: '1' } },
      { uid: 'b', namespace: 'default', name: 'db', owner: { pid: 42, startTime: '1' } },
      { uid: 'c', namespace: 'ns', name: 'job', owner: { pid: 43, startTime: '1' } },
    ])).toEqual([
      'removing pods default/web, default/db: left running by a "nodelet run" (pid 42) that is gone',
      'removing pod ns/job: left running by a "nodelet run" (pid 43) that is gone',
    ]);
  });
  it('reapRunOrphans deletes only the pods of dead owners, handing the agent those it does not have', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-reap-'));
    try {
      const write = (uid: string, owner: string | undefined, extra: Record<string, unknown> = {}) => {
        fs.mkdirSync(path.join(root, 'pods', uid), { recursive: true });
        const pod = { metadata: { uid, name: `p-${uid}`, namespace: 'default', annotations: owner ? { [RUN_OWNER_ANNOTATION]: owner } : {} }, spec: { containers: [] } };
        fs.writeFileSync(path.join(root, 'pods', uid, 'pod.json'), JSON.stringify({ pod, objects: { configMaps: [], secrets: [] }, ...extra }));
      };
      write('dead', '300:1', { terminal: true });
      write('reused', '200:1');
      write('alive', '100:5555');
      write('daemon', undefined);
      fs.mkdirSync(path.join(root, 'pods', 'empty'));
      const added: string[] = [];
      const deleted: string[] = [];
      const agent: ReapAgent = {
        getPod: (uid: string) => (uid === 'reused' ? ({} as never) : undefined),
        addPod: ((pod: Pod, _o: unknown, rec?: { terminal?: boolean }) => {
          added.push(`${pod.metadata.uid}${rec?.terminal ? ' terminal' : ''}`);
          return {} as never;
        }) as ReapAgent['addPod'],
        deletePod: async (uid: string) => void deleted.push(uid),
      };
      const lines: string[] = [];
      const r = reapRunOrphans(agent, (l) => lines.push(l), { root, procLookup: lookup });
      await r.done;
      expect(r.orphans.map((o) => o.uid).sort()).toEqual(['dead', 'reused']);
      expect(added).toEqual(['dead terminal']); // `reused` is in the agent already (a daemon's recover())
      expect(deleted.sort()).toEqual(['dead', 'reused']);
      expect(lines.sort()).toEqual([
        'removing pod default/p-dead: left running by a "nodelet run" (pid 300) that is gone',
        'removing pod default/p-reused: left running by a "nodelet run" (pid 200) that is gone',
      ]);
      // a second reaper while this one lives: the claims are ours, nothing is reaped twice
      expect(reapRunOrphans(agent, () => undefined, { root, procLookup: lookup }).orphans).toEqual([]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
