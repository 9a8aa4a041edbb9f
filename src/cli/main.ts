#!/usr/bin/env node
// nodelet CLI entry point. Each subsystem registers its own verbs through a
// small `register*Commands(program, globals)` function in src/cli/.
import { Command } from 'commander';
import { describeError, isNodeletError, NodeletError } from '../errors.js';
import { registerImageCommands } from './image-commands.js';
import { registerRuntimeCommands } from './runtime-commands.js';
import { registerPodCommands } from './pod-commands.js';
import { globalOptions } from './globals.js';
import { NODELET_VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('nodelet')
    .description('A kubelet-like node agent: runs Kubernetes Pod manifests on this Linux host')
    .version(NODELET_VERSION)
    .option('--root <dir>', 'persistent state directory (images, layers, pods)', '/var/lib/nodelet')
    .option('--run-root <dir>', 'runtime state directory (mounts, namespaces, sockets)', '/run/nodelet')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--max-layer-size <size>', 'refuse a layer whose uncompressed size exceeds this (e.g. 20Gi; default 64Gi, 0 = no bound)')
    .option('--image-min-free <size>', 'free space a layer unpack must leave on the store\'s filesystem (default 5% of it, at most 1Gi; 0 = none)')
    .showHelpAfterError();
  // `run` (without --detach) and `daemon` create namespaces, mounts and cgroups: as another user they
  // would retry EPERM forever. Refuse before anything is touched.
  program.hook('preAction', (_program, cmd) => {
    const verb = cmd.name();
    if ((verb === 'run' && !cmd.opts().detach) || verb === 'daemon') requireRoot(verb, process.argv.slice(2));
  });
  registerImageCommands(program, () => globalOptions(program));
  registerRuntimeCommands(program, () => globalOptions(program));
  registerPodCommands(program, () => globalOptions(program));
  return program;
}

/** Throws ERR_NOT_ROOT unless the effective uid is 0; `argv` (the command line after "nodelet") goes into the hint. */
export function requireRoot(verb: string, argv: string[] = [verb], euid = process.geteuid?.() ?? 0): void {
  if (euid === 0) return;
  const again = ['sudo', 'nodelet', ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  throw new NodeletError('PermissionDenied', 'ERR_NOT_ROOT', `nodelet ${verb}: must run as root (it creates namespaces, mounts and cgroups): try ${again}`, { details: { euid } });
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (isNodeletError(e) && e.details.kubectlStyle) {
      // a client verb's error that says what to do, printed as kubectl prints its errors
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
      return;
    }
    const code = isNodeletError(e) ? ` [${e.code}]` : '';
    const text = describeError(e);
    process.stderr.write(`${text.startsWith('nodelet ') ? '' : 'nodelet: '}${text}${code}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  }
}

// not a top-level await: the bundle (scripts/bundle.mjs) is CommonJS
void main();
