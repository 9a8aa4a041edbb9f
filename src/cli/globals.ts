import type { Command } from 'commander';
import path from 'node:path';
import { configureLogging, type LogLevel } from '../log.js';

export interface GlobalOptions {
  /** Persistent state: images, content store, snapshots, pod records. */
  root: string;
  /** Runtime state: mounts, pinned namespaces, shim state, sockets. */
  runRoot: string;
  logLevel: LogLevel;
}

export type GlobalsFn = () => GlobalOptions;

export function globalOptions(program: Command): GlobalOptions {
  const o = program.opts<{ root: string; runRoot: string; logLevel: LogLevel }>();
  configureLogging({ level: o.logLevel });
  return { root: path.resolve(o.root), runRoot: path.resolve(o.runRoot), logLevel: o.logLevel };
}
