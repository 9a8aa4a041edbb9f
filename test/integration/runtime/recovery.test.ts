// Daemon death: a runtime in a child process is SIGKILLed while its
// containers run; a new runtime over the same state re-adopts them. The
// running one stays running, the one that exited meanwhile reports its true
// exit code (and onContainerExit fires for it), and its log has every line.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeletRuntime } from '../../../src/runtime/runtime.js';
import { inspectRuntimeState } from '../../../src/runtime/inspect.js';
import type { ContainerExitEvent } from '../../../src/runtime/types.js';
import { makeFixture, mountsUnder, pidAlive, sleep, waitFor, type Fixture } from './fixture.js';
import { processesMentioning } from '../shim/util.js';

let f: Fixture;
beforeAll(async () => { f = await makeFixture(); });
afterAll(async () => { await f?.teardown(); });

it('containers survive a SIGKILLed daemon and are re-adopted with their true exit codes', async () => {
  const cfg = { dir: f.dir, lower: path.join(f.dir, 'busybox'), runRoot: f.runRoot, cgroupParent: f.cgroupParent, bridge: f.bridge, subnet: f.subnet };
  const child = spawn(path.resolve('node_modules/.bin/vite-node'), [path.resolve('test/integration/runtime/daemon-child.ts')], {
    env: { ...process.env, NODELET_CHILD_CONFIG: JSON.stringify(cfg) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const info = await waitFor(() => {
    const line = stdout.split('\n').find((l) => l.startsWith('{'));
    if (child.exitCode !== null && !line) throw new Error(`child daemon died: ${stderr}`);
    return line ? (JSON.parse(line) as { sb: string; long: string; short: string; longPid: number; shortPid: number; shortLog: string; longLog: string }) : undefined;
  }, 30_000, 'the child daemon to start its containers');
  expect((await processesMentioning('4261.5')).length).toBeGreaterThan(0);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // its exec in flight lost its client: the shim killed it
  await waitFor(async () => (await processesMentioning('4261.5')).length === 0 || undefined, 5000, 'the orphaned exec to be killed');

  // The daemon is gone; the containers are not disturbed.
  expect(pidAlive(info.longPid)).toBe(true);
  await waitFor(() => !pidAlive(info.shortPid) || undefined, 10_000, 'the short container to exit while no daemon runs');
  const ticksAtDeath = fs.readFileSync(info.longLog, 'utf8').split('\n').length;
  await sleep(300);
  expect(fs.readFileSync(info.longLog, 'utf8').split('\n').length).toBeGreaterThan(ticksAtDeath);

  // The read-only view (`nodelet runtime ps`) sees the truth without a daemon.
  const view = inspectRuntimeState(f.runRoot);
  expect(view.containers.find((c) => c.id === info.long)).toMatchObject({ state: 'running', pid: info.longPid });
  expect(view.containers.find((c) => c.id === info.short)).toMatchObject({ state: 'exited', exitCode: 7 });

  // A new daemon re-adopts everything.
  await f.rt.close();
  f.rt = await NodeletRuntime.open(f.opts);
  const events: ContainerExitEvent[] = [];
  f.rt.onContainerExit((e) => events.push(e));
  expect((await f.rt.listPodSandboxes()).map((s) => s.id)).toEqual([info.sb]);
  expect(await f.rt.containerStatus(info.long)).toMatchObject({ state: 'running', pid: info.longPid });
  expect(await f.rt.containerStatus(info.short)).toMatchObject({ state: 'exited', exitCode: 7, reason: 'Error' });
  expect(events.map((e) => [e.containerId, e.status.exitCode])).toEqual([[info.short, 7]]);

  // The log of the container that exited meanwhile has every line, in CRI format.
  const lines = fs.readFileSync(info.shortLog, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(60);
  lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z stdout F line ${i + 1}$`)));

  // The re-adopted container is fully managed: exec, stop with an exit event, removal.
  expect((await f.rt.execSync(info.long, ['echo', 'still here'])).stdout.toString()).toBe('still here\n');
  const s = await f.rt.exec(info.long, ['sh', '-c', 'read x; echo "re-adopted $x"'], { stdin: true });
  let got = '';
  s.stdout.on('data', (d: Buffer) => { got += d.toString(); });
  s.stderr!.resume();
  s.stdin!.end('and streaming\n');
  expect(await s.exit).toEqual({ exitCode: 0 });
  expect(got).toBe('re-adopted and streaming\n');
  await f.rt.stopContainer(info.long, 5);
  await waitFor(() => events.find((e) => e.containerId === info.long), 5000, 'the exit event of the re-adopted container');
  expect(await f.rt.containerStatus(info.long)).toMatchObject({ state: 'exited', exitCode: 0, reason: 'Completed' });
  expect(fs.readFileSync(info.longLog, 'utf8')).toMatch(/stdout F got TERM\n$/);
  await f.rt.removePodSandbox(info.sb);
  expect(mountsUnder(f.runRoot)).toEqual([]);
  expect(pidAlive(info.longPid)).toBe(false);
});
