#!/usr/bin/env node
// nodelet CLI entry point. Each subsystem registers its own verbs through a
// small `register*Commands(program, globals)` function in src/cli/.
import { Command } from 'commander';
import { describeError, isNodeletError } from '../errors.js';
import { registerImageCommands } from './image-commands.js';
import { registerRuntimeCommands } from './runtime-commands.js';
import { registerPodCommands } from './pod-commands.js';
import { globalOptions } from './globals.js';

export function buildProgram(): Command {
  const program = new Command('nodelet')
    .description('A kubelet-like node agent: runs Kubernetes Pod manifests on this Linux host')
    .version('0.1.0')
    .option('--root <dir>', 'persistent state directory (images, layers, pods)', '/var/lib/nodelet')
    .option('--run-root <dir>', 'runtime state directory (mounts, namespaces, sockets)', '/run/nodelet')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .showHelpAfterError();
  registerImageCommands(program, () => globalOptions(program));
  registerRuntimeCommands(program, () => globalOptions(program));
  registerPodCommands(program, () => globalOptions(program));
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    const code = isNodeletError(e) ? ` [${e.code}]` : '';
    process.stderr.write(`nodelet: ${describeError(e)}${code}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  }
}

// not a top-level await: the bundle (scripts/bundle.mjs) is CommonJS
void main();
