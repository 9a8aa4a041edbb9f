// Helpers for the network integration tests: a safety guard (the test must run
// in a private network namespace), unique names, and tiny TCP servers/clients
// run inside pinned namespaces with nsenter.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * Refuse to run against the machine's real network: CI runs this suite inside
 * `unshare --net`, where there is no default route (nothing can leave the machine).
 */
export function assertPrivateNetns(): void {
  const routes = execFileSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }) + execFileSync('ip', ['-6', 'route', 'show', 'default'], { encoding: 'utf8' });
  if (routes.trim() !== '') {
    throw new Error(
      `network integration tests must run in a private network namespace without a default route (found: ${routes.trim()}): ` +
        "unshare --net -- bash -c 'ip link set lo up && exec npx vitest run test/integration/network'",
    );
  }
}

export const rand = (n = 3) => randomBytes(n).toString('hex');

/** A unique 10.254.x.0/24 per test file (x from 1..250). */
export function testSubnet(): { subnet: string; prefix: string } {
  const x = 1 + (randomBytes(1)[0]! % 250);
  return { subnet: `10.254.${x}.0/24`, prefix: `10.254.${x}.` };
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function linksOnBridge(bridge: string): string[] {
  return sh('ip', ['-o', 'link', 'show', 'master', bridge])
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(':')[1]!.trim().split('@')[0]!);
}

export function linkExists(name: string): boolean {
  try {
    sh('ip', ['link', 'show', name]);
    return true;
  } catch {
    return false;
  }
}

export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir));
}

const BUILTIN = /^:(PREROUTING|INPUT|OUTPUT|POSTROUTING|FORWARD) /;
/** iptables-save rules and user chains (no table headers, built-in chains, comments or counters). */
export function iptablesRules(): string[] {
  return sh('iptables-save', [])
    .split('\n')
    .filter((l) => (l.startsWith('-A ') || l.startsWith(':')) && !BUILTIN.test(l))
    .map((l) => l.replace(/ \[\d+:\d+\]/g, ''));
}

const SERVER = `
const [port, name] = process.argv.slice(1);
const srv = require('net').createServer((s) => { s.end('hello from ' + name); });
srv.listen(Number(port), '0.0.0.0', () => console.log('ready'));
`;

/** A TCP server inside a network namespace; answers "hello from NAME". */
export async function startServer(netns: string, port: number, name: string): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', SERVER, String(port), name], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`server in ${netns} exited ${code}: ${err}`)));
  });
  return child;
}

export function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Connect from this process's netns; resolves with what the server sent. */
export function fetchFromHere(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = net.connect({ host, port });
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(new Error(`timeout connecting to ${host}:${port}`));
    });
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

const CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('net').connect({ host, port: Number(port) });
let d = ''; s.setTimeout(3000, () => { console.error('timeout'); process.exit(2); });
s.on('data', (x) => d += x); s.on('end', () => { process.stdout.write(d); process.exit(0); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/** Connect from inside a network namespace. */
export function fetchFromNetns(netns: string, host: string, port: number): string {
  return execFileSync('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', CLIENT, host, String(port)], { encoding: 'utf8', timeout: 10_000 });
}
