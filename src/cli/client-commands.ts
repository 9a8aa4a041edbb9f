// kubectl-like client verbs against the daemon's API (unix socket):
// apply, get pods, describe pod, logs, exec, delete pod, top pods.
import fs from 'node:fs';
import http from 'node:http';
import type { Command } from 'commander';
import YAML from 'yaml';
import { describeError, isNodeletError, NodeletError } from '../errors.js';
import type { ContainerStatus, Event, Pod } from '../pod/api-types.js';
import { applyDefaults, parseManifests } from '../pod/manifest.js';
import { keepNodeManagedAnnotations, podUpdateChanges } from '../pod/update.js';
import { describeExit } from './describe.js';

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
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new NodeletError('Unavailable', 'ERR_DAEMON_UNREACHABLE', `cannot reach the nodelet daemon at ${socket}: ${e.code ?? e.message} (is "nodelet daemon" running? set --socket or $NODELET_SOCKET)`, { cause: e })),
    );
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
    req.on('error', (e: NodeJS.ErrnoException) => reject(new NodeletError('Unavailable', 'ERR_DAEMON_UNREACHABLE', `cannot reach the nodelet daemon at ${socket}: ${e.code ?? e.message}`, { cause: e })));
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
  if (wide) row.push(pod.status?.podIP ?? '<none>', pod.spec.nodeName ?? 'localhost');
  return withNs ? [pod.metadata.namespace ?? 'default', ...row] : row;
}

function header(wide: boolean, withNs: boolean): string[] {
  const h = ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(wide ? ['IP', 'NODE'] : [])];
  return withNs ? ['NAMESPACE', ...h] : h;
}

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

function printPods(pods: Pod[], o: { output?: string }, withNs: boolean, single = false): void {
  const obj = single ? pods[0] : { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: pods };
  if (o.output === 'json') return void process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
  if (o.output === 'yaml') return void process.stdout.write(YAML.stringify(obj));
  if (o.output === 'name') return void process.stdout.write(pods.map((p) => `pod/${p.metadata.name}\n`).join(''));
  const wide = o.output === 'wide';
  if (pods.length === 0) return void process.stderr.write('No resources found\n');
  process.stdout.write(table([header(wide, withNs), ...pods.map((p) => podRow(p, wide, withNs))]));
}

function describePod(pod: Pod, events: Event[], logsOf: Record<string, string>): string {
  const out: string[] = [];
  const kv = (k: string, v: unknown, indent = '') => out.push(`${indent}${(k + ':').padEnd(Math.max(0, 20 - indent.length))}${v ?? '<none>'}`);
  kv('Name', pod.metadata.name);
  kv('Namespace', pod.metadata.namespace);
  kv('Node', 'localhost');
  kv('Start Time', pod.status?.startTime);
  kv('Labels', Object.entries(pod.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>');
  kv('Status', podStatusReason(pod));
  if (pod.status?.reason) kv('Reason', pod.status.reason);
  if (pod.status?.message) kv('Message', pod.status.message);
  kv('IP', pod.status?.podIP);
  kv('QoS Class', pod.status?.qosClass);
  const section = (title: string, specs: Pod['spec']['containers'], statuses: ContainerStatus[]) => {
    if (!specs.length) return;
    out.push(`${title}:`);
    for (const c of specs) {
      const s = statuses.find((x) => x.name === c.name);
      out.push(`  ${c.name}:`);
      kv('Container ID', s?.containerID, '    ');
      kv('Image', c.image, '    ');
      kv('Image ID', s?.imageID || undefined, '    ');
      if (c.command) kv('Command', c.command.join(' '), '    ');
      if (c.args) kv('Args', c.args.join(' '), '    ');
      const state = (st: ContainerStatus['state'] | undefined, label: string) => {
        if (!st) return;
        if (st.running) {
          kv(label, 'Running', '    ');
          kv('Started', st.running.startedAt, '      ');
        } else if (st.waiting) {
          kv(label, 'Waiting', '    ');
          kv('Reason', st.waiting.reason, '      ');
          if (st.waiting.message) kv('Message', st.waiting.message, '      ');
        } else if (st.terminated) {
          kv(label, 'Terminated', '    ');
          kv('Reason', st.terminated.reason, '      ');
          kv('Exit Code', `${st.terminated.exitCode}${describeExit(st.terminated.exitCode, st.terminated.reason, c.resources?.limits?.memory !== undefined) ? ` (${describeExit(st.terminated.exitCode, st.terminated.reason, c.resources?.limits?.memory !== undefined)})` : ''}`, '      ');
          if (st.terminated.message) kv('Message', st.terminated.message.trim(), '      ');
          kv('Started', st.terminated.startedAt, '      ');
          kv('Finished', st.terminated.finishedAt, '      ');
        }
      };
      state(s?.state, 'State');
      if (s?.lastState && Object.keys(s.lastState).length) state(s.lastState, 'Last State');
      kv('Ready', s?.ready ? 'True' : 'False', '    ');
      kv('Restart Count', s?.restartCount ?? 0, '    ');
      const lim = c.resources?.limits;
      const req = c.resources?.requests;
      if (lim) out.push(`    Limits:\n${Object.entries(lim).map(([k, v]) => `      ${k}: ${v}`).join('\n')}`);
      if (req) out.push(`    Requests:\n${Object.entries(req).map(([k, v]) => `      ${k}: ${v}`).join('\n')}`);
      for (const [label, p] of [['Liveness', c.livenessProbe], ['Readiness', c.readinessProbe], ['Startup', c.startupProbe]] as const) {
        if (!p) continue;
        const h = p.exec ? `exec [${(p.exec.command ?? []).join(' ')}]` : p.httpGet ? `http-get ${p.httpGet.scheme === 'HTTPS' ? 'https' : 'http'}://${p.httpGet.host ?? ''}:${p.httpGet.port}${p.httpGet.path ?? '/'}` : p.tcpSocket ? `tcp-socket :${p.tcpSocket.port}` : p.grpc ? `grpc <pod>:${p.grpc.port} ${p.grpc.service ?? ''}` : '?';
        kv(label, `${h} delay=${p.initialDelaySeconds ?? 0}s timeout=${p.timeoutSeconds ?? 1}s period=${p.periodSeconds ?? 10}s #success=${p.successThreshold ?? 1} #failure=${p.failureThreshold ?? 3}`, '    ');
      }
      const failing = s && ((s.state.terminated && s.state.terminated.exitCode !== 0) || s.state.waiting?.reason === 'CrashLoopBackOff' || (s.lastState?.terminated && s.lastState.terminated.exitCode !== 0));
      if (failing && logsOf[c.name]) out.push(`    Last Log Lines:\n${logsOf[c.name]!.trimEnd().split('\n').map((l) => `      ${l}`).join('\n')}`);
    }
  };
  section('Init Containers', pod.spec.initContainers ?? [], pod.status?.initContainerStatuses ?? []);
  section('Containers', pod.spec.containers, pod.status?.containerStatuses ?? []);
  out.push('Conditions:', '  Type                        Status');
  for (const c of pod.status?.conditions ?? []) out.push(`  ${c.type.padEnd(28)}${c.status}`);
  if (pod.spec.volumes?.length) {
    out.push('Volumes:');
    for (const v of pod.spec.volumes) out.push(`  ${v.name}: ${Object.keys(v).filter((k) => k !== 'name').join(',')}`);
  }
  out.push('Events:');
  if (!events.length) out.push('  <none>');
  else {
    out.push(
      table([
        ['Type', 'Reason', 'Age', 'From', 'Message'],
        ...events.map((e) => ['  ' + e.type, e.reason, e.count > 1 ? `${age(e.lastTimestamp)} (x${e.count} over ${age(e.firstTimestamp)})` : age(e.lastTimestamp), 'nodelet', e.message]),
      ]).replace(/^/gm, '  ').trimEnd(),
    );
  }
  return out.join('\n') + '\n';
}

export function registerClientCommands(program: Command): void {
  const sock = (c: Command) => c.option('--socket <path>', `daemon socket (default $NODELET_SOCKET or ${DEFAULT_SOCKET})`);
  const nsOpt = (c: Command) => c.option('-n, --namespace <ns>', 'namespace', 'default');

  sock(program.command('apply').description('create the pods of a manifest in the daemon, or update them (what Kubernetes lets change on a pod)').requiredOption('-f, --filename <file>', 'manifest file ("-" for stdin)'))
    .action(async (o: { filename: string; socket?: string }) => applyFile(o.socket, o.filename));

  const get = program.command('get').description('display pods');
  sock(nsOpt(get.command('pods').alias('pod').alias('po').argument('[name]')))
    .option('-o, --output <format>', 'wide, json, yaml or name')
    .option('-A, --all-namespaces', 'list pods of every namespace')
    .option('-w, --watch', 'watch for changes after listing')
    .action(async (name: string | undefined, o: { output?: string; allNamespaces?: boolean; watch?: boolean; namespace: string; socket?: string }) => {
      const socket = socketPath(o.socket);
      const base = o.allNamespaces ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods`;
      if (name && !o.watch) return printPods([check(await request(socket, 'GET', `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(name)}`))], o, false, true);
      if (!o.watch) return printPods(check(await request(socket, 'GET', base)).items, o, !!o.allNamespaces);
      const wide = o.output === 'wide';
      let first = true;
      let buf = '';
      await stream(socket, `${base}?watch=1`, (chunk) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line) continue;
          const ev = JSON.parse(line) as { type: string; object: Pod };
          if (name && ev.object.metadata.name !== name) continue;
          if (o.output === 'json') process.stdout.write(JSON.stringify(ev) + '\n');
          else {
            const row = podRow(ev.object, wide, !!o.allNamespaces);
            if (ev.type === 'DELETED') row[o.allNamespaces ? 3 : 2] = 'Terminating';
            process.stdout.write(first ? table([header(wide, !!o.allNamespaces), row]) : table([row.map(() => ''), row]).split('\n')[1] + '\n');
            first = false;
          }
        }
      });
    });

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

  sock(nsOpt(program.command('logs').description('print the logs of a container').argument('<pod>')))
    .option('-c, --container <name>', 'container name')
    .option('-f, --follow', 'follow the log')
    .option('-p, --previous', 'the previous terminated container')
    .option('--timestamps', 'prefix each line with its timestamp')
    .option('--tail <n>', 'lines of recent log to show')
    .action(async (pod: string, o: { container?: string; follow?: boolean; previous?: boolean; timestamps?: boolean; tail?: string; namespace: string; socket?: string }) => {
      const socket = socketPath(o.socket);
      const q = new URLSearchParams();
      if (o.container) q.set('container', o.container);
      if (o.follow) q.set('follow', 'true');
      if (o.previous) q.set('previous', 'true');
      if (o.timestamps) q.set('timestamps', 'true');
      if (o.tail !== undefined) q.set('tailLines', o.tail);
      let status = 0;
      let errBody = '';
      await stream(socket, `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`, (c) => (status >= 400 ? (errBody += c) : process.stdout.write(c)), (s) => (status = s));
      if (status >= 400) check({ status, body: errBody });
    });

  sock(nsOpt(program.command('exec').description('run a command in a container').argument('<pod>').argument('<command...>')))
    .option('-c, --container <name>', 'container name')
    .option('-i, --stdin', 'stream stdin to the command (EOF at the end of input)')
    .option('-t, --tty', 'with -i and a terminal on stdin: give the command a terminal (raw mode here, window size follows)')
    .action(async (pod: string, command: string[], o: { container?: string; stdin?: boolean; tty?: boolean; namespace: string; socket?: string }) => {
      // streaming exec (WebSocket, src/cli/exec-command.ts), loaded only by this verb
      const { runExec } = await import('./exec-command.js');
      process.exitCode = await runExec({ socket: socketPath(o.socket), namespace: o.namespace, pod, container: o.container, command, stdin: !!o.stdin, tty: !!o.tty });
    });

  const del = program.command('delete').description('delete pods');
  sock(nsOpt(del.command('pod').alias('pods').alias('po').argument('<names...>')))
    .option('--grace-period <seconds>', 'seconds the containers get to stop (default: the pod\'s terminationGracePeriodSeconds)')
    .option('--wait <bool>', 'wait until the pod is gone', 'true')
    .action(async (names: string[], o: { gracePeriod?: string; wait: string; namespace: string; socket?: string }) => {
      const socket = socketPath(o.socket);
      for (const name of names) {
        const q = new URLSearchParams();
        if (o.gracePeriod !== undefined) q.set('gracePeriodSeconds', o.gracePeriod);
        if (o.wait !== 'false') q.set('wait', '1');
        check(await request(socket, 'DELETE', `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(name)}?${q}`));
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
