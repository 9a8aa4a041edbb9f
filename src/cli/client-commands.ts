// kubectl-like client verbs against the daemon's API (unix socket):
// apply, get pods, describe pod, logs, exec, delete pod, top pods.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { describeError, isNodeletError, NodeletError } from '../errors.js';
import type { Event, Pod } from '../pod/api-types.js';
import { applyDefaults, parseManifests } from '../pod/manifest.js';
import { keepNodeManagedAnnotations, podUpdateChanges } from '../pod/update.js';
import { describePod } from './describe.js';
import { checkSinceTime, daemonUnreachable, defaultContainer, linePrefixer, sinceSeconds } from './client-ux.js';
import { matchLabels, parseFieldSelector, parseLabelSelector, SelectorError } from '../api/selectors.js';
import { ColumnLayout, customColumnRow, eventPrinter, labelsColumn, nodePrinter, parseOutputFormat, PrinterError, printNonTable, toJson, type OutputFormat, type Printable } from './printers.js';
import { NODELET_VERSION } from '../version.js';

export const DEFAULT_SOCKET = '/run/nodelet/nodelet.sock';

export function socketPath(flag?: string): string {
  return flag || process.env.NODELET_SOCKET || DEFAULT_SOCKET;
}

interface Resp {
  status: number;
  body: string;
}

export function request(socket: string, method: string, urlPath: string, body?: string, contentType = 'application/json'): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: urlPath, headers: body !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(daemonUnreachable(socket, e)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Streams a response body to `onData`; resolves at the end. */
export function stream(socket: string, urlPath: string, onData: (chunk: string) => void, onStatus?: (code: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'GET', path: urlPath }, (res) => {
      onStatus?.(res.statusCode ?? 0);
      res.setEncoding('utf8');
      res.on('data', onData);
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(daemonUnreachable(socket, e)));
    req.end();
  });
}

function check(r: Resp): any {
  let j: any;
  try {
    j = JSON.parse(r.body);
  } catch {
    j = undefined;
  }
  if (r.status >= 400) {
    const msg = j?.message ?? r.body;
    const e = new NodeletError(r.status === 404 ? 'NotFound' : r.status === 409 ? 'AlreadyExists' : 'InvalidArgument', `ERR_API_${j?.reason ?? r.status}`, `Error from server (${j?.reason ?? r.status}): ${msg}`);
    throw e;
  }
  return j;
}

// ------------------------------------------------------------------ formatting

export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 3 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** kubectl's STATUS column (printers.go printPod). */
export function podStatusReason(pod: Pod): string {
  const st = pod.status;
  let reason = st?.reason || st?.phase || 'Unknown';
  const inits = st?.initContainerStatuses ?? [];
  let initializing = false;
  inits.forEach((c, i) => {
    if (initializing) return;
    if (c.state.terminated && c.state.terminated.exitCode === 0) return;
    if (c.state.running && c.started) return; // sidecar
    if (c.state.terminated) reason = c.state.terminated.reason ? `Init:${c.state.terminated.reason}` : `Init:ExitCode:${c.state.terminated.exitCode}`;
    else if (c.state.waiting?.reason && c.state.waiting.reason !== 'PodInitializing') reason = `Init:${c.state.waiting.reason}`;
    else reason = `Init:${i}/${inits.length}`;
    initializing = true;
  });
  if (!initializing) {
    let hasRunning = false;
    for (const c of [...(st?.containerStatuses ?? [])].reverse()) {
      if (c.state.waiting?.reason) reason = c.state.waiting.reason;
      else if (c.state.terminated?.reason) reason = c.state.terminated.reason;
      else if (c.state.terminated) reason = c.state.terminated.signal ? `Signal:${c.state.terminated.signal}` : `ExitCode:${c.state.terminated.exitCode}`;
      else if (c.state.running && c.ready) hasRunning = true;
    }
    if (reason === 'Completed' && hasRunning) reason = 'Running';
  }
  if (pod.metadata.deletionTimestamp) reason = 'Terminating';
  return reason;
}

function restarts(pod: Pod): string {
  const all = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const n = all.reduce((a, c) => a + c.restartCount, 0);
  let last: string | undefined;
  for (const c of all) {
    const t = c.lastState?.terminated?.finishedAt;
    if (t && (!last || t > last)) last = t;
  }
  return last && n > 0 ? `${n} (${age(last)} ago)` : String(n);
}

export function podRow(pod: Pod, wide: boolean, withNs: boolean): string[] {
  const cs = pod.status?.containerStatuses ?? [];
  const ready = `${cs.filter((c) => c.ready).length}/${pod.spec.containers.length}`;
  const row = [pod.metadata.name!, ready, podStatusReason(pod), restarts(pod), age(pod.metadata.creationTimestamp)];
  if (wide) {
    // kubectl's wide columns: IP NODE NOMINATED NODE READINESS GATES
    const gates: { conditionType: string }[] = (pod.spec as { readinessGates?: { conditionType: string }[] }).readinessGates ?? [];
    const conds = pod.status?.conditions ?? [];
    const gatesCell = gates.length ? `${gates.filter((g) => conds.some((c) => c.type === g.conditionType && c.status === 'True')).length}/${gates.length}` : '<none>';
    row.push(pod.status?.podIP || '<none>', pod.spec.nodeName || '<none>', (pod.status as { nominatedNodeName?: string } | undefined)?.nominatedNodeName || '<none>', gatesCell);
  }
  return withNs ? [pod.metadata.namespace ?? 'default', ...row] : row;
}

export function header(wide: boolean, withNs: boolean): string[] {
  const h = ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(wide ? ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'] : [])];
  return withNs ? ['NAMESPACE', ...h] : h;
}

export const podPrinter: Printable = { resource: 'pod', headers: (wide) => header(wide, false), row: (p: Pod, wide) => podRow(p, wide, false) };

// ------------------------------------------------------------------ verbs

/**
 * kubectl apply for pods: create what is missing; for a pod that exists, compare the manifest (defaulted as
 * the daemon would) with the pod and PUT it when it differs — the daemon applies what the API server lets an
 * update change, or answers 422 with the API server's message (`The Pod "web" is invalid: spec: Forbidden:
 * ...`). Prints `pod/NAME created|configured|unchanged` per pod; errors on stderr, exit code 1 if any.
 * A kind nodelet does not run (Deployment...) fails the whole file before anything is sent.
 */
export async function applyFile(socketFlag: string | undefined, file: string, quiet = false): Promise<void> {
  const socket = socketPath(socketFlag);
  const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const parsed = parseManifests(text, file, { unsupportedKinds: 'error' });
  const say = (line: string) => {
    if (!quiet) process.stdout.write(line + '\n');
  };
  let failed = false;
  for (const pod of parsed.pods) {
    const ns = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name;
    const at = `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`;
    try {
      let existing = name ? await request(socket, 'GET', `${at}/${encodeURIComponent(name)}`) : undefined;
      if (!existing || existing.status === 404) {
        // send the pod with the ConfigMaps/Secrets of the file as one multi-document body
        const docs = [pod, ...parsed.configMaps, ...parsed.secrets].map((d) => YAML.stringify(d)).join('---\n');
        const r = await request(socket, 'POST', at, docs, 'application/yaml');
        if (r.status !== 409) {
          check(r);
          say(`pod/${name} created`);
          continue;
        }
        existing = await request(socket, 'GET', `${at}/${encodeURIComponent(name!)}`); // created meanwhile
      }
      const current = check(existing) as Pod;
      const wanted = keepNodeManagedAnnotations(current, applyDefaults({ ...pod, metadata: { ...pod.metadata, namespace: ns } }, { uid: () => current.metadata.uid!, now: new Date(current.metadata.creationTimestamp ?? Date.now()) }));
      const changes = podUpdateChanges(current, wanted);
      if (changes.changes.length === 0) {
        say(`pod/${name} unchanged`);
        continue;
      }
      const r = await request(socket, 'PUT', `${at}/${encodeURIComponent(name!)}`, JSON.stringify(pod), 'application/json');
      if (r.status === 422) {
        failed = true;
        process.stderr.write(invalidMessage(r) + '\n');
        continue;
      }
      check(r);
      say(`pod/${name} configured`);
    } catch (e) {
      if (isNodeletError(e, 'ERR_DAEMON_UNREACHABLE')) throw e;
      failed = true;
      process.stderr.write(`${describeError(e)}\n`);
    }
  }
  if (failed) process.exitCode = 1;
}

/** kubectl's rendering of a 422 Status: `The Pod "web" is invalid: <field>: <message>` (one cause per line when several). */
function invalidMessage(r: Resp): string {
  let j: any;
  try {
    j = JSON.parse(r.body);
  } catch {
    return r.body;
  }
  const causes: { field?: string; message: string }[] = j?.details?.causes ?? [];
  const what = j?.details?.kind && j?.details?.name ? `The ${j.details.kind} ${JSON.stringify(j.details.name)} is invalid` : 'The request is invalid';
  if (causes.length === 0) return j?.message ?? r.body;
  const lines = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  return lines.length === 1 ? `${what}: ${lines[0]}` : `${what}: \n${lines.map((l) => `* ${l}`).join('\n')}`;
}

// ------------------------------------------------------------------ get

interface TableOpts {
  /** the NAMESPACE column first (-A) */
  withNs: boolean;
  /** the LABELS column last (--show-labels) */
  showLabels: boolean;
}

/** The header and row of an object in a table format (default, wide, custom-columns). */
export function tableShape(fmt: OutputFormat, printer: Printable, t: TableOpts): { header: string[]; row: (obj: any) => string[] } {
  if (fmt.kind === 'custom-columns') return { header: fmt.columns.map((c) => c.header), row: (obj) => customColumnRow(fmt.columns, obj) };
  const wide = fmt.kind === 'table' && fmt.wide;
  return {
    header: [...(t.withNs ? ['NAMESPACE'] : []), ...printer.headers(wide), ...(t.showLabels ? ['LABELS'] : [])],
    row: (obj) => [...(t.withNs ? [obj.metadata?.namespace ?? 'default'] : []), ...printer.row(obj, wide), ...(t.showLabels ? [labelsColumn(obj.metadata?.labels)] : [])],
  };
}

/** `get` of a list (or one object): what kubectl prints, on stdout; `No resources found…` on stderr. */
export function renderGet(objs: any[], fmt: OutputFormat, printer: Printable, t: TableOpts & { single?: boolean; namespace?: string }): { stdout: string; stderr: string } {
  const other = printNonTable(fmt, objs, printer.resource, !!t.single);
  if (other !== undefined) return { stdout: other, stderr: '' };
  if (objs.length === 0) return { stdout: '', stderr: t.namespace && !t.withNs ? `No resources found in ${t.namespace} namespace.\n` : 'No resources found\n' };
  const shape = tableShape(fmt, printer, t);
  const rows = [shape.header, ...objs.map(shape.row)];
  return { stdout: new ColumnLayout(rows).lines(rows), stderr: '' };
}

const byNsName = (a: { metadata: { namespace?: string; name?: string } }, b: { metadata: { namespace?: string; name?: string } }) =>
  (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');

/** kubectl prints client-side errors as `error: …` and exits 1. */
async function kubectlErrors(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof PrinterError || e instanceof SelectorError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

interface GetPodsOpts {
  output?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  namespace: string;
  socket?: string;
  selector?: string;
  fieldSelector?: string;
  showLabels?: boolean;
  outputWatchEvents?: boolean;
}

/**
 * Watch output: the rows of a table keep the column widths of the header and the first rows (as kubectl's
 * tabwriter does once it has flushed), one row per change — an event that would print the same row as the
 * last one of that object (but for AGE) prints nothing.
 */
export class WatchPrinter {
  private layout?: ColumnLayout;
  private readonly last = new Map<string, string>();
  private count = 0;
  constructor(
    private readonly fmt: OutputFormat,
    private readonly printer: Printable,
    private readonly t: TableOpts & { outputWatchEvents?: boolean },
    /** the AGE column of a row (ignored when comparing rows); -1: none */
    private readonly ageColumn = -1,
  ) {}

  /** The text for the initial list (as ADDED events). */
  initial(objs: any[]): string {
    if (this.isTable() && objs.length) {
      const shape = tableShape(this.fmt, this.printer, this.t);
      const rows = objs.map(shape.row);
      this.layout = new ColumnLayout([shape.header, ...rows]);
      objs.forEach((o, i) => this.remember(o, rows[i]!));
      return this.layout.lines([shape.header, ...rows]);
    }
    return objs.map((o) => this.event('ADDED', o)).join('');
  }

  private isTable(): boolean {
    return this.fmt.kind === 'table' || this.fmt.kind === 'custom-columns';
  }

  private key(o: any): string {
    return o.metadata?.uid ?? `${o.metadata?.namespace}/${o.metadata?.name}`;
  }

  private remember(o: any, row: string[]): boolean {
    const sig = row.filter((_, i) => i !== this.ageColumn).join('\u0000');
    if (this.last.get(this.key(o)) === sig) return false;
    this.last.set(this.key(o), sig);
    return true;
  }

  /** The text for one watch event ('' when nothing changed). */
  event(type: string, o: any): string {
    const n = this.count++;
    switch (this.fmt.kind) {
      case 'json':
        return toJson(this.t.outputWatchEvents ? { type, object: o } : o);
      case 'yaml':
        return (n > 0 ? '---\n' : '') + YAML.stringify(this.t.outputWatchEvents ? { type, object: o } : o);
      case 'name':
      case 'jsonpath':
        return printNonTable(this.fmt, [o], this.printer.resource, true)!;
    }
    const shape = tableShape(this.fmt, this.printer, this.t);
    const row = shape.row(o);
    if (!this.remember(o, row)) return '';
    if (!this.layout) {
      this.layout = new ColumnLayout([shape.header, row]);
      return this.layout.lines([shape.header, row]);
    }
    return this.layout.line(row);
  }
}

async function getPods(name: string | undefined, o: GetPodsOpts): Promise<void> {
  const fmt = parseOutputFormat(o.output);
  const socket = socketPath(o.socket);
  if (name && (o.selector || o.allNamespaces)) throw new PrinterError(o.selector ? 'name cannot be provided when a selector is specified' : 'a resource cannot be retrieved by name across all namespaces');
  // checked here first: a bad selector is kubectl's client-side error, not a round trip
  if (o.selector) parseLabelSelector(o.selector);
  if (o.fieldSelector) parseFieldSelector(o.fieldSelector);
  const q = new URLSearchParams();
  if (o.selector) q.set('labelSelector', o.selector);
  const fieldSelector = [o.fieldSelector, name && o.watch ? `metadata.name=${name}` : undefined].filter(Boolean).join(',');
  if (fieldSelector) q.set('fieldSelector', fieldSelector);
  const ns = encodeURIComponent(o.namespace);
  const base = o.allNamespaces ? '/api/v1/pods' : `/api/v1/namespaces/${ns}/pods`;
  const t = { withNs: !!o.allNamespaces, showLabels: !!o.showLabels };
  if (name && !o.watch) {
    const pod = check(await request(socket, 'GET', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}`)) as Pod;
    return void process.stdout.write(renderGet([pod], fmt, podPrinter, { ...t, single: true }).stdout);
  }
  const list = check(await request(socket, 'GET', `${base}${q.size ? `?${q}` : ''}`));
  const pods = (list.items as Pod[]).sort(byNsName);
  if (!o.watch) {
    const r = renderGet(pods, fmt, podPrinter, { ...t, namespace: o.namespace });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    return;
  }
  const w = new WatchPrinter(fmt, podPrinter, { ...t, outputWatchEvents: o.outputWatchEvents }, fmt.kind === 'table' ? (t.withNs ? 5 : 4) : -1);
  process.stdout.write(w.initial(pods));
  // the watch starts with ADDED for every pod: skip the versions the list printed
  const seen = new Map(pods.map((p) => [p.metadata.uid, p.metadata.resourceVersion]));
  q.set('watch', '1');
  let buf = '';
  await stream(socket, `${base}?${q}`, (chunk) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line) continue;
      const ev = JSON.parse(line) as { type: string; object: Pod };
      const uid = ev.object.metadata.uid;
      if (ev.type === 'ADDED' && seen.has(uid) && seen.get(uid) === ev.object.metadata.resourceVersion) continue;
      seen.delete(uid);
      process.stdout.write(w.event(ev.type, ev.object));
    }
  });
}

async function getEvents(o: { output?: string; allNamespaces?: boolean; namespace: string; socket?: string; fieldSelector?: string }): Promise<void> {
  const fmt = parseOutputFormat(o.output);
  const socket = socketPath(o.socket);
  const q = o.fieldSelector ? `?fieldSelector=${encodeURIComponent(o.fieldSelector)}` : '';
  const base = o.allNamespaces ? '/api/v1/events' : `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/events`;
  const events = (check(await request(socket, 'GET', base + q)).items as Event[]).sort(
    (a, b) => (a.lastTimestamp || a.firstTimestamp || '').localeCompare(b.lastTimestamp || b.firstTimestamp || '') || byNsName(a, b),
  );
  const r = renderGet(events, fmt, eventPrinter, { withNs: !!o.allNamespaces, showLabels: false, namespace: o.namespace });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
}

async function getNodes(name: string | undefined, o: { output?: string; socket?: string; showLabels?: boolean }): Promise<void> {
  const fmt = parseOutputFormat(o.output);
  const socket = socketPath(o.socket);
  const nodes = name ? [check(await request(socket, 'GET', `/api/v1/nodes/${encodeURIComponent(name)}`))] : check(await request(socket, 'GET', '/api/v1/nodes')).items;
  const r = renderGet(nodes, fmt, nodePrinter, { withNs: false, showLabels: !!o.showLabels, single: !!name });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
}

/** `delete -f FILE`: the pods of the manifest, kubectl's `pod "web" deleted` per pod. */
async function deleteFile(file: string, o: { gracePeriod?: string; wait: string; namespace: string; socket?: string; ignoreNotFound?: boolean }): Promise<void> {
  const socket = socketPath(o.socket);
  const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const parsed = parseManifests(text, file, { unsupportedKinds: 'error' });
  for (const pod of parsed.pods) {
    const name = pod.metadata?.name ?? '';
    const ns = pod.metadata?.namespace ?? o.namespace;
    const q = new URLSearchParams();
    if (o.gracePeriod !== undefined) q.set('gracePeriodSeconds', o.gracePeriod);
    if (o.wait !== 'false') q.set('wait', '1');
    const r = await request(socket, 'DELETE', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}?${q}`);
    if (r.status === 404) {
      if (!o.ignoreNotFound) {
        process.stderr.write(`Error from server (NotFound): error when deleting "${file}": pods "${name}" not found\n`);
        process.exitCode = 1;
      }
      continue;
    }
    check(r);
    process.stdout.write(`pod "${name}" deleted\n`);
  }
}

/** kubectl version: client and server (`GET /version`) versions. */
async function version(o: { client?: boolean; output?: string; socket?: string }): Promise<void> {
  if (o.output !== undefined && o.output !== 'json' && o.output !== 'yaml') throw new PrinterError(`--output must be 'yaml' or 'json'`);
  const [major, minor] = NODELET_VERSION.split('.');
  const clientVersion = { major, minor, gitVersion: `v${NODELET_VERSION}`, gitCommit: '', gitTreeState: '', buildDate: '', goVersion: '', compiler: 'node', platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}` };
  let serverVersion: Record<string, string> | undefined;
  let serverError: unknown;
  if (!o.client) {
    try {
      serverVersion = check(await request(socketPath(o.socket), 'GET', '/version'));
    } catch (e) {
      serverError = e;
    }
  }
  const info = { clientVersion, ...(serverVersion ? { serverVersion } : {}) };
  if (o.output === 'json') process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  else if (o.output === 'yaml') process.stdout.write(YAML.stringify(info));
  else process.stdout.write(`Client Version: ${clientVersion.gitVersion}\n${serverVersion ? `Server Version: ${serverVersion.gitVersion}\n` : ''}`);
  if (serverError) throw serverError;
}

interface LogsOptions {
  container?: string;
  allContainers?: boolean;
  selector?: string;
  prefix?: boolean;
  follow?: boolean;
  previous?: boolean;
  timestamps?: boolean;
  tail?: string;
  since?: string;
  sinceTime?: string;
  limitBytes?: string;
  maxLogRequests: string;
  namespace: string;
  socket?: string;
}

/**
 * kubectl logs: one pod (POD or pod/POD) or every pod matching -l; one container (-c, else the default one
 * with kubectl's "Defaulted container" note) or all of them (--all-containers: init containers first);
 * lines prefixed `[pod/NAME/CONTAINER] ` with --prefix or --all-containers. Without -f the logs are printed
 * one after the other; with -f they are followed at once (at most --max-log-requests, as kubectl).
 */
async function runLogs(podArg: string | undefined, o: LogsOptions): Promise<void> {
  const socket = socketPath(o.socket);
  const ns = encodeURIComponent(o.namespace);
  if (podArg && o.selector) throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', 'only one of a pod name or -l/--selector may be given', { details: { kubectlStyle: true } });
  if (!podArg && !o.selector) throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', 'a pod name or -l/--selector is required: nodelet logs POD [-c CONTAINER]', { details: { kubectlStyle: true } });
  if (o.since && o.sinceTime) throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', 'at most one of --since-time or --since may be used', { details: { kubectlStyle: true } });
  if (o.container && o.allContainers) throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', '--container (-c) and --all-containers cannot be used together', { details: { kubectlStyle: true } });
  const q = new URLSearchParams();
  if (o.follow) q.set('follow', 'true');
  if (o.previous) q.set('previous', 'true');
  if (o.timestamps) q.set('timestamps', 'true');
  if (o.tail !== undefined) q.set('tailLines', o.tail);
  if (o.since) q.set('sinceSeconds', String(sinceSeconds(o.since)));
  if (o.sinceTime) q.set('sinceTime', checkSinceTime(o.sinceTime));
  if (o.limitBytes !== undefined) q.set('limitBytes', o.limitBytes);

  let pods: Pod[];
  if (o.selector) {
    const reqs = parseLabelSelector(o.selector);
    const list = check(await request(socket, 'GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(o.selector)}`)) as { items: Pod[] };
    // the daemon filters too when it knows labelSelector; matching again here costs nothing
    pods = list.items.filter((p) => matchLabels(reqs, p.metadata.labels)).sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
    if (!pods.length) return void process.stderr.write(`No resources found in ${o.namespace} namespace.\n`);
  } else {
    const name = podArg!.replace(/^(pods?|po)\//, '');
    pods = [check(await request(socket, 'GET', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}`)) as Pod];
  }
  const targets: { pod: string; container: string }[] = [];
  for (const p of pods) {
    const names = [...(p.spec.initContainers ?? []), ...p.spec.containers].map((c) => c.name);
    if (o.allContainers) for (const c of names) targets.push({ pod: p.metadata.name!, container: c });
    else if (o.container) {
      if (!names.includes(o.container) && o.selector) continue; // -l -c: the pods that have it
      targets.push({ pod: p.metadata.name!, container: o.container });
    } else {
      const d = defaultContainer(p);
      if (d.note) process.stderr.write(d.note + '\n');
      targets.push({ pod: p.metadata.name!, container: d.name });
    }
  }
  const prefixed = !!(o.prefix || o.allContainers);
  const max = Number(o.maxLogRequests);
  if (o.follow && targets.length > max)
    throw new NodeletError('InvalidArgument', 'ERR_API_BadRequest', `you are attempting to follow ${targets.length} log streams, but maximum allowed concurrency is ${max}, use --max-log-requests to increase the limit`, { details: { kubectlStyle: true } });
  const one = async (t: { pod: string; container: string }) => {
    const tq = new URLSearchParams(q);
    tq.set('container', t.container);
    let status = 0;
    let errBody = '';
    const out = linePrefixer(prefixed ? `[pod/${t.pod}/${t.container}] ` : '', (s) => void process.stdout.write(s));
    await stream(socket, `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(t.pod)}/log?${tq}`, (c) => (status >= 400 ? (errBody += c) : out.push(c)), (s) => (status = s));
    out.end();
    if (status >= 400) check({ status, body: errBody });
  };
  if (o.follow) await Promise.all(targets.map(one));
  else for (const t of targets) await one(t);
}

export function registerClientCommands(program: Command): void {
  const sock = (c: Command) => c.option('--socket <path>', `daemon socket (default $NODELET_SOCKET or ${DEFAULT_SOCKET})`);
  const nsOpt = (c: Command) => c.option('-n, --namespace <ns>', 'namespace', 'default');

  sock(program.command('apply').description('create the pods of a manifest in the daemon, or update them (what Kubernetes lets change on a pod)').requiredOption('-f, --filename <file>', 'manifest file ("-" for stdin)'))
    .action(async (o: { filename: string; socket?: string }) => applyFile(o.socket, o.filename));

  const get = program.command('get').description('display pods, events or this node');
  sock(nsOpt(get.command('pods').alias('pod').alias('po').argument('[name]')))
    .option('-o, --output <format>', 'json, yaml, name, wide, jsonpath=TEMPLATE, jsonpath-file=FILE, custom-columns=SPEC, custom-columns-file=FILE')
    .option('-A, --all-namespaces', 'list pods of every namespace')
    .option('-w, --watch', 'watch for changes after listing')
    .option('-l, --selector <selector>', 'label selector: app=web,tier!=db, env in (a,b), key, !key')
    .option('--field-selector <selector>', 'field selector: metadata.name=, metadata.namespace=, status.phase=, spec.nodeName= (=, ==, !=)')
    .option('--show-labels', 'a LABELS column last')
    .option('--output-watch-events', 'with -w and -o json|yaml: {"type","object"} watch events')
    .action((name: string | undefined, o: GetPodsOpts) => kubectlErrors(() => getPods(name, o)));
  sock(nsOpt(get.command('events').alias('event').alias('ev')))
    .option('-o, --output <format>', 'json, yaml, name, wide, jsonpath=…, custom-columns=…')
    .option('-A, --all-namespaces', 'events of every namespace')
    .option('--field-selector <selector>', 'involvedObject.name=, involvedObject.uid=, reason=, type=')
    .action((o: { output?: string; allNamespaces?: boolean; namespace: string; socket?: string; fieldSelector?: string }) => kubectlErrors(() => getEvents(o)));
  sock(get.command('nodes').alias('node').alias('no').argument('[name]'))
    .option('-o, --output <format>', 'json, yaml, name, wide, jsonpath=…, custom-columns=…')
    .option('--show-labels', 'a LABELS column last')
    .action((name: string | undefined, o: { output?: string; socket?: string; showLabels?: boolean }) => kubectlErrors(() => getNodes(name, o)));

  sock(program.command('version').description('client and server versions'))
    .option('--client', 'the client version only')
    .option('-o, --output <format>', 'json or yaml')
    .action((o: { client?: boolean; output?: string; socket?: string }) => kubectlErrors(() => version(o)));

  const desc = program.command('describe').description('show details of a pod');
  sock(nsOpt(desc.command('pod').alias('pods').alias('po').argument('<name>'))).action(async (name: string, o: { namespace: string; socket?: string }) => {
    const socket = socketPath(o.socket);
    const ns = encodeURIComponent(o.namespace);
    const pod = check(await request(socket, 'GET', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}`)) as Pod;
    const events = (check(await request(socket, 'GET', `/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${encodeURIComponent(name)}`)).items as Event[]).filter(
      (e) => e.involvedObject.uid === pod.metadata.uid,
    );
    const logsOf: Record<string, string> = {};
    for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const failed = (s.state.terminated && s.state.terminated.exitCode !== 0) || s.state.waiting?.reason === 'CrashLoopBackOff';
      if (!failed) continue;
      const prev = s.state.waiting ? '&previous=true' : '';
      const r = await request(socket, 'GET', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}/log?container=${encodeURIComponent(s.name)}&tailLines=10${prev}`);
      if (r.status === 200) logsOf[s.name] = r.body;
    }
    process.stdout.write(describePod(pod, events, logsOf));
  });

  sock(nsOpt(program.command('logs').description('print the logs of a container (kubectl logs)').argument('[pod]', 'POD or pod/POD (or -l SELECTOR)')))
    .option('-c, --container <name>', 'container name (default: the kubectl.kubernetes.io/default-container annotation, else the first)')
    .option('--all-containers', 'the logs of every container of the pod(s), each line prefixed [pod/NAME/CONTAINER]')
    .option('-l, --selector <selector>', 'the pods whose labels match (app=web,tier!=db)')
    .option('--prefix', 'prefix each line with [pod/NAME/CONTAINER]')
    .option('-f, --follow', 'follow the log')
    .option('-p, --previous', 'the previous terminated container')
    .option('--timestamps', 'prefix each line with its timestamp')
    .option('--tail <n>', 'lines of recent log to show (-1: all)')
    .option('--since <duration>', 'only lines newer than this (5s, 2m, 1h)')
    .option('--since-time <time>', 'only lines after this RFC 3339 time')
    .option('--limit-bytes <n>', 'at most this many bytes per log')
    .option('--max-log-requests <n>', 'with -l or --all-containers and -f: at most this many logs followed at once', '5')
    .action((pod: string | undefined, o: LogsOptions) => kubectlErrors(() => runLogs(pod, o)));

  sock(nsOpt(program.command('exec').description('run a command in a container').argument('<pod>').argument('<command...>')))
    .option('-c, --container <name>', 'container name (default: the kubectl.kubernetes.io/default-container annotation, else the first)')
    .option('-i, --stdin', 'stream stdin to the command (EOF at the end of input)')
    .option('-t, --tty', 'with -i and a terminal on stdin: give the command a terminal (raw mode here, window size follows; TERM=xterm)')
    .action(async (pod: string, command: string[], o: { container?: string; stdin?: boolean; tty?: boolean; namespace: string; socket?: string }) => {
      const socket = socketPath(o.socket);
      let container = o.container;
      pod = pod.replace(/^(pods?|po)\//, '');
      if (!container) {
        // kubectl's choice of container, and its note when there was one to make
        const p = check(await request(socket, 'GET', `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(pod)}`)) as Pod;
        const d = defaultContainer(p);
        if (d.note) process.stderr.write(d.note + '\n');
        container = d.name;
      }
      // streaming exec (WebSocket, src/cli/exec-command.ts), loaded only by this verb
      const { runExec } = await import('./exec-command.js');
      process.exitCode = await runExec({ socket, namespace: o.namespace, pod, container, command, stdin: !!o.stdin, tty: !!o.tty });
    });

  program
    .command('ps')
    .description('the pods started by "nodelet run" on this --root (podman ps): NAME, NAMESPACE, STATUS, OWNER PID, AGE')
    .option('-q, --quiet', 'names only')
    .action(async (o: { quiet?: boolean }) => {
      const { listRunPods } = await import('./run-ps.js');
      const root = path.resolve(program.opts<{ root: string }>().root);
      const rows = listRunPods(root);
      if (o.quiet) return void process.stdout.write(rows.map((r) => `${r.name}\n`).join(''));
      if (!rows.length) return void process.stderr.write(`No pods started by "nodelet run" on ${root}\n`);
      process.stdout.write(table([['NAME', 'NAMESPACE', 'STATUS', 'OWNER PID', 'AGE'], ...rows.map((r) => [r.name, r.namespace, r.status, String(r.ownerPid), r.age])]));
    });

  // delete's options are the parent's (commander gives the parent any option it knows, wherever it is), so
  // `delete -f FILE` and `delete pod NAME…` share them
  const del = sock(nsOpt(program.command('delete').description('delete pods: delete pod NAME… or delete -f FILE')))
    .option('-f, --filename <file>', 'delete the pods of this manifest ("-" for stdin)')
    .option('--grace-period <seconds>', 'seconds the containers get to stop (default: the pod\'s terminationGracePeriodSeconds)')
    .option('--wait <bool>', 'wait until the pod is gone', 'true')
    .option('--ignore-not-found', 'a pod that does not exist is not an error')
    .action(async (o: { filename?: string; gracePeriod?: string; wait: string; namespace: string; socket?: string; ignoreNotFound?: boolean }) => {
      if (!o.filename) {
        process.stderr.write('error: You must provide one or more resources by argument or filename.\n');
        process.exitCode = 1;
        return;
      }
      return deleteFile(o.filename, o);
    });
  del.command('pod').alias('pods').alias('po').argument('<names...>')
    .action(async (names: string[]) => {
      const o = del.opts<{ gracePeriod?: string; wait: string; namespace: string; socket?: string; ignoreNotFound?: boolean }>();
      const socket = socketPath(o.socket);
      for (const name of names) {
        const q = new URLSearchParams();
        if (o.gracePeriod !== undefined) q.set('gracePeriodSeconds', o.gracePeriod);
        if (o.wait !== 'false') q.set('wait', '1');
        const r = await request(socket, 'DELETE', `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(name)}?${q}`);
        if (r.status === 404 && o.ignoreNotFound) continue;
        check(r);
        process.stdout.write(`pod "${name}" deleted\n`);
      }
    });

  const top = program.command('top').description('resource usage');
  sock(nsOpt(top.command('pods').alias('pod'))).option('-A, --all-namespaces', 'every namespace').action(async (o: { namespace: string; allNamespaces?: boolean; socket?: string }) => {
    const socket = socketPath(o.socket);
    const r = check(await request(socket, 'GET', `/api/v1/stats/pods${o.allNamespaces ? '' : `?namespace=${encodeURIComponent(o.namespace)}`}`));
    const rows = (r.items as { namespace: string; name: string; cpuMilli: number; memoryBytes: number }[]).map((p) => [
      ...(o.allNamespaces ? [p.namespace] : []), p.name, `${Math.round(p.cpuMilli)}m`, `${Math.round(p.memoryBytes / 1048576)}Mi`,
    ]);
    process.stdout.write(table([[...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'CPU(cores)', 'MEMORY(bytes)'], ...rows]));
  });
}
