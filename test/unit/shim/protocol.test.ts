// The wire format is defined once (protocol.ts); native/protocol.h is generated from it.
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { decodeRecords, encodeFrame, encodeRecords, FRAME_HEADER_BYTES, FRAMES, LIMITS, renderProtocolHeader, TAGS } from '../../../src/runtime/shim/protocol.js';
import { encodeExec, encodePlan } from '../../../src/runtime/shim/encode.js';
import { minimalShimPlan, DEFAULT_CAPS } from '../../helpers/shim-plan.js';
import { isNodeletError } from '../../../src/errors.js';

describe('shim protocol', () => {
  test('native/protocol.h is exactly what protocol.ts generates (no drift)', () => {
    const header = readFileSync(new URL('../../../native/protocol.h', import.meta.url), 'utf8');
    expect(header).toBe(renderProtocolHeader());
  });

  test('tags are unique; plan tags < 64 <= status tags', () => {
    const nums = Object.values(TAGS).map(([n]) => n);
    expect(new Set(nums).size).toBe(nums.length);
    for (const [name, [n]] of Object.entries(TAGS)) expect(name.startsWith('ST_')).toBe(n >= 64);
  });

  test('records round-trip, including empty fields and UTF-8', () => {
    const buf = encodeRecords([
      ['MOUNT', ['proc', '/proc', 'proc', 14, '', 'dir']],
      ['ENV', ['GREETING=héllo wörld']],
      ['ARGV', ['']],
    ]);
    const { records, rest } = decodeRecords(buf);
    expect(rest.length).toBe(0);
    expect(records).toEqual([
      { tag: TAGS.MOUNT[0], fields: ['proc', '/proc', 'proc', '14', '', 'dir'] },
      { tag: TAGS.ENV[0], fields: ['GREETING=héllo wörld'] },
      { tag: TAGS.ARGV[0], fields: [''] },
    ]);
    // an incomplete tail is kept for the next chunk
    const partial = decodeRecords(buf.subarray(0, buf.length - 3));
    expect(partial.records).toHaveLength(2);
    expect(partial.rest.length).toBeGreaterThan(0);
  });

  test('encoder rejects NUL bytes, wrong arity and oversize messages', () => {
    expect(() => encodeRecords([['ENV', ['A=\0']]])).toThrow(/NUL/);
    expect(() => encodeRecords([['MOUNT', ['a']]])).toThrow(/needs 6 fields/);
    expect(() => encodeRecords([['ENV', ['x'.repeat(LIMITS.FIELD_BYTES + 1)]]])).toThrow(/bytes/);
    const many = Array.from({ length: 20 }, () => ['ENV', ['x'.repeat(60_000)]] as ['ENV', string[]]);
    expect(() => encodeRecords(many)).toThrow(/max 1048576/);
  });
});

describe('plan encoding', () => {
  const plan = minimalShimPlan('/rootfs', '/state', {
    namespaces: [{ type: 'mnt' }, { type: 'pid' }, { type: 'net', path: '/run/netns/x' }],
    rlimits: [{ resource: 7, soft: 1024, hard: Infinity }],
    oomScoreAdj: -997,
  });

  test('joins come before creates; every field is carried', () => {
    const { records } = decodeRecords(encodePlan(plan));
    const ns = records.filter((r) => r.tag === TAGS.NAMESPACE[0]).map((r) => r.fields);
    expect(ns).toEqual([['net', '/run/netns/x'], ['mnt', ''], ['pid', '']]);
    const get = (t: keyof typeof TAGS) => records.filter((r) => r.tag === TAGS[t][0]).map((r) => r.fields);
    expect(get('RLIMIT')).toEqual([['7', '1024', 'unlimited']]);
    expect(get('OOM_SCORE_ADJ')).toEqual([['-997']]);
    expect(get('ARGV')).toEqual([['/bin/true']]);
    expect(get('CAPS')).toEqual([[DEFAULT_CAPS.bounding, DEFAULT_CAPS.effective, DEFAULT_CAPS.permitted, DEFAULT_CAPS.inheritable, DEFAULT_CAPS.ambient]]);
    expect(get('MOUNT')).toHaveLength(plan.mounts.length);
    expect(get('VERSION')).toEqual([['1']]);
  });

  test.each([
    [{ cwd: 'tmp' }, 'cwd'],
    [{ argv: [] }, 'argv'],
    [{ containerId: '../x' }, 'containerId'],
    [{ rootfs: 'relative' }, 'rootfs'],
    [{ namespaces: [{ type: 'pid' as const }] }, 'namespaces'],
    [{ uid: -1 }, 'uid'],
    [{ capabilities: { ...DEFAULT_CAPS, effective: 'all' } }, 'capabilities.effective'],
    [{ mounts: [{ source: 'x', target: 'rel', fstype: 'bind', flags: 0 }] }, 'mounts[0].target'],
  ])('invalid plan %j names the field', (o, field) => {
    try {
      encodePlan({ ...plan, ...o });
      expect.unreachable();
    } catch (e) {
      expect(isNodeletError(e, 'ERR_SHIM_PLAN_INVALID')).toBe(true);
      expect((e as Error).message).toContain(field);
    }
  });

  test('exec requests carry the pid and identity', () => {
    const buf = encodeExec({ pid: 42, cgroupProcsFiles: ['/sys/fs/cgroup/x/cgroup.procs'], argv: ['ls'], env: [], cwd: '/', uid: 1, gid: 2, additionalGids: [3], capabilities: DEFAULT_CAPS, noNewPrivs: true });
    const { records } = decodeRecords(buf);
    expect(records.find((r) => r.tag === TAGS.EXEC_PID[0])?.fields).toEqual(['42']);
    expect(records.find((r) => r.tag === TAGS.ADDITIONAL_GID[0])?.fields).toEqual(['3']);
    expect(() => encodeExec({ pid: 0, cgroupProcsFiles: [], argv: ['ls'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], capabilities: DEFAULT_CAPS, noNewPrivs: false })).toThrow(/pid/);
  });

  test('exec requests carry tty, stdin and the initial window size (tty only)', () => {
    const base = { pid: 42, cgroupProcsFiles: [], argv: ['sh'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], capabilities: DEFAULT_CAPS, noNewPrivs: true };
    const get = (buf: Buffer, t: keyof typeof TAGS) => decodeRecords(buf).records.filter((r) => r.tag === TAGS[t][0]).map((r) => r.fields);
    const tty = encodeExec(base, { tty: true, stdin: true, size: { cols: 120, rows: 40 } });
    expect([get(tty, 'TTY'), get(tty, 'STDIN'), get(tty, 'WINSIZE')]).toEqual([[['1']], [['1']], [['120', '40']]]);
    const plain = encodeExec(base, { size: { cols: 120, rows: 40 } });
    expect([get(plain, 'TTY'), get(plain, 'STDIN'), get(plain, 'WINSIZE')]).toEqual([[['0']], [['0']], []]);
    expect(() => encodeExec(base, { tty: true, size: { cols: 70000, rows: 1 } })).toThrow(/size/);
  });
});

describe('exec socket frames', () => {
  test('frame types are unique; client frames < 16 <= shim frames', () => {
    const nums = Object.values(FRAMES);
    expect(new Set(nums).size).toBe(nums.length);
    for (const [name, n] of Object.entries(FRAMES)) expect(['REQUEST', 'STDIN', 'STDIN_EOF', 'RESIZE', 'SIGNAL'].includes(name)).toBe(n < 16);
  });

  test('a frame is [type u8][len u32 BE][payload]', () => {
    const f = encodeFrame(FRAMES.STDOUT, 'héllo');
    expect(f[0]).toBe(FRAMES.STDOUT);
    expect(f.readUInt32BE(1)).toBe(6);
    expect(f.subarray(FRAME_HEADER_BYTES).toString()).toBe('héllo');
    expect(encodeFrame(FRAMES.STDIN_EOF)).toEqual(Buffer.from([FRAMES.STDIN_EOF, 0, 0, 0, 0]));
  });
});
