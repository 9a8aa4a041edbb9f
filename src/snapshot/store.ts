// SnapshotStore: one unpacked directory per layer chain (chain ID), shared by
// every image that has it, and per-container snapshots on top, returned as
// mounts (data). Two drivers, chosen once per store and persisted:
//   overlay: chains/<hex>/fs holds only that layer (overlay whiteouts inside);
//            a container = overlay(lowerdir=chain..base, upper, work).
//   copy:    chains/<hex>/fs holds the whole tree up to that layer (whiteouts
//            applied by deletion); a container = bind of a private copy.
//
// Layout under root:
//   driver                       "overlay" | "copy"
//   chains/<hex>/{fs,meta.json}  meta: {chainId, parent, diffId, link}
//   l/<LINK> -> ../chains/<hex>/fs   short names keep lowerdir= short
//   active/<id>/record.json (+ upper/,work/ | fs/ | empty/)   id = sha256(key)[:20]
//   tmp/  staging (renamed into place: a directory exists complete or not at all)
//   locks/ lock files (chain and key locks, across processes)

import * as fs from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Mount } from '../cri/types.js';
import { NodeletError, alreadyExists, invalidArgument, notFound } from '../errors.js';
import { getLogger } from '../log.js';
import { mount, umount2, MNT } from '../sys/ffi.js';
import { fsyncDir, writeFileAtomic, writeJsonAtomic } from '../sys/atomic.js';
import { withLock as withFileLock } from '../sys/lock.js';
import { processStartTime, readJsonIfExists as readJson } from '../sys/proc.js';
import type { LayerLimits } from './limits.js';
// unpack.ts (tar-stream: ~10-20 ms of module loading) is imported by applyLayer when it first
// runs: running containers from layers already unpacked does not need it.

const log = getLogger('snapshot');

/** The store's cross-process locks (src/sys/lock.ts), with the store's timeout (ERR_LOCK_TIMEOUT). */
function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(file, fn, { timeoutMs: 10 * 60_000 });
}

export type SnapshotDriver = 'overlay' | 'copy';

export interface ChainMeta {
  chainId: string;
  parent: string | null;
  diffId: string;
  link: string;
  driver: SnapshotDriver;
  createdAt: string;
  /** uncompressed layer size */
  size: number;
}

export interface ActiveRecord {
  key: string;
  chainId: string | null;
  kind: 'active' | 'view';
  driver: SnapshotDriver;
  createdAt: string;
}

/** overlayfs refuses more lower layers than this (fs/overlayfs/params.h OVL_MAX_STACK) */
export const OVERLAY_MAX_STACK = 500;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

function checkDigest(field: string, v: string): string {
  if (!DIGEST_RE.test(v)) throw invalidArgument('ERR_SNAPSHOT_INVALID_ID', `${field} "${v}" is not a sha256 digest ("sha256:" + 64 hex digits)`, { details: { field, value: v } });
  return v.slice(7);
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024 || key.includes('\0')) {
    throw invalidArgument('ERR_SNAPSHOT_INVALID_KEY', `Snapshot key ${JSON.stringify(key)} is invalid: use 1-1024 characters, no NUL`);
  }
}

/** Directory name of an active snapshot: fixed length, safe in mount options. */
export function keyDirName(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 20);
}

const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function newLinkId(): string {
  const b = randomBytes(8);
  let s = '';
  for (const x of b) s += LINK_ALPHABET[x & 31];
  return s;
}

/**
 * Pure: the mounts for a snapshot. `lowers` are the chain's layer dirs, top
 * first (overlay) or the single full tree (copy).
 */
export function computeMounts(o: {
  driver: SnapshotDriver;
  readonly: boolean;
  lowers: string[];
  dir: string;
  indexOff: boolean;
}): Mount[] {
  const { driver, readonly, lowers, dir } = o;
  if (driver === 'copy') {
    if (readonly) return [{ type: 'bind', source: lowers[0] ?? join(dir, 'empty'), options: ['rbind', 'ro'] }];
    return [{ type: 'bind', source: join(dir, 'fs'), options: ['rbind', 'rw'] }];
  }
  const extra = o.indexOff ? ['index=off'] : [];
  if (readonly) {
    if (lowers.length === 0) return [{ type: 'bind', source: join(dir, 'empty'), options: ['rbind', 'ro'] }];
    if (lowers.length === 1) return [{ type: 'bind', source: lowers[0]!, options: ['rbind', 'ro'] }];
    return [{ type: 'overlay', source: 'overlay', options: ['ro', ...extra, `lowerdir=${lowers.join(':')}`] }];
  }
  if (lowers.length === 0) return [{ type: 'bind', source: join(dir, 'upper'), options: ['rbind', 'rw'] }];
  return [
    {
      type: 'overlay',
      source: 'overlay',
      options: [...extra, `lowerdir=${lowers.join(':')}`, `upperdir=${join(dir, 'upper')}`, `workdir=${join(dir, 'work')}`],
    },
  ];
}

function runCp(from: string, to: string): Promise<void> {
  // cp -a keeps owners, modes, times, hardlinks, xattrs (trusted.* as root) and device nodes
  return new Promise((res, rej) => {
    const child = spawn('cp', ['-a', '--', `${from}/.`, `${to}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', rej);
    child.on('close', (code) =>
      code === 0 ? res() : rej(new NodeletError('Internal', 'ERR_SNAPSHOT_COPY', `Copying ${from} to ${to} failed (cp exit ${code}): ${err.trim().slice(0, 500)}`)),
    );
  });
}

function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true, maxRetries: 3 });
}

export class SnapshotStore {
  readonly root: string;
  private readonly requested: 'overlay' | 'copy' | 'auto';
  private chosen?: SnapshotDriver;
  private laidOut = false;
  private readonly indexOff = fs.existsSync('/sys/module/overlay/parameters/index');

  private readonly limits: LayerLimits;

  constructor(opts: { root: string; driver?: 'overlay' | 'copy' | 'auto'; /** bounds checked while a layer unpacks */ limits?: LayerLimits }) {
    this.root = resolve(opts.root);
    this.requested = opts.driver ?? 'auto';
    this.limits = opts.limits ?? {};
  }

  private p(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  private layout(): void {
    if (this.laidOut) return;
    for (const d of ['chains', 'l', 'active', 'tmp', 'locks']) fs.mkdirSync(this.p(d), { recursive: true, mode: 0o700 });
    fs.chmodSync(this.root, 0o700);
    this.laidOut = true;
    this.cleanupStale();
  }

  /** The driver in use; decided on first call (persisted choice, else requested, else probed). */
  driver(): SnapshotDriver {
    if (this.chosen) return this.chosen;
    this.layout();
    const file = this.p('driver');
    let persisted: string | undefined;
    try {
      persisted = fs.readFileSync(file, 'utf8').trim();
    } catch {
      /* first use */
    }
    if (persisted === 'overlay' || persisted === 'copy') {
      if (this.requested !== 'auto' && this.requested !== persisted) {
        throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_DRIVER_MISMATCH', `The snapshot store ${this.root} was created with the "${persisted}" driver; "${this.requested}" was requested. Use a new --root or remove the store`, {
          details: { root: this.root, persisted, requested: this.requested },
        });
      }
      this.chosen = persisted;
      return persisted;
    }
    let d: SnapshotDriver;
    if (this.requested === 'copy') d = 'copy';
    else {
      const ok = this.probeOverlay();
      if (!ok.ok && this.requested === 'overlay') {
        throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_OVERLAY_UNSUPPORTED', `overlayfs cannot be mounted with its layers under ${this.root}: ${ok.reason}. Put the root on ext4/xfs/tmpfs or use the copy driver`);
      }
      d = ok.ok ? 'overlay' : 'copy';
      if (!ok.ok) log.warn('overlayfs unusable here, falling back to the copy snapshotter', { root: this.root, reason: ok.reason });
    }
    writeFileAtomic(file, d + '\n');
    this.chosen = d;
    return d;
  }

  /** Mount a tiny overlay (two lowers, upper, work) on the root's own filesystem. */
  private probeOverlay(): { ok: true } | { ok: false; reason: string } {
    const dir = this.p('tmp', `${process.pid}.${randomBytes(4).toString('hex')}.probe`);
    const m = join(dir, 'm');
    try {
      for (const s of ['l1', 'l2', 'u', 'w', 'm']) fs.mkdirSync(join(dir, s), { recursive: true });
      const data = `${this.indexOff ? 'index=off,' : ''}lowerdir=${join(dir, 'l2')}:${join(dir, 'l1')},upperdir=${join(dir, 'u')},workdir=${join(dir, 'w')}`;
      mount('overlay', m, 'overlay', 0, data);
      try {
        fs.writeFileSync(join(m, 'probe'), 'x');
      } finally {
        umount2(m, MNT.DETACH);
      }
      return { ok: true };
    } catch (e) {
      return { ok: false, reason: e instanceof Error ? e.message : String(e) };
    } finally {
      rmrf(dir);
    }
  }

  private chainDir(chainId: string): string {
    return this.p('chains', checkDigest('chainId', chainId));
  }

  hasChain(chainId: string): boolean {
    return fs.existsSync(join(this.chainDir(chainId), 'meta.json'));
  }

  private meta(chainId: string): ChainMeta | undefined {
    return readJson<ChainMeta>(join(this.chainDir(chainId), 'meta.json'));
  }

  /** The chain and its parents, top first. */
  private lineage(chainId: string): ChainMeta[] {
    const out: ChainMeta[] = [];
    let cur: string | null = chainId;
    while (cur !== null) {
      const m = this.meta(cur);
      if (!m) throw notFound('ERR_SNAPSHOT_CHAIN_NOT_FOUND', `Layer chain ${cur} is missing from the snapshot store ${this.root} (a parent of ${chainId}); pull the image again`);
      out.push(m);
      cur = m.parent;
      if (out.length > 10_000) throw new NodeletError('Internal', 'ERR_SNAPSHOT_CORRUPT', `Layer chain ${chainId} has a parent loop`);
    }
    return out;
  }

  private tmpName(what: string): string {
    return this.p('tmp', `${process.pid}.${randomBytes(6).toString('hex')}.${what}`);
  }

  /** Remove staging dirs left by processes that died. */
  private cleanupStale(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.p('tmp'));
    } catch {
      return;
    }
    for (const n of names) {
      const pid = Number(n.split('.')[0]);
      if (Number.isInteger(pid) && pid > 0 && processStartTime(pid) === undefined) {
        log.info('removing stale staging directory', { path: this.p('tmp', n) });
        rmrf(this.p('tmp', n));
      }
    }
  }

  async applyLayer(o: {
    parentChainId: string | null;
    chainId: string;
    diffId: string;
    mediaType: string;
    open: () => Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream;
  }): Promise<void> {
    const hex = checkDigest('chainId', o.chainId);
    checkDigest('diffId', o.diffId);
    if (o.parentChainId !== null) checkDigest('parentChainId', o.parentChainId);
    if (this.hasChain(o.chainId)) return;
    if (o.parentChainId !== null && !this.hasChain(o.parentChainId)) {
      throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_PARENT_MISSING', `Cannot apply layer ${o.diffId} as chain ${o.chainId}: its parent chain ${o.parentChainId} is not unpacked yet (apply layers base first)`);
    }
    const driver = this.driver();
    await withLock(this.p('locks', `${hex}.lock`), async () => {
      if (this.hasChain(o.chainId)) return;
      this.cleanupStale();
      const tmp = this.tmpName('chain');
      const fsDir = join(tmp, 'fs');
      let link: string | undefined;
      let src: NodeJS.ReadableStream | undefined;
      try {
        fs.mkdirSync(tmp, { mode: 0o700 });
        fs.mkdirSync(fsDir);
        fs.chmodSync(fsDir, 0o755);
        if (o.parentChainId !== null) {
          const parentFs = join(this.chainDir(o.parentChainId), 'fs');
          if (driver === 'copy') await runCp(parentFs, fsDir);
          else {
            // overlay shows the topmost layer's root dir attributes: inherit them unless the layer has "./"
            const st = fs.statSync(parentFs);
            fs.chownSync(fsDir, st.uid, st.gid);
            fs.chmodSync(fsDir, st.mode & 0o7777);
          }
        }
        const { unpackLayer } = await import('./unpack.js');
        src = await o.open();
        const t0 = Date.now();
        const lowers = driver === 'overlay' && o.parentChainId !== null ? this.lineage(o.parentChainId).map((m) => join(this.chainDir(m.chainId), 'fs')) : [];
        const r = await unpackLayer(src, fsDir, { mode: driver, mediaType: o.mediaType, lowers, limits: this.limits });
        if (r.diffId !== o.diffId) {
          throw new NodeletError('InvalidArgument', 'ERR_LAYER_DIFFID_MISMATCH', `Layer for chain ${o.chainId} does not match its diff_id: expected ${o.diffId}, got ${r.diffId}; the blob or the image config is corrupt, nothing was kept`, {
            details: { chainId: o.chainId, expected: o.diffId, actual: r.diffId },
          });
        }
        do link = newLinkId();
        while (fs.existsSync(this.p('l', link)));
        fs.symlinkSync(`../chains/${hex}/fs`, this.p('l', link));
        const meta: ChainMeta = { chainId: o.chainId, parent: o.parentChainId, diffId: o.diffId, link, driver, createdAt: new Date().toISOString(), size: r.bytes };
        writeJsonAtomic(join(tmp, 'meta.json'), meta, { indent: 2 });
        fs.renameSync(tmp, this.chainDir(o.chainId));
        fsyncDir(this.p('chains'));
        if (o.parentChainId !== null && !this.hasChain(o.parentChainId)) {
          // removeChain(parent) ran while we unpacked (it saw no child yet): undo, never keep an orphan
          fs.renameSync(this.chainDir(o.chainId), tmp);
          throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_PARENT_MISSING', `The parent chain ${o.parentChainId} of ${o.chainId} was removed while the layer was unpacked; pull the image again`);
        }
        log.debug('layer unpacked', { chainId: o.chainId, bytes: r.bytes, entries: r.entries, ms: Date.now() - t0 });
      } catch (e) {
        (src as { destroy?: () => void } | undefined)?.destroy?.();
        if (link) fs.rmSync(this.p('l', link), { force: true });
        rmrf(tmp);
        throw e;
      }
    });
  }

  private activeDir(key: string): string {
    return this.p('active', keyDirName(key));
  }

  /** The directory a container writes into (overlay upper, or the copied tree); undefined when the key has no snapshot. */
  writableDir(key: string): string | undefined {
    const rec = this.record(key);
    if (!rec || rec.kind !== 'active') return undefined;
    return join(this.activeDir(key), rec.driver === 'copy' ? 'fs' : 'upper');
  }

  private record(key: string): ActiveRecord | undefined {
    return readJson<ActiveRecord>(join(this.activeDir(key), 'record.json'));
  }

  private mountsFor(dir: string, rec: ActiveRecord): Mount[] {
    let lowers: string[] = [];
    if (rec.chainId !== null) {
      const line = this.lineage(rec.chainId);
      if (rec.driver === 'overlay' && line.length > OVERLAY_MAX_STACK) {
        throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_TOO_MANY_LAYERS', `Chain ${rec.chainId} has ${line.length} layers; overlayfs stacks at most ${OVERLAY_MAX_STACK}`);
      }
      lowers = rec.driver === 'overlay' ? line.map((m) => this.p('l', m.link)) : [join(this.chainDir(rec.chainId), 'fs')];
    }
    return computeMounts({ driver: rec.driver, readonly: rec.kind === 'view', lowers, dir, indexOff: this.indexOff });
  }

  async prepare(key: string, chainId: string | null, opts: { readonly?: boolean } = {}): Promise<Mount[]> {
    checkKey(key);
    if (chainId !== null) checkDigest('chainId', chainId);
    const driver = this.driver();
    const dir = this.activeDir(key);
    const body = async (): Promise<Mount[]> => {
      if (chainId !== null && !this.hasChain(chainId)) {
        throw notFound('ERR_SNAPSHOT_CHAIN_NOT_FOUND', `Layer chain ${chainId} is not in the snapshot store ${this.root}; pull the image first`);
      }
      const existing = this.record(key);
      if (existing) throw alreadyExists('ERR_SNAPSHOT_EXISTS', `Snapshot "${key}" already exists (on chain ${existing.chainId ?? 'none'}); remove it first`, { details: { key } });
      const rec: ActiveRecord = { key, chainId, kind: opts.readonly ? 'view' : 'active', driver, createdAt: new Date().toISOString() };
      const mounts = this.mountsFor(dir, rec); // validates the lineage before anything is created
      const tmp = this.tmpName('active');
      try {
        fs.mkdirSync(tmp, { mode: 0o700 });
        const sub = (n: string) => {
          fs.mkdirSync(join(tmp, n));
          fs.chmodSync(join(tmp, n), 0o755);
        };
        if (rec.kind === 'view') sub('empty');
        else if (driver === 'overlay') {
          sub('upper');
          if (chainId !== null) {
            // the merged root takes the upper dir's owner and mode: keep the image's (containerd does the same)
            const st = fs.statSync(join(this.chainDir(chainId), 'fs'));
            fs.chownSync(join(tmp, 'upper'), st.uid, st.gid);
            fs.chmodSync(join(tmp, 'upper'), st.mode & 0o7777);
          }
          fs.mkdirSync(join(tmp, 'work'), { mode: 0o700 });
        } else {
          sub('fs');
          if (chainId !== null) await runCp(join(this.chainDir(chainId), 'fs'), join(tmp, 'fs'));
        }
        writeJsonAtomic(join(tmp, 'record.json'), rec, { indent: 2 });
        fs.renameSync(tmp, dir);
        fsyncDir(this.p('active'));
      } catch (e) {
        rmrf(tmp);
        throw e;
      }
      return mounts;
    };
    return withLock(this.p('locks', `active-${keyDirName(key)}.lock`), () =>
      chainId === null ? body() : withLock(this.p('locks', `${chainId.slice(7)}.lock`), body),
    );
  }

  /** The mounts of an existing snapshot (e.g. after a restart); undefined if there is none. */
  mounts(key: string): Mount[] | undefined {
    checkKey(key);
    const rec = this.record(key);
    return rec ? this.mountsFor(this.activeDir(key), rec) : undefined;
  }

  async remove(key: string): Promise<void> {
    checkKey(key);
    this.layout();
    const dir = this.activeDir(key);
    await withLock(this.p('locks', `active-${keyDirName(key)}.lock`), async () => {
      if (!fs.existsSync(dir)) return;
      const tmp = this.tmpName('removing');
      fs.renameSync(dir, tmp);
      fsyncDir(this.p('active'));
      rmrf(tmp);
    });
  }

  async listChains(): Promise<string[]> {
    this.layout();
    return fs
      .readdirSync(this.p('chains'))
      .filter((h) => /^[0-9a-f]{64}$/.test(h) && fs.existsSync(this.p('chains', h, 'meta.json')))
      .map((h) => 'sha256:' + h)
      .sort();
  }

  /** Active snapshot records, key → chain. */
  async listSnapshots(): Promise<ActiveRecord[]> {
    this.layout();
    const out: ActiveRecord[] = [];
    for (const n of fs.readdirSync(this.p('active'))) {
      const r = readJson<ActiveRecord>(this.p('active', n, 'record.json'));
      if (r) out.push(r);
    }
    return out;
  }

  async usedChains(): Promise<Set<string>> {
    const used = new Set<string>();
    for (const r of await this.listSnapshots()) {
      let cur: string | null = r.chainId;
      while (cur !== null && !used.has(cur)) {
        used.add(cur);
        cur = this.meta(cur)?.parent ?? null;
      }
    }
    return used;
  }

  async removeChain(chainId: string): Promise<void> {
    const hex = checkDigest('chainId', chainId);
    this.layout();
    await withLock(this.p('locks', `${hex}.lock`), async () => {
      const meta = this.meta(chainId);
      if (!meta) return;
      if ((await this.usedChains()).has(chainId)) {
        throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_IN_USE', `Layer chain ${chainId} is used by a container or image mount; remove those snapshots first`, { details: { chainId } });
      }
      for (const other of await this.listChains()) {
        if (other !== chainId && this.meta(other)?.parent === chainId) {
          throw new NodeletError('FailedPrecondition', 'ERR_SNAPSHOT_IN_USE', `Layer chain ${chainId} is the parent of chain ${other}; remove that one first`, { details: { chainId, child: other } });
        }
      }
      const tmp = this.tmpName('removing');
      fs.renameSync(this.chainDir(chainId), tmp);
      fs.rmSync(this.p('l', meta.link), { force: true });
      fsyncDir(this.p('chains'));
      rmrf(tmp);
    });
  }
}
