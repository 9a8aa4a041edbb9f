// src/sys/atomic.ts: temp file in the same directory, write, fsync, rename, fsync the directory.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { isAtomicTempName, writeFileAtomic, writeFileAtomicAsync, writeJsonAtomic, writeJsonAtomicAsync } from '../../../src/sys/atomic.js';
import { isNodeletError } from '../../../src/errors.js';

const dirs: string[] = [];
function tmp(): string {
  const d = `/dev/shm/nodelet-test-atomic-${randomBytes(6).toString('hex')}`;
  fs.mkdirSync(d);
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const mode = (f: string) => fs.statSync(f).mode & 0o7777;

describe('writeFileAtomic', () => {
  it('replaces the content whole and leaves only the final name', async () => {
    const d = tmp();
    const f = join(d, 'r.txt');
    writeFileAtomic(f, 'one');
    writeFileAtomic(f, Buffer.from('two'));
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    await writeFileAtomicAsync(f, 'three');
    expect(fs.readFileSync(f, 'utf8')).toBe('three');
    expect(fs.readdirSync(d)).toEqual(['r.txt']);
  });

  it('goes through a temp file in the same directory, never written under the final name', async () => {
    const d = tmp();
    const f = join(d, 'state.json');
    fs.writeFileSync(f, 'old');
    const seen: string[] = [];
    const w = fs.watch(d, (_ev, name) => name && seen.push(String(name)));
    try {
      writeFileAtomic(f, 'new');
      await writeFileAtomicAsync(f, 'newer');
      await new Promise((r) => setTimeout(r, 100)); // inotify events arrive asynchronously
    } finally {
      w.close();
    }
    const temps = [...new Set(seen.filter((n) => n !== 'state.json'))];
    expect(temps.length).toBeGreaterThanOrEqual(2); // one temp per write, in this directory
    for (const t of temps) expect(isAtomicTempName(t)).toBe(true);
    expect(temps.every((t) => t.startsWith('.state.json.'))).toBe(true);
    expect(fs.readdirSync(d)).toEqual(['state.json']);
  });

  it('honours the mode exactly, whatever the umask', async () => {
    const d = tmp();
    const old = process.umask(0o077);
    try {
      writeFileAtomic(join(d, 'a'), 'x', { mode: 0o644 });
      await writeFileAtomicAsync(join(d, 'b'), 'x', { mode: 0o640 });
      writeFileAtomic(join(d, 'c'), 'x');
      writeJsonAtomic(join(d, 'd'), {}, { mode: 0o600 });
    } finally {
      process.umask(old);
    }
    expect(mode(join(d, 'a'))).toBe(0o644);
    expect(mode(join(d, 'b'))).toBe(0o640);
    expect(mode(join(d, 'c'))).toBe(0o644); // the default
    expect(mode(join(d, 'd'))).toBe(0o600);
    // replacing a file gives the new file's mode
    fs.chmodSync(join(d, 'a'), 0o666);
    writeFileAtomic(join(d, 'a'), 'y', { mode: 0o600 });
    expect(mode(join(d, 'a'))).toBe(0o600);
  });

  it('exclusive create fails on an existing file and leaves it (and nothing else) there', async () => {
    const d = tmp();
    const f = join(d, 'once');
    writeFileAtomic(f, 'first', { exclusive: true });
    expect(fs.readFileSync(f, 'utf8')).toBe('first');
    let err: unknown;
    try {
      writeFileAtomic(f, 'second', { exclusive: true });
    } catch (e) {
      err = e;
    }
    expect(isNodeletError(err, 'ERR_FILE_EXISTS')).toBe(true);
    const aerr = await writeFileAtomicAsync(f, 'third', { exclusive: true }).catch((e: unknown) => e);
    expect(isNodeletError(aerr, 'ERR_FILE_EXISTS')).toBe(true);
    expect(fs.readFileSync(f, 'utf8')).toBe('first');
    expect(fs.readdirSync(d)).toEqual(['once']);
    await writeFileAtomicAsync(join(d, 'two'), 'x', { exclusive: true, mode: 0o600 });
    expect(mode(join(d, 'two'))).toBe(0o600);
  });

  it('a failed rename leaves the final name untouched and removes the temp file', () => {
    const d = tmp();
    const f = join(d, 'busy');
    fs.mkdirSync(f);
    fs.writeFileSync(join(f, 'inside'), 'x'); // rename(2) over a non-empty directory fails
    expect(() => writeFileAtomic(f, 'data')).toThrow();
    expect(fs.readdirSync(d)).toEqual(['busy']);
    expect(() => writeFileAtomic(join(d, 'missing', 'x'), 'data')).toThrow(/ENOENT/);
  });

  it('JSON variant: indent 1 by default, a trailing newline, round-trips', async () => {
    const d = tmp();
    writeJsonAtomic(join(d, 'a.json'), { a: [1] });
    expect(fs.readFileSync(join(d, 'a.json'), 'utf8')).toBe('{\n "a": [\n  1\n ]\n}\n');
    await writeJsonAtomicAsync(join(d, 'b.json'), { b: 2 }, { indent: 0 });
    expect(fs.readFileSync(join(d, 'b.json'), 'utf8')).toBe('{"b":2}\n');
  });

  it('a reader never sees a partial file, even when the writer is killed mid-write (crash)', async () => {
    const d = tmp();
    const f = join(d, 'big');
    const size = 8 << 20;
    const child = spawn(process.execPath, [resolve('node_modules/vite-node/vite-node.mjs'), resolve('test/unit/sys/atomic-child.ts'), f, String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((res, rej) => {
        createInterface({ input: child.stdout! }).once('line', () => res());
        child.once('exit', (c) => rej(new Error(`writer exited ${c}`)));
      });
      // read while it rewrites: each read is one whole version
      const end = Date.now() + 1500;
      let reads = 0;
      const versions = new Set<string>();
      while (Date.now() < end) {
        const b = fs.readFileSync(f);
        expect(b.length).toBe(size);
        const c = String.fromCharCode(b[0]!);
        expect(b.indexOf(c === 'a' ? 'b' : 'a')).toBe(-1);
        versions.add(c);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
      expect(reads).toBeGreaterThan(5);
      expect(versions.size).toBe(2); // it really was rewritten while we read
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
    }
    // after the crash: the final name holds one complete version; at most a temp file is left beside it
    const b = fs.readFileSync(f);
    expect(b.length).toBe(size);
    expect(b.indexOf(b[0] === 0x61 ? 'b' : 'a')).toBe(-1);
    const others = fs.readdirSync(d).filter((n) => n !== 'big');
    expect(others.length).toBeLessThanOrEqual(1);
    for (const n of others) expect(isAtomicTempName(n)).toBe(true);
  }, 60_000);
});
