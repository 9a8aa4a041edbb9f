// Identifiers of the runtime's records. The records themselves (sandbox.json,
// container.json, plan.json) are written with src/sys/atomic.ts and read with
// src/sys/proc.ts readJsonIfExists.

import { randomBytes } from 'node:crypto';

/** 64 hex characters, like containerd's IDs (shown as 12). */
export function newId(): string {
  return randomBytes(32).toString('hex');
}
