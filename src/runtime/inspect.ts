// Read-only view of a runtime's state directory, for `nodelet runtime ps`
// and debugging: no re-adoption, no side effects (NodeletRuntime.open does that).

import fs from 'node:fs';
import path from 'node:path';
import { processRunning, readJsonIfExists } from '../sys/proc.js';

/** Inspection shows what it can: a missing or unreadable record is skipped. */
const readJson = <T>(file: string): T | undefined => readJsonIfExists<T>(file, { ignoreInvalid: true });

export interface InspectedContainer {
  id: string;
  sandboxId: string;
  name: string;
  state: 'created' | 'running' | 'exited' | 'unknown';
  pid?: number;
  exitCode?: number;
  reason?: string;
  createdAt: string;
  command: string;
}

export interface InspectedSandbox {
  id: string;
  name: string;
  namespace: string;
  state: string;
  ips: string[];
  createdAt: string;
}

interface RawContainer {
  id: string; sandboxId: string; createdAt: string; started: boolean; pid?: number; stateDir: string;
  config: { name: string; argv: string[] };
  final?: { exitCode?: number; reason?: string };
}

function dirs(d: string): string[] {
  try { return fs.readdirSync(d).filter((n) => /^[0-9a-f]{64}$/.test(n)); } catch { return []; }
}

function alive(pid: number | undefined): boolean {
  return !!pid && processRunning(pid);
}

export function inspectRuntimeState(runRoot: string): { sandboxes: InspectedSandbox[]; containers: InspectedContainer[] } {
  const sandboxes: InspectedSandbox[] = [];
  for (const id of dirs(path.join(runRoot, 'sandboxes'))) {
    const sb = readJson<{ id: string; config: { name: string; namespace: string }; state: string; ips: string[]; createdAt: string }>(path.join(runRoot, 'sandboxes', id, 'sandbox.json'));
    if (sb) sandboxes.push({ id, name: sb.config.name, namespace: sb.config.namespace, state: sb.state, ips: sb.ips, createdAt: sb.createdAt });
  }
  const containers: InspectedContainer[] = [];
  for (const id of dirs(path.join(runRoot, 'containers'))) {
    const c = readJson<RawContainer>(path.join(runRoot, 'containers', id, 'container.json'));
    if (!c) continue;
    const exit = readJson<{ exitCode?: number; signal?: string }>(path.join(c.stateDir, 'exit.json'));
    let state: InspectedContainer['state'] = 'created';
    let exitCode = c.final?.exitCode;
    if (c.final) state = 'exited';
    else if (exit) { state = 'exited'; exitCode = exit.exitCode; }
    else if (c.started) state = alive(c.pid) ? 'running' : 'unknown';
    containers.push({
      id, sandboxId: c.sandboxId, name: c.config.name, state, ...(state === 'running' ? { pid: c.pid } : {}),
      ...(exitCode !== undefined ? { exitCode } : {}), ...(c.final?.reason ? { reason: c.final.reason } : {}),
      createdAt: c.createdAt, command: c.config.argv.join(' '),
    });
  }
  return { sandboxes, containers };
}
