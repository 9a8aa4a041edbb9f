// A fixed, fast subset of the Kubernetes NodeConformance suite (e2e.test v1.36)
// against a real `nodelet daemon` node: scripts/conformance --focus on specs that
// pass reliably (docs/conformance.md has the whole suite's results). The script
// brings up its own registry, control plane and node in a private network
// namespace and tears them down. It never skips: a missing build (e2e.test, the
// test images, the control plane) fails this test with the script's message.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

/** Each entry: a substring of the spec's full text (regex-escaped below), one spec each. */
/** The full text of each spec (container texts + leaf text, as ginkgo's --focus sees it); each matches one spec. */
const SUBSET = [
  '[sig-node] Pods should get a host IP [NodeConformance] [Conformance]',
  '[sig-node] Container Runtime blackbox test on terminated container should report termination message as empty when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set [NodeConformance] [Conformance]',
  '[sig-node] Downward API should provide host IP as an env var [NodeConformance] [Conformance]',
  '[sig-node] Security Context When creating a container with runAsNonRoot [NodeConformance] should run with an explicit non-root user ID [LinuxOnly]',
  '[sig-node] Variable Expansion should allow substituting values in a container\'s command [NodeConformance] [Conformance]',
  '[sig-node] KubeletManagedEtcHosts should test kubelet managed /etc/hosts file [NodeConformance] [Conformance]',
  '[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]',
  '[sig-storage] Secrets should be consumable from pods in volume [NodeConformance] [Conformance]',
  '[sig-storage] EmptyDir volumes should support (root,0644,default) [LinuxOnly] [NodeConformance] [Conformance]',
];
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function runScript(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(REPO, 'scripts', 'conformance'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

describe('Kubernetes NodeConformance (subset)', () => {
  it(`${SUBSET.length} NodeConformance specs pass against a nodelet node`, async () => {
    if (process.getuid?.() !== 0) throw new Error('the conformance test needs root');
    const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-conformance-')), 'report.json');
    try {
      const focus = SUBSET.map(escape).join('|'); // unanchored: ginkgo matches it anywhere in the spec's text
      const r = await runScript(['--focus', focus, '--procs', '3', '--report', report], 600_000);
      const last = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(r.out);
      if (!last) throw new Error(`scripts/conformance printed no result line (exit ${r.code}):\n${r.out.slice(-6000)}`);
      const ran: { text: string; state: string; failure?: string }[] = [];
      for (const suite of JSON.parse(fs.readFileSync(report, 'utf8'))) {
        for (const s of suite.SpecReports ?? []) {
          if (s.LeafNodeType !== 'It' || (s.State === 'skipped' && !s.Failure)) continue;
          ran.push({ text: [...(s.ContainerHierarchyTexts ?? []), s.LeafNodeText].join(' '), state: s.State, failure: s.Failure?.Message });
        }
      }
      const bad = ran.filter((s) => s.state !== 'passed');
      expect(bad, r.out.slice(-4000)).toEqual([]);
      expect(Number(last[2])).toBe(0);
      expect(Number(last[1])).toBe(SUBSET.length);
      expect(r.code).toBe(0);
    } finally {
      fs.rmSync(path.dirname(report), { recursive: true, force: true });
    }
  }, 660_000);
});
