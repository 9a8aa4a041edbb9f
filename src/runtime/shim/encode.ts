// Pure encoders: ShimPlan / ExecRequest -> wire records (protocol.ts), and a
// validation pass that names the offending field before anything runs.
import { invalidArgument } from '../../errors.js';
import type { ShimPlan } from './plan.js';
import { encodeRecords, LIMITS, PROTOCOL_VERSION, type TagName } from './protocol.js';

type Rec = [TagName, (string | number)[]];

const CAP_RE = /^0x[0-9a-fA-F]{1,16}$/;
const SECCOMP_RE = /^(?:[0-9a-f]{16})+$/;
const bool = (b: boolean) => (b ? 1 : 0);
const rlim = (n: number) => (!Number.isFinite(n) || n < 0 || n >= 2 ** 63 ? 'unlimited' : String(Math.floor(n)));

function check(ok: boolean, field: string, what: string): void {
  if (!ok) throw invalidArgument('ERR_SHIM_PLAN_INVALID', `shim plan: ${field} ${what}`, { details: { field } });
}
const isAbs = (s: string) => typeof s === 'string' && s.startsWith('/');
const isId = (n: number) => Number.isInteger(n) && n >= 0 && n < 0xffffffff;

export function validateCommon(p: { argv: string[]; env: string[]; cwd: string; uid: number; gid: number; additionalGids: number[]; capabilities: ShimPlan['capabilities']; seccomp?: string }): void {
  check(p.argv.length > 0 && p.argv[0] !== '', 'argv', 'must name an executable');
  check(p.argv.length <= LIMITS.ARGV, 'argv', `has more than ${LIMITS.ARGV} entries`);
  check(p.env.length <= LIMITS.ENV, 'env', `has more than ${LIMITS.ENV} entries`);
  check(isAbs(p.cwd), 'cwd', `must be absolute (got ${JSON.stringify(p.cwd)})`);
  check(isId(p.uid), 'uid', 'must be a uid');
  check(isId(p.gid), 'gid', 'must be a gid');
  check(p.additionalGids.length <= LIMITS.GIDS && p.additionalGids.every(isId), 'additionalGids', 'must be gids');
  for (const k of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const) {
    check(CAP_RE.test(p.capabilities[k]), `capabilities.${k}`, 'must be a 0x hex mask');
  }
  if (p.seccomp !== undefined) check(SECCOMP_RE.test(p.seccomp) && p.seccomp.length <= 4096 * 16, 'seccomp', 'must be 1-4096 BPF instructions as lowercase hex');
}

export function validatePlan(plan: ShimPlan): void {
  check(plan.version === 1, 'version', 'must be 1');
  check(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(plan.containerId), 'containerId', 'must be 1-128 of [A-Za-z0-9_.-]');
  for (const f of ['stateDir', 'logPath', 'rootfs'] as const) check(isAbs(plan[f]), f, 'must be an absolute path');
  check(Number.isInteger(plan.logMaxBytes) && plan.logMaxBytes >= 0, 'logMaxBytes', 'must be >= 0');
  check(Number.isInteger(plan.logMaxFiles) && plan.logMaxFiles >= 0 && plan.logMaxFiles <= 1000, 'logMaxFiles', 'must be 0-1000');
  check(plan.namespaces.some((n) => n.type === 'mnt'), 'namespaces', 'must include mnt (new or joined)');
  check(new Set(plan.namespaces.map((n) => n.type)).size === plan.namespaces.length, 'namespaces', 'lists a type twice');
  plan.mounts.forEach((m, i) => check(isAbs(m.target), `mounts[${i}].target`, 'must be absolute'));
  plan.devices.forEach((d, i) => check(isAbs(d.path) && (d.type === 'c' || d.type === 'b'), `devices[${i}]`, 'needs an absolute path and type c|b'));
  if (plan.oomScoreAdj !== undefined) check(Number.isInteger(plan.oomScoreAdj) && Math.abs(plan.oomScoreAdj) <= 1000, 'oomScoreAdj', 'must be -1000..1000');
  validateCommon(plan);
}

function commonRecords(p: { argv: string[]; env: string[]; cwd: string; uid: number; gid: number; additionalGids: number[]; capabilities: ShimPlan['capabilities']; noNewPrivs: boolean; seccomp?: string }): Rec[] {
  const c = p.capabilities;
  return [
    ['UID', [p.uid]],
    ['GID', [p.gid]],
    ...p.additionalGids.map((g): Rec => ['ADDITIONAL_GID', [g]]),
    ['CAPS', [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient]],
    ['NO_NEW_PRIVS', [bool(p.noNewPrivs)]],
    ...(p.seccomp ? [['SECCOMP', [p.seccomp]] as Rec] : []),
    ['CWD', [p.cwd]],
    ...p.env.map((e): Rec => ['ENV', [e]]),
    ...p.argv.map((a): Rec => ['ARGV', [a]]),
  ];
}

export function encodePlan(plan: ShimPlan): Buffer {
  validatePlan(plan);
  const recs: Rec[] = [
    ['VERSION', [PROTOCOL_VERSION]],
    ['CONTAINER_ID', [plan.containerId]],
    ['STATE_DIR', [plan.stateDir]],
    ['LOG_PATH', [plan.logPath]],
    ['LOG_MAX_BYTES', [plan.logMaxBytes]],
    ['LOG_MAX_FILES', [plan.logMaxFiles]],
    // joins before creates, as the shim must setns before clone
    ...[...plan.namespaces].sort((a, b) => Number(!a.path) - Number(!b.path)).map((n): Rec => ['NAMESPACE', [n.type, n.path ?? '']]),
    ...plan.cgroupProcsFiles.map((f): Rec => ['CGROUP_PROCS', [f]]),
    ...(plan.oomCounterFile ? [['OOM_COUNTER_FILE', [plan.oomCounterFile]] as Rec] : []),
    ...(plan.oomScoreAdj !== undefined ? [['OOM_SCORE_ADJ', [plan.oomScoreAdj]] as Rec] : []),
    ['ROOTFS', [plan.rootfs]],
    ['READONLY_ROOTFS', [bool(plan.readonlyRootfs)]],
    ...plan.mounts.map((m): Rec => ['MOUNT', [m.source, m.target, m.fstype, m.flags >>> 0, m.data ?? '', m.mkdir ?? '']]),
    ...plan.devices.map((d): Rec => ['DEVICE', [d.path, d.type, d.major, d.minor, d.mode, d.uid, d.gid]]),
    ...plan.symlinks.map(([l, t]): Rec => ['SYMLINK', [l, t]]),
    ...plan.maskedPaths.map((p): Rec => ['MASKED_PATH', [p]]),
    ...plan.readonlyPaths.map((p): Rec => ['READONLY_PATH', [p]]),
    ...(plan.hostname !== undefined ? [['HOSTNAME', [plan.hostname]] as Rec] : []),
    ...plan.rlimits.map((r): Rec => ['RLIMIT', [r.resource, rlim(r.soft), rlim(r.hard)]]),
    ['UMASK', [plan.umask]],
    ['TTY', [bool(plan.tty)]],
    ['STDIN', [bool(plan.stdin)]],
    ...(plan.stdin && plan.stdinOnce ? [['STDIN_ONCE', ['1']] as Rec] : []),
    ...commonRecords(plan),
  ];
  return encodeRecords(recs);
}

export interface ExecRequestLike {
  pid: number;
  cgroupProcsFiles: string[];
  argv: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  capabilities: ShimPlan['capabilities'];
  noNewPrivs: boolean;
  /** the container's seccomp filter (an exec'd process gets the same, as with runc) */
  seccomp?: string;
}

/** How the exec's stdio is set up: a terminal (merging stdout and stderr) and/or an open stdin. */
export interface ExecIo {
  tty?: boolean;
  stdin?: boolean;
  size?: { cols: number; rows: number };
}

const isDim = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff;

export function encodeExec(req: ExecRequestLike, io: ExecIo = {}): Buffer {
  check(Number.isInteger(req.pid) && req.pid > 0, 'pid', 'must be the container process pid');
  validateCommon(req);
  if (io.size) check(isDim(io.size.cols) && isDim(io.size.rows), 'size', 'must be cols and rows 0-65535');
  return encodeRecords([
    ['VERSION', [PROTOCOL_VERSION]],
    ['EXEC_PID', [req.pid]],
    ...req.cgroupProcsFiles.map((f): Rec => ['CGROUP_PROCS', [f]]),
    ['TTY', [bool(!!io.tty)]],
    ['STDIN', [bool(!!io.stdin)]],
    ...(io.tty && io.size ? [['WINSIZE', [io.size.cols, io.size.rows]] as Rec] : []),
    ...commonRecords(req),
  ]);
}
