// Child "daemon" for recovery.test.ts: opens a runtime over the given state,
// starts a pod with two containers and an exec in one, prints their ids and
// pids as one JSON line, then idles until the test SIGKILLs it.
import path from 'node:path';
import { createCgroupManager } from '../../../src/cgroups/index.js';
import { createNamespacePinner, createPodNetwork } from '../../../src/network/index.js';
import { NodeletRuntime } from '../../../src/runtime/runtime.js';
import { DirImageProvider } from '../../helpers/dir-image-provider.js';
import { containerConfig, podConfig, type Fixture } from './fixture.js';

const cfg = JSON.parse(process.env.NODELET_CHILD_CONFIG!) as { dir: string; lower: string; runRoot: string; cgroupParent: string; bridge: string; subnet: string };
const images = new DirImageProvider(cfg.lower, path.join(cfg.dir, 'snapshots'));
const rt = await NodeletRuntime.open({
  runRoot: cfg.runRoot, images, cgroups: await createCgroupManager({ parent: cfg.cgroupParent }), pinner: createNamespacePinner(),
  network: createPodNetwork({ stateDir: path.join(cfg.dir, 'cni'), cniConfDir: path.join(cfg.dir, 'cni-conf'), bridgeName: cfg.bridge, subnet: cfg.subnet }),
});
const f = { dir: cfg.dir, images } as unknown as Fixture;
const sb = await rt.runPodSandbox(podConfig({ name: 'survivor' }));
const long = await rt.createContainer(sb, containerConfig(f, 'long', ['/bin/sh', '-c', 'trap "echo got TERM; exit 0" TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done']));
const short = await rt.createContainer(sb, containerConfig(f, 'short', ['/bin/sh', '-c', 'i=1; while [ $i -le 60 ]; do echo line $i; i=$((i+1)); sleep 0.02; done; exit 7']));
await rt.startContainer(long);
await rt.startContainer(short);
// an exec in flight when the daemon dies: the shim must kill it (its client is gone)
const inflight = await rt.exec(long, ['sleep', '4261.5']);
inflight.stdout.resume();
inflight.stderr?.resume();
const s1 = await rt.containerStatus(long);
const s2 = await rt.containerStatus(short);
process.stdout.write(JSON.stringify({ sb, long, short, longPid: s1.pid, shortPid: s2.pid, shortLog: s2.logPath, longLog: s1.logPath }) + '\n');
setInterval(() => undefined, 1000);
