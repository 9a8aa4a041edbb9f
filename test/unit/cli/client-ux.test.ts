// Pieces of the client verbs that behave as kubectl's: errors of an unreachable daemon, the default
// container and its note, --since durations, log line prefixes, `nodelet run`'s notes (label selectors:
// selectors.test.ts).
import { describe, expect, it } from 'vitest';
import {
  checkSinceTime, daemonUnreachable, defaultContainer, hostPortLines, linePrefixer, parseGoDuration, runningNote, sinceSeconds, shellQuote,
} from '../../../src/cli/client-ux.js';
import type { Pod } from '../../../src/pod/api-types.js';

const err = (code: string) => Object.assign(new Error(`connect ${code} /s`), { code }) as NodeJS.ErrnoException;

describe('daemonUnreachable', () => {
  it('EACCES: the socket is root-only, try sudo with the same command line', () => {
    const e = daemonUnreachable('/run/nodelet/nodelet.sock', err('EACCES'), ['get', 'pods']);
    expect(e.message).toBe('permission denied on /run/nodelet/nodelet.sock: the nodelet API is root-only; try sudo nodelet get pods');
    expect(e.category).toBe('PermissionDenied');
    expect(e.details.kubectlStyle).toBe(true);
    expect(daemonUnreachable('/s', err('EPERM'), ['logs', 'my pod']).message).toMatch(/try sudo nodelet logs 'my pod'$/);
  });
  it('ENOENT / ECONNREFUSED: the daemon is not running, and how to start it', () => {
    for (const c of ['ENOENT', 'ECONNREFUSED']) {
      const e = daemonUnreachable('/x.sock', err(c), ['get', 'pods']);
      expect(e.message).toBe(`cannot connect to the nodelet daemon at /x.sock (${c}): it is not running; start it with "sudo nodelet daemon" (or "sudo systemctl start nodelet"), or point --socket or $NODELET_SOCKET at its socket`);
      expect(e.code).toBe('ERR_DAEMON_UNREACHABLE');
    }
  });
  it('shellQuote', () => expect(shellQuote(['exec', 'p', '--', 'sh', '-c', "echo 'hi'"])).toBe(`exec p -- sh -c 'echo '\\''hi'\\'''`));
});

const pod = (containers: string[], init: string[] = [], annotations?: Record<string, string>): Pod => ({
  metadata: { name: 'web', annotations },
  spec: { containers: containers.map((name) => ({ name, image: 'i' })), initContainers: init.map((name) => ({ name, image: 'i' })) },
});

describe('defaultContainer (kubectl FindOrDefaultContainerByName)', () => {
  it('one container: it, no note', () => expect(defaultContainer(pod(['a']))).toEqual({ name: 'a' }));
  it('several: the first, with the note naming all (init containers marked)', () => {
    expect(defaultContainer(pod(['a', 'b']))).toEqual({ name: 'a', note: 'Defaulted container "a" out of: a, b' });
    expect(defaultContainer(pod(['a'], ['setup']))).toEqual({ name: 'a', note: 'Defaulted container "a" out of: a, setup (init)' });
  });
  it('the kubectl.kubernetes.io/default-container annotation wins, quietly', () => {
    expect(defaultContainer(pod(['a', 'b'], [], { 'kubectl.kubernetes.io/default-container': 'b' }))).toEqual({ name: 'b' });
    expect(defaultContainer(pod(['a', 'b'], [], { 'kubectl.kubernetes.io/default-container': 'zz' })).name).toBe('a');
  });
});

describe('--since / --since-time', () => {
  it('Go durations', () => {
    expect(parseGoDuration('5s')).toBe(5000);
    expect(parseGoDuration('2m')).toBe(120_000);
    expect(parseGoDuration('1h30m')).toBe(5_400_000);
    expect(parseGoDuration('1.5h')).toBe(5_400_000);
    expect(parseGoDuration('300ms')).toBe(300);
    expect(() => parseGoDuration('5')).toThrow(/missing unit/);
    expect(() => parseGoDuration('5 minutes')).toThrow(/invalid duration/);
    expect(() => parseGoDuration('')).toThrow();
  });
  it('sinceSeconds rounds to whole seconds and must be > 0', () => {
    expect(sinceSeconds('5s')).toBe(5);
    expect(sinceSeconds('1h')).toBe(3600);
    expect(sinceSeconds('1500ms')).toBe(2);
    expect(() => sinceSeconds('0s')).toThrow(/greater than 0/);
    expect(() => sinceSeconds('-5s')).toThrow(/greater than 0/);
  });
  it('RFC 3339 only', () => {
    expect(checkSinceTime('2026-01-02T15:04:05Z')).toBe('2026-01-02T15:04:05Z');
    expect(checkSinceTime('2026-01-02T15:04:05.123+02:00')).toBe('2026-01-02T15:04:05.123+02:00');
    expect(() => checkSinceTime('yesterday')).toThrow(/RFC3339/);
    expect(() => checkSinceTime('2026-01-02')).toThrow(/RFC3339/);
  });
});

describe('linePrefixer', () => {
  it('prefixes whole lines across chunks; flushes a last partial line', () => {
    let out = '';
    const p = linePrefixer('[pod/web/c1] ', (s) => (out += s));
    p.push('one\ntw');
    p.push('o\n\nthr');
    p.end();
    expect(out).toBe('[pod/web/c1] one\n[pod/web/c1] two\n[pod/web/c1] \n[pod/web/c1] thr\n');
  });
  it('no prefix: passes chunks through as they come', () => {
    let out = '';
    const p = linePrefixer('', (s) => (out += s));
    p.push('a');
    p.end();
    expect(out).toBe('a');
  });
});

describe('nodelet run notes', () => {
  const web = (ports: NonNullable<Pod['spec']['containers'][0]['ports']>, hostNetwork = false): Pod => ({ metadata: { name: 'web' }, spec: { hostNetwork, containers: [{ name: 'c', image: 'i', ports }] } });
  it('the pod IP after Running', () => {
    expect(runningNote(web([]), { podIP: '10.244.0.5' })).toBe(', IP 10.244.0.5');
    expect(runningNote(web([], true), { hostIP: '192.168.1.5' })).toBe(', host network (IP 192.168.1.5)');
    expect(runningNote(web([]), {})).toBe('');
  });
  it('how to reach each hostPort', () => {
    expect(hostPortLines(web([{ containerPort: 80, hostPort: 8080 }, { containerPort: 9090 }]), { hostIP: '192.168.1.5' })).toEqual(['port 80 → 127.0.0.1:8080, 192.168.1.5:8080']);
    expect(hostPortLines(web([{ containerPort: 53, hostPort: 5353, protocol: 'UDP', name: 'dns' }]), {})).toEqual(['port 53/UDP (c/dns) → 127.0.0.1:5353']);
    expect(hostPortLines(web([{ containerPort: 80, hostPort: 8080, hostIP: '10.1.2.3' }]), { hostIP: '192.168.1.5' })).toEqual(['port 80 → 10.1.2.3:8080']);
  });
});
