// A seccomp profile → a classic-BPF program (struct sock_filter[], 8 bytes each)
// that the shim installs unchanged. Layout:
//   load arch; one branch per architecture in the filter; anything else → bad-arch (kill)
//   per arch: load nr; (x86_64) x32 numbers → bad-arch; binary search over runs of
//   syscall numbers with the same decision; a leaf is `ret ACTION`, or for a syscall
//   with argument rules the rules in order, each an AND of 64-bit comparisons
//   done on both 32-bit halves, falling back to the syscall's unconditional action
//   or the default.
// Syscall numbers above the highest one nodelet knows for the arch return ENOSYS
// (runc does the same) so a libc falls back instead of seeing EPERM from a new syscall.

import { invalidArgument } from '../../errors.js';
import { capabilityNumber } from '../capabilities.js';
import { ENOSYS, EPERM, GOARCH, type SeccompAction, type SeccompArg, type SeccompCondition, type SeccompProfile } from './profile.js';
import { SYSCALLS_I386, SYSCALLS_X86_64 } from './syscalls.generated.js';

/** BPF_MAXINSNS */
export const MAX_INSTRUCTIONS = 4096;

export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

export const AUDIT_ARCH = { X86_64: 0xc000003e, I386: 0x40000003 } as const;
export const X32_SYSCALL_BIT = 0x40000000;

/** Opcodes used (linux/bpf_common.h). */
export const OP = {
  LD_W_ABS: 0x20,
  AND_K: 0x54,
  JA: 0x05,
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** struct seccomp_data offsets */
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLo = (i: number) => 16 + 8 * i; // little-endian hosts
const argHi = (i: number) => 16 + 8 * i + 4;

export interface CompileContext {
  /** Node's process.arch of the host ("x64") */
  hostArch: string;
  /** the container's effective capabilities (includes/excludes.caps are checked against them) */
  capabilities: bigint;
  /** host kernel release ("6.8.0-45-generic") for includes.minKernel; absent = every minKernel holds */
  kernelRelease?: string;
}

export interface CompiledFilter {
  /** the sock_filter array, 8 bytes per instruction */
  program: Buffer;
  instructions: number;
  /** syscall names a rule listed that do not exist on an arch of the filter ("arch:name") */
  skipped: string[];
}

interface ArchDef {
  scmp: string;
  audit: number;
  table: Readonly<Record<string, number>>;
  x32Check: boolean;
}
const X86_64: ArchDef = { scmp: 'SCMP_ARCH_X86_64', audit: AUDIT_ARCH.X86_64, table: SYSCALLS_X86_64, x32Check: true };
const I386: ArchDef = { scmp: 'SCMP_ARCH_X86', audit: AUDIT_ARCH.I386, table: SYSCALLS_I386, x32Check: false };

/** The ret value of an action (errno data for ERRNO and TRACE, EPERM unless given). */
export function actionValue(action: SeccompAction, errnoRet?: number): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return RET.TRAP;
    case 'SCMP_ACT_ERRNO': return (RET.ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (RET.TRACE | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG': return RET.LOG;
    case 'SCMP_ACT_ALLOW': return RET.ALLOW;
  }
}

// ---- a tiny assembler: forward jumps to labels, resolved at the end ----

type Target = string | 'next' | 'skip1';
interface Insn {
  code: number;
  k: number;
  jt?: Target;
  jf?: Target;
  /** JA: label of the target */
  ja?: string;
}

class Asm {
  readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private n = 0;
  label(): string {
    return `L${this.n++}`;
  }
  place(l: string): void {
    this.labels.set(l, this.insns.length);
  }
  ld(off: number): void {
    this.insns.push({ code: OP.LD_W_ABS, k: off });
  }
  and(k: number): void {
    this.insns.push({ code: OP.AND_K, k: k >>> 0 });
  }
  ret(k: number): void {
    this.insns.push({ code: OP.RET_K, k: k >>> 0 });
  }
  ja(l: string): void {
    this.insns.push({ code: OP.JA, k: 0, ja: l });
  }
  jmp(code: number, k: number, jt: Target, jf: Target): void {
    this.insns.push({ code, k: k >>> 0, jt, jf });
  }
  assemble(source: string): Buffer {
    const out = Buffer.alloc(this.insns.length * 8);
    const off = (i: number, t: Target | undefined): number => {
      if (t === undefined || t === 'next') return 0;
      if (t === 'skip1') return 1;
      const at = this.labels.get(t);
      if (at === undefined || at <= i) throw new Error(`seccomp compiler: bad label ${t}`);
      return at - i - 1;
    };
    this.insns.forEach((ins, i) => {
      let jt = 0, jf = 0, k = ins.k;
      if (ins.ja !== undefined) k = off(i, ins.ja);
      else {
        jt = off(i, ins.jt);
        jf = off(i, ins.jf);
        if (jt > 255 || jf > 255) {
          throw invalidArgument('ERR_SECCOMP_PROFILE_TOO_LARGE', `seccomp profile ${source}: a syscall rule compiles to a conditional jump longer than 255 instructions (too many argument conditions)`, { details: { profile: source } });
        }
      }
      out.writeUInt16LE(ins.code, i * 8);
      out.writeUInt8(jt, i * 8 + 2);
      out.writeUInt8(jf, i * 8 + 3);
      out.writeUInt32LE(k >>> 0, i * 8 + 4);
    });
    return out;
  }
}

// ---- rules → a decision per syscall number ----

interface CondRule {
  args: SeccompArg[];
  ret: number;
}
interface Entry {
  conds: CondRule[];
  uncond?: number;
}
type Leaf = { ret: number } | { rules: CondRule[]; fallback: number };

function kernelAtLeast(release: string, min: string): boolean {
  const v = (s: string) => s.split(/[.-]/).slice(0, 3).map((x) => parseInt(x, 10) || 0);
  const [a, b] = [v(release), v(min)];
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

const hasCap = (caps: bigint, name: string) => {
  try {
    return (caps & (1n << BigInt(capabilityNumber(name)))) !== 0n;
  } catch {
    return false; // a capability this kernel table does not know is not held
  }
};

/** moby's semantics: includes = all listed facts hold (caps: all held; arches: the host's is listed); excludes = any holds. */
function applies(inc: SeccompCondition | undefined, exc: SeccompCondition | undefined, ctx: CompileContext): boolean {
  const goarch = GOARCH[ctx.hostArch] ?? ctx.hostArch;
  if (inc) {
    if (inc.caps && !inc.caps.every((c) => hasCap(ctx.capabilities, c))) return false;
    if (inc.arches && !inc.arches.includes(goarch)) return false;
    if (inc.minKernel && ctx.kernelRelease && !kernelAtLeast(ctx.kernelRelease, inc.minKernel)) return false;
  }
  if (exc) {
    if (exc.caps && exc.caps.some((c) => hasCap(ctx.capabilities, c))) return false;
    if (exc.arches && exc.arches.includes(goarch)) return false;
  }
  return true;
}

function leavesFor(profile: SeccompProfile, ctx: CompileContext, arch: ArchDef, defaultRet: number, skipped: Set<string>): Map<number, Leaf> {
  const entries = new Map<number, Entry>();
  for (const r of profile.syscalls) {
    if (!applies(r.includes, r.excludes, ctx)) continue;
    const ret = actionValue(r.action, r.errnoRet);
    for (const name of r.names) {
      const nr = arch.table[name];
      if (nr === undefined || !Object.hasOwn(arch.table, name)) {
        skipped.add(`${arch.scmp}:${name}`);
        continue;
      }
      let e = entries.get(nr);
      if (!e) entries.set(nr, (e = { conds: [] }));
      if (r.args.length === 0) e.uncond ??= ret; // the first unconditional rule wins
      else e.conds.push({ args: r.args, ret });
    }
  }
  const leaves = new Map<number, Leaf>();
  for (const [nr, e] of entries) {
    const fallback = e.uncond ?? defaultRet;
    const conds = e.conds.filter((c) => c.ret !== fallback); // a rule that ends where its failure ends is a no-op
    if (conds.length) leaves.set(nr, { rules: conds, fallback });
    else if (fallback !== defaultRet) leaves.set(nr, { ret: fallback });
  }
  return leaves;
}

/** Runs of syscall numbers [start, next start) with one decision, covering 0..2^32-1. */
function runsFor(leaves: Map<number, Leaf>, defaultRet: number, maxKnown: number, aboveRet: number): { start: number; leaf: Leaf }[] {
  const runs: { start: number; leaf: Leaf }[] = [];
  const push = (start: number, leaf: Leaf) => {
    const last = runs[runs.length - 1]?.leaf;
    if (last && 'ret' in last && 'ret' in leaf && last.ret === leaf.ret) return; // extends the previous run
    runs.push({ start, leaf });
  };
  const def: Leaf = { ret: defaultRet };
  let next = 0;
  for (const nr of [...leaves.keys()].sort((x, y) => x - y)) {
    if (nr > next) push(next, def);
    push(nr, leaves.get(nr)!);
    next = nr + 1;
  }
  if (next <= maxKnown) push(next, def);
  push(maxKnown + 1, { ret: aboveRet });
  return runs;
}

/** a (64-bit, both halves) comparison: falls through to the next instruction when it holds, else jumps to `fail`. */
function emitCompare(a: Asm, arg: SeccompArg, fail: string): void {
  const pass = a.label();
  const hi = Number(arg.value >> 32n) >>> 0;
  const lo = Number(arg.value & 0xffffffffn) >>> 0;
  const { JEQ_K, JGT_K, JGE_K } = OP;
  a.ld(argHi(arg.index));
  switch (arg.op) {
    case 'SCMP_CMP_EQ':
      a.jmp(JEQ_K, hi, 'next', fail); a.ld(argLo(arg.index)); a.jmp(JEQ_K, lo, 'next', fail);
      break;
    case 'SCMP_CMP_NE':
      a.jmp(JEQ_K, hi, 'next', pass); a.ld(argLo(arg.index)); a.jmp(JEQ_K, lo, fail, 'next');
      break;
    case 'SCMP_CMP_GT':
      a.jmp(JGT_K, hi, pass, 'next'); a.jmp(JEQ_K, hi, 'next', fail); a.ld(argLo(arg.index)); a.jmp(JGT_K, lo, 'next', fail);
      break;
    case 'SCMP_CMP_GE':
      a.jmp(JGT_K, hi, pass, 'next'); a.jmp(JEQ_K, hi, 'next', fail); a.ld(argLo(arg.index)); a.jmp(JGE_K, lo, 'next', fail);
      break;
    case 'SCMP_CMP_LT':
      a.jmp(JGT_K, hi, fail, 'next'); a.jmp(JEQ_K, hi, 'next', pass); a.ld(argLo(arg.index)); a.jmp(JGE_K, lo, fail, 'next');
      break;
    case 'SCMP_CMP_LE':
      a.jmp(JGT_K, hi, fail, 'next'); a.jmp(JEQ_K, hi, 'next', pass); a.ld(argLo(arg.index)); a.jmp(JGT_K, lo, fail, 'next');
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      const want = arg.valueTwo;
      a.and(hi); a.jmp(JEQ_K, Number(want >> 32n) >>> 0, 'next', fail);
      a.ld(argLo(arg.index)); a.and(lo); a.jmp(JEQ_K, Number(want & 0xffffffffn) >>> 0, 'next', fail);
      break;
    }
  }
  a.place(pass);
}

function emitLeaf(a: Asm, leaf: Leaf): void {
  if ('ret' in leaf) return a.ret(leaf.ret);
  for (const r of leaf.rules) {
    const next = a.label();
    for (const arg of r.args) emitCompare(a, arg, next);
    a.ret(r.ret);
    a.place(next);
    // each rule reloads what it compares: the accumulator no longer holds nr, and no later code needs it
  }
  a.ret(leaf.fallback);
}

/** Binary search over runs[lo..hi] (nr in the accumulator). */
function emitTree(a: Asm, runs: { start: number; leaf: Leaf }[], lo: number, hi: number): void {
  if (lo === hi) return emitLeaf(a, runs[lo]!.leaf);
  const mid = (lo + hi + 1) >> 1;
  const right = a.label();
  a.jmp(OP.JGE_K, runs[mid]!.start, 'next', 'skip1');
  a.ja(right);
  emitTree(a, runs, lo, mid - 1);
  a.place(right);
  emitTree(a, runs, mid, hi);
}

/** Compile for the host (x86_64, optionally with i386 when the profile lists SCMP_ARCH_X86). */
export function compileProfile(profile: SeccompProfile, ctx: CompileContext, source: string): CompiledFilter {
  if (ctx.hostArch !== 'x64') {
    throw invalidArgument('ERR_SECCOMP_UNSUPPORTED_ARCH', `seccomp profile ${source}: nodelet compiles seccomp filters for x86_64 hosts only (this host is ${ctx.hostArch}); use Unconfined`, { details: { profile: source } });
  }
  const arches = [X86_64];
  if (profile.architectures.includes(I386.scmp)) arches.push(I386);
  const defaultRet = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  // new syscalls get ENOSYS (not the default error) unless the default lets everything through anyway
  const permissive = defaultRet === RET.ALLOW || defaultRet === RET.LOG;
  const badArch = RET.KILL_PROCESS;
  const skipped = new Set<string>();

  const a = new Asm();
  const sections = arches.map(() => a.label());
  a.ld(OFF_ARCH);
  arches.forEach((arch, i) => {
    a.jmp(OP.JEQ_K, arch.audit, 'next', 'skip1');
    a.ja(sections[i]!);
  });
  a.ret(badArch);
  arches.forEach((arch, i) => {
    a.place(sections[i]!);
    a.ld(OFF_NR);
    if (arch.x32Check) {
      a.jmp(OP.JSET_K, X32_SYSCALL_BIT, 'next', 'skip1');
      a.ret(badArch);
    }
    const maxKnown = Math.max(...Object.values(arch.table));
    const leaves = leavesFor(profile, ctx, arch, defaultRet, skipped);
    const runs = runsFor(leaves, defaultRet, maxKnown, permissive ? defaultRet : (RET.ERRNO | ENOSYS) >>> 0);
    emitTree(a, runs, 0, runs.length - 1);
  });
  const count = a.insns.length;
  if (count > MAX_INSTRUCTIONS) {
    throw invalidArgument('ERR_SECCOMP_PROFILE_TOO_LARGE', `seccomp profile ${source} compiles to ${count} BPF instructions; the kernel accepts at most ${MAX_INSTRUCTIONS} (simplify its argument rules)`, { details: { profile: source, instructions: count } });
  }
  return { program: a.assemble(source), instructions: count, skipped: [...skipped] };
}
