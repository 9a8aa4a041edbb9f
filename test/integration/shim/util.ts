// Shared helpers for the shim integration tests.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShimClient, type ShimState } from '../../../src/runtime/shim/index.js';
import type { ShimPlan } from '../../../src/runtime/shim/plan.js';
import { makeBusyboxRootfs } from '../../helpers/rootfs.js';
import { minimalShimPlan } from '../../helpers/shim-plan.js';

export interface Fixture {
  dir: string;
  rootfs: string;
  client: ShimClient;
  plan(overrides?: Partial<ShimPlan>): ShimPlan;
  cleanup(): Promise<void>;
}

let n = 0;
export async function makeFixture(): Promise<Fixture> {
  const r = await makeBusyboxRootfs();
  const client = new ShimClient();
  const started: ShimState[] = [];
  const orig = client.start.bind(client);
  client.start = async (p) => {
    const s = await orig(p);
    started.push(s);
    return s;
  };
  return {
    dir: r.dir,
    rootfs: r.rootfs,
    client,
    plan: (o = {}) => minimalShimPlan(r.rootfs, join(r.dir, `state-${n++}`), o),
    async cleanup() {
      for (const s of started) {
        for (const pid of [s.pid, s.shimPid]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await r.cleanup();
    },
  };
}

/** Run a plan to completion; returns the exit state and the CRI log. */
export async function runToExit(f: Fixture, overrides: Partial<ShimPlan>): Promise<{ state: ShimState; log: string; plan: ShimPlan }> {
  const plan = f.plan(overrides);
  await f.client.start(plan);
  const state = await f.client.waitExit(plan.stateDir);
  const log = await readFile(plan.logPath, 'utf8');
  return { state, log, plan };
}

/** The text a stream wrote, reassembled from CRI lines (F ends a line, P continues it). */
export function streamText(log: string, stream: 'stdout' | 'stderr'): string {
  let out = '';
  for (const line of log.split('\n')) {
    const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(line);
    if (!m || m[2] !== stream) continue;
    out += m[4] + (m[3] === 'F' ? '\n' : '');
  }
  return out;
}

/** Pids of live processes whose command line mentions `needle`. */
export async function processesMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      if (cmd.includes(needle) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
