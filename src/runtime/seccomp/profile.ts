// The OCI seccomp profile format (runtime-spec LinuxSeccomp, plus the fields
// Docker/containerd profiles add: archMap, includes/excludes, comment), parsed
// and validated into one normalized shape the compiler reads.

import { invalidArgument } from '../../errors.js';

export const ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG', 'SCMP_ACT_ALLOW',
] as const;
export type SeccompAction = (typeof ACTIONS)[number];

export const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'] as const;
export type SeccompOp = (typeof OPS)[number];

export interface SeccompArg {
  /** syscall argument 0-5 */
  index: number;
  /** 64-bit unsigned operands (MASKED_EQ: value is the mask, valueTwo the expected result) */
  value: bigint;
  valueTwo: bigint;
  op: SeccompOp;
}

/** includes / excludes: a rule applies only with (includes) or without (excludes) these facts. */
export interface SeccompCondition {
  /** "CAP_SYS_ADMIN" style names, against the container's effective set */
  caps?: string[];
  /** Go architecture names of the host ("amd64", "386", "x32", "arm64", ...) */
  arches?: string[];
  /** "4.8": the host kernel must be at least this */
  minKernel?: string;
}

export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  /** ERRNO / TRACE data; default EPERM */
  errnoRet?: number;
  /** all must hold (AND) */
  args: SeccompArg[];
  includes?: SeccompCondition;
  excludes?: SeccompCondition;
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names; the host's native architecture is always part of the filter */
  architectures: string[];
  syscalls: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;
export const MAX_ERRNO = 4095;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(source: string, what: string): never {
  throw invalidArgument('ERR_SECCOMP_PROFILE_INVALID', `seccomp profile ${source}: ${what}`, { details: { profile: source } });
}

function strings(source: string, field: string, v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) bad(source, `${field} must be a list of strings`);
  return v as string[];
}

function action(source: string, field: string, v: unknown): SeccompAction {
  if (typeof v !== 'string') bad(source, `${field} is required`);
  if (v === 'SCMP_ACT_NOTIFY') bad(source, `${field} SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which nodelet does not support`);
  if (!(ACTIONS as readonly string[]).includes(v)) bad(source, `${field} "${v}" is not one of ${ACTIONS.join(', ')}`);
  return v as SeccompAction;
}

function errno(source: string, field: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_ERRNO) bad(source, `${field} must be an errno number 0-${MAX_ERRNO}`);
  return v as number;
}

function u64(source: string, field: string, v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  let b: bigint | undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) b = BigInt(v);
  else if (typeof v === 'string' && /^\d{1,20}$/.test(v)) b = BigInt(v);
  if (b === undefined || b >= 1n << 64n) bad(source, `${field} must be an unsigned 64-bit integer`);
  return b;
}

function condition(source: string, field: string, v: unknown): SeccompCondition | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) bad(source, `${field} must be an object`);
  const c: SeccompCondition = {};
  const caps = strings(source, `${field}.caps`, v.caps);
  const arches = strings(source, `${field}.arches`, v.arches);
  if (caps.length) c.caps = caps;
  if (arches.length) c.arches = arches;
  if (v.minKernel !== undefined && v.minKernel !== '') {
    if (typeof v.minKernel !== 'string' || !/^\d+\.\d+/.test(v.minKernel)) bad(source, `${field}.minKernel must look like "4.8"`);
    c.minKernel = v.minKernel;
  }
  return c;
}

function rule(source: string, i: number, v: unknown): SeccompRule {
  const at = `syscalls[${i}]`;
  if (!isObj(v)) bad(source, `${at} must be an object`);
  const names = strings(source, `${at}.names`, v.names);
  if (typeof v.name === 'string') names.push(v.name); // Docker's older single-name form
  if (names.length === 0) bad(source, `${at} names no syscall`);
  const args = (v.args ?? []) as unknown;
  if (!Array.isArray(args)) bad(source, `${at}.args must be a list`);
  const r: SeccompRule = {
    names,
    action: action(source, `${at}.action`, v.action),
    args: args.map((a: unknown, j) => {
      const f = `${at}.args[${j}]`;
      if (!isObj(a)) bad(source, `${f} must be an object`);
      if (!Number.isInteger(a.index) || (a.index as number) < 0 || (a.index as number) > 5) bad(source, `${f}.index must be 0-5`);
      if (!(OPS as readonly string[]).includes(a.op as string)) bad(source, `${f}.op "${String(a.op)}" is not one of ${OPS.join(', ')}`);
      return { index: a.index as number, value: u64(source, `${f}.value`, a.value), valueTwo: u64(source, `${f}.valueTwo`, a.valueTwo), op: a.op as SeccompOp };
    }),
  };
  const e = errno(source, `${at}.errnoRet`, v.errnoRet);
  if (e !== undefined) r.errnoRet = e;
  const inc = condition(source, `${at}.includes`, v.includes);
  const exc = condition(source, `${at}.excludes`, v.excludes);
  if (inc) r.includes = inc;
  if (exc) r.excludes = exc;
  return r;
}

/** Go's name for the host architecture (what includes/excludes.arches name). */
export const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
/** The SCMP_ARCH_* name of a Node `process.arch`. */
const NATIVE_SCMP: Record<string, string> = { x64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64' };

/** An already-decoded object (a profile from JSON) → the normalized profile; `source` names it in errors. */
export function normalizeProfile(v: unknown, source: string, hostArch: string = process.arch): SeccompProfile {
  if (!isObj(v)) bad(source, 'must be a JSON object');
  let architectures = strings(source, 'architectures', v.architectures);
  if (architectures.length === 0 && v.archMap !== undefined) {
    // Docker's archMap: the entry of the native architecture and its sub-architectures
    if (!Array.isArray(v.archMap)) bad(source, 'archMap must be a list');
    const native = NATIVE_SCMP[hostArch];
    const e = (v.archMap as unknown[]).find((m) => isObj(m) && m.architecture === native) as Obj | undefined;
    if (e) architectures = [native!, ...strings(source, 'archMap.subArchitectures', e.subArchitectures)];
  }
  if (v.flags !== undefined && strings(source, 'flags', v.flags).length > 0) bad(source, 'flags (SECCOMP_FILTER_FLAG_*) are not supported by nodelet');
  if (v.listenerPath) bad(source, 'listenerPath (seccomp notify) is not supported by nodelet');
  const syscalls = (v.syscalls ?? []) as unknown;
  if (!Array.isArray(syscalls)) bad(source, 'syscalls must be a list');
  const p: SeccompProfile = {
    defaultAction: action(source, 'defaultAction', v.defaultAction),
    architectures,
    syscalls: syscalls.map((r, i) => rule(source, i, r)),
  };
  const d = errno(source, 'defaultErrnoRet', v.defaultErrnoRet);
  if (d !== undefined) p.defaultErrnoRet = d;
  return p;
}

/** JSON text → profile. 64-bit argument values above 2^53 keep their exact value. */
export function parseProfile(text: string, source: string, hostArch: string = process.arch): SeccompProfile {
  let v: unknown;
  try {
    // JSON numbers lose precision above 2^53: read "value"/"valueTwo" as decimal strings
    v = JSON.parse(text.replace(/("(?:value|valueTwo)"\s*:\s*)(\d+)/g, '$1"$2"'));
  } catch (e) {
    bad(source, `not valid JSON (${(e as Error).message})`);
  }
  return normalizeProfile(v, source, hostArch);
}

export { EPERM, ENOSYS };
