// The manifest directory as a pod source (kubelet config/file.go): static
// pods from every *.yaml/*.yml/*.json file, reconciled on fs.watch events and
// a periodic rescan. A pod's uid is a hash of its file and content, so an
// unchanged file keeps its pod and a changed one replaces it (the old pod is
// deleted first; the new one starts once the name is free). A file that
// becomes invalid keeps its pods, as kubelet does.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import type { Pod } from '../pod/api-types.js';
import { loadManifests } from '../pod/manifest.js';
import type { PodSource, SourcePod } from './pod-config.js';

const log = getLogger('agent.file-source');

export const FILE_ANNOTATION = 'nodelet.io/config.file';
export const HASH_ANNOTATION = 'kubernetes.io/config.hash';

/** Static pod uid as kubelet derives it: a hash of the file and the pod, so an unchanged file keeps its pod. */
export function staticPodUid(file: string, pod: Pod): string {
  const h = crypto.createHash('sha256').update(file).update('\0').update(JSON.stringify({ ...pod, metadata: { ...pod.metadata, uid: undefined, creationTimestamp: undefined } })).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export interface FileSourceOptions {
  dir: string;
  source: PodSource;
  /** uid of a live pod with this namespace/name from any source, if any (name clashes wait for it to go) */
  lookup: (namespace: string, name: string) => string | undefined;
  /** rescan interval (ms), default 20 s (kubelet's fileCheckFrequency) */
  rescanMs?: number;
  /** kubelet names static pods <name>-<node name> (cluster mode: the mirror pods' names are unique per node) */
  nodeName?: string;
}

/** The pods the files of `dir` declare now; `bad` lists files that failed to parse. */
export function readManifestDir(dir: string, nodeName?: string): { pods: SourcePod[]; bad: Set<string> } {
  const pods: SourcePod[] = [];
  const bad = new Set<string>();
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => !f.startsWith('.') && /\.(ya?ml|json)$/.test(f)).sort();
  } catch (e) {
    log.warn('cannot read the manifest directory', { dir, error: describeError(e) });
    return { pods, bad };
  }
  for (const f of files) {
    const file = path.join(dir, f);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    try {
      const parsed = loadManifests(text, file);
      for (const w of parsed.warnings) log.warn('static pod manifest', { file, warning: w });
      for (const raw of parsed.pods) {
        const pod = structuredClone(raw);
        if (nodeName) pod.metadata.name = `${raw.metadata.name}-${nodeName}`;
        pod.metadata.uid = staticPodUid(file, { ...raw, metadata: { ...raw.metadata, name: pod.metadata.name, uid: undefined } });
        pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [FILE_ANNOTATION]: file, [HASH_ANNOTATION]: pod.metadata.uid };
        pods.push({ pod, objects: { configMaps: parsed.configMaps, secrets: parsed.secrets } });
      }
    } catch (e) {
      bad.add(file);
      log.warn('ignoring invalid static pod manifest', { file, error: describeError(e) });
    }
  }
  return { pods, bad };
}

export class FileSource {
  private watcher?: fs.FSWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private later?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly o: FileSourceOptions) {}

  start(): void {
    fs.mkdirSync(this.o.dir, { recursive: true });
    this.scan();
    try {
      this.watcher = fs.watch(this.o.dir, () => this.scheduleScan(100));
    } catch (e) {
      log.warn('cannot watch the manifest directory; relying on rescans', { dir: this.o.dir, error: describeError(e) });
    }
    this.rescanTimer = setInterval(() => this.scan(), this.o.rescanMs ?? 20_000);
    this.rescanTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.debounce) clearTimeout(this.debounce);
    if (this.later) clearTimeout(this.later);
  }

  private scheduleScan(ms: number): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.scan(), ms);
  }

  /** Reconcile the source with the files. */
  scan(): void {
    if (this.stopped) return;
    const { pods, bad } = readManifestDir(this.o.dir, this.o.nodeName);
    const current = this.o.source.pods();
    const wanted: SourcePod[] = [];
    // a file that became invalid keeps the pods it had
    for (const p of current.values()) if (bad.has(p.metadata.annotations?.[FILE_ANNOTATION] ?? '')) wanted.push({ pod: p });
    let waiting = false;
    for (const p of pods) {
      const uid = p.pod.metadata.uid!;
      const holder = current.has(uid) ? uid : this.o.lookup(p.pod.metadata.namespace ?? 'default', p.pod.metadata.name!);
      if (holder && holder !== uid) {
        // the name is still held (the file's previous version, or a pod of another source): wait for it to go
        if (!current.has(holder)) log.warn('static pod waits for a pod of the same name to go', { pod: p.pod.metadata.name, file: p.pod.metadata.annotations?.[FILE_ANNOTATION] });
        waiting = true;
        continue;
      }
      wanted.push(p);
    }
    for (const uid of current.keys()) if (!wanted.some((w) => w.pod.metadata.uid === uid)) log.info('static pod removed or changed', { pod: current.get(uid)!.metadata.name });
    this.o.source.set(wanted);
    if (waiting && !this.stopped) {
      if (this.later) clearTimeout(this.later);
      this.later = setTimeout(() => this.scan(), 500);
      this.later.unref();
    }
  }
}
