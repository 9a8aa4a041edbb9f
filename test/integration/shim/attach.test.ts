// attach to a container's own process through the monitor's attach socket (native/attach.c):
// raw output as it is read (a prompt without a newline too), stdin kept open across sessions or
// closed by the first session (stdinOnce), the tty's size, the container's exit to every session.
import { afterEach, beforeAll, afterAll, describe, expect, test } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ShimExecSession, ShimState } from '../../../src/runtime/shim/index.js';
import { ATTACH_SOCKET } from '../../../src/runtime/shim/protocol.js';
import { makeFixture, sleep, streamText, type Fixture } from './util.js';

let f: Fixture;
const started: { pid: number; stateDir: string }[] = [];
beforeAll(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  for (const s of started.splice(0)) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await f.client.waitExit(s.stateDir).catch(() => undefined);
  }
});
afterAll(async () => {
  await f.cleanup();
});

async function start(argv: string[], o: { tty?: boolean; stdin?: boolean; stdinOnce?: boolean } = {}): Promise<{ state: ShimState; stateDir: string; logPath: string }> {
  const plan = f.plan({ argv, tty: o.tty ?? false, stdin: o.stdin ?? false, ...(o.stdinOnce ? { stdinOnce: true } : {}) });
  const state = await f.client.start(plan);
  started.push({ pid: state.pid, stateDir: plan.stateDir });
  return { state, stateDir: plan.stateDir, logPath: plan.logPath };
}

/** Collects a stream's text; until(re) resolves once it matches. */
function collect(r: Readable | null) {
  let text = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  r?.on('data', (b: Buffer) => {
    text += b.toString();
    for (const w of waiters.splice(0)) (w.re.test(text) ? w.resolve : () => waiters.push(w))();
  });
  return {
    get text() {
      return text;
    },
    until(re: RegExp, ms = 5000): Promise<void> {
      if (re.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(text)}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
  };
}

describe('shim attach', () => {
  test('two sessions see the output from now on, stdin stays open across sessions; exit reaches every session', async () => {
    // reads lines and echoes them to stdout and stderr until "quit"
    const c = await start(['sh', '-c', 'echo before; while read l; do [ "$l" = quit ] && exit 3; echo "out:$l"; echo "err:$l" >&2; done'], { stdin: true });
    await sleep(100);
    const a = (await f.client.attach(c.stateDir, c.state.pid, { stdin: true })) as ShimExecSession;
    const aOut = collect(a.stdout);
    const aErr = collect(a.stderr);
    a.stdin!.write('one\n');
    await aOut.until(/out:one\n/);
    await aErr.until(/err:one\n/);
    expect(aOut.text).not.toContain('before'); // output from the attach on
    // a second session, without stdin, sees the first one's input's output
    const b = await f.client.attach(c.stateDir, c.state.pid, {});
    const bOut = collect(b.stdout);
    b.stderr!.resume();
    expect(b.stdin).toBeNull();
    a.stdin!.write('two\n');
    await bOut.until(/out:two\n/);
    // the first session detaches with stdin EOF: stdin stays open (no stdinOnce)
    a.stdin!.end();
    a.kill();
    expect(await a.exit).toEqual({ exitCode: 0 }); // detached
    const c2 = await f.client.attach(c.stateDir, c.state.pid, { stdin: true });
    c2.stdout.resume();
    c2.stderr!.resume();
    c2.stdin!.write('three\n');
    await bOut.until(/out:three\n/);
    c2.stdin!.write('quit\n');
    expect(await b.exit).toEqual({ exitCode: 3 });
    expect(await c2.exit).toEqual({ exitCode: 3 });
    const log = readFileSync(c.logPath, 'utf8');
    expect(streamText(log, 'stdout')).toBe('before\nout:one\nout:two\nout:three\n');
    expect(existsSync(join(c.stateDir, ATTACH_SOCKET))).toBe(false);
  });

  test('stdinOnce: the first session with stdin that ends closes the container stdin (it sees EOF)', async () => {
    const c = await start(['sh', '-c', 'cat; echo "eof seen"; sleep 1000'], { stdin: true, stdinOnce: true });
    const a = await f.client.attach(c.stateDir, c.state.pid, { stdin: true });
    const out = collect(a.stdout);
    a.stderr!.resume();
    a.stdin!.write('hello\n');
    await out.until(/hello\n/);
    a.kill(); // gone without an EOF of its own
    const b = await f.client.attach(c.stateDir, c.state.pid, {});
    const bOut = collect(b.stdout);
    b.stderr!.resume();
    await sleep(50);
    // the EOF came with the first session's end; the line can predate b's attach, so read the log
    for (let i = 0; i < 100 && !streamText(readFileSync(c.logPath, 'utf8'), 'stdout').includes('eof seen'); i++) await sleep(20);
    expect(streamText(readFileSync(c.logPath, 'utf8'), 'stdout')).toBe('hello\neof seen\n');
    b.kill();
    expect(bOut.text).not.toContain('hello');
  });

  test('tty: a prompt without a newline arrives at once, input is echoed by the terminal, resize reaches the process', async () => {
    const c = await start(['sh', '-c', 'while :; do printf "prompt> "; read l || exit 9; [ "$l" = size ] && stty size; [ "$l" = bye ] && exit 0; done'], { tty: true, stdin: true });
    const a = await f.client.attach(c.stateDir, c.state.pid, { tty: true, stdin: true });
    expect(a.stderr).toBeNull(); // one terminal
    const out = collect(a.stdout);
    a.resize(100, 30);
    // the terminal echoes it, then a fresh prompt; the shell's first prompt may predate the attach, or come after
    // the echo when the newline beats it (then two prompts follow the echo)
    a.stdin!.write('\n');
    await out.until(/\r\n(prompt> )+$/);
    a.stdin!.write('size\n');
    await out.until(/size\r\n30 100\r\n/);
    a.stdin!.write('bye\n');
    expect(await a.exit).toEqual({ exitCode: 0 });
  });

  test('a container without stdin: attach gets output; a stopped container cannot be attached to', async () => {
    const c = await start(['sh', '-c', 'i=0; while [ $i -lt 1000 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done']);
    const a = await f.client.attach(c.stateDir, c.state.pid, {});
    const out = collect(a.stdout);
    a.stderr!.resume();
    await out.until(/tick \d+\ntick \d+\n/);
    process.kill(c.state.pid, 'SIGKILL');
    expect(await a.exit).toEqual({ exitCode: 137, signal: 'SIGKILL' });
    await f.client.waitExit(c.stateDir);
    const e = await f.client.attach(c.stateDir, c.state.pid, {}).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_CONTAINER_NOT_RUNNING' });
  });
});
