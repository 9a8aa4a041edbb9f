// The test program behaves as the runtime tests expect: compiled here from
// images/testprog/testprog.c with the same flags as scripts/build-images, and
// run directly on the host (serve-* bind 127.0.0.1 in the CI's private netns).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../unit/archive/helpers.js';

let dir: string;
let bin: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await tempDir();
  bin = path.join(dir, 'testprog');
  execFileSync('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', bin, path.resolve('images/testprog/testprog.c')]);
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs testprog; `onLine` sees each stdout line as it arrives. */
function start(args: string[], opts: { onLine?: (line: string, child: ChildProcess) => void; stdio?: any[]; wrapper?: string[] } = {}) {
  const [cmd, ...pre] = opts.wrapper ?? [bin];
  const child = spawn(cmd!, [...pre, ...args], { stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
    pending += d;
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      opts.onLine?.(line, child);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<Result>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

const runTp = (args: string[]) => start(args).done;

function waitLine(args: string[], pattern: RegExp, wrapper?: string[]): Promise<{ match: RegExpMatchArray; child: ChildProcess; done: Promise<Result> }> {
  return new Promise((resolve, reject) => {
    const s = start(args, {
      wrapper,
      onLine: (line) => {
        const m = line.match(pattern);
        if (m) resolve({ match: m, child: s.child, done: s.done });
      },
    });
    s.done.then((r) => reject(new Error(`testprog ${args.join(' ')} exited before printing ${pattern}: ${JSON.stringify(r)}`)));
  });
}

async function httpGet(port: number, p: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, body: await res.text() };
}

describe('testprog', () => {
  it('exit CODE exits with that code; bad usage exits 2', async () => {
    expect((await runTp(['exit', '7'])).code).toBe(7);
    expect((await runTp(['exit', '0'])).code).toBe(0);
    const bad = await runTp(['no-such-command']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('usage: testprog');
    expect((await runTp([])).code).toBe(2);
  });

  it('sleep ends after its time, and on SIGTERM prints "got SIGTERM" and exits 0', async () => {
    const short = await runTp(['sleep', '0.05']);
    expect(short.code).toBe(0);
    expect(short.stdout).not.toContain('got SIGTERM');
    const t0 = Date.now();
    const { child, done } = await waitLine(['sleep', '60'], /^sleeping/);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('got SIGTERM');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('sleep --ignore-term survives SIGTERM', async () => {
    const { child, done } = await waitLine(['sleep', 'inf', '--ignore-term'], /^sleeping/);
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBe(null);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
  });

  it('serve-http answers /, /healthz and /readyz following the files', async () => {
    const healthy = path.join(dir, 'healthy');
    const ready = path.join(dir, 'ready');
    const { match, child, done } = await waitLine(['serve-http', '0', '--healthy-file', healthy, '--ready-file', ready], /^listening on port (\d+)/);
    const port = Number(match[1]);
    expect(await httpGet(port, '/')).toEqual({ status: 200, body: `hello from ${hostname()}\n` });
    expect((await httpGet(port, '/healthz')).status).toBe(500);
    expect((await httpGet(port, '/readyz')).status).toBe(500);
    await fs.writeFile(healthy, '');
    expect(await httpGet(port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await httpGet(port, '/readyz')).status).toBe(500);
    await fs.writeFile(ready, '');
    expect((await httpGet(port, '/readyz?x=1')).status).toBe(200);
    expect((await httpGet(port, '/missing')).status).toBe(404);
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('serve-http without files is always healthy and ready', async () => {
    const { match } = await waitLine(['serve-http', '0'], /^listening on port (\d+)/);
    expect((await httpGet(Number(match[1]), '/healthz')).status).toBe(200);
    expect((await httpGet(Number(match[1]), '/readyz')).status).toBe(200);
  });

  it('serve-http still answers when it cannot fork (pids limit): serves inline', async () => {
    const { match } = await waitLine(['serve-http', '0'], /^listening on port (\d+)/, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'prlimit', '--nproc=1', bin]);
    expect(await httpGet(Number(match[1]), '/')).toEqual({ status: 200, body: `hello from ${hostname()}\n` });
    expect((await httpGet(Number(match[1]), '/healthz')).status).toBe(200);
  });

  it('serve-tcp echoes what it receives', async () => {
    const { match } = await waitLine(['serve-tcp', '0'], /^listening on port (\d+)/);
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(match[1]), '127.0.0.1', () => s.end('ping 123'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(echoed).toBe('ping 123');
  });

  it('serve-http on a taken port fails with exit 1', async () => {
    const { match } = await waitLine(['serve-tcp', '0'], /^listening on port (\d+)/);
    const r = await runTp(['serve-http', match[1]!]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Address already in use');
  });

  it('alloc touches memory in 1 MB steps and then waits', async () => {
    const { child, done } = await waitLine(['alloc', '3'], /^done allocating/);
    const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
    expect(rssKb).toBeGreaterThan(3 * 1024);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stdout).toContain('allocated 1 MB\nallocated 2 MB\nallocated 3 MB\n');
    expect(r.code).toBe(0);
  });

  it('spin burns CPU until SIGTERM', async () => {
    const { child, done } = await waitLine(['spin'], /^spinning/);
    await new Promise((r) => setTimeout(r, 300));
    const stat = (await fs.readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    const utimeTicks = Number(stat[11]);
    expect(utimeTicks).toBeGreaterThan(5);
    child.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('forkbomb N creates N processes and reaps them', async () => {
    const r = await runTp(['forkbomb', '20']);
    expect(r.stdout).toBe('forked 20 of 20\n');
    expect(r.code).toBe(0);
  });

  it('forkbomb reports a failed fork with exit 3 when the pid limit is hit', async () => {
    // RLIMIT_NPROC applies to a non-root user: nobody with 1 process allowed cannot fork
    const r = await new Promise<Result>((resolve) => {
      const c = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'prlimit', '--nproc=1', bin, 'forkbomb', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    expect(r.stdout).toMatch(/^fork failed after 0 of 5: Resource temporarily unavailable/);
    expect(r.code).toBe(3);
  });

  it('world prints its view as key=value lines', async () => {
    const r = await runTp(['world']);
    expect(r.code).toBe(0);
    const kv = r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
    const get = (k: string) => kv.filter(([key]) => key === k).map(([, v]) => v);
    expect(get('uid')).toEqual(['0']);
    expect(get('hostname')).toEqual([hostname()]);
    expect(get('CapEff')[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(get('CapBnd')[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(get('NoNewPrivs')).toEqual(['0']);
    expect(get('cwd')).toEqual([process.cwd()]);
    expect(get('mount')).toContain(`/ ${execFileSync('findmnt', ['-no', 'FSTYPE', '/'], { encoding: 'utf8' }).trim()}`);
    expect(get('cgroup').length).toBeGreaterThan(0);
    expect(Number(get('pid')[0])).toBeGreaterThan(1);
    expect(get('oom_score_adj')).toEqual(['0']);
  });

  it('world reports rlimits as soft:hard', () => {
    const out = execFileSync('prlimit', ['--nofile=100:200', bin, 'world'], { encoding: 'utf8' });
    expect(out).toMatch(/^rlimit_nofile=100:200$/m);
    expect(out).toMatch(/^rlimit_nproc=\d+:\d+$/m);
  });

  it('echo-lines writes N lines to stdout or stderr', async () => {
    expect((await runTp(['echo-lines', '3'])).stdout).toBe('line 1\nline 2\nline 3\n');
    const e = await runTp(['echo-lines', '2', '--stderr']);
    expect([e.stdout, e.stderr]).toEqual(['', 'line 1\nline 2\n']);
  });

  it('write then cat round-trips; cat of a missing file exits 1', async () => {
    const f = path.join(dir, 'note');
    expect((await runTp(['write', f, 'some text'])).code).toBe(0);
    expect(await fs.readFile(f, 'utf8')).toBe('some text');
    expect((await runTp(['cat', f])).stdout).toBe('some text');
    const missing = await runTp(['cat', path.join(dir, 'missing')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No such file or directory');
    expect((await runTp(['write', path.join(dir, 'no/such/dir'), 'x'])).code).toBe(1);
  });

  it('fds lists inherited file descriptors', async () => {
    const fh = await fs.open(path.join(dir, 'fdfile'), 'w');
    try {
      const s = start(['fds'], { stdio: ['ignore', 'pipe', 'pipe', fh.fd] });
      const r = await s.done;
      expect(r.stdout).toContain(`fd=3 ${path.join(dir, 'fdfile')}`);
      expect(r.stdout).toMatch(/^fd=0 /m);
    } finally {
      await fh.close();
    }
  });
});
