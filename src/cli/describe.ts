// `nodelet describe pod`, laid out as kubectl's (k8s.io/kubectl pkg/describe describePod): the same
// labels, order and indentation (two spaces a level), columns aligned the way Go's text/tabwriter
// aligns them (minwidth 0, padding 2: a column block is a run of consecutive lines that have that
// cell), times in RFC 1123 with a numeric zone, ages as apimachinery's HumanDuration. nodelet adds
// a meaning to exit codes and the last log lines of a failing container. Pure: the verb in
// client-commands.ts fetches the pod, its events and the log lines.
import { constants } from 'node:os';
import type { Container, ContainerStatus, Event, Pod } from '../pod/api-types.js';
import { getPodQOS } from '../pod/qos.js';

const byNumber = new Map(Object.entries(constants.signals as Record<string, number>).map(([k, v]) => [v, k]));

/** Why a container exited, in words. */
export function describeExit(code: number, reason?: string, hasMemoryLimit = false): string {
  if (reason === 'OOMKilled') return hasMemoryLimit ? 'killed by the kernel OOM killer: the container hit its memory limit' : 'killed by the kernel OOM killer: the pod hit its memory limit';
  if (code === 0) return '';
  if (code > 128 && code < 128 + 65) {
    const sig = byNumber.get(code - 128);
    if (sig === 'SIGKILL') return 'SIGKILL: killed (OOM, liveness failure after the grace period, or kill -9)';
    if (sig === 'SIGTERM') return 'SIGTERM: stopped';
    return sig ? `killed by ${sig}` : `killed by signal ${code - 128}`;
  }
  if (code === 126) return 'command not executable';
  if (code === 127) return 'command not found';
  if (code === 128 && reason === 'StartError') return 'the container could not start';
  return 'the process exited with an error';
}

// ------------------------------------------------------------------ times

/** apimachinery's duration.HumanDuration: `5s`, `3m2s`, `15m`, `5h3m`, `20h`, `2d`, `3d4h`, `400d`, `2y3d`. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.trunc(hours / 24) % 365;
    return days === 0 ? `${Math.trunc(hours / 24 / 365)}y` : `${Math.trunc(hours / 24 / 365)}y${days}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** kubectl's translateTimestampSince: the age of an RFC 3339 time, `<unknown>` without one. */
export function since(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '<unknown>';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Go's time.RFC1123Z (`Mon, 02 Jan 2006 15:04:05 -0700`) in the local zone, as kubectl prints an API time
 * (metav1.Time is local once decoded). `tzOffsetMin` (minutes east of UTC) is for tests.
 */
export function rfc1123z(iso: string | undefined, tzOffsetMin?: number): string {
  if (!iso) return '<unknown>';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const off = tzOffsetMin ?? -new Date(t).getTimezoneOffset();
  const d = new Date(t + off * 60_000); // read with the UTC getters: the wall clock of that zone
  const p = (n: number) => String(n).padStart(2, '0');
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${sign}${p(Math.floor(a / 60))}${p(a % 60)}`;
}

// ------------------------------------------------------------------ text/tabwriter

/**
 * Go's text/tabwriter with kubectl's settings (minwidth 0, padding 2, padchar ' ', no flags): cells end
 * at a tab; the last cell of a line is not part of any column; a column block is a run of consecutive
 * lines that have a (tab-terminated) cell in that column, and is as wide as its widest cell + 2.
 */
export function tabwrite(text: string, padding = 2): string {
  const rawLines = text.split('\n');
  const trailing = text.endsWith('\n');
  if (trailing) rawLines.pop();
  const cells = rawLines.map((l) => l.split('\t'));
  const widths: number[] = [];
  const out: string[] = [];
  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) out.push(cells[i]!.map((c, j) => (j < widths.length ? c.padEnd(widths[j]!) : c)).join(''));
  };
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let th = line0; th < line1; th++) {
      if (column >= cells[th]!.length - 1) continue;
      writeLines(line0, th);
      line0 = th;
      let width = 0;
      for (; th < line1; th++) {
        const l = cells[th]!;
        if (column >= l.length - 1) break;
        width = Math.max(width, [...l[column]!].length + padding);
      }
      widths.push(width);
      format(line0, th);
      widths.pop();
      line0 = th;
    }
    writeLines(line0, line1);
  };
  format(0, cells.length);
  return out.join('\n') + (trailing ? '\n' : '');
}

/** kubectl's PrefixWriter: two spaces per level, into a buffer the tabwriter aligns. */
class PrefixWriter {
  private buf = '';
  private readonly done: string[] = [];
  write(level: number, text: string): void {
    this.buf += '  '.repeat(level) + text;
  }
  /** tabwriter.Flush: what follows starts new column blocks. */
  flush(): void {
    this.done.push(tabwrite(this.buf));
    this.buf = '';
  }
  toString(): string {
    this.flush();
    return this.done.join('');
  }
}

// ------------------------------------------------------------------ pieces

function multiline(w: PrefixWriter, title: string, entries: string[]): void {
  w.write(0, `${title}:\t`);
  if (entries.length === 0) return w.write(0, '<none>\n');
  entries.forEach((e, i) => w.write(0, `${i ? '\t' : ''}${e}\n`));
}

const labelLines = (m: Record<string, string> | undefined) => Object.keys(m ?? {}).sort().map((k) => `${k}=${m![k]}`);

interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export function tolerationText(t: Toleration): string {
  let s = t.key ?? '';
  if (t.value) s += `=${t.value}`;
  if (t.effect) s += `:${t.effect}`;
  if (t.operator === 'Exists' && !t.value) s += t.key || t.effect ? ' op=Exists' : 'op=Exists';
  if (t.tolerationSeconds !== undefined && t.tolerationSeconds !== null) s += ` for ${t.tolerationSeconds}s`;
  return s;
}

function probeText(p: NonNullable<Container['livenessProbe']>): string {
  const attrs = `delay=${p.initialDelaySeconds ?? 0}s timeout=${p.timeoutSeconds ?? 1}s period=${p.periodSeconds ?? 10}s #success=${p.successThreshold ?? 1} #failure=${p.failureThreshold ?? 3}`;
  if (p.exec) return `exec [${(p.exec.command ?? []).join(' ')}] ${attrs}`;
  if (p.httpGet) {
    const host = p.httpGet.host ?? '';
    return `http-get ${(p.httpGet.scheme ?? 'HTTP').toLowerCase()}://${host.includes(':') ? `[${host}]` : host}:${p.httpGet.port}${p.httpGet.path ?? ''} ${attrs}`;
  }
  if (p.tcpSocket) return `tcp-socket ${p.tcpSocket.host ?? ''}:${p.tcpSocket.port} ${attrs}`;
  if (p.grpc) return `grpc <pod>:${p.grpc.port} ${p.grpc.service ?? ''} ${attrs}`;
  return `unknown ${attrs}`;
}

function describeState(w: PrefixWriter, label: string, st: ContainerStatus['state'] | undefined, c: Container): void {
  if (st?.running) {
    w.write(2, `${label}:\tRunning\n`);
    w.write(3, `Started:\t${rfc1123z(st.running.startedAt)}\n`);
  } else if (st?.terminated) {
    const t = st.terminated;
    w.write(2, `${label}:\tTerminated\n`);
    if (t.reason) w.write(3, `Reason:\t${t.reason}\n`);
    if (t.message) w.write(3, `Message:\t${t.message.trim()}\n`);
    const why = describeExit(t.exitCode, t.reason, c.resources?.limits?.memory !== undefined);
    w.write(3, `Exit Code:\t${t.exitCode}${why ? ` (${why})` : ''}\n`);
    if (t.signal) w.write(3, `Signal:\t${t.signal}\n`);
    w.write(3, `Started:\t${rfc1123z(t.startedAt)}\n`);
    w.write(3, `Finished:\t${rfc1123z(t.finishedAt)}\n`);
  } else {
    w.write(2, `${label}:\tWaiting\n`);
    if (st?.waiting?.reason) w.write(3, `Reason:\t${st.waiting.reason}\n`);
    if (st?.waiting?.message) w.write(3, `Message:\t${st.waiting.message}\n`); // kubectl leaves it out; it says why
  }
}

function describeEnv(w: PrefixWriter, c: Container): void {
  if (c.envFrom?.length) {
    w.write(2, 'Environment Variables from:\n');
    for (const e of c.envFrom) {
      const [from, ref] = e.configMapRef ? ['ConfigMap', e.configMapRef] : ['Secret', e.secretRef];
      w.write(3, `${ref?.name ?? ''}\t${from}${e.prefix ? ` with prefix '${e.prefix}'` : ''}\tOptional: ${!!ref?.optional}\n`);
    }
  }
  if (!c.env?.length) return w.write(2, 'Environment:\t<none>\n');
  w.write(2, 'Environment:\n');
  for (const e of c.env) {
    const vf = e.valueFrom;
    if (!vf) {
      (e.value ?? '').split('\n').forEach((s, i) => w.write(3, i === 0 ? `${e.name}:\t${s}\n` : `\t${s}\n`));
    } else if (vf.fieldRef) w.write(3, `${e.name}:\t (${vf.fieldRef.apiVersion ?? 'v1'}:${vf.fieldRef.fieldPath})\n`);
    else if (vf.resourceFieldRef) w.write(3, `${e.name}:\t (${vf.resourceFieldRef.resource})\n`);
    else if (vf.secretKeyRef) w.write(3, `${e.name}:\t<set to the key '${vf.secretKeyRef.key}' in secret '${vf.secretKeyRef.name}'>\tOptional: ${!!vf.secretKeyRef.optional}\n`);
    else if (vf.configMapKeyRef) w.write(3, `${e.name}:\t<set to the key '${vf.configMapKeyRef.key}' of config map '${vf.configMapKeyRef.name}'>\tOptional: ${!!vf.configMapKeyRef.optional}\n`);
  }
}

function describeMounts(w: PrefixWriter, c: Container): void {
  const mounts = [...(c.volumeMounts ?? [])].sort((a, b) => (a.mountPath < b.mountPath ? -1 : a.mountPath > b.mountPath ? 1 : 0));
  if (!mounts.length) return w.write(2, 'Mounts:\t<none>\n');
  w.write(2, 'Mounts:\n');
  for (const m of mounts) {
    const flags = [m.readOnly ? 'ro' : 'rw', ...(m.subPath ? [`path=${JSON.stringify(m.subPath)}`] : [])];
    w.write(3, `${m.mountPath} from ${m.name} (${flags.join(',')})\n`);
  }
}

function describeContainers(w: PrefixWriter, title: string, specs: Container[], statuses: ContainerStatus[], logsOf: Record<string, string>): void {
  w.write(0, `${title}:${specs.length ? '' : ' <none>'}\n`);
  for (const c of specs) {
    const s = statuses.find((x) => x.name === c.name);
    w.write(1, `${c.name}:\n`);
    if (s) w.write(2, `Container ID:\t${s.containerID ?? ''}\n`);
    w.write(2, `Image:\t${c.image ?? ''}\n`);
    if (s) w.write(2, `Image ID:\t${s.imageID ?? ''}\n`);
    const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
    const hostPorts = (c.ports ?? []).map((p) => `${p.hostPort ?? 0}/${p.protocol ?? 'TCP'}`);
    w.write(2, ports.length > 1 ? `Ports:\t${ports.join(', ')}\n` : `Port:\t${ports[0] ?? '<none>'}\n`);
    w.write(2, hostPorts.length > 1 ? `Host Ports:\t${hostPorts.join(', ')}\n` : `Host Port:\t${hostPorts[0] ?? '<none>'}\n`);
    for (const [label, list] of [['Command', c.command], ['Args', c.args]] as const) {
      if (!list?.length) continue;
      w.write(2, `${label}:\n`);
      for (const a of list) for (const line of a.split('\n')) w.write(3, `${line}\n`);
    }
    if (s) {
      describeState(w, 'State', s.state, c);
      if (s.lastState?.terminated) describeState(w, 'Last State', s.lastState, c);
      w.write(2, `Ready:\t${s.ready ? 'True' : 'False'}\n`);
      w.write(2, `Restart Count:\t${s.restartCount ?? 0}\n`);
    }
    for (const [label, list] of [['Limits', c.resources?.limits], ['Requests', c.resources?.requests]] as const) {
      if (!list || !Object.keys(list).length) continue;
      w.write(2, `${label}:\n`);
      for (const k of Object.keys(list).sort()) w.write(3, `${k}:\t${list[k]}\n`);
    }
    for (const [label, p] of [['Liveness', c.livenessProbe], ['Readiness', c.readinessProbe], ['Startup', c.startupProbe]] as const) if (p) w.write(2, `${label}:\t${probeText(p)}\n`);
    describeEnv(w, c);
    describeMounts(w, c);
    const failing = s && ((s.state.terminated && s.state.terminated.exitCode !== 0) || s.state.waiting?.reason === 'CrashLoopBackOff' || (s.lastState?.terminated && s.lastState.terminated.exitCode !== 0));
    if (failing && logsOf[c.name]) {
      w.write(2, 'Last Log Lines:\n'); // nodelet's: why it fails, without a second command
      for (const l of logsOf[c.name]!.trimEnd().split('\n')) w.write(3, `${l}\n`);
    }
  }
}

function describeVolumes(w: PrefixWriter, pod: Pod): void {
  const vols = pod.spec.volumes ?? [];
  if (!vols.length) return w.write(0, 'Volumes:\t<none>\n');
  w.write(0, 'Volumes:\n');
  for (const v of vols) {
    w.write(1, `${v.name}:\n`);
    if (v.hostPath) {
      w.write(2, 'Type:\tHostPath (bare host directory volume)\n');
      w.write(2, `Path:\t${v.hostPath.path}\n`);
      w.write(2, `HostPathType:\t${v.hostPath.type || ''}\n`);
    } else if (v.emptyDir) {
      w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n");
      w.write(2, `Medium:\t${v.emptyDir.medium ?? ''}\n`);
      w.write(2, `SizeLimit:\t${v.emptyDir.sizeLimit ?? '<unset>'}\n`);
    } else if (v.secret) {
      w.write(2, 'Type:\tSecret (a volume populated by a Secret)\n');
      w.write(2, `SecretName:\t${v.secret.secretName}\n`);
      w.write(2, `Optional:\t${!!v.secret.optional}\n`);
    } else if (v.configMap) {
      w.write(2, 'Type:\tConfigMap (a volume populated by a ConfigMap)\n');
      w.write(2, `Name:\t${v.configMap.name}\n`);
      w.write(2, `Optional:\t${!!v.configMap.optional}\n`);
    } else if (v.downwardAPI) {
      w.write(2, 'Type:\tDownwardAPI (a volume populated by information about the pod)\n');
      w.write(2, 'Items:\n');
      for (const it of v.downwardAPI.items ?? []) {
        if (it.fieldRef) w.write(3, `${it.fieldRef.fieldPath} -> ${it.path}\n`);
        else if (it.resourceFieldRef) w.write(3, `${it.resourceFieldRef.resource} -> ${it.path}\n`);
      }
    } else if (v.projected) {
      w.write(2, 'Type:\tProjected (a volume that contains injected data from multiple sources)\n');
      for (const s of v.projected.sources ?? []) {
        if (s.secret) {
          w.write(2, `SecretName:\t${s.secret.name}\n`);
          w.write(2, `Optional:\t${!!s.secret.optional}\n`);
        } else if (s.downwardAPI) w.write(2, 'DownwardAPI:\ttrue\n');
        else if (s.configMap) {
          w.write(2, `ConfigMapName:\t${s.configMap.name}\n`);
          w.write(2, `Optional:\t${!!s.configMap.optional}\n`);
        } else if (s.serviceAccountToken) w.write(2, `TokenExpirationSeconds:\t${s.serviceAccountToken.expirationSeconds ?? 3607}\n`);
      }
    } else w.write(1, '<unknown>\n');
  }
}

/** kubectl's DescribeEvents: oldest first, `Age` as `5s`, or `5s (x3 over 2m)` for an event seen more than once. */
function describeEvents(w: PrefixWriter, events: Event[], now: number): void {
  if (!events.length) return w.write(0, 'Events:\t<none>\n');
  w.flush();
  const sorted = [...events].sort((a, b) => Date.parse(a.lastTimestamp) - Date.parse(b.lastTimestamp));
  w.write(0, 'Events:\n  Type\tReason\tAge\tFrom\tMessage\n');
  w.write(1, '----\t------\t----\t----\t-------\n');
  for (const e of sorted) {
    const first = since(e.firstTimestamp, now);
    const interval = e.count > 1 ? `${since(e.lastTimestamp, now)} (x${e.count} over ${first})` : first;
    w.write(1, `${e.type}\t${e.reason}\t${interval}\t${e.source?.component || e.reportingComponent || 'nodelet'}\t${(e.message ?? '').trim()}\n`);
  }
}

/** The whole `describe pod` text. `logsOf`: the last log lines of failing containers, by name. */
export function describePod(pod: Pod, events: Event[], logsOf: Record<string, string> = {}, now = Date.now()): string {
  const w = new PrefixWriter();
  const st = pod.status ?? {};
  const spec = pod.spec as Pod['spec'] & { priority?: number; priorityClassName?: string; runtimeClassName?: string; nodeSelector?: Record<string, string>; tolerations?: Toleration[] };
  w.write(0, `Name:\t${pod.metadata.name}\n`);
  w.write(0, `Namespace:\t${pod.metadata.namespace ?? 'default'}\n`);
  if (spec.priority !== undefined) w.write(0, `Priority:\t${spec.priority}\n`);
  if (spec.priorityClassName) w.write(0, `Priority Class Name:\t${spec.priorityClassName}\n`);
  if (spec.runtimeClassName) w.write(0, `Runtime Class Name:\t${spec.runtimeClassName}\n`);
  const sa = spec.serviceAccountName ?? spec.serviceAccount;
  if (sa) w.write(0, `Service Account:\t${sa}\n`);
  const node = spec.nodeName ?? 'localhost';
  w.write(0, `Node:\t${node}${st.hostIP ? `/${st.hostIP}` : ''}\n`);
  if (st.startTime) w.write(0, `Start Time:\t${rfc1123z(st.startTime)}\n`);
  multiline(w, 'Labels', labelLines(pod.metadata.labels));
  const ann = pod.metadata.annotations ?? {};
  multiline(w, 'Annotations', Object.keys(ann).filter((k) => k !== 'kubectl.kubernetes.io/last-applied-configuration').sort().map((k) => `${k}: ${ann[k]}`));
  const phase = st.phase ?? 'Pending';
  if (pod.metadata.deletionTimestamp && phase !== 'Failed' && phase !== 'Succeeded') {
    w.write(0, `Status:\tTerminating (lasts ${since(pod.metadata.deletionTimestamp, now)})\n`);
    const g = (pod.metadata as { deletionGracePeriodSeconds?: number }).deletionGracePeriodSeconds ?? spec.terminationGracePeriodSeconds;
    if (g !== undefined) w.write(0, `Termination Grace Period:\t${g}s\n`);
  } else w.write(0, `Status:\t${phase}\n`);
  if (st.reason) w.write(0, `Reason:\t${st.reason}\n`);
  if (st.message) w.write(0, `Message:\t${st.message}\n`);
  w.write(0, `IP:\t${st.podIP ?? ''}\n`);
  const ips = st.podIPs?.length ? st.podIPs.map((p) => p.ip) : st.podIP ? [st.podIP] : [];
  if (!ips.length) w.write(0, 'IPs:\t<none>\n');
  else {
    w.write(0, 'IPs:\n');
    for (const ip of ips) w.write(1, `IP:\t${ip}\n`);
  }
  const owner = (pod.metadata as { ownerReferences?: { kind: string; name: string; controller?: boolean }[] }).ownerReferences?.find((o) => o.controller);
  if (owner) w.write(0, `Controlled By:\t${owner.kind}/${owner.name}\n`);
  if (pod.spec.initContainers?.length) describeContainers(w, 'Init Containers', pod.spec.initContainers, st.initContainerStatuses ?? [], logsOf);
  describeContainers(w, 'Containers', pod.spec.containers, st.containerStatuses ?? [], logsOf);
  if (st.conditions?.length) {
    w.write(0, 'Conditions:\n  Type\tStatus\n');
    for (const c of st.conditions) w.write(1, `${c.type} \t${c.status} \n`);
  }
  describeVolumes(w, pod);
  w.write(0, `QoS Class:\t${st.qosClass ?? getPodQOS(pod)}\n`);
  multiline(w, 'Node-Selectors', labelLines(spec.nodeSelector));
  multiline(w, 'Tolerations', (spec.tolerations ?? []).map(tolerationText));
  describeEvents(w, events, now);
  return w.toString();
}
