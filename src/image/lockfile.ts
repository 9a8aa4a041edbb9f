// Cross-process lock files: O_EXCL create holding "<pid>\n"; a lock whose pid
// is gone is stale and taken over (rename-then-check so two takers cannot both
// win). Used by the content store (one download per blob) and the image store.
import { promises as fsp, constants as C } from 'node:fs';

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const t = await fsp.readFile(file, 'utf8');
    return Number.parseInt(t, 10);
  } catch {
    return undefined;
  }
}

/** Tries once to take the lock; returns false when another live process holds it. */
export async function tryLock(file: string): Promise<boolean> {
  try {
    const fh = await fsp.open(file, C.O_CREAT | C.O_EXCL | C.O_WRONLY, 0o600);
    try {
      await fh.writeFile(`${process.pid}\n`);
    } finally {
      await fh.close();
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const pid = await readPid(file);
  if (pid === undefined) {
    // being written right now, or vanished: check its age
    try {
      const st = await fsp.stat(file);
      if (Date.now() - st.mtimeMs < 2000) return false;
    } catch {
      return false;
    }
  } else if (pidAlive(pid)) return false;
  // stale: move it aside atomically, then make sure we moved the stale one
  const aside = `${file}.stale.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    await fsp.rename(file, aside);
  } catch {
    return false;
  }
  const moved = await readPid(aside);
  if (moved !== pid && moved !== undefined && pidAlive(moved)) {
    await fsp.link(aside, file).catch(() => undefined); // put a live lock back
    await fsp.unlink(aside).catch(() => undefined);
    return false;
  }
  await fsp.unlink(aside).catch(() => undefined);
  return tryLock(file);
}

export async function unlock(file: string): Promise<void> {
  await fsp.unlink(file).catch(() => undefined);
}

/** Waits for the lock (polling), runs fn, releases. */
export async function withLock<T>(file: string, fn: () => Promise<T>, pollMs = 20): Promise<T> {
  while (!(await tryLock(file))) await new Promise((r) => setTimeout(r, pollMs));
  try {
    return await fn();
  } finally {
    await unlock(file);
  }
}
