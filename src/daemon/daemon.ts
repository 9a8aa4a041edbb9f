// `nodelet daemon`: the long-running node agent. Config file + flags, pod
// recovery from <root>/pods/ and the runtime's state (containers keep
// running across a daemon restart), static pods from a manifest directory
// (kubelet's file source: add/change/remove a file → create/replace/delete
// its pods; fs.watch plus a periodic rescan), and the API on a unix socket.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import type { Pod } from '../pod/api-types.js';
import { loadManifests } from '../pod/manifest.js';
import { createAgent, type AgentConfig } from '../agent/setup.js';
import type { NodeAgent } from '../agent/node-agent.js';
import { ApiServer } from '../api/server.js';

const log = getLogger('daemon');

export const SOURCE_ANNOTATION = 'kubernetes.io/config.source';
export const FILE_ANNOTATION = 'nodelet.io/config.file';
export const HASH_ANNOTATION = 'kubernetes.io/config.hash';

export interface DaemonConfig extends AgentConfig {
  manifestDir?: string;
  socket: string;
  /** Rescan interval of the manifest dir (ms), default 20 s (kubelet's fileCheckFrequency). */
  rescanMs?: number;
}

/** Config file keys (YAML/JSON), camelCase like a KubeletConfiguration. */
export function loadConfigFile(file: string): Partial<DaemonConfig> {
  const text = fs.readFileSync(file, 'utf8');
  const doc = YAML.parse(text) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file}: the config must be a mapping`);
  const known = ['root', 'runRoot', 'manifestDir', 'socket', 'cgroupParent', 'cniConfDir', 'cniBinDirs', 'podCidr', 'bridgeName', 'maxParallelPulls', 'rescanMs', 'allowedUnsafeSysctls', 'seccompDefault'];
  for (const k of Object.keys(doc)) if (!known.includes(k)) throw new Error(`${file}: unknown config key "${k}" (known: ${known.join(', ')})`);
  return doc as Partial<DaemonConfig>;
}

/** Static pod uid as kubelet derives it: a hash of the file and the pod, so an unchanged file keeps its pod. */
export function staticPodUid(file: string, pod: Pod): string {
  const h = crypto.createHash('sha256').update(file).update('\0').update(JSON.stringify({ ...pod, metadata: { ...pod.metadata, uid: undefined, creationTimestamp: undefined } })).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export class Daemon {
  private watcher?: fs.FSWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private scanning = false;
  private rescanAgain = false;

  private constructor(
    readonly cfg: DaemonConfig,
    readonly agent: NodeAgent,
    private readonly api: ApiServer,
    private readonly closeAgent: () => Promise<void>,
  ) {}

  static async start(cfg: DaemonConfig): Promise<Daemon> {
    const { agent, close } = await createAgent(cfg);
    // 1. Recover pods persisted by a previous daemon (their containers kept running).
    const recovered = agent.recover();
    if (recovered.length) log.info('recovered pods', { count: recovered.length });
    // 2. API.
    const api = new ApiServer({
      agent,
      socket: cfg.socket,
      onCreate: (pod) => {
        pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [SOURCE_ANNOTATION]: 'api' };
      },
    });
    await api.listen();
    const d = new Daemon(cfg, agent, api, close);
    // 3. Static pods.
    if (cfg.manifestDir) {
      fs.mkdirSync(cfg.manifestDir, { recursive: true });
      d.scan();
      try {
        d.watcher = fs.watch(cfg.manifestDir, () => d.scheduleScan());
      } catch (e) {
        log.warn('cannot watch the manifest directory; relying on rescans', { dir: cfg.manifestDir, error: describeError(e) });
      }
      d.rescanTimer = setInterval(() => d.scan(), cfg.rescanMs ?? 20_000);
    }
    log.info('nodelet daemon ready', { socket: cfg.socket, manifestDir: cfg.manifestDir, root: cfg.root, runRoot: cfg.runRoot });
    return d;
  }

  private scheduleScan(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.scan(), 100);
  }

  /** Reconcile static pods with the files of the manifest directory. */
  scan(): void {
    if (this.scanning) {
      this.rescanAgain = true;
      return;
    }
    this.scanning = true;
    try {
      const dir = this.cfg.manifestDir!;
      const wanted = new Map<string, { pod: Pod; file: string; objects: { configMaps: never[]; secrets: never[] } | any }>();
      let files: string[] = [];
      try {
        files = fs.readdirSync(dir).filter((f) => !f.startsWith('.') && /\.(ya?ml|json)$/.test(f)).sort();
      } catch (e) {
        log.warn('cannot read the manifest directory', { dir, error: describeError(e) });
        return;
      }
      const badFiles = new Set<string>();
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
          for (const raw of parsed.pods) {
            const pod = structuredClone(raw);
            pod.metadata.uid = staticPodUid(file, { ...raw, metadata: { ...raw.metadata, uid: undefined } });
            pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [SOURCE_ANNOTATION]: 'file', [FILE_ANNOTATION]: file, [HASH_ANNOTATION]: pod.metadata.uid };
            wanted.set(pod.metadata.uid, { pod, file, objects: { configMaps: parsed.configMaps, secrets: parsed.secrets } });
          }
        } catch (e) {
          badFiles.add(file);
          log.warn('ignoring invalid static pod manifest', { file, error: describeError(e) });
        }
      }
      // delete static pods whose file is gone or changed (a file that became invalid keeps its pods, like kubelet)
      for (const v of this.agent.listPods()) {
        const a = v.pod.metadata.annotations ?? {};
        if (a[SOURCE_ANNOTATION] !== 'file') continue;
        if (badFiles.has(a[FILE_ANNOTATION] ?? '')) continue;
        if (!wanted.has(v.pod.metadata.uid!) && !v.pod.metadata.deletionTimestamp) {
          log.info('static pod removed or changed', { pod: v.pod.metadata.name, file: a[FILE_ANNOTATION] });
          void this.agent.deletePod(v.pod.metadata.uid!);
        }
      }
      for (const [uid, w] of wanted) {
        if (this.agent.getPod(uid)) continue;
        // same name from another source: the old one goes first (replace)
        const clash = this.agent.findPod(w.pod.metadata.namespace ?? 'default', w.pod.metadata.name!);
        if (clash) {
          if (!clash.pod.metadata.deletionTimestamp) void this.agent.deletePod(clash.pod.metadata.uid!);
          this.scheduleLater();
          continue;
        }
        log.info('static pod added', { pod: w.pod.metadata.name, file: w.file });
        this.agent.addPod(w.pod, w.objects);
      }
    } finally {
      this.scanning = false;
      if (this.rescanAgain) {
        this.rescanAgain = false;
        this.scheduleScan();
      }
    }
  }

  private scheduleLater(): void {
    setTimeout(() => this.scan(), 500).unref();
  }

  /** Stop serving; containers keep running (a new daemon re-adopts them). */
  async stop(): Promise<void> {
    this.watcher?.close();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.debounce) clearTimeout(this.debounce);
    await this.api.close();
    await this.closeAgent();
  }
}
