// kubectl's printers for `get`: the -o formats (cli-runtime/pkg/genericclioptions: json, yaml, name,
// jsonpath[-file], custom-columns[-file], wide and the default table), the column layout of its tabwriter
// (min width 6, padding 3; widths fixed by the header and first rows so watch rows line up), and the table
// rows of events and nodes (pkg/printers/internalversion/printers.go).
import fs from 'node:fs';
import YAML from 'yaml';
import type { Event } from '../pod/api-types.js';
import { executeJsonPath, findResults, JsonPathError, parseJsonPath, relaxedJsonPath } from './jsonpath.js';
import { age } from './client-commands.js';

export const ALLOWED_FORMATS = ['custom-columns', 'custom-columns-file', 'json', 'jsonpath', 'jsonpath-file', 'name', 'wide', 'yaml'] as const;

/** An error kubectl reports client-side (`error: …`, exit 1). */
export class PrinterError extends Error {}

export interface Column {
  header: string;
  /** `{.a.b}` */
  path: string;
}

export type OutputFormat =
  | { kind: 'table'; wide: boolean }
  | { kind: 'json' | 'yaml' | 'name' }
  | { kind: 'jsonpath'; template: string }
  | { kind: 'custom-columns'; columns: Column[] };

/** kubectl's NoCompatiblePrinterError. */
export function noPrinterMessage(format: string): string {
  return `unable to match a printer suitable for the output format ${JSON.stringify(format)}, allowed formats are: ${[...ALLOWED_FORMATS].sort().join(',')}`;
}

/** Parses `-o` (`json`, `jsonpath=TEMPLATE`, `custom-columns=SPEC`, `…-file=FILE`); `readFile` for the -file forms. */
export function parseOutputFormat(output: string | undefined, readFile: (f: string) => string = (f) => fs.readFileSync(f, 'utf8')): OutputFormat {
  if (output === undefined || output === '') return { kind: 'table', wide: false };
  const o = output.startsWith('=') ? output.slice(1) : output; // `-o=json` (commander keeps the `=` of a short option)
  const eq = o.indexOf('=');
  const name = eq < 0 ? o : o.slice(0, eq);
  const arg = eq < 0 ? '' : o.slice(eq + 1);
  switch (name) {
    case 'wide':
      if (eq < 0) return { kind: 'table', wide: true };
      break;
    case 'json':
    case 'yaml':
    case 'name':
      if (eq < 0) return { kind: name };
      break;
    case 'jsonpath':
    case 'jsonpath-file': {
      const template = name === 'jsonpath' ? arg : arg ? readTemplate(arg, readFile) : '';
      if (!template) throw new PrinterError('template format specified but no template given');
      try {
        parseJsonPath(template);
      } catch (e) {
        if (e instanceof JsonPathError) throw new PrinterError(`error parsing jsonpath ${template}, ${e.message}`);
        throw e;
      }
      return { kind: 'jsonpath', template };
    }
    case 'custom-columns':
      if (!arg) throw new PrinterError('custom-columns format specified but no custom columns given');
      return { kind: 'custom-columns', columns: parseCustomColumns(arg) };
    case 'custom-columns-file':
      if (!arg) throw new PrinterError('custom-columns format specified but no custom columns given');
      return { kind: 'custom-columns', columns: parseCustomColumnsFile(readTemplate(arg, readFile)) };
  }
  throw new PrinterError(noPrinterMessage(o));
}

function readTemplate(file: string, readFile: (f: string) => string): string {
  try {
    return readFile(file);
  } catch (e) {
    throw new PrinterError(`error reading --template ${file}, ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `open ${file}: no such file or directory` : (e as Error).message}`);
  }
}

function column(header: string, expr: string, spec: string): Column {
  let path: string;
  try {
    path = relaxedJsonPath(expr);
    parseJsonPath(path);
  } catch (e) {
    if (e instanceof JsonPathError) throw new PrinterError(`${e.message}`);
    throw e;
  }
  if (!header) throw new PrinterError(`unexpected custom-columns spec: ${spec}, expected <header>:<json-path-expr>`);
  return { header, path };
}

/** `NAME:.metadata.name,STATUS:.status.phase` (kubectl's NewCustomColumnsPrinterFromSpec). */
export function parseCustomColumns(spec: string): Column[] {
  return spec.split(',').map((part) => {
    const i = part.indexOf(':');
    if (i < 0) throw new PrinterError(`unexpected custom-columns spec: ${part}, expected <header>:<json-path-expr>`);
    return column(part.slice(0, i), part.slice(i + 1), part);
  });
}

/** A custom-columns file: a line of headers, then a line of JSONPath expressions, whitespace-separated. */
export function parseCustomColumnsFile(text: string): Column[] {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length !== 2) throw new PrinterError(`unexpected lines in custom columns file, expected 2, saw ${lines.length}`);
  const headers = lines[0]!.split(/\s+/);
  const paths = lines[1]!.split(/\s+/);
  if (headers.length !== paths.length) throw new PrinterError(`number of headers (${headers.length}) doesn't match number of paths (${paths.length})`);
  return headers.map((h, i) => column(h, paths[i]!, `${h}:${paths[i]}`));
}

/** Go's %v of a decoded JSON value (custom-columns cells). */
export function goValue(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.keys(v).sort().map((k) => `${k}:${goValue((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  return String(v);
}

export function customColumnRow(columns: Column[], obj: unknown): string[] {
  return columns.map((c) => {
    const values = findResults(c.path, obj);
    return values.length === 0 ? '<none>' : values.map(goValue).join(',');
  });
}

// ------------------------------------------------------------------ layout

/** kubectl's tabwriter: cells padded to the column's widest cell + 3, at least 6; the last column unpadded. */
export class ColumnLayout {
  readonly widths: number[];
  constructor(rows: string[][], readonly minWidth = 6, readonly padding = 3) {
    const n = Math.max(0, ...rows.map((r) => r.length));
    this.widths = Array.from({ length: n }, (_, i) => Math.max(minWidth, ...rows.map((r) => (r[i] ?? '').length + padding)));
  }

  /** One line; a cell wider than its column pushes the rest (a watch row after the widths are fixed). */
  line(row: string[]): string {
    return row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(Math.max(this.widths[i] ?? 0, c.length + 1)))).join('').trimEnd() + '\n';
  }

  lines(rows: string[][]): string {
    return rows.map((r) => this.line(r)).join('');
  }
}

export function layoutTable(rows: string[][]): string {
  return new ColumnLayout(rows).lines(rows);
}

// ------------------------------------------------------------------ objects

/** kubectl's JSON printer indents with 4 spaces. */
export const toJson = (obj: unknown) => JSON.stringify(obj, null, 4) + '\n';

export function listOf(items: unknown[]): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
}

export interface Printable {
  /** `pod`, `event`, `node` (the -o name prefix) */
  resource: string;
  headers(wide: boolean): string[];
  row(obj: any, wide: boolean): string[];
}

/**
 * The output of `get` for a list (or, `single`, one object) in a non-table format; undefined for the table
 * formats, which the caller lays out (it knows about namespaces, labels and empty lists).
 */
export function printNonTable(fmt: OutputFormat, objs: any[], resource: string, single: boolean): string | undefined {
  const data = single ? objs[0] : listOf(objs);
  switch (fmt.kind) {
    case 'json':
      return toJson(data);
    case 'yaml':
      return YAML.stringify(data);
    case 'name':
      return objs.map((o) => `${resource}/${o.metadata?.name}\n`).join('');
    case 'jsonpath':
      return executeJsonPath(fmt.template, data);
    default:
      return undefined;
  }
}

// ------------------------------------------------------------------ events and nodes

export const eventPrinter: Printable = {
  resource: 'event',
  headers: (wide) => (wide ? ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'SUBOBJECT', 'SOURCE', 'MESSAGE', 'FIRST SEEN', 'COUNT', 'NAME'] : ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE']),
  row(e: Event, wide: boolean): string[] {
    const first = e.firstTimestamp;
    const last = e.lastTimestamp || first;
    const lastSeen = e.count > 1 ? `${age(last)} (x${e.count} over ${age(first)})` : age(last);
    const object = `${(e.involvedObject.kind ?? '').toLowerCase()}/${e.involvedObject.name}`;
    const message = e.message.trim().replace(/\n/g, ' ');
    if (!wide) return [lastSeen, e.type, e.reason, object, message];
    const source = [e.source?.component, e.source?.host].filter(Boolean).join(', ');
    return [lastSeen, e.type, e.reason, object, e.involvedObject.fieldPath ?? '', source, message, age(first), String(e.count ?? 1), e.metadata.name ?? ''];
  },
};

export const nodePrinter: Printable = {
  resource: 'node',
  headers: (wide) => ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', ...(wide ? ['INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME'] : [])],
  row(n: any, wide: boolean): string[] {
    const ready = (n.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
    const status = [ready ? (ready.status === 'True' ? 'Ready' : ready.status === 'False' ? 'NotReady' : 'Unknown') : 'Unknown'];
    if (n.spec?.unschedulable) status.push('SchedulingDisabled');
    const roles = Object.keys(n.metadata?.labels ?? {})
      .filter((k) => k.startsWith('node-role.kubernetes.io/') || k === 'kubernetes.io/role')
      .map((k) => (k === 'kubernetes.io/role' ? n.metadata.labels[k] : k.slice('node-role.kubernetes.io/'.length)))
      .filter(Boolean)
      .sort();
    const info = n.status?.nodeInfo ?? {};
    const row = [n.metadata.name, status.join(','), roles.join(',') || '<none>', age(n.metadata.creationTimestamp), info.kubeletVersion ?? ''];
    if (!wide) return row;
    const addr = (t: string) => (n.status?.addresses ?? []).find((a: any) => a.type === t)?.address ?? '<none>';
    return [...row, addr('InternalIP'), addr('ExternalIP'), info.osImage || '<unknown>', info.kernelVersion || '<unknown>', info.containerRuntimeVersion || '<unknown>'];
  },
};

/** The LABELS column (`--show-labels`): `k=v,k2=v2` sorted by key, `<none>` when empty. */
export function labelsColumn(labels: Record<string, string> | undefined): string {
  const keys = Object.keys(labels ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${labels![k]}`).join(',') : '<none>';
}
