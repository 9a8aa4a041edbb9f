import type { Command } from 'commander';
import type { GlobalsFn } from './globals.js';

export function registerImageCommands(program: Command, globals: GlobalsFn): void {
  void program;
  void globals;
}
