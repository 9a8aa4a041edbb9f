// Pod store: the agent's records under <root>/pods/<uid>/, so that a
// restarted daemon picks every pod up where it was (containers keep running
// under their shims meanwhile):
//   pod.json     the pod, its API objects, back-off state, terminal verdict,
//                deletion in progress, last probe results (written atomically)
//   events.json  the pod's recent events (bounded), so `describe` still shows
//                them after a restart
// Writes are atomic (src/sys/atomic.ts); event writes are coalesced.
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import type { Pod, PodObjects } from '../pod/api-types.js';
import type { BackoffEntry } from '../pod/backoff.js';
import type { ProbeKind, ProbeWorkerState } from '../pod/probe.js';
import { isAtomicTempName, writeJsonAtomic } from '../sys/atomic.js';
import { readJsonIfExists } from '../sys/proc.js';
import type { RecordedEvent } from './events.js';

const log = getLogger('agent.store');

export interface PodRecordFile {
  pod: Pod;
  objects: PodObjects;
  backoff?: Record<string, BackoffEntry>;
  terminal?: boolean;
  failure?: { reason: string; message: string };
  /** probe results by container id, restored into the prober manager */
  probes?: Record<string, Partial<Record<ProbeKind, ProbeWorkerState>>>;
}

export interface PodStoreOptions {
  root: string;
  /** Events kept per pod on disk (newest), default 100. */
  maxEventsPerPod?: number;
  /** Coalescing delay for event writes (ms), default 500. */
  eventFlushMs?: number;
}

export class PodStore {
  readonly dir: string;
  private readonly maxEvents: number;
  private readonly flushMs: number;
  private readonly pendingEvents = new Map<string, () => RecordedEvent[]>();
  private flushTimer?: NodeJS.Timeout;

  constructor(o: PodStoreOptions) {
    this.dir = path.join(o.root, 'pods');
    this.maxEvents = o.maxEventsPerPod ?? 100;
    this.flushMs = o.eventFlushMs ?? 500;
  }

  podDir(uid: string): string {
    return path.join(this.dir, uid);
  }

  save(rec: PodRecordFile): void {
    const dir = this.podDir(rec.pod.metadata.uid!);
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    writeJsonAtomic(path.join(dir, 'pod.json'), rec, { mode: 0o600, indent: 0 });
  }

  /** Every readable record; unreadable ones are logged and skipped (never deleted: a human may look). */
  loadAll(): PodRecordFile[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: PodRecordFile[] = [];
    for (const uid of names) {
      if (isAtomicTempName(uid)) continue;
      const file = path.join(this.dir, uid, 'pod.json');
      try {
        const rec = readJsonIfExists<PodRecordFile>(file);
        if (!rec) continue;
        if (rec.pod?.metadata?.uid !== uid) throw new Error(`the record's pod uid ${JSON.stringify(rec.pod?.metadata?.uid)} is not its directory's name`);
        out.push(rec);
      } catch (err) {
        log.warn('cannot recover pod record', { file, error: describeError(err) });
      }
    }
    return out;
  }

  /** Schedule a write of the pod's events; `get` is read at flush time. */
  saveEvents(uid: string, get: () => RecordedEvent[]): void {
    this.pendingEvents.set(uid, get);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flushEvents(), this.flushMs);
      this.flushTimer.unref();
    }
  }

  flushEvents(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [uid, get] of this.pendingEvents) {
      const dir = this.podDir(uid);
      if (!fs.existsSync(dir)) continue; // the pod is gone
      try {
        writeJsonAtomic(path.join(dir, 'events.json'), get().slice(-this.maxEvents), { mode: 0o600, indent: 0 });
      } catch (err) {
        log.warn('cannot save pod events', { uid, error: describeError(err) });
      }
    }
    this.pendingEvents.clear();
  }

  loadEvents(uid: string): RecordedEvent[] {
    try {
      const ev = readJsonIfExists<RecordedEvent[]>(path.join(this.podDir(uid), 'events.json'), { ignoreInvalid: true });
      return Array.isArray(ev) ? ev : [];
    } catch {
      return [];
    }
  }

  remove(uid: string): void {
    this.pendingEvents.delete(uid);
    fs.rmSync(this.podDir(uid), { recursive: true, force: true });
  }
}
