// Field errors as the Kubernetes API server reports them
// (apimachinery/pkg/util/validation/field), and the error that carries them.

import { NodeletError } from '../errors.js';

/** `UnknownField`: a field the Kubernetes API does not have (the decoder's strict mode, before any validation). */
export type FieldErrorType = 'Required' | 'Invalid' | 'Duplicate' | 'NotSupported' | 'Forbidden' | 'TooLong' | 'TooMany' | 'NotFound' | 'UnknownField';

export interface FieldError {
  /** e.g. "spec.containers[0].livenessProbe.httpGet.port" */
  field: string;
  type: FieldErrorType;
  value?: unknown;
  detail: string;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return '';
  return JSON.stringify(v) ?? String(v);
}

/** One line, kubectl's wording: `spec.containers[0].name: Invalid value: "Web": a lowercase ...`. */
export function formatFieldError(e: FieldError): string {
  const tail = e.detail ? `: ${e.detail}` : '';
  switch (e.type) {
    case 'Required':
      return `${e.field}: Required value${tail}`;
    case 'Invalid':
      return `${e.field}: Invalid value: ${show(e.value)}${tail}`;
    case 'Duplicate':
      return `${e.field}: Duplicate value: ${show(e.value)}${tail}`;
    case 'NotSupported':
      return `${e.field}: Unsupported value: ${show(e.value)}${tail}`;
    case 'Forbidden':
      return `${e.field}: Forbidden${tail}`;
    case 'TooLong':
      return `${e.field}: Too long${tail}`;
    case 'TooMany':
      return `${e.field}: Too many: ${show(e.value)}${tail}`;
    case 'NotFound':
      return `${e.field}: Not found: ${show(e.value)}${tail}`;
    case 'UnknownField':
      // kube-apiserver with fieldValidation=Strict (kubectl's default): `strict decoding error: unknown field "spec.x"`
      return `strict decoding error: unknown field ${JSON.stringify(e.field)}`;
  }
}

export const required = (field: string, detail = ''): FieldError => ({ field, type: 'Required', detail });
export const invalid = (field: string, value: unknown, detail: string): FieldError => ({ field, type: 'Invalid', value, detail });
export const duplicate = (field: string, value: unknown): FieldError => ({ field, type: 'Duplicate', value, detail: '' });
export const notSupported = (field: string, value: unknown, supported: readonly string[]): FieldError => ({
  field,
  type: 'NotSupported',
  value,
  detail: `supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
});
export const notFoundValue = (field: string, value: unknown): FieldError => ({ field, type: 'NotFound', value, detail: '' });
export const unknownField = (field: string): FieldError => ({ field, type: 'UnknownField', detail: '' });
export const forbidden = (field: string, detail: string): FieldError => ({ field, type: 'Forbidden', detail });
/** field.TooMany: `Too many: 21: must have at most 20 items` */
export const tooMany = (field: string, actual: number, max: number): FieldError => ({
  field,
  type: 'TooMany',
  value: actual,
  detail: `must have at most ${max} ${max === 1 ? 'item' : 'items'}`,
});
export const tooLong = (field: string, value: unknown, max: number): FieldError => ({
  field,
  type: 'TooLong',
  value,
  detail: `may not be more than ${max} bytes`,
});

/**
 * A manifest or object that the API server would reject. `errors` lists every
 * problem found; the message has the object and one error per line, like
 * `kubectl apply`: `Pod "web" is invalid: \n* spec...`.
 */
export class ManifestError extends NodeletError {
  readonly errors: FieldError[];
  constructor(object: string, errors: FieldError[], opts: { source?: string } = {}) {
    const where = opts.source ? ` (${opts.source})` : '';
    const lines = errors.map((e) => `* ${formatFieldError(e)}`).join('\n');
    super('InvalidArgument', 'ERR_POD_INVALID', `${object}${where} is invalid:\n${lines}`, {
      details: { object, source: opts.source, errors },
    });
    this.name = 'ManifestError';
    this.errors = errors;
  }
}
