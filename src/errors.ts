// One error type for the whole agent, in the style of containerd's errdefs:
// a small closed set of categories, a stable machine-readable code per
// failure, context added through `cause` chains, and a message that names the
// object and says what to do next. The codes are listed in src/error-codes.ts.

import type { ErrorCode } from './error-codes.js';
export type { ErrorCode } from './error-codes.js';

export type ErrorCategory =
  | 'InvalidArgument'
  | 'NotFound'
  | 'AlreadyExists'
  | 'FailedPrecondition'
  | 'PermissionDenied'
  | 'Unavailable'
  | 'DeadlineExceeded'
  | 'Canceled'
  | 'Internal';

export interface NodeletErrorOptions {
  cause?: unknown;
  /** Structured details: the field path, the object, the syscall... */
  details?: Record<string, unknown>;
}

export class NodeletError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly details: Record<string, unknown>;

  constructor(category: ErrorCategory, code: ErrorCode, message: string, opts: NodeletErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NodeletError';
    this.category = category;
    this.code = code;
    this.details = opts.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, category: this.category, message: this.message, ...this.details };
  }
}

export const invalidArgument = (code: ErrorCode, message: string, opts?: NodeletErrorOptions) =>
  new NodeletError('InvalidArgument', code, message, opts);
export const notFound = (code: ErrorCode, message: string, opts?: NodeletErrorOptions) =>
  new NodeletError('NotFound', code, message, opts);
export const alreadyExists = (code: ErrorCode, message: string, opts?: NodeletErrorOptions) =>
  new NodeletError('AlreadyExists', code, message, opts);
export const failedPrecondition = (code: ErrorCode, message: string, opts?: NodeletErrorOptions) =>
  new NodeletError('FailedPrecondition', code, message, opts);
export const unavailable = (code: ErrorCode, message: string, opts?: NodeletErrorOptions) =>
  new NodeletError('Unavailable', code, message, opts);
export const internal = (code: ErrorCode, message: string, opts?: NodeletErrorOptions) =>
  new NodeletError('Internal', code, message, opts);

export function isNodeletError(e: unknown, code?: ErrorCode): e is NodeletError {
  return e instanceof NodeletError && (code === undefined || e.code === code);
}

/** errno numbers to names (ENOENT, EPERM, ...), from Node's own table. */
import { constants as osConstants } from 'node:os';
const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}
export function errnoNumber(name: string): number | undefined {
  return (osConstants.errno as Record<string, number>)[name];
}

/**
 * A failed system call: carries the syscall, errno number and name and the
 * path(s) involved, like Go's os.SyscallError / os.PathError.
 */
export class SyscallError extends NodeletError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly path?: string;

  constructor(syscall: string, errno: number, path?: string, extra?: string) {
    const name = errnoName(errno);
    const where = path === undefined ? '' : ` ${path}`;
    const more = extra ? ` (${extra})` : '';
    super(categoryForErrno(name), `ERR_SYSCALL_${name}`, `${syscall}${where}: ${name}${more}`, {
      details: { syscall, errno, errnoName: name, path },
    });
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = name;
    this.path = path;
  }
}

function categoryForErrno(name: string): ErrorCategory {
  switch (name) {
    case 'ENOENT':
      return 'NotFound';
    case 'EEXIST':
      return 'AlreadyExists';
    case 'EPERM':
    case 'EACCES':
      return 'PermissionDenied';
    case 'EINVAL':
      return 'InvalidArgument';
    case 'EBUSY':
    case 'EAGAIN':
      return 'Unavailable';
    default:
      return 'Internal';
  }
}

/** A short one-line rendering of an error and its causes, for logs and the CLI. */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof Error) {
      parts.push(cur.message);
      cur = (cur as Error & { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': ');
}
