// `nodelet run POD.yaml`: run pods in the foreground with no daemon (like
// `podman kube play` + `podman logs -f`): pull progress and container state
// changes on stderr, every container's log lines prefixed with [name] on
// stdout/stderr, exit with the pod's exit code once it is Succeeded or
// Failed.
//
// Every catchable ending tears the pods down (preStop, stop with grace,
// sandbox, volumes, state): SIGINT, SIGTERM and SIGHUP (exit 128+N: 130, 143,
// 129; a second signal forces grace 0), and the reader of stdout or stderr
// going away (`nodelet run pod.yaml | head -1`: EPIPE; EIO on a hung-up
// terminal): nothing more is written to that stream, the teardown goes on,
// exit 141 (128+SIGPIPE, what the shell shows for a program killed by a
// broken pipe) unless a signal came first. Pods are marked with the
// nodelet.io/run-owner annotation (this pid and its start time), so when this
// process dies of something uncatchable (SIGKILL) the next `nodelet run` or
// `nodelet daemon` on the same --root removes them (src/agent/run-owner.ts).
import fs from 'node:fs';
import os from 'node:os';
import { loadManifests } from '../pod/manifest.js';
import type { Pod, PodStatus } from '../pod/api-types.js';
import { createAgent, type AgentConfig } from '../agent/setup.js';
import { podExitCode, type AgentEvent } from '../agent/node-agent.js';
import type { RecordedEvent } from '../agent/events.js';
import { followLog } from '../agent/logs.js';
import { reapRunOrphans, runOwnerValue, RUN_OWNER_ANNOTATION } from '../agent/run-owner.js';
import { configureLogging } from '../log.js';
import { waitAtMost } from '../sys/proc.js';
import { hostPortLines, runningNote } from './client-ux.js';

export interface RunOptions extends AgentConfig {
  file: string;
  /** print nothing but the containers' logs and warnings */
  quiet?: boolean;
  /** pull attempts of an image before the run gives up (podman's --retry; default 3); 0: keep trying with back-off, as the daemon does */
  pullAttempts?: number;
}

export const DEFAULT_PULL_ATTEMPTS = 3;

/**
 * Counts failed pulls per container (each entry into ErrImagePull is one attempt; ImagePullBackOff is the wait
 * between them) and says when a run in the foreground should stop waiting for an image.
 */
export class PullGiveUp {
  private readonly last = new Map<string, string | undefined>();
  private readonly failures = new Map<string, number>();
  constructor(private readonly attempts: number) {}

  /** The container that used up its attempts with this status, with the pull's last error. */
  observe(uid: string, status: PodStatus | undefined): { container: string; image?: string; attempts: number; message: string } | undefined {
    for (const s of [...(status?.initContainerStatuses ?? []), ...(status?.containerStatuses ?? [])]) {
      const key = `${uid}/${s.name}`;
      const reason = s.state?.waiting?.reason;
      const before = this.last.get(key);
      this.last.set(key, reason);
      if (reason !== 'ErrImagePull' || before === 'ErrImagePull') continue;
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      if (this.attempts > 0 && n >= this.attempts) return { container: s.name, image: s.image, attempts: n, message: s.state?.waiting?.message ?? '' };
    }
    return undefined;
  }
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

type Stream = 'stdout' | 'stderr';

/**
 * process.stdout and process.stderr, written only while someone reads them.
 * The first write error on one (EPIPE: the reader exited; EIO: the terminal
 * hung up) marks it gone and calls `onGone` once; the error listener stays, so
 * nothing written later (by the logger too) can crash the process.
 */
class Outputs {
  readonly gone: Record<Stream, string | undefined> = { stdout: undefined, stderr: undefined };
  constructor(private readonly onGone: (stream: Stream, code: string) => void) {
    for (const s of ['stdout', 'stderr'] as const) {
      process[s].on('error', (e: NodeJS.ErrnoException) => {
        if (this.gone[s]) return;
        this.gone[s] = e.code ?? 'EPIPE';
        this.onGone(s, this.gone[s]!);
      });
    }
  }
  write(s: Stream, text: string): void {
    if (this.gone[s]) return;
    try {
      process[s].write(text);
    } catch (e) {
      // a synchronous failure (rare: most come as 'error' events)
      if (!this.gone[s]) {
        this.gone[s] = (e as NodeJS.ErrnoException).code ?? 'EPIPE';
        this.onGone(s, this.gone[s]!);
      }
    }
  }
}

const signalNumber = (sig: NodeJS.Signals) => os.constants.signals[sig] ?? 15;
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function runPods(o: RunOptions): Promise<number> {
  // 0. The ending of this run: the first signal or dead output stream. Set up before anything is
  // written, so a reader that is already gone cannot kill the process before the pods go.
  let signalled: NodeJS.Signals | undefined;
  let signals = 0;
  let pipeGone: { stream: Stream; code: string } | undefined;
  let resolveEnd!: () => void;
  const endSeen = new Promise<void>((r) => (resolveEnd = r));
  let forceKill = () => {};
  const outputs = new Outputs((stream, code) => {
    if (pipeGone || signalled) return;
    pipeGone = { stream, code };
    info(`nodelet run: ${stream} is gone (${code}): stopping pods`);
    resolveEnd();
  });
  // --quiet: nothing but the containers' logs (progress and warnings alike; the exit code still tells)
  const info = (s: string) => {
    if (!o.quiet) outputs.write('stderr', s + '\n');
  };
  const warn = info;
  // the agent's own log lines go the same guarded way
  configureLogging({ sink: { write: (line) => (o.quiet ? undefined : outputs.write('stderr', line)) } });

  // 1. Parse and validate everything before touching the host.
  const text = fs.readFileSync(o.file, 'utf8');
  const parsed = loadManifests(text, o.file, { unsupportedKinds: 'error' }); // a Deployment here would run nothing
  if (parsed.pods.length === 0) throw new Error(`${o.file}: no Pod in the manifest`);
  for (const w of parsed.warnings) warn(`warning: ${w}`);

  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      info(`${sig} again: killing containers now`);
      forceKill();
      return;
    }
    if (!signalled) signalled = sig;
    if (pipeGone) return; // already stopping; the exit code follows the signal
    info(`${sig}: stopping pods (press Ctrl-C again to kill them now)`);
    resolveEnd();
  };
  for (const sig of ENDING_SIGNALS) process.on(sig, onSignal);

  let created: Awaited<ReturnType<typeof createAgent>>;
  try {
    created = await createAgent(o);
  } catch (e) {
    for (const sig of ENDING_SIGNALS) process.off(sig, onSignal);
    throw e;
  }
  const { agent, runtime, cgroups, close } = created;
  const objects = { configMaps: parsed.configMaps, secrets: parsed.secrets };
  const uids = new Set(parsed.pods.map((p) => p.metadata.uid!));
  const multi = parsed.pods.length > 1;
  const prefix = (pod: string, c: string) => (multi ? `[${pod}/${c}]` : `[${c}]`);

  // 2. Progress: events and container state changes.
  const printedStates = new Map<string, string>();
  agent.on('event', (e: RecordedEvent) => {
    if (!uids.has(e.involvedObject.uid!)) return;
    const who = e.involvedObject.fieldPath?.match(/\{(.*)\}/)?.[1];
    (e.type === 'Warning' ? warn : info)(`${e.type === 'Warning' ? 'warning' : 'event'}: pod/${e.involvedObject.name}${who ? ` ${who}` : ''}: ${e.reason}: ${e.message}`);
  });
  const phases = new Map<string, PodStatus>();
  let resolveAllDone!: () => void;
  const allDone = new Promise<void>((r) => (resolveAllDone = r));
  const pulls = new PullGiveUp(o.pullAttempts ?? DEFAULT_PULL_ATTEMPTS);
  let gaveUp = false;
  agent.on('pod', (ev: AgentEvent) => {
    const pod = ev.pod.pod;
    if (!uids.has(pod.metadata.uid!) || ev.type === 'DELETED') return;
    for (const [name, v] of containerSummary(ev.pod.status)) {
      const key = `${pod.metadata.uid}/${name}`;
      if (printedStates.get(key) === v) continue;
      printedStates.set(key, v);
      info(`pod/${pod.metadata.name} ${name}: ${v}`);
    }
    const ph = ev.pod.status?.phase;
    if (ph && phases.get(pod.metadata.uid!)?.phase !== ph) {
      info(`pod/${pod.metadata.name}: ${ph}${ev.pod.status?.reason ? ` (${ev.pod.status.reason})` : ''}${ph === 'Running' ? runningNote(pod, ev.pod.status) : ''}`);
      if (ph === 'Running') for (const line of hostPortLines(pod, ev.pod.status)) info(`pod/${pod.metadata.name}: ${line}`);
    }
    if (ev.pod.status) phases.set(pod.metadata.uid!, ev.pod.status);
    const stuck = pulls.observe(pod.metadata.uid!, ev.pod.status);
    if (stuck && !gaveUp) {
      gaveUp = true;
      warn(`error: pod/${pod.metadata.name} ${stuck.container}: giving up on image${stuck.image ? ` "${stuck.image}"` : ''} after ${stuck.attempts} pull attempts (--retry): ${stuck.message}`);
      resolveAllDone();
    }
    if ([...uids].every((u) => ['Succeeded', 'Failed'].includes(phases.get(u)?.phase ?? ''))) resolveAllDone();
  });
  agent.on('pull', (p: { ref: string; progress?: { phase: string; digest?: string; current?: number; total?: number } }) => {
    if (!p.progress) return;
    const pr = p.progress;
    if (pr.phase === 'done' || pr.phase === 'exists' || pr.phase === 'resolving')
      info(`pull ${p.ref}: ${pr.phase}${pr.digest ? ` ${pr.digest.slice(7, 19)}` : ''}${pr.total ? ` ${pr.total} bytes` : ''}`);
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
        await followLog(st.logPath, (r) => outputs.write(r.stream === 'stderr' ? 'stderr' : 'stdout', `${pre} ${r.text}\n`), {
          signal: abort.signal,
          pollMs: 50,
          done: () => finished || exited.has(s.id),
        });
      })().catch(() => undefined),
    );
  });

  // 4. Pods left behind by a `nodelet run` that is gone (SIGKILL): removed first (they may hold the
  // ports and names these pods want), with a warning naming them.
  const reaped = reapRunOrphans(agent, (line) => warn(`warning: ${line}`), { root: o.root });
  // this command is the pods' source (kubernetes.io/config.source: run)
  const source = agent.config.source('run');
  const allUids = () => [...reaped.orphans.map((x) => x.uid), ...parsed.pods.map((p) => p.metadata.uid!)];
  forceKill = () => {
    for (const uid of allUids()) void agent.deletePod(uid, 0);
  };

  try {
    await Promise.race([reaped.done, endSeen]);
    if (!signalled && !pipeGone) {
      // 5. Run: each pod names this process as its owner (a later run or daemon reaps it if we vanish).
      const owner = runOwnerValue();
      for (const p of parsed.pods) {
        p.metadata.annotations = { ...(p.metadata.annotations ?? {}), [RUN_OWNER_ANNOTATION]: owner };
        source.add(p as Pod, objects);
      }
      await Promise.race([allDone, endSeen]);
    }
    // 6. Teardown: preStop, stop with grace, sandbox, volumes, logs and state (orphans still going too).
    await Promise.all([reaped.done, ...parsed.pods.map((p) => source.delete(p.metadata.uid!))]);
    finished = true;
    await waitAtMost(Promise.all(followers), 2000); // the followers' last lines
  } finally {
    abort.abort();
    stopExitWatch();
    for (const sig of ENDING_SIGNALS) process.off(sig, onSignal);
    await close();
    // The QoS-level cgroups and the parent go too when no other pod uses them (rmdir only).
    cgroups.removeEmptyParents();
  }
  if (signalled) return 128 + signalNumber(signalled);
  if (pipeGone) return 128 + signalNumber('SIGPIPE');
  let code = gaveUp ? 1 : 0;
  for (const p of parsed.pods) {
    const c = podExitCode(phases.get(p.metadata.uid!));
    if (c !== 0 && code === 0) code = c;
  }
  return code;
}
