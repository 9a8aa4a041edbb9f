// ImageService: reference -> registry -> content store -> snapshots -> record.
// Layout under the state root: content/ (blobs), images/ (records),
// snapshots/ (the SnapshotStore's chains and active snapshots).
//
// pull, step by step:
//  1. resolve the reference (mirrors first, then the registry) to a manifest,
//     choosing the platform's entry in an index; verify digests.
//  2. fetch + verify + parse the config; diff_ids must match the layer count.
//  3. download layers in parallel (maxConcurrentDownloads, skipping layers
//     whose chain is already unpacked), and apply them base-first as soon as
//     each one is committed (download i+1.. overlaps unpack of i).
//  4. record the image (tag -> config digest).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { NodeletError, failedPrecondition, invalidArgument, isNodeletError, notFound } from '../errors.js';
import { getLogger } from '../log.js';
import { SnapshotStore, mountAll, unmountAll, type LayerLimits } from '../snapshot/index.js';
import { computeChainIds } from './chain.js';
import { ContentStore, digestMismatch } from './content-store.js';
import { ImageStore } from './image-store.js';
import { parseImageConfig, parseManifest, type Descriptor } from './manifest.js';
import { familiarReference, formatReference, isLoopbackHost, parseReference, repositoryName, type ImageReference } from './reference.js';
import { resolveCredentials, type Credentials } from './registry/auth.js';
import { RegistryClient, backoffDelay, isRetriableError, DEFAULT_RETRY, type RetryPolicy } from './registry/client.js';
import { sleep } from '../sys/proc.js';
import { formatPlatform, hostPlatform, parsePlatform, selectPlatform } from './registry/platform.js';
import type { ImageProvider, ImageRecord, Mount, PullOptions, PullPolicy, PullProgress } from './types.js';

const log = getLogger('image');

export interface RegistriesConfig {
  registries?: Record<string, { mirrors?: string[]; insecure?: boolean }>;
}

export interface ImageServiceOptions {
  /** State root (--root): content/, images/, snapshots/ live under it. */
  root: string;
  maxConcurrentDownloads?: number;
  certsDirs?: string[];
  config?: RegistriesConfig;
  retry?: Partial<RetryPolicy>;
  snapshotDriver?: 'overlay' | 'copy' | 'auto';
  /** --max-layer-size / --image-min-free: bounds checked while a layer unpacks */
  layerLimits?: LayerLimits;
}

export interface ImportOptions {
  platform?: string;
  onProgress?: (p: PullProgress) => void;
}

/** Reads a registries config (JSON or YAML) if the file exists. */
export function loadRegistriesConfig(file: string): RegistriesConfig {
  if (!existsSync(file)) return {};
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as RegistriesConfig;
  } catch {
    throw invalidArgument('ERR_IMAGE_CONFIG_FILE_INVALID', `registries config ${file} is not valid JSON`);
  }
}

function pLimit(n: number) {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

function pullError(ref: string, e: unknown): Error {
  if (isNodeletError(e) && e.message.startsWith('Cannot pull')) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (isNodeletError(e)) {
    return new NodeletError(e.category, e.code, `Cannot pull "${ref}": ${msg}`, { cause: e.cause, details: { ...e.details, reference: ref } });
  }
  return new NodeletError('Internal', 'ERR_IMAGE_PULL_FAILED', `Cannot pull "${ref}": ${msg}`, { cause: e, details: { reference: ref } });
}

/**
 * A tee of a blob download into the unpacker: lets the first layer unpack
 * while it downloads. Writes honour the reader's backpressure until the
 * reader detaches (apply finished or failed); then the download goes on to
 * disk alone.
 */
class Tap {
  readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  private detached = false;
  private wake?: () => void;
  constructor() {
    const wake = () => this.wake?.();
    this.stream.on('drain', wake);
    this.stream.on('close', wake);
    this.stream.on('error', () => undefined); // surfaced to the unpacker through the pipe
  }
  async write(chunk: Buffer): Promise<void> {
    if (this.detached || this.stream.destroyed) return;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
  ended = false;
  end(): void {
    if (this.detached || this.ended) return;
    this.ended = true;
    this.stream.end();
  }
  fail(e: Error): void {
    if (!this.detached) this.stream.destroy(e);
    this.detach();
  }
  detach(): void {
    this.detached = true;
    this.wake?.();
    if (!this.stream.writableFinished) this.stream.destroy();
  }
}

const isIdLike = (s: string) => /^(sha256:)?[a-f0-9]{3,64}$/.test(s);

export class ImageService implements ImageProvider {
  readonly root: string;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly snapshots: SnapshotStore;
  private readonly opts: ImageServiceOptions;

  constructor(opts: ImageServiceOptions) {
    this.opts = opts;
    this.root = path.resolve(opts.root);
    this.content = new ContentStore({ root: path.join(this.root, 'content') });
    this.images = new ImageStore({ root: path.join(this.root, 'images') });
    this.snapshots = new SnapshotStore({ root: path.join(this.root, 'snapshots'), driver: opts.snapshotDriver ?? 'auto', limits: opts.layerLimits });
  }

  // ---- lookup -------------------------------------------------------------

  async list(): Promise<ImageRecord[]> {
    return this.images.list();
  }

  async getImage(refOrId: string): Promise<ImageRecord | undefined> {
    const all = await this.images.list();
    if (isIdLike(refOrId)) {
      const hex = refOrId.replace(/^sha256:/, '');
      const hits = all.filter((i) => i.id.slice(7).startsWith(hex));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1)
        throw invalidArgument('ERR_IMAGE_ID_AMBIGUOUS', `image ID prefix "${refOrId}" matches ${hits.length} images; give more characters`);
      if (refOrId.startsWith('sha256:')) return undefined;
    }
    let r: ImageReference;
    try {
      r = parseReference(refOrId);
    } catch (e) {
      if (isIdLike(refOrId)) return undefined;
      throw e;
    }
    if (r.digest) {
      const rd = `${repositoryName(r)}@${r.digest}`;
      return all.find((i) => i.repoDigests.includes(rd) || (i.manifestDigest === r.digest && i.names.some((n) => n.startsWith(repositoryName(r) + ':'))));
    }
    const name = formatReference(r);
    return all.find((i) => i.names.includes(name));
  }

  async ensureImage(ref: string, policy: PullPolicy, opts: PullOptions = {}): Promise<ImageRecord> {
    if (policy !== 'Always') {
      const have = await this.getImage(ref);
      if (have && have.chainIds.every((c) => this.snapshots.hasChain(c))) return have;
      if (policy === 'Never')
        throw notFound('ERR_IMAGE_NEVER_PULL', `image "${ref}" is not present and the pull policy is Never: pull or import it first`, {
          details: { reference: ref },
        });
    }
    return this.pull(ref, opts);
  }

  // ---- pull ---------------------------------------------------------------

  private endpointsFor(domain: string, tlsVerify: boolean | undefined): { endpoint?: string; tlsVerify?: boolean; mirror: boolean }[] {
    const reg = this.opts.config?.registries?.[domain];
    const insecure = tlsVerify === false || reg?.insecure === true;
    const out: { endpoint?: string; tlsVerify?: boolean; mirror: boolean }[] = [];
    for (const m of reg?.mirrors ?? []) {
      const host = m.replace(/^https?:\/\//, '').split('/')[0]!;
      const url = /^https?:\/\//.test(m) ? m : `${isLoopbackHost(host) ? 'http' : 'https'}://${m}`;
      out.push({ endpoint: url, ...(insecure ? { tlsVerify: false } : {}), mirror: true });
    }
    out.push({ ...(insecure ? { tlsVerify: false } : {}), mirror: false });
    return out;
  }

  /**
   * Pull. With `opts.credentials` (a pod's pull-secret credentials, kubelet's keyring order) each is tried in
   * turn, then the node's own (--creds / auth file), as kubelet's PullImage does; anonymous only when there
   * are none at all. Several failures come back as one error listing each, in order.
   */
  async pull(refStr: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(refStr);
    const node = await resolveCredentials(ref.domain, ref.path, { ...(opts.creds ? { creds: opts.creds } : {}), ...(opts.authFile ? { authFile: opts.authFile } : {}) });
    const tries: (Credentials | undefined)[] = [...(opts.credentials ?? []), ...(node ? [node] : [])];
    if (tries.length <= 1) {
      const rec = await this.pullWith(refStr, ref, opts, tries[0]);
      opts.onCredentialsUsed?.(tries[0]);
      return rec;
    }
    const errs: unknown[] = [];
    for (const c of tries) {
      try {
        const rec = await this.pullWith(refStr, ref, opts, c);
        opts.onCredentialsUsed?.(c);
        return rec;
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        errs.push(e);
      }
    }
    const first = errs[0];
    const prefix = `Cannot pull "${refStr}": `;
    const msgs = errs.map((e) => (e instanceof Error ? e.message : String(e))).map((m) => (m.startsWith(prefix) ? m.slice(prefix.length) : m));
    // utilerrors.NewAggregate's form: [e1, e2]
    return Promise.reject(
      isNodeletError(first)
        ? new NodeletError(first.category, first.code, `${prefix}[${msgs.join(', ')}]`, { cause: first, details: { ...first.details, reference: refStr, attempts: errs.length } })
        : pullError(refStr, first),
    );
  }

  private async pullWith(refStr: string, ref: ImageReference, opts: PullOptions, credentials: Credentials | undefined): Promise<ImageRecord> {
    const shown = familiarReference(ref);
    const progress = (p: Omit<PullProgress, 'ref'>) => opts.onProgress?.({ ref: shown, ...p });
    const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    const clients: RegistryClient[] = [];
    try {
      // 1. resolve
      progress({ phase: 'resolving' });
      let client: RegistryClient | undefined;
      let top: { bytes: Buffer; mediaType: string; digest: string } | undefined;
      let lastErr: unknown;
      for (const ep of this.endpointsFor(ref.domain, opts.tlsVerify)) {
        const c = new RegistryClient({
          domain: ref.domain,
          ...(ep.endpoint ? { endpoint: ep.endpoint } : {}),
          ...(credentials ? { credentials } : {}),
          ...(ep.tlsVerify === false ? { tlsVerify: false } : {}),
          ...(this.opts.certsDirs ? { certsDirs: this.opts.certsDirs } : {}),
          ...(this.opts.retry ? { retry: this.opts.retry } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        clients.push(c);
        try {
          top = await c.getManifest(ref.path, ref.digest ?? ref.tag!);
          client = c;
          break;
        } catch (e) {
          lastErr = e;
          if (!ep.mirror) throw e;
          log.warn('mirror failed, trying next endpoint', { mirror: ep.endpoint, error: (e as Error).message });
        }
      }
      if (!client || !top) throw lastErr;
      if (ref.digest && top.digest !== ref.digest) throw digestMismatch(ref.digest, top.digest, 'manifest');
      let parsed = parseManifest(top.bytes, top.mediaType, `of "${shown}"`);
      let manifestDigest = top.digest;
      let manifestBytes = top.bytes;
      if (parsed.kind === 'index') {
        const entry = selectPlatform(parsed.manifests, platform);
        if (!entry) {
          const avail = parsed.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!)).join(', ');
          throw notFound('ERR_IMAGE_PLATFORM_NOT_FOUND', `no image for platform ${formatPlatform(platform)} (available: ${avail || 'none'}); use --platform`);
        }
        const m = await client.getManifest(ref.path, entry.digest);
        if (m.digest !== entry.digest) throw digestMismatch(entry.digest, m.digest, 'manifest');
        parsed = parseManifest(m.bytes, m.mediaType, `${entry.digest} of "${shown}"`);
        if (parsed.kind !== 'manifest') throw invalidArgument('ERR_IMAGE_MANIFEST_INVALID', `nested index in "${shown}"`);
        manifestDigest = m.digest;
        manifestBytes = m.bytes;
      }
      if (parsed.kind !== 'manifest') throw new Error('unreachable');
      await this.content.writeBlob(manifestDigest, manifestBytes);
      if (top.digest !== manifestDigest) await this.content.writeBlob(top.digest, top.bytes);

      // 2. config
      const cfgDesc = parsed.config;
      const c = client;
      await this.download(c, ref.path, cfgDesc, progress, opts.signal);
      const configBytes = await this.content.readBlob(cfgDesc.digest);
      const config = parseImageConfig(configBytes, `"${shown}"`);
      const layers = parsed.layers;
      if (config.diffIds.length !== layers.length)
        throw invalidArgument('ERR_IMAGE_CONFIG_INVALID', `image config has ${config.diffIds.length} diff_ids but the manifest has ${layers.length} layers`);

      // 3. layers
      const chainIds = computeChainIds(config.diffIds);
      await this.fetchAndApply(
        layers,
        config.diffIds,
        chainIds,
        (d, signal, tap) => this.download(c, ref.path, d, progress, signal, tap),
        progress,
        opts.signal,
      );

      // 4. record
      const repo = repositoryName(ref);
      const { created, ...cfg } = config;
      const rec: ImageRecord = {
        id: cfgDesc.digest,
        manifestDigest,
        names: ref.tag !== undefined ? [`${repo}:${ref.tag}`] : [],
        repoDigests: [...new Set([`${repo}@${top.digest}`, `${repo}@${manifestDigest}`])],
        config: cfg,
        chainIds,
        size: layers.reduce((a, l) => a + l.size, 0),
        ...(created ? { created } : {}),
        pulledAt: new Date().toISOString(),
      };
      const stored = await this.images.put(rec);
      progress({ phase: 'done', digest: rec.id });
      return stored;
    } catch (e) {
      throw pullError(refStr, e);
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    }
  }

  /** Downloads layers with bounded parallelism and applies them in order as each completes. */
  private async fetchAndApply(
    layers: Descriptor[],
    diffIds: string[],
    chainIds: string[],
    fetch: (d: Descriptor, signal: AbortSignal, tap?: Tap) => Promise<void>,
    progress: (p: Omit<PullProgress, 'ref'>) => void,
    signal?: AbortSignal,
    openLayer: (d: Descriptor) => Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream = (d) => this.content.openBlob(d.digest),
  ): Promise<void> {
    // the deepest chain already unpacked: nothing at or below it is needed
    let have = -1;
    for (let i = chainIds.length - 1; i >= 0; i--) {
      if (this.snapshots.hasChain(chainIds[i]!)) {
        have = i;
        break;
      }
    }
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const limit = pLimit(Math.max(1, this.opts.maxConcurrentDownloads ?? 3));
    // the first layer to apply has its download teed into the unpacker (its
    // download starts synchronously below, so the tap exists before the
    // applier looks); later layers unpack from the content store while the
    // next ones download
    const taps: (Tap | undefined)[] = [];
    const downloads = layers.map((d, i) => {
      if (i <= have) {
        progress({ phase: 'exists', digest: d.digest, current: d.size, total: d.size });
        return Promise.resolve();
      }
      progress({ phase: 'waiting', digest: d.digest, total: d.size });
      const p = limit(() => {
        if (ac.signal.aborted) throw ac.signal.reason;
        const tap = i === have + 1 && !this.content.has(d.digest) ? new Tap() : undefined;
        taps[i] = tap;
        return fetch(d, ac.signal, tap);
      });
      p.catch((e) => ac.abort(e));
      return p;
    });
    try {
      for (let i = have + 1; i < layers.length; i++) {
        const d = layers[i]!;
        const apply = (open: () => Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream) =>
          this.snapshots.applyLayer({
            parentChainId: i === 0 ? null : chainIds[i - 1]!,
            chainId: chainIds[i]!,
            diffId: diffIds[i]!,
            mediaType: d.mediaType || 'application/vnd.oci.image.layer.v1.tar+gzip',
            open,
          });
        const tap = taps[i];
        let applied = false;
        if (tap) {
          progress({ phase: 'extracting', digest: d.digest, total: d.size });
          try {
            await apply(() => tap.stream);
            applied = true;
          } catch (e) {
            // the download was interrupted (it resumes to disk) or the layer is bad:
            // either way, decide once the blob is complete
            log.debug('streamed apply failed, retrying from the content store', { digest: d.digest, error: (e as Error).message });
          } finally {
            tap.detach();
          }
        }
        await downloads[i];
        if (!applied) {
          progress({ phase: 'extracting', digest: d.digest, total: d.size });
          await apply(() => openLayer(d));
        }
        progress({ phase: 'done', digest: d.digest, current: d.size, total: d.size });
      }
    } catch (e) {
      ac.abort(e);
      await Promise.allSettled(downloads);
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Fetches one blob into the content store: retries, Range resume, digest + size check. */
  private async download(
    client: RegistryClient,
    repo: string,
    d: Descriptor,
    progress: (p: Omit<PullProgress, 'ref'>) => void,
    signal?: AbortSignal,
    tap?: Tap,
  ): Promise<void> {
    if (this.content.has(d.digest)) {
      tap?.fail(new Error('blob already present'));
      progress({ phase: 'exists', digest: d.digest, current: d.size, total: d.size });
      return;
    }
    const retry = { ...DEFAULT_RETRY, ...this.opts.retry };
    await this.content.ingest(
      d.digest,
      d.size,
      async (w) => {
        let failures = 0;
        let lastReport = 0;
        for (;;) {
          const before = w.offset;
          try {
            const res = await client.getBlob(repo, d.digest, w.offset);
            if (w.offset > 0 && !res.partial) await w.reset();
            for await (const chunk of res.body) {
              await w.write(chunk as Buffer);
              if (tap) await tap.write(chunk as Buffer);
              if (w.offset - lastReport >= 1 << 20 || w.offset === d.size) {
                lastReport = w.offset;
                progress({ phase: 'downloading', digest: d.digest, current: w.offset, total: d.size });
              }
            }
            if (w.offset < d.size) throw Object.assign(new Error(`connection closed after ${w.offset} of ${d.size} bytes`), { code: 'ERR_IMAGE_BLOB_TRUNCATED' });
            progress({ phase: 'verifying', digest: d.digest, current: w.offset, total: d.size });
            tap?.end();
            return;
          } catch (e) {
            // the unpacker saw a prefix only: make it fail; the layer is applied from disk later
            tap?.fail(e instanceof Error ? e : new Error(String(e)));
            tap = undefined;
            if (signal?.aborted) throw signal.reason;
            if (w.offset > before) failures = 0; // progress was made: keep resuming
            if (!isRetriableError(e) || ++failures >= retry.attempts) throw e;
            log.info('blob download interrupted, resuming', { digest: d.digest, offset: w.offset, error: (e as Error).message });
            await sleep(backoffDelay(failures - 1, retry), signal);
          }
        }
      },
      {
        onWait: () => {
          tap?.fail(new Error('blob downloaded by another pull'));
          tap = undefined;
          progress({ phase: 'waiting', digest: d.digest, total: d.size });
        },
        ...(signal ? { signal } : {}),
      },
    ).catch((e) => {
      tap?.fail(e instanceof Error ? e : new Error(String(e)));
      throw e;
    });
    if (tap && !tap.ended) tap.fail(new Error('blob committed by another pull; nothing streamed'));

  }

  // ---- import ---------------------------------------------------------------

  /** Imports an OCI layout (dir or tar) or a docker-save tar; names it REF if given. */
  async import(archivePath: string, ref?: string, opts: ImportOptions = {}): Promise<ImageRecord[]> {
    const { openImageArchive } = await import('./archive.js');
    const arch = await openImageArchive(archivePath, opts.platform ? { platform: opts.platform } : {});
    const progress = (p: Omit<PullProgress, 'ref'>) => opts.onProgress?.({ ref: ref ?? archivePath, ...p });
    try {
      if (arch.images.length === 0) throw invalidArgument('ERR_IMAGE_ARCHIVE_EMPTY', `archive ${archivePath} holds no image`);
      if (ref !== undefined && arch.images.length > 1)
        throw invalidArgument('ERR_IMAGE_ARCHIVE_AMBIGUOUS', `archive ${archivePath} holds ${arch.images.length} images; cannot give them all the name ${ref}`);
      const named = ref !== undefined ? parseReference(ref) : undefined;
      const out: ImageRecord[] = [];
      for (const img of arch.images) {
        const ingestFrom = async (digest: string, size: number, tapIn?: Tap) => {
          let tap = tapIn;
          if (this.content.has(digest)) {
            tap?.fail(new Error('blob already present'));
            return;
          }
          try {
            await this.content.ingest(
              digest,
              size,
              async (w) => {
                const s = await arch.openBlob(digest);
                for await (const chunk of s as AsyncIterable<Buffer>) {
                  await w.write(chunk);
                  if (tap) await tap.write(chunk);
                }
                tap?.end();
              },
              {
                onWait: () => {
                  tap?.fail(new Error('blob ingested by another process'));
                  tap = undefined;
                },
              },
            );
          } catch (e) {
            tap?.fail(e instanceof Error ? e : new Error(String(e)));
            throw e;
          }
          if (tap && !tap.ended) tap.fail(new Error('blob committed by another process; nothing streamed'));
        };
        await this.content.writeBlob(img.manifestDigest, img.manifestBytes);
        await this.content.writeBlob(img.configDigest, img.configBytes);
        const config = parseImageConfig(img.configBytes, archivePath);
        if (config.diffIds.length !== img.layers.length)
          throw invalidArgument('ERR_IMAGE_CONFIG_INVALID', `image config has ${config.diffIds.length} diff_ids but the manifest has ${img.layers.length} layers`);
        const chainIds = computeChainIds(config.diffIds);
        const layers: Descriptor[] = img.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
        await this.fetchAndApply(layers, config.diffIds, chainIds, (d, _signal, tap) => ingestFrom(d.digest, d.size, tap), progress);
        let nameRef: ImageReference | undefined = named;
        if (!nameRef && img.refName) {
          try {
            nameRef = parseReference(img.refName.includes('/') || img.refName.includes(':') ? img.refName : `localhost/${img.refName}`);
          } catch {
            nameRef = undefined;
          }
          if (nameRef && !nameRef.tag && !nameRef.digest) nameRef.tag = 'latest';
        }
        const { created, ...cfg } = config;
        const rec: ImageRecord = {
          id: img.configDigest,
          manifestDigest: img.manifestDigest,
          names: nameRef?.tag !== undefined ? [`${repositoryName(nameRef)}:${nameRef.tag}`] : [],
          repoDigests: nameRef ? [`${repositoryName(nameRef)}@${img.manifestDigest}`] : [],
          config: cfg,
          chainIds,
          size: img.layers.reduce((a, l) => a + l.size, 0),
          ...(created ? { created } : {}),
          pulledAt: new Date().toISOString(),
        };
        out.push(await this.images.put(rec));
      }
      return out;
    } finally {
      await arch.close();
    }
  }

  // ---- remove / prune -------------------------------------------------------

  private async requireImage(refOrId: string): Promise<ImageRecord> {
    const img = await this.getImage(refOrId);
    if (!img) throw notFound('ERR_IMAGE_NOT_FOUND', `image "${refOrId}" not found: see nodelet images`, { details: { reference: refOrId } });
    return img;
  }

  /**
   * rmi: by name removes that name (the record goes when none is left); by ID
   * removes the record with all its names. Blobs and chains go at prune.
   */
  async remove(refOrId: string): Promise<{ untagged: string[]; deleted?: string }> {
    const img = await this.requireImage(refOrId);
    let byName: string | undefined;
    if (!(isIdLike(refOrId) && img.id.slice(7).startsWith(refOrId.replace(/^sha256:/, '')))) {
      const r = parseReference(refOrId);
      byName = r.tag !== undefined && !r.digest ? formatReference(r) : undefined;
    }
    return this.images.update((images) => {
      const cur = images.find((i) => i.id === img.id);
      if (!cur) return { untagged: [] };
      if (byName !== undefined && cur.names.length > 1) {
        cur.names = cur.names.filter((n) => n !== byName);
        return { untagged: [byName] };
      }
      images.splice(images.indexOf(cur), 1);
      return { untagged: cur.names, deleted: cur.id };
    });
  }

  /** Deletes blobs and layer chains no image uses; chains under a container or mount are kept. */
  async prune(): Promise<{ blobs: string[]; chains: string[]; bytes: number }> {
    const images = await this.images.list();
    const keepBlobs = new Set<string>();
    const keepChains = new Set<string>();
    for (const img of images) {
      keepBlobs.add(img.id);
      keepBlobs.add(img.manifestDigest);
      for (const rd of img.repoDigests) keepBlobs.add(rd.slice(rd.indexOf('@') + 1));
      for (const c of img.chainIds) keepChains.add(c);
      try {
        const m = parseManifest(await this.content.readBlob(img.manifestDigest), '', img.manifestDigest);
        if (m.kind === 'manifest') for (const l of m.layers) keepBlobs.add(l.digest);
      } catch {
        /* manifest missing: keep nothing more */
      }
    }
    const used = await this.snapshots.usedChains();
    const out = { blobs: [] as string[], chains: [] as string[], bytes: 0 };
    for (const b of await this.content.list()) {
      if (keepBlobs.has(b)) continue;
      out.bytes += this.content.size(b) ?? 0;
      await this.content.delete(b);
      out.blobs.push(b);
    }
    // remove children before parents: repeat until no progress
    let pending = (await this.snapshots.listChains()).filter((c) => !keepChains.has(c) && !used.has(c));
    while (pending.length) {
      const next: string[] = [];
      for (const c of pending) {
        try {
          await this.snapshots.removeChain(c);
          out.chains.push(c);
        } catch (e) {
          if (isNodeletError(e, 'ERR_SNAPSHOT_IN_USE')) next.push(c);
          else throw e;
        }
      }
      if (next.length === pending.length) break;
      pending = next;
    }
    return out;
  }

  // ---- rootfs / mounts --------------------------------------------------------

  async prepareRootfs(key: string, imageId: string): Promise<Mount[]> {
    const img = await this.requireImage(imageId);
    return this.snapshots.prepare(key, img.chainIds[img.chainIds.length - 1] ?? null);
  }

  async removeRootfs(key: string): Promise<void> {
    await this.snapshots.remove(key);
  }

  private static mountKey(dir: string): string {
    return 'image-mount:' + createHash('sha256').update(dir).digest('hex').slice(0, 32);
  }

  /** Mounts a read-only view of the image's rootfs at dir (like podman image mount). */
  async mountImage(refOrId: string, dir: string): Promise<string> {
    const img = await this.requireImage(refOrId);
    mkdirSync(dir, { recursive: true });
    const real = realpathSync(dir);
    const key = ImageService.mountKey(real);
    if (this.snapshots.mounts(key))
      throw failedPrecondition('ERR_IMAGE_MOUNT_BUSY', `${real} already has an image mounted: nodelet image unmount ${real} first`);
    const mounts = await this.snapshots.prepare(key, img.chainIds[img.chainIds.length - 1] ?? null, { readonly: true });
    try {
      mountAll(mounts, real);
    } catch (e) {
      await this.snapshots.remove(key);
      throw e;
    }
    return real;
  }

  async unmountImage(dir: string): Promise<void> {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      real = path.resolve(dir);
    }
    unmountAll(real, { submounts: true }); // a user's directory: whatever was mounted below it goes too
    await this.snapshots.remove(ImageService.mountKey(real));
  }
}
