// `nodelet run POD.yaml`: run pods in the foreground with no daemon (like
// `podman kube play` + `podman logs -f`): pull progress and container state
// changes on stderr, every container's log lines prefixed with [name] on
// stdout/stderr, exit with the pod's exit code once it is Succeeded or
// Failed. SIGINT/SIGTERM tear everything down gracefully (a second signal
// forces grace 0), then exit 130/143.
import fs from 'node:fs';
import path from 'node:path';
import { loadManifests } from '../pod/manifest.js';
import type { Pod, PodStatus } from '../pod/api-types.js';
import { createAgent, type AgentConfig } from '../agent/setup.js';
import { podExitCode, type AgentEvent } from '../agent/node-agent.js';
import type { RecordedEvent } from '../agent/events.js';
import { followLog } from '../agent/logs.js';

export interface RunOptions extends AgentConfig {
  file: string;
  /** print nothing but the containers' logs */
  quiet?: boolean;
}

function containerSummary(status: PodStatus | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of [...(status?.initContainerStatuses ?? []), ...(status?.containerStatuses ?? [])]) {
    const st = s.state;
    let v: string;
    if (st.running) v = `Running${s.ready ? ' (ready)' : ''}`;
    else if (st.terminated) v = `Terminated: ${st.terminated.reason ?? ''} (exit code ${st.terminated.exitCode})${st.terminated.message ? `: ${st.terminated.message.trim()}` : ''}`;
    else v = `Waiting: ${st.waiting?.reason ?? ''}${st.waiting?.message ? ` (${st.waiting.message})` : ''}`;
    out.set(s.name, `${v} restarts=${s.restartCount}`);
  }
  return out;
}

export async function runPods(o: RunOptions): Promise<number> {
  // 1. Parse and validate everything before touching the host.
  const text = fs.readFileSync(o.file, 'utf8');
  const parsed = loadManifests(text, o.file);
  if (parsed.pods.length === 0) throw new Error(`${o.file}: no Pod in the manifest`);
  const err = (s: string) => {
    if (!o.quiet) process.stderr.write(s + '\n');
  };
  for (const w of parsed.warnings) err(`warning: ${w}`);

  const { agent, runtime, cgroups, close } = await createAgent(o);
  const objects = { configMaps: parsed.configMaps, secrets: parsed.secrets };
  const uids = new Set(parsed.pods.map((p) => p.metadata.uid!));
  const multi = parsed.pods.length > 1;
  const prefix = (pod: string, c: string) => (multi ? `[${pod}/${c}]` : `[${c}]`);

  // 2. Progress: events and container state changes.
  const printedStates = new Map<string, string>();
  agent.on('event', (e: RecordedEvent) => {
    if (!uids.has(e.involvedObject.uid!)) return;
    const who = e.involvedObject.fieldPath?.match(/\{(.*)\}/)?.[1];
    err(`${e.type === 'Warning' ? 'warning' : 'event'}: pod/${e.involvedObject.name}${who ? ` ${who}` : ''}: ${e.reason}: ${e.message}`);
  });
  const phases = new Map<string, PodStatus>();
  let resolveAllDone!: () => void;
  const allDone = new Promise<void>((r) => (resolveAllDone = r));
  agent.on('pod', (ev: AgentEvent) => {
    const pod = ev.pod.pod;
    if (!uids.has(pod.metadata.uid!) || ev.type === 'DELETED') return;
    for (const [name, v] of containerSummary(ev.pod.status)) {
      const key = `${pod.metadata.uid}/${name}`;
      if (printedStates.get(key) === v) continue;
      printedStates.set(key, v);
      err(`pod/${pod.metadata.name} ${name}: ${v}`);
    }
    const ph = ev.pod.status?.phase;
    if (ph && phases.get(pod.metadata.uid!)?.phase !== ph) err(`pod/${pod.metadata.name}: ${ph}${ev.pod.status?.reason ? ` (${ev.pod.status.reason})` : ''}`);
    if (ev.pod.status) phases.set(pod.metadata.uid!, ev.pod.status);
    if ([...uids].every((u) => ['Succeeded', 'Failed'].includes(phases.get(u)?.phase ?? ''))) resolveAllDone();
  });
  agent.on('pull', (p: { ref: string; progress?: { phase: string; digest?: string; current?: number; total?: number } }) => {
    if (!p.progress) return;
    const pr = p.progress;
    if (pr.phase === 'done' || pr.phase === 'exists' || pr.phase === 'resolving')
      err(`pull ${p.ref}: ${pr.phase}${pr.digest ? ` ${pr.digest.slice(7, 19)}` : ''}${pr.total ? ` ${pr.total} bytes` : ''}`);
  });

  // 3. Logs of every container attempt.
  const exited = new Set<string>();
  let finished = false;
  const stopExitWatch = runtime.onContainerExit((e) => exited.add(e.containerId));
  const followers: Promise<void>[] = [];
  const abort = new AbortController();
  agent.on('started', (s: { uid: string; name: string; id: string }) => {
    if (!uids.has(s.uid)) return;
    const pod = parsed.pods.find((p) => p.metadata.uid === s.uid)!;
    followers.push(
      (async () => {
        const st = await runtime.containerStatus(s.id).catch(() => undefined);
        if (!st) return;
        const pre = prefix(pod.metadata.name!, s.name);
        await followLog(st.logPath, (r) => (r.stream === 'stderr' ? process.stderr : process.stdout).write(`${pre} ${r.text}\n`), {
          signal: abort.signal,
          pollMs: 50,
          done: () => finished || exited.has(s.id),
        });
      })().catch(() => undefined),
    );
  });

  // 4. Signals: graceful teardown (second signal: grace 0).
  let signalled: NodeJS.Signals | undefined;
  let resolveSignal!: () => void;
  const signalSeen = new Promise<void>((r) => (resolveSignal = r));
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      err(`${sig} again: killing containers now`);
      for (const p of parsed.pods) void agent.deletePod(p.metadata.uid!, 0);
      return;
    }
    signalled = sig;
    err(`${sig}: stopping pods (press Ctrl-C again to kill them now)`);
    resolveSignal();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    for (const p of parsed.pods) agent.addPod(p as Pod, objects);
    await Promise.race([allDone, signalSeen]);
    // 5. Teardown: preStop, stop with grace, sandbox, volumes, logs and state.
    await Promise.all(parsed.pods.map((p) => agent.deletePod(p.metadata.uid!)));
    finished = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(followers), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  } finally {
    abort.abort();
    stopExitWatch();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await close();
    // The QoS-level cgroups and the parent go too when no other pod uses them
    // (rmdir only: a cgroup with tasks or children is left alone).
    const parent = o.cgroupParent ?? '/nodelet';
    for (const files of [cgroups.procsFiles(`${parent}/besteffort`), cgroups.procsFiles(`${parent}/burstable`), cgroups.procsFiles(parent)])
      for (const f of files) {
        try {
          fs.rmdirSync(path.dirname(f));
        } catch {
          /* busy (another pod) or already gone */
        }
      }
  }
  if (signalled) return signalled === 'SIGINT' ? 130 : 143;
  let code = 0;
  for (const p of parsed.pods) {
    const c = podExitCode(phases.get(p.metadata.uid!));
    if (c !== 0 && code === 0) code = c;
  }
  return code;
}
