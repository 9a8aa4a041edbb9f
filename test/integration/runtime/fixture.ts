// Shared setup for the runtime integration tests: a busybox rootfs on tmpfs,
// a unique cgroup parent, a private CNI bridge/subnet, and a NodeletRuntime
// over the real shim, cgroup manager, pinner and CNI. Everything is removed in
// teardown(), even after failures.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createCgroupManager } from '../../../src/cgroups/index.js';
import type { CgroupManager } from '../../../src/cgroups/types.js';
import { createNamespacePinner, createPodNetwork } from '../../../src/network/index.js';
import { NodeletRuntime } from '../../../src/runtime/runtime.js';
import type { ContainerConfig, PodSandboxConfig } from '../../../src/runtime/types.js';
import { buildBusyboxRootfs, makeTestDir } from '../../helpers/rootfs.js';
import { DirImageProvider } from '../../helpers/dir-image-provider.js';

export interface Fixture {
  dir: string;
  runRoot: string;
  cgroupParent: string;
  bridge: string;
  subnet: string;
  cgroups: CgroupManager;
  images: DirImageProvider;
  rt: NodeletRuntime;
  opts: ConstructorParameters<typeof NodeletRuntime>[0];
  teardown(): Promise<void>;
}

export async function makeFixture(): Promise<Fixture> {
  if (process.getuid?.() !== 0) throw new Error('runtime integration tests need root');
  const rand = randomBytes(3).toString('hex');
  const dir = await makeTestDir();
  const lower = await buildBusyboxRootfs(path.join(dir, 'busybox'));
  const cgroupParent = `/nodelet-test-${rand}`;
  const cgroups = await createCgroupManager({ parent: cgroupParent });
  const images = new DirImageProvider(lower, path.join(dir, 'snapshots'));
  const runRoot = path.join(dir, 'run');
  const bridge = `nlt${rand}`;
  const subnet = `10.${200 + (parseInt(rand.slice(0, 2), 16) % 50)}.${parseInt(rand.slice(2, 4), 16)}.0/24`;
  const opts = {
    runRoot, images, cgroups,
    pinner: createNamespacePinner(),
    network: createPodNetwork({ stateDir: path.join(dir, 'cni'), cniConfDir: path.join(dir, 'cni-conf'), bridgeName: bridge, subnet }),
  };
  const rt = new NodeletRuntime(opts);
  const f: Fixture = {
    dir, runRoot, cgroupParent, bridge, subnet, cgroups, images, rt, opts,
    async teardown() {
      try {
        for (const sb of await f.rt.listPodSandboxes()) await f.rt.removePodSandbox(sb.id).catch(() => undefined);
        await f.rt.close();
      } finally {
        await removeCgroupTree(cgroups, cgroupParent);
        fs.rmSync(dir, { recursive: true, force: true });
        spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' }); // the CNI bridge outlives its pods
      }
    },
  };
  return f;
}

/** Remove the test's cgroup parent on every hierarchy (children first). */
async function removeCgroupTree(cg: CgroupManager, parent: string): Promise<void> {
  const roots = cg.procsFiles(parent).map((f) => path.dirname(f));
  for (const root of roots) {
    const dirs: string[] = [];
    const walk = (d: string) => {
      let ents: fs.Dirent[];
      try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
      for (const e of ents) if (e.isDirectory()) walk(path.join(d, e.name));
      dirs.push(d);
    };
    walk(root);
    for (const d of dirs) {
      const rel = parent + d.slice(root.length);
      await cg.remove(rel).catch(() => undefined);
      try { fs.rmdirSync(d); } catch { /* gone or busy */ }
    }
  }
}

let podSeq = 0;
export function podConfig(over: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  const name = over.name ?? `pod${++podSeq}`;
  return {
    uid: randomBytes(8).toString('hex'), name, namespace: 'default', hostname: name, hostNetwork: false, hostPID: false, hostIPC: false,
    shareProcessNamespace: false, hostAliases: [], portMappings: [], qosClass: 'BestEffort', resources: {}, labels: {}, annotations: {},
    ...over,
  };
}

export function containerConfig(f: Fixture, name: string, argv: string[], over: Partial<ContainerConfig> = {}, sec: Partial<ContainerConfig['security']> = {}): ContainerConfig {
  return {
    name, attempt: 0, imageRef: 'test/busybox:latest', imageId: f.images.record.id, argv, env: [], mounts: [], resources: {},
    tty: false, stdin: false, logPath: path.join(f.dir, 'logs', `${name}-${randomBytes(3).toString('hex')}`, '0.log'), labels: {}, annotations: {},
    security: { privileged: false, supplementalGroups: [], capabilitiesAdd: [], capabilitiesDrop: [], readOnlyRootFilesystem: false, noNewPrivs: false, ...sec },
    ...over,
  };
}

export function mountsUnder(prefix: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(prefix));
}

export { sleep } from '../../../src/sys/proc.js';
import { sleep } from '../../../src/sys/proc.js';

export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export { pidAlive } from '../../../src/sys/proc.js';
