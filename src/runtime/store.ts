// Small state-file helpers: atomic JSON writes (temp + fsync + rename) and
// tolerant reads, used for sandbox.json / container.json.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** 64 hex characters, like containerd's IDs (shown as 12). */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function writeFileAtomic(file: string, data: string | Buffer): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    if (typeof data === "string") fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 1) + '\n');
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
