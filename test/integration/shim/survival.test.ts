// The shim outlives the process that spawned it (the daemon): SIGKILL the
// spawner, the container keeps running and logging, the exit is recorded later.
import { afterEach, beforeEach, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShimState } from '../../../src/runtime/shim/index.js';
import { makeFixture, sleep, streamText, type Fixture } from './util.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the container survives SIGKILL of the spawning process; log keeps growing; exit recorded', async () => {
  const plan = f.plan({ argv: ['sh', '-c', 'i=0; while [ $i -lt 15 ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done; exit 4'] });
  const spawner = spawn(join(root, 'node_modules/.bin/vite-node'), [join(root, 'test/integration/shim/fixtures/start-and-hang.ts'), JSON.stringify(plan)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const state = await new Promise<ShimState>((resolve, reject) => {
    let out = '';
    spawner.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    spawner.once('exit', (code) => reject(new Error(`spawner exited ${code} before starting: ${out}`)));
  });
  spawner.kill('SIGKILL');
  await new Promise((r) => spawner.once('exit', r));
  const sizeAtKill = (await readFile(plan.logPath)).length;
  await sleep(300);
  expect(await f.client.shimAlive(plan.stateDir)).toBe(true);
  expect((await readFile(plan.logPath)).length).toBeGreaterThan(sizeAtKill);
  const exit = await f.client.waitExit(plan.stateDir);
  expect(exit).toMatchObject({ status: 'exited', exitCode: 4, pid: state.pid, shimPid: state.shimPid });
  const text = streamText(await readFile(plan.logPath, 'utf8'), 'stdout');
  expect(text).toBe(Array.from({ length: 15 }, (_, i) => `line ${i}\n`).join(''));
});
