// The seccomp compiler, checked by running its programs in a small classic-BPF
// interpreter (the seccomp subset: ld abs, and, ja, jeq/jgt/jge/jset, ret).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AUDIT_ARCH, compileProfile, MAX_INSTRUCTIONS, OP, RET } from '../../../src/runtime/seccomp/compile.js';
import { computeSeccompFilter, loadLocalhostProfile, loadSeccompFor, normalizeProfile, parseProfile, runtimeDefaultProfile } from '../../../src/runtime/seccomp/index.js';
import type { SeccompOp, SeccompProfile } from '../../../src/runtime/seccomp/profile.js';
import { SYSCALLS_I386 as I, SYSCALLS_X86_64 as X } from '../../../src/runtime/seccomp/syscalls.generated.js';
import { capabilityMask, capabilityNumber, DEFAULT_CAPABILITIES } from '../../../src/runtime/capabilities.js';
import { encodeExec, encodePlan } from '../../../src/runtime/shim/encode.js';
import { decodeRecords, TAGS } from '../../../src/runtime/shim/protocol.js';
import { isNodeletError } from '../../../src/errors.js';

interface Data {
  nr: number;
  arch?: number;
  args?: bigint[];
}

/** Run a sock_filter program on one seccomp_data; also checks the kernel's static rules. */
function run(prog: Buffer, d: Data): number {
  const n = prog.length / 8;
  expect(Number.isInteger(n) && n > 0 && n <= MAX_INSTRUCTIONS).toBe(true);
  const data = Buffer.alloc(64);
  data.writeUInt32LE(d.nr >>> 0, 0);
  data.writeUInt32LE(d.arch ?? AUDIT_ARCH.X86_64, 4);
  (d.args ?? []).forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let A = 0;
  for (let pc = 0, steps = 0; ; steps++) {
    if (pc >= n || steps > n) throw new Error(`ran off the program at ${pc}`);
    const code = prog.readUInt16LE(pc * 8), jt = prog[pc * 8 + 2]!, jf = prog[pc * 8 + 3]!, k = prog.readUInt32LE(pc * 8 + 4);
    const branch = (c: boolean) => (pc += 1 + (c ? jt : jf));
    switch (code) {
      case OP.LD_W_ABS:
        if (k % 4 || k + 4 > 64) throw new Error(`bad load offset ${k}`);
        A = data.readUInt32LE(k); pc++; break;
      case OP.AND_K: A = (A & k) >>> 0; pc++; break;
      case OP.JA: pc += 1 + k; break;
      case OP.JEQ_K: branch(A === k); break;
      case OP.JGT_K: branch(A > k); break;
      case OP.JGE_K: branch(A >= k); break;
      case OP.JSET_K: branch((A & k) !== 0); break;
      case OP.RET_K: return k;
      default: throw new Error(`opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
}

/** Every jump lands inside the program and the program ends in a return (the kernel's checks). */
function checkStatic(prog: Buffer): void {
  const n = prog.length / 8;
  for (let pc = 0; pc < n; pc++) {
    const code = prog.readUInt16LE(pc * 8), jt = prog[pc * 8 + 2]!, jf = prog[pc * 8 + 3]!, k = prog.readUInt32LE(pc * 8 + 4);
    if (code === OP.JA) expect(pc + 1 + k).toBeLessThan(n);
    else if ((code & 0x07) === 0x05) expect(pc + 1 + Math.max(jt, jf)).toBeLessThan(n);
  }
  expect(prog.readUInt16LE((n - 1) * 8)).toBe(OP.RET_K);
}

const EPERM = (RET.ERRNO | 1) >>> 0;
const ENOSYS = (RET.ERRNO | 38) >>> 0;
const ALLOW = RET.ALLOW;
const caps = (...names: string[]) => capabilityMask([...DEFAULT_CAPABILITIES, ...names].map(capabilityNumber));
const defaultFilter = (c = caps()) => {
  const f = compileProfile(runtimeDefaultProfile(), { hostArch: 'x64', capabilities: c }, 'RuntimeDefault');
  checkStatic(f.program);
  return f.program;
};
const CLONE_NEWUSER = 0x10000000n;
const SIGCHLD = 17n;

describe('RuntimeDefault', () => {
  const prog = defaultFilter();

  it('allows ordinary work and denies privileged syscalls with EPERM', () => {
    for (const s of ['read', 'write', 'openat', 'execve', 'exit_group', 'mmap', 'socket', 'close_range', 'rt_sigreturn', 'wait4', 'setresuid'])
      expect(run(prog, { nr: X[s]! }), s).toBe(ALLOW);
    for (const s of ['mount', 'umount2', 'unshare', 'setns', 'keyctl', 'add_key', 'ptrace', 'bpf', 'reboot', 'init_module', 'kexec_load', 'open_by_handle_at', 'mbind', 'io_uring_setup'])
      expect(run(prog, { nr: X[s]! }), s).toBe(EPERM);
  });

  it('lets clone run without namespace flags, and clone3 fall back with ENOSYS', () => {
    expect(run(prog, { nr: X.clone!, args: [SIGCHLD] })).toBe(ALLOW);
    expect(run(prog, { nr: X.clone!, args: [0x3d0f00n] })).toBe(ALLOW); // pthread_create's flags
    expect(run(prog, { nr: X.clone!, args: [CLONE_NEWUSER | SIGCHLD] })).toBe(EPERM);
    expect(run(prog, { nr: X.clone!, args: [0x20000n] })).toBe(EPERM); // CLONE_NEWNS
    expect(run(prog, { nr: X.clone3! })).toBe(ENOSYS);
  });

  it('compares personality(2) on all 64 bits', () => {
    expect(run(prog, { nr: X.personality!, args: [0n] })).toBe(ALLOW);
    expect(run(prog, { nr: X.personality!, args: [0xffffffffn] })).toBe(ALLOW);
    expect(run(prog, { nr: X.personality!, args: [0x0400000n] })).toBe(EPERM); // READ_IMPLIES_EXEC
    expect(run(prog, { nr: X.personality!, args: [0x1_00000000n] })).toBe(EPERM);
  });

  it('follows the effective capabilities', () => {
    const admin = defaultFilter(caps('SYS_ADMIN'));
    for (const s of ['mount', 'unshare', 'setns', 'clone3']) expect(run(admin, { nr: X[s]! }), s).toBe(ALLOW);
    expect(run(admin, { nr: X.clone!, args: [CLONE_NEWUSER] })).toBe(ALLOW);
    expect(run(admin, { nr: X.ptrace! })).toBe(EPERM);
    const ptrace = defaultFilter(caps('SYS_PTRACE'));
    expect(run(ptrace, { nr: X.ptrace! })).toBe(ALLOW);
    expect(run(ptrace, { nr: X.mount! })).toBe(EPERM);
    // dropping a default capability removes its syscall: no CAP_SYS_CHROOT, no chroot
    expect(run(defaultFilter(caps('SYS_CHROOT')), { nr: X.chroot! })).toBe(ALLOW);
    expect(run(defaultFilter(capabilityMask([capabilityNumber('CHOWN')])), { nr: X.chroot! })).toBe(EPERM);
  });

  it('kills foreign architectures and x32, filters i386 with its own numbers', () => {
    expect(run(prog, { nr: 63, arch: 0xc00000b7 /* aarch64 */ })).toBe(RET.KILL_PROCESS);
    expect(run(prog, { nr: X.read! | 0x40000000 })).toBe(RET.KILL_PROCESS);
    expect(run(prog, { nr: I.read!, arch: AUDIT_ARCH.I386 })).toBe(ALLOW);
    expect(run(prog, { nr: I.mount!, arch: AUDIT_ARCH.I386 })).toBe(EPERM);
    expect(run(prog, { nr: I.socketcall!, arch: AUDIT_ARCH.I386 })).toBe(ALLOW);
    // i386's 21 is mount, x86_64's 21 is access: the sections really differ
    expect(run(prog, { nr: 21 })).toBe(ALLOW);
  });

  it('returns ENOSYS for numbers above every known syscall', () => {
    expect(run(prog, { nr: 1000 })).toBe(ENOSYS);
    expect(run(prog, { nr: 0xffffffff & ~0x40000000 })).toBe(ENOSYS);
  });

  it('is compact', () => {
    expect(prog.length / 8).toBeLessThan(1000); // two arches, a binary search each
  });
});

describe('compileProfile', () => {
  const compile = (p: Partial<SeccompProfile>, c = 0n) => {
    const f = compileProfile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [], syscalls: [], ...p }, { hostArch: 'x64', capabilities: c }, 'test');
    checkStatic(f.program);
    return f;
  };

  const VALUES = [0n, 1n, 2n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn, 0x1_00000000n, 0x1_00000001n, 0x2_00000000n, 0xffffffff_00000000n, 0xffffffff_fffffffen, 0xffffffff_ffffffffn, 0x12345678_9abcdef0n];
  const REF: Record<SeccompOp, (a: bigint, v: bigint, v2: bigint) => boolean> = {
    SCMP_CMP_EQ: (a, v) => a === v,
    SCMP_CMP_NE: (a, v) => a !== v,
    SCMP_CMP_LT: (a, v) => a < v,
    SCMP_CMP_LE: (a, v) => a <= v,
    SCMP_CMP_GT: (a, v) => a > v,
    SCMP_CMP_GE: (a, v) => a >= v,
    SCMP_CMP_MASKED_EQ: (a, v, v2) => (a & v) === v2,
  };

  for (const op of Object.keys(REF) as SeccompOp[]) {
    it(`${op} on 64-bit values agrees with BigInt`, () => {
      for (const v of VALUES) {
        const v2 = op === 'SCMP_CMP_MASKED_EQ' ? v & 0xffff0000_0000ff00n : 0n;
        const { program } = compile({ syscalls: [{ names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 2, value: v, valueTwo: v2, op }] }] });
        for (const a of VALUES) {
          const want = REF[op](a, v, v2) ? (RET.ERRNO | 13) >>> 0 : ALLOW;
          expect(run(program, { nr: X.write!, args: [0n, 0n, a] }), `${op} arg=${a.toString(16)} value=${v.toString(16)}`).toBe(want);
        }
        expect(run(program, { nr: X.read!, args: [0n, 0n, v] })).toBe(ALLOW);
      }
    });
  }

  it('ANDs the conditions of a rule; rules for one syscall are tried in order, then its unconditional action', () => {
    const { program } = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1n, valueTwo: 0n, op: 'SCMP_CMP_EQ' }, { index: 1, value: 15n, valueTwo: 0n, op: 'SCMP_CMP_EQ' }] },
        { names: ['kill'], action: 'SCMP_ACT_LOG', args: [{ index: 1, value: 9n, valueTwo: 0n, op: 'SCMP_CMP_EQ' }] },
        { names: ['kill'], action: 'SCMP_ACT_TRAP', args: [] },
      ],
    });
    expect(run(program, { nr: X.kill!, args: [1n, 15n] })).toBe(ALLOW);
    expect(run(program, { nr: X.kill!, args: [2n, 15n] })).toBe(RET.TRAP);
    expect(run(program, { nr: X.kill!, args: [2n, 9n] })).toBe(RET.LOG);
    expect(run(program, { nr: X.getpid! })).toBe(EPERM);
  });

  it('maps every action', () => {
    const acts = { SCMP_ACT_KILL: RET.KILL_THREAD, SCMP_ACT_KILL_THREAD: RET.KILL_THREAD, SCMP_ACT_KILL_PROCESS: RET.KILL_PROCESS, SCMP_ACT_TRAP: RET.TRAP, SCMP_ACT_LOG: RET.LOG, SCMP_ACT_ALLOW: RET.ALLOW, SCMP_ACT_ERRNO: EPERM, SCMP_ACT_TRACE: (RET.TRACE | 1) >>> 0 } as const;
    for (const [a, want] of Object.entries(acts)) {
      const { program } = compile({ defaultAction: a as keyof typeof acts, syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [] }] });
      expect(run(program, { nr: X.mkdir! }), a).toBe(want);
      expect(run(program, { nr: X.getpid! })).toBe(ALLOW);
    }
    const { program } = compile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [] }] });
    expect(run(program, { nr: X.mkdir! })).toBe((RET.ERRNO | 13) >>> 0);
    expect(run(program, { nr: X.getpid! })).toBe((RET.ERRNO | 38) >>> 0);
  });

  it('skips names the architecture does not have, as libseccomp does', () => {
    const f = compile({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['socketcall', 'no_such_call', 'mkdir'], action: 'SCMP_ACT_ERRNO', args: [] }] });
    expect(f.skipped.sort()).toEqual(['SCMP_ARCH_X86:no_such_call', 'SCMP_ARCH_X86_64:no_such_call', 'SCMP_ARCH_X86_64:socketcall']);
    expect(run(f.program, { nr: X.mkdir! })).toBe(EPERM);
    expect(run(f.program, { nr: I.socketcall!, arch: AUDIT_ARCH.I386 })).toBe(EPERM);
    expect(run(f.program, { nr: I.mkdir!, arch: AUDIT_ARCH.I386 })).toBe(EPERM);
  });

  it('without SCMP_ARCH_X86 an i386 syscall is killed, even with a default of ALLOW', () => {
    const f = compile({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [] }] });
    expect(run(f.program, { nr: I.read!, arch: AUDIT_ARCH.I386 })).toBe(RET.KILL_PROCESS);
    expect(run(f.program, { nr: 5000 })).toBe(ALLOW); // permissive default: no ENOSYS
  });

  it('evaluates includes/excludes (caps, arches, minKernel)', () => {
    const p: Partial<SeccompProfile> = {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['mount'], action: 'SCMP_ACT_ALLOW', args: [], includes: { caps: ['CAP_SYS_ADMIN'] } },
        { names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [], includes: { arches: ['arm64'] } },
        { names: ['gettid'], action: 'SCMP_ACT_ALLOW', args: [], excludes: { arches: ['amd64'] } },
        { names: ['getppid'], action: 'SCMP_ACT_ALLOW', args: [], excludes: { caps: ['CAP_SYS_ADMIN'] } },
      ],
    };
    const plain = compile(p).program;
    const admin = compile(p, capabilityMask([capabilityNumber('SYS_ADMIN')])).program;
    expect([run(plain, { nr: X.mount! }), run(admin, { nr: X.mount! })]).toEqual([EPERM, ALLOW]);
    expect([run(plain, { nr: X.getppid! }), run(admin, { nr: X.getppid! })]).toEqual([ALLOW, EPERM]);
    expect(run(plain, { nr: X.getpid! })).toBe(EPERM);
    expect(run(plain, { nr: X.gettid! })).toBe(EPERM);
    const k = (release: string) => compileProfile({ defaultAction: 'SCMP_ACT_ERRNO', architectures: [], syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [], includes: { minKernel: '5.10' } }] }, { hostArch: 'x64', capabilities: 0n, kernelRelease: release }, 't').program;
    expect(run(k('5.4.0-100-generic'), { nr: X.getpid! })).toBe(EPERM);
    expect(run(k('6.8.0'), { nr: X.getpid! })).toBe(ALLOW);
  });

  it('refuses a program over 4096 instructions, naming the profile', () => {
    const args = Array.from({ length: 1000 }, (_, i) => ({ names: ['write'], action: 'SCMP_ACT_ERRNO' as const, args: [{ index: 0, value: BigInt(i), valueTwo: 0n, op: 'SCMP_CMP_EQ' as const }] }));
    let err: unknown;
    try {
      compile({ syscalls: args });
    } catch (e) {
      err = e;
    }
    expect(isNodeletError(err, 'ERR_SECCOMP_PROFILE_TOO_LARGE')).toBe(true);
    expect((err as Error).message).toMatch(/seccomp profile test compiles to \d+ BPF instructions; the kernel accepts at most 4096/);
  });

  it('refuses a host architecture it has no syscall table for', () => {
    expect(() => compileProfile(runtimeDefaultProfile(), { hostArch: 'arm64', capabilities: 0n }, 'RuntimeDefault')).toThrow(/x86_64 hosts only/);
  });
});

describe('profile parsing', () => {
  it('keeps 64-bit values exact and accepts Docker profiles (archMap, name)', () => {
    const p = parseProfile(JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      archMap: [{ architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] }, { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
      syscalls: [{ name: 'write', action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 18446744073709551615, valueTwo: 0, op: 'SCMP_CMP_EQ' }], comment: 'x' }],
    }).replace('18446744073709552000', '18446744073709551615'), 'p.json', 'x64');
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(p.syscalls[0]!.names).toEqual(['write']);
    expect(p.syscalls[0]!.args[0]!.value).toBe(0xffffffff_ffffffffn);
  });

  it.each([
    [{}, /defaultAction is required/],
    [{ defaultAction: 'SCMP_ACT_NOPE' }, /defaultAction "SCMP_ACT_NOPE" is not one of/],
    [{ defaultAction: 'SCMP_ACT_NOTIFY' }, /needs a seccomp agent/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ALLOW' }] }, /syscalls\[0\] names no syscall/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.index must be 0-5/],
    [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_XX' }] }] }, /op "SCMP_CMP_XX"/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 5000 }, /defaultErrnoRet must be an errno number/],
    [[1], /must be a JSON object/],
  ])('rejects %j', (v, re) => {
    expect(() => normalizeProfile(v, '"f.json"')).toThrow(re);
    expect(() => normalizeProfile(v, '"f.json"')).toThrow(/seccomp profile "f.json": /);
  });

  it('rejects text that is not JSON', () => {
    expect(() => parseProfile('{', 'x')).toThrow(/not valid JSON/);
  });
});

describe('choosing the profile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-seccomp-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'seccomp/profiles'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'seccomp/profiles/deny-mkdir.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
  fs.writeFileSync(path.join(dir, 'seccomp/bad.json'), '{"defaultAction": 3}');
  fs.writeFileSync(path.join(dir, 'outside.json'), '{"defaultAction": "SCMP_ACT_ALLOW"}');
  fs.symlinkSync('../outside.json', path.join(dir, 'seccomp/escape.json'));

  it('none for Unconfined, no profile, and privileged containers', () => {
    expect(computeSeccompFilter({ privileged: false, capabilities: 0n })).toBeUndefined();
    expect(computeSeccompFilter({ spec: { type: 'Unconfined' }, privileged: false, capabilities: 0n })).toBeUndefined();
    expect(computeSeccompFilter({ spec: { type: 'RuntimeDefault' }, privileged: true, capabilities: 0n })).toBeUndefined();
    expect(loadSeccompFor({ privileged: true, seccomp: { type: 'Localhost', localhostProfile: 'missing.json' } }, dir)).toBeUndefined();
    expect(computeSeccompFilter({ spec: { type: 'RuntimeDefault' }, privileged: false, capabilities: caps(), hostArch: 'x64' })).toMatch(/^([0-9a-f]{16})+$/);
  });

  it('loads a Localhost profile relative to <root>/seccomp', () => {
    const p = loadLocalhostProfile(dir, 'profiles/deny-mkdir.json');
    const hex = computeSeccompFilter({ spec: { type: 'Localhost', localhostProfile: 'profiles/deny-mkdir.json' }, privileged: false, capabilities: 0n, localhost: p, hostArch: 'x64' })!;
    const prog = Buffer.from(hex, 'hex');
    expect(run(prog, { nr: X.mkdir! })).toBe((RET.ERRNO | 13) >>> 0);
    expect(run(prog, { nr: X.mkdirat! })).toBe((RET.ERRNO | 13) >>> 0);
    expect(run(prog, { nr: X.mount! })).toBe(ALLOW);
  });

  it.each([
    ['missing.json', /Cannot load seccomp profile ".*\/seccomp\/missing.json" \(localhostProfile "missing.json"\): no such file/],
    ['../outside.json', /must be a relative path without "\.\."/],
    ['/etc/passwd', /must be a relative path/],
    ['escape.json', /resolves to .*outside.json, outside .*seccomp/],
    ['bad.json', /Cannot load seccomp profile ".*bad.json".*defaultAction is required/],
  ])('refuses %s with an error naming the file', (rel, re) => {
    let err: unknown;
    try {
      loadLocalhostProfile(dir, rel);
    } catch (e) {
      err = e;
    }
    expect(isNodeletError(err, 'ERR_SECCOMP_PROFILE_LOAD')).toBe(true);
    expect((err as Error).message).toMatch(re);
  });
});

describe('the plan carries the filter', () => {
  const hex = computeSeccompFilter({ spec: { type: 'RuntimeDefault' }, privileged: false, capabilities: caps(), hostArch: 'x64' })!;
  const common = { argv: ['sh'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [], noNewPrivs: true, capabilities: { bounding: '0x0', effective: '0x0', permitted: '0x0', inheritable: '0x0', ambient: '0x0' } };
  const seccompRecords = (buf: Buffer) => decodeRecords(buf).records.filter((r) => r.tag === TAGS.SECCOMP[0]);

  it('in an exec request, as one SECCOMP record', () => {
    const recs = seccompRecords(encodeExec({ ...common, pid: 10, cgroupProcsFiles: [], seccomp: hex }));
    expect(recs).toHaveLength(1);
    expect(recs[0]!.fields).toEqual([hex]);
    expect(seccompRecords(encodeExec({ ...common, pid: 10, cgroupProcsFiles: [] }))).toHaveLength(0);
  });

  it('refuses a malformed filter before anything runs', () => {
    expect(() => encodeExec({ ...common, pid: 10, cgroupProcsFiles: [], seccomp: 'abc' })).toThrow(/seccomp/);
    expect(() => encodeExec({ ...common, pid: 10, cgroupProcsFiles: [], seccomp: '00'.repeat(8 * 4097) })).toThrow(/seccomp/);
    expect(typeof encodePlan).toBe('function');
  });
});
