// Random type mutations of a valid manifest: loadManifests must either accept
// it or throw ManifestError, never crash with a TypeError.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { loadManifests, ManifestError } from '../../../src/pod/manifest.js';
import { buildContainerConfig, buildSandboxConfig } from '../../../src/pod/container-config.js';
import { computePodActions } from '../../../src/pod/actions.js';
import { computePodStatus } from '../../../src/pod/status.js';
import { Backoff } from '../../../src/pod/backoff.js';
import { NodeletError } from '../../../src/errors.js';
import type { ImageRecord } from '../../../src/image/types.js';

const image: ImageRecord = { id: 'sha256:i', manifestDigest: '', names: [], repoDigests: [], config: { os: 'linux', architecture: 'amd64', cmd: ['sh'], env: [], exposedPorts: [], labels: {}, diffIds: [] }, chainIds: [], size: 0, pulledAt: '' };

const text = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/manifests/valid/web.yaml'), 'utf8');
const docs = parseAllDocuments(text).map((d) => d.toJS());

// deterministic PRNG
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]!;
const junk = () => pick<unknown>([null, 0, -1, 70000, '', 'x', 'Bad_Name', true, [], [null], {}, { a: 1 }, 1.5, '../..', '/abs']);

function paths(o: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (o && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      const p = [...prefix, Array.isArray(o) ? Number(k) : k];
      out.push(p);
      paths(v, p, out);
    }
  }
  return out;
}

describe('manifest fuzz', () => {
  it('1500 random mutations never crash', () => {
    const all = paths(docs);
    let rejected = 0;
    for (let i = 0; i < 1500; i++) {
      const copy = structuredClone(docs) as unknown[];
      for (let j = 0; j < 1 + Math.floor(rnd() * 3); j++) {
        const p = pick(all);
        let o: any = copy;
        for (const k of p.slice(0, -1)) o = o?.[k];
        if (o && typeof o === 'object') o[p[p.length - 1]!] = junk();
      }
      const yaml = copy.map((d) => stringify(d)).join('---\n');
      try {
        const r = loadManifests(yaml);
        // everything downstream must cope with any pod that validation accepted
        for (const pod of r.pods) {
          buildSandboxConfig(pod, { hostResolvConf: { nameservers: [], searches: [], options: [] }, nodeHostname: 'node1' });
          const volumePaths = Object.fromEntries((pod.spec.volumes ?? []).map((v) => [v.name, '/v/' + v.name]));
          for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
            try {
              buildContainerConfig({ pod, container: c, image, attempt: 0, podLogsDir: '/l', volumePaths, objects: r, subPathResolver: (a, b) => `${a}/${b}` });
            } catch (e) {
              if (!(e instanceof NodeletError)) throw e;
            }
          }
          computePodActions(pod, { sandboxes: [], containers: [] }, { now: 0, backoff: new Backoff() });
          computePodStatus(pod, [], {}, { now: new Date(0) });
        }
      } catch (e) {
        if (!(e instanceof ManifestError)) throw new Error(`crash on:\n${yaml}\n${(e as Error).stack}`);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(500);
  });
});
