// `nodelet exec` end to end: a real daemon, the CLI (the nodelet bundle) over the
// streaming exec API (WebSocket, v5.channel.k8s.io) into a busybox container.
// -i streams stdin live (a line goes in, its echo comes back before the next),
// exit codes propagate, -it under a real pseudo-terminal (util-linux script)
// gives the command a terminal of our size, and a client killed mid-exec
// leaves nothing running in the container.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import { BUSYBOX, CLI, makeEnv, run, waitUntil, type Env } from './helpers.js';
import { api, cstatus, startDaemon, stopAndClean, waitPod, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
const children: ChildProcessWithoutNullStreams[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

async function startPod(name: string): Promise<void> {
  env = makeEnv();
  daemon = await startDaemon(env);
  const body = `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "exec sleep 100000"] }`;
  const r = await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml');
  expect(r.status).toBe(201);
  await waitPod(daemon.socket, name, (p) => cstatus(p, 'c')?.state?.running);
}

/** A CLI child with its stdin as a pipe we write to; output collected. */
function spawnCli(file: string, args: string[]) {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, out: () => out, err: () => err, done };
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Host pids whose command line is exactly `argv` (processes inside the container are host processes too). */
function pidsRunning(argv: string[]): number[] {
  const want = argv.join('\0');
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0$/, '') === want) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

describe('nodelet exec (streaming)', () => {
  it('-i streams stdin live into cat and sh; EOF ends it; exit codes propagate', async () => {
    await startPod('ex1');
    const base = [...env!.globals, 'exec', '--socket', daemon!.socket, 'ex1'];

    // cat: each line comes back before the next one is written (no read-all-first)
    const cat = spawnCli(process.execPath, [CLI, ...base, '-i', '--', 'cat']);
    for (const line of ['alpha', 'beta', 'gamma']) {
      cat.child.stdin.write(line + '\n');
      await waitUntil(() => cat.out().endsWith(line + '\n'), 20_000, `echo of ${line}; stdout ${JSON.stringify(cat.out())} stderr ${cat.err()}`);
    }
    cat.child.stdin.end();
    expect(await cat.done).toEqual({ code: 0, signal: null });
    expect(cat.out()).toBe('alpha\nbeta\ngamma\n');

    // sh reading its script from stdin, stderr kept apart, its exit code ours
    const shell = spawnCli(process.execPath, [CLI, ...base, '-i', '--', 'sh']);
    shell.child.stdin.write('echo one\n');
    await waitUntil(() => shell.out() === 'one\n', 20_000, 'sh output');
    shell.child.stdin.end('echo two; echo oops >&2; exit 7\n');
    expect((await shell.done).code, shell.err()).toBe(7);
    expect(shell.out()).toBe('one\ntwo\n');
    expect(shell.err()).toBe('oops\n');

    // the command ending first ends the client even though our stdin stays open
    const early = spawnCli(process.execPath, [CLI, ...base, '-i', '--', 'sh', '-c', 'read x; echo got $x; exit 2']);
    early.child.stdin.write('y\n');
    expect((await early.done).code).toBe(2);
    expect(early.out()).toBe('got y\n');

    // without -i stdin is not read: cat sees EOF at once
    const noI = spawnCli(process.execPath, [CLI, ...base, '--', 'sh', '-c', 'cat; echo done; exit 3']);
    noI.child.stdin.write('ignored\n');
    expect((await noI.done).code).toBe(3);
    expect(noI.out()).toBe('done\n');

    // errors before the upgrade are API errors
    const missing = await run([...env!.globals, 'exec', '--socket', daemon!.socket, 'nope', '--', 'true']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Error from server \(NotFound\): pods "nope" not found/);
  });

  it('-it under a real terminal: the command gets a pts of our size; -t without a terminal warns', async () => {
    await startPod('ex2');
    const cli = [process.execPath, CLI, ...env!.globals, 'exec', '--socket', daemon!.socket, 'ex2', '-it', '--', 'sh', '-c', 'tty; stty size; exit 4'];
    // script(1) gives the CLI a pseudo-terminal; stty sets its size first; -e returns the CLI's exit code
    // then our terminal's modes after the CLI: restored from raw
    const t = spawnCli('script', ['-qfec', `stty cols 97 rows 31; ${cli.map(sh).join(' ')}; rc=$?; echo; echo MODES $(stty -a); exit $rc`, '/dev/null']);
    const r = await t.done;
    // the remote terminal's \r\n once: our raw mode does no output processing of its own
    expect(t.out()).toMatch(/^\/dev\/pts\/\d+\r\n31 97\r\n/);
    expect(r.code).toBe(4);
    const modes = /MODES (.*)/.exec(t.out())?.[1] ?? '';
    for (const m of ['icanon', 'echo', 'isig', 'opost', 'icrnl']) expect(modes.split(/[\s;]+/), `${m} in ${modes}`).toContain(m);

    const noTty = await run([...env!.globals, 'exec', '--socket', daemon!.socket, 'ex2', '-it', '--', 'sh', '-c', 'tty || true']);
    expect(noTty.stderr).toContain('Unable to use a TTY - input is not a terminal or the right kind of file');
    expect(noTty.stdout).toBe('not a tty\n');
    expect(noTty.code).toBe(0);
  });

  it('-it: typed input reaches the remote shell and Ctrl-C interrupts the remote command, not the client', async () => {
    await startPod('ex3');
    const cli = [process.execPath, CLI, ...env!.globals, 'exec', '--socket', daemon!.socket, 'ex3', '-it', '--', 'sh'];
    const t = spawnCli('script', ['-qfec', cli.map(sh).join(' '), '/dev/null']);
    t.child.stdin.write('echo marker-$((6*7))\r');
    await waitUntil(() => t.out().includes('marker-42'), 20_000, `shell output: ${JSON.stringify(t.out())}`);
    t.child.stdin.write('sleep 918273\r');
    await waitUntil(() => pidsRunning(['sleep', '918273']).length > 0, 20_000, 'the remote sleep');
    t.child.stdin.write('\x03'); // Ctrl-C: the remote terminal interrupts sleep; the shell and the client go on
    await waitUntil(() => pidsRunning(['sleep', '918273']).length === 0, 20_000, 'sleep interrupted');
    t.child.stdin.write('echo back-$((1+1))\r');
    await waitUntil(() => t.out().includes('back-2'), 20_000, `shell output after Ctrl-C: ${JSON.stringify(t.out())}`);
    t.child.stdin.write('exit 9\r');
    expect((await t.done).code).toBe(9);
  });

  it('a client killed mid-exec leaves no process in the container', async () => {
    await startPod('ex4');
    const c = spawnCli(process.execPath, [CLI, ...env!.globals, 'exec', '--socket', daemon!.socket, 'ex4', '-i', '--', 'sh', '-c', 'echo ready; exec sleep 918274']);
    await waitUntil(() => c.out() === 'ready\n', 20_000, `exec started: ${c.err()}`);
    await waitUntil(() => pidsRunning(['sleep', '918274']).length === 1, 20_000, 'remote sleep running');
    c.child.kill('SIGKILL');
    await c.done;
    await waitUntil(() => pidsRunning(['sleep', '918274']).length === 0, 20_000, 'remote sleep gone after the client died');
    // our stdout closed under a never-ending command: the client ends (as by SIGPIPE), so does the command
    const cli = [process.execPath, CLI, ...env!.globals, 'exec', '--socket', daemon!.socket, 'ex4', '--', 'sh', '-c', 'exec yes 918275'];
    const piped = spawnCli('bash', ['-c', `${cli.map(sh).join(' ')} | head -n 2; echo "rc=\${PIPESTATUS[0]}"`]);
    expect((await piped.done).code).toBe(0);
    expect(piped.out()).toBe('918275\n918275\nrc=141\n');
    await waitUntil(() => pidsRunning(['yes', '918275']).length === 0, 20_000, 'remote yes gone after our stdout closed');

    // the container itself is fine and still exec-able
    const after = await run([...env!.globals, 'exec', '--socket', daemon!.socket, 'ex4', '--', 'echo', 'still here']);
    expect(after.stdout).toBe('still here\n');
    expect(after.code).toBe(0);
    const ps = await run([...env!.globals, 'exec', '--socket', daemon!.socket, 'ex4', '--', 'ps']);
    expect(ps.stdout).toContain('sleep 100000');
    expect(ps.stdout).not.toContain('sleep 918274');
  });
});
