// Errors of the Kubernetes API client. A non-2xx answer becomes a
// KubeApiError carrying the server's metav1.Status; a request that never got
// an answer (connection refused, TLS failure, timeout, abort) becomes a plain
// NodeletError with one of the ERR_KUBE_* transport codes below.
//
//   HTTP  Status.reason                    code                          category
//   400   BadRequest                       ERR_KUBE_BAD_REQUEST          InvalidArgument
//   401   Unauthorized                     ERR_KUBE_UNAUTHORIZED         PermissionDenied
//   403   Forbidden                        ERR_KUBE_FORBIDDEN            PermissionDenied
//   404   NotFound                         ERR_KUBE_NOT_FOUND            NotFound
//   405   MethodNotAllowed                 ERR_KUBE_METHOD_NOT_ALLOWED   InvalidArgument
//   406/415 NotAcceptable/UnsupportedMediaType ERR_KUBE_UNSUPPORTED      InvalidArgument
//   409   AlreadyExists                    ERR_KUBE_ALREADY_EXISTS       AlreadyExists
//   409   Conflict (any other 409)         ERR_KUBE_CONFLICT             FailedPrecondition
//   410   Expired / Gone                   ERR_KUBE_GONE                 FailedPrecondition
//   413   RequestEntityTooLarge            ERR_KUBE_TOO_LARGE            InvalidArgument
//   422   Invalid                          ERR_KUBE_INVALID              InvalidArgument
//   429   TooManyRequests                  ERR_KUBE_TOO_MANY_REQUESTS    Unavailable
//   500   InternalError                    ERR_KUBE_INTERNAL             Internal
//   503   ServiceUnavailable               ERR_KUBE_UNAVAILABLE          Unavailable
//   504 / reason Timeout|ServerTimeout     ERR_KUBE_TIMEOUT              DeadlineExceeded
//   other                                  ERR_KUBE_HTTP_<status>        by status class
//
// Transport (no answer): ERR_KUBE_UNREACHABLE (Unavailable: connection refused,
// reset, DNS ...), ERR_KUBE_TLS (FailedPrecondition: certificate not trusted,
// wrong name), ERR_KUBE_TIMEOUT (DeadlineExceeded: the client's request
// timeout), ERR_KUBE_CANCELED (Canceled: the caller's AbortSignal),
// ERR_KUBE_DECODE (Internal: a 2xx body that is not JSON).
import { NodeletError, type ErrorCategory, type ErrorCode } from '../errors.js';
import type { KubeStatus } from './types.js';

interface CodeInfo {
  code: ErrorCode;
  category: ErrorCategory;
}

function classify(httpStatus: number, reason: string): CodeInfo {
  if (reason === 'Timeout' || reason === 'ServerTimeout' || httpStatus === 504) return { code: 'ERR_KUBE_TIMEOUT', category: 'DeadlineExceeded' };
  switch (httpStatus) {
    case 400: return { code: 'ERR_KUBE_BAD_REQUEST', category: 'InvalidArgument' };
    case 401: return { code: 'ERR_KUBE_UNAUTHORIZED', category: 'PermissionDenied' };
    case 403: return { code: 'ERR_KUBE_FORBIDDEN', category: 'PermissionDenied' };
    case 404: return { code: 'ERR_KUBE_NOT_FOUND', category: 'NotFound' };
    case 405: return { code: 'ERR_KUBE_METHOD_NOT_ALLOWED', category: 'InvalidArgument' };
    case 406:
    case 415: return { code: 'ERR_KUBE_UNSUPPORTED', category: 'InvalidArgument' };
    case 409:
      return reason === 'AlreadyExists'
        ? { code: 'ERR_KUBE_ALREADY_EXISTS', category: 'AlreadyExists' }
        : { code: 'ERR_KUBE_CONFLICT', category: 'FailedPrecondition' };
    case 410: return { code: 'ERR_KUBE_GONE', category: 'FailedPrecondition' };
    case 413: return { code: 'ERR_KUBE_TOO_LARGE', category: 'InvalidArgument' };
    case 422: return { code: 'ERR_KUBE_INVALID', category: 'InvalidArgument' };
    case 429: return { code: 'ERR_KUBE_TOO_MANY_REQUESTS', category: 'Unavailable' };
    case 500: return { code: 'ERR_KUBE_INTERNAL', category: 'Internal' };
    case 503: return { code: 'ERR_KUBE_UNAVAILABLE', category: 'Unavailable' };
    default:
      return {
        code: `ERR_KUBE_HTTP_${httpStatus}`,
        category: httpStatus >= 500 ? 'Unavailable' : httpStatus >= 400 ? 'InvalidArgument' : 'Internal',
      };
  }
}

/** Status.reason for an answer whose body was not a Status (a proxy's 502, a plain-text 404 ...). */
export function reasonForHttpStatus(httpStatus: number): string {
  switch (httpStatus) {
    case 400: return 'BadRequest';
    case 401: return 'Unauthorized';
    case 403: return 'Forbidden';
    case 404: return 'NotFound';
    case 405: return 'MethodNotAllowed';
    case 406: return 'NotAcceptable';
    case 409: return 'Conflict';
    case 410: return 'Gone';
    case 413: return 'RequestEntityTooLarge';
    case 415: return 'UnsupportedMediaType';
    case 422: return 'Invalid';
    case 429: return 'TooManyRequests';
    case 500: return 'InternalError';
    case 503: return 'ServiceUnavailable';
    case 504: return 'Timeout';
    default: return httpStatus >= 500 ? 'InternalError' : 'Unknown';
  }
}

export interface KubeApiErrorInit {
  httpStatus: number;
  status: KubeStatus;
  method: string;
  path: string;
  server: string;
  /** Retry-After header (seconds), for 429 and 503 */
  retryAfterSeconds?: number;
}

/** A non-2xx answer of the API server. */
export class KubeApiError extends NodeletError {
  readonly httpStatus: number;
  /** metav1.Status.reason (NotFound, AlreadyExists, Conflict, Expired, Gone, Forbidden, Invalid ...) */
  readonly reason: string;
  /** the metav1.Status the server sent (synthesized when the body was not one) */
  readonly status: KubeStatus;
  readonly method: string;
  readonly path: string;
  readonly retryAfterSeconds?: number;

  constructor(init: KubeApiErrorInit) {
    const reason = init.status.reason || reasonForHttpStatus(init.httpStatus);
    const { code, category } = classify(init.httpStatus, reason);
    const msg = init.status.message || `HTTP ${init.httpStatus}`;
    super(category, code, `${init.method} ${init.path}: ${msg} (${reason}, HTTP ${init.httpStatus}, ${init.server})`, {
      details: { httpStatus: init.httpStatus, reason, method: init.method, path: init.path, server: init.server, statusDetails: init.status.details },
    });
    this.name = 'KubeApiError';
    this.httpStatus = init.httpStatus;
    this.reason = reason;
    this.status = { ...init.status, reason };
    this.method = init.method;
    this.path = init.path;
    if (init.retryAfterSeconds !== undefined) this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

/**
 * True for a KubeApiError, optionally with this Status.reason. `'Gone'` also
 * matches `'Expired'` (both are HTTP 410: the resourceVersion is too old).
 */
export function isKubeError(err: unknown, reason?: string): err is KubeApiError {
  if (!(err instanceof KubeApiError)) return false;
  if (reason === undefined) return true;
  if (reason === 'Gone' || reason === 'Expired') return err.httpStatus === 410 || err.reason === 'Gone' || err.reason === 'Expired';
  return err.reason === reason;
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.httpStatus === 404;
export const isAlreadyExists = (e: unknown) => e instanceof KubeApiError && e.reason === 'AlreadyExists';
/** 409 other than AlreadyExists: a stale resourceVersion or a failed precondition. */
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.httpStatus === 409 && e.reason !== 'AlreadyExists';
export const isGone = (e: unknown) => e instanceof KubeApiError && e.httpStatus === 410;
export const isForbidden = (e: unknown) => e instanceof KubeApiError && e.httpStatus === 403;

/** Worth retrying later: no answer at all, 429, 5xx, timeouts. */
export function isRetriable(e: unknown): boolean {
  if (e instanceof KubeApiError) return e.httpStatus === 429 || e.httpStatus >= 500 || e.code === 'ERR_KUBE_TIMEOUT';
  if (e instanceof NodeletError) return e.code === 'ERR_KUBE_UNREACHABLE' || e.code === 'ERR_KUBE_TIMEOUT' || e.code === 'ERR_KUBE_WATCH_BROKEN';
  return false;
}

/** True for a metav1.Status object (the body of an error answer or of a watch ERROR event). */
export function isStatus(v: unknown): v is KubeStatus {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'Status';
}
