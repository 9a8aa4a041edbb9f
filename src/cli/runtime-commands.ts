// `nodelet runtime ...`: read-only debugging views of the container runtime's
// state directory (like `crictl ps` / `crictl pods`). They never re-adopt or
// change anything; the daemon owns the containers.
import path from 'node:path';
import type { Command } from 'commander';
import type { GlobalsFn } from './globals.js';
import { inspectRuntimeState } from '../runtime/inspect.js';

const age = (iso: string) => {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
};

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

export function registerRuntimeCommands(program: Command, globals: GlobalsFn): void {
  const rt = program.command('runtime').description('inspect the container runtime state (read-only)');
  const stateDir = (o: { state?: string }) => o.state ?? path.join(globals().runRoot, 'runtime');
  rt.command('ps')
    .description('list containers (like crictl ps)')
    .option('-a, --all', 'include exited and created containers')
    .option('--json', 'print JSON')
    .option('--state <dir>', 'runtime state directory (default <run-root>/runtime)')
    .action((o: { all?: boolean; json?: boolean; state?: string }) => {
      const { containers } = inspectRuntimeState(stateDir(o));
      const list = containers.filter((c) => o.all || c.state === 'running');
      if (o.json) return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      process.stdout.write(table([
        ['CONTAINER', 'NAME', 'STATE', 'PID/EXIT', 'CREATED', 'POD', 'COMMAND'],
        ...list.map((c) => [c.id.slice(0, 12), c.name, c.reason && c.state === 'exited' ? `${c.state} (${c.reason})` : c.state, c.pid !== undefined ? String(c.pid) : c.exitCode !== undefined ? String(c.exitCode) : '', age(c.createdAt), c.sandboxId.slice(0, 12), c.command.slice(0, 40)]),
      ]));
    });
  rt.command('pods')
    .description('list pod sandboxes (like crictl pods)')
    .option('--json', 'print JSON')
    .option('--state <dir>', 'runtime state directory (default <run-root>/runtime)')
    .action((o: { json?: boolean; state?: string }) => {
      const { sandboxes } = inspectRuntimeState(stateDir(o));
      if (o.json) return void process.stdout.write(JSON.stringify(sandboxes, null, 2) + '\n');
      process.stdout.write(table([
        ['POD ID', 'NAME', 'NAMESPACE', 'STATE', 'IP', 'CREATED'],
        ...sandboxes.map((s) => [s.id.slice(0, 12), s.name, s.namespace, s.state, s.ips.join(','), age(s.createdAt)]),
      ]));
    });
}
