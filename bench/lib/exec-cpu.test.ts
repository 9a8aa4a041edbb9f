// Measurement run by bench/exec (NODELET_MEASURE_EXEC=N): daemon-side CPU per exec,
// N sequential exec(['true']) into one container, process.cpuUsage() delta divided by N.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { encodeExecFrame, ShimClient, type ExecRequest, type ShimState } from '../../src/runtime/shim/index.js';
import { DEFAULT_CAPS } from '../../test/helpers/shim-plan.js';
import { makeFixture, type Fixture } from '../../test/integration/shim/util.js';

const N = Number(process.env.NODELET_MEASURE_EXEC ?? 500);
let f: Fixture;
let c: ShimState;
let stateDir: string;
beforeAll(async () => {
  if (!N) return;
  f = await makeFixture();
  const plan = f.plan({ argv: ['sleep', '1000'] });
  stateDir = plan.stateDir;
  c = await f.client.start(plan);
});
afterAll(async () => {
  if (!N) return;
  process.kill(c.pid, 'SIGKILL');
  await f.client.waitExit(stateDir);
  await f.cleanup();
});

async function measure(label: string, client: Pick<ShimClient, 'exec'>, req: ExecRequest): Promise<void> {
  for (let i = 0; i < 20; i++) await client.exec(req); // warm up
  const t0 = process.hrtime.bigint();
  const u0 = process.cpuUsage();
  for (let i = 0; i < N; i++) expect((await client.exec(req)).exitCode).toBe(0);
  const u = process.cpuUsage(u0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`${label} x${N}: daemon CPU ${((u.user + u.system) / N / 1000).toFixed(3)} ms/exec (user ${(u.user / N / 1000).toFixed(3)}, sys ${(u.system / N / 1000).toFixed(3)}), wall ${(wall / N).toFixed(2)} ms/exec`);
}

test('daemon CPU per exec', async () => {
  const req = { stateDir, pid: c.pid, cgroupProcsFiles: [], argv: ['true'], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, additionalGids: [], capabilities: DEFAULT_CAPS, noNewPrivs: true } as ExecRequest;
  // NODELET_MEASURE_SHIM=<module>: the same with another ShimClient (e.g. an older copy, for before/after figures)
  if (process.env.NODELET_MEASURE_SHIM) {
    const other = (await import(process.env.NODELET_MEASURE_SHIM)) as { ShimClient: new () => ShimClient };
    await measure('exec (other client)', new other.ShimClient(), req);
  }
  await measure('exec', f.client, req);
  // as the runtime calls it: the request encoded once per container and argv
  await measure('exec, cached request', f.client, { ...req, requestFrame: encodeExecFrame(req) });
});
