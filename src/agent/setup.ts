// Wires the subsystems into a NodeAgent: ImageService, cgroups, namespace
// pinner + CNI, NodeletRuntime (re-adopting whatever runs), VolumeManager.
// Shared by `nodelet run` (foreground) and `nodelet daemon`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentImages } from './images.js';
import { ImageStore } from '../image/image-store.js';
import { openImageArchive } from '../image/archive.js';
import { parseImageConfig } from '../image/manifest.js';
import { computeChainIds } from '../image/chain.js';
import { SnapshotStore } from '../snapshot/index.js';
import { createCgroupManager } from '../cgroups/index.js';
import { createNamespacePinner, createPodNetwork } from '../network/index.js';
import { NodeletRuntime } from '../runtime/runtime.js';
import { VolumeManager } from '../pod/volumes.js';
import type { BackoffOptions } from '../pod/backoff.js';
import { NodeAgent } from './node-agent.js';

export interface AgentConfig {
  root: string;
  runRoot: string;
  cgroupParent?: string;
  cniConfDir?: string;
  cniBinDirs?: string[];
  podCidr?: string;
  bridgeName?: string;
  maxParallelPulls?: number;
  backoff?: BackoffOptions;
  resyncMs?: number;
  logMaxBytes?: number;
  logMaxFiles?: number;
}

/** images/build/ of this checkout (dist/agent → ../../images/build; src/agent too). */
export const BUILTIN_IMAGES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../images/build');

/**
 * Import a built-in image (localhost/nodelet/NAME:TAG) from images/build when
 * it exists there: its layers are unpacked straight from the OCI layout into
 * the snapshot store and the record is written to the image store (the same
 * stores ImageService reads), without copying blobs into the content store.
 */
export async function importBuiltin(root: string, ref: string, dir = BUILTIN_IMAGES_DIR): Promise<boolean> {
  let index: Record<string, { refName: string }>;
  try {
    index = JSON.parse(fs.readFileSync(path.join(dir, 'images.json'), 'utf8'));
  } catch {
    return false;
  }
  const norm = (r: string) => r.replace(/^docker\.io\//, '');
  for (const [name, v] of Object.entries(index)) {
    if (norm(v.refName) === norm(ref)) {
      await importLayout(root, path.join(dir, name), v.refName);
      return true;
    }
  }
  return false;
}

async function importLayout(root: string, layout: string, refName: string): Promise<void> {
  const arch = await openImageArchive(layout);
  try {
    const img = arch.images[0];
    if (!img) throw new Error(`${layout}: no image in the layout`);
    const config = parseImageConfig(img.configBytes, layout);
    const chainIds = computeChainIds(config.diffIds);
    const snapshots = new SnapshotStore({ root: path.join(root, 'snapshots') });
    for (let i = 0; i < img.layers.length; i++) {
      const l = img.layers[i]!;
      await snapshots.applyLayer({ parentChainId: i === 0 ? null : chainIds[i - 1]!, chainId: chainIds[i]!, diffId: config.diffIds[i]!, mediaType: l.mediaType, open: () => arch.openBlob(l.digest) });
    }
    const { created, ...cfg } = config;
    const repo = refName.slice(0, refName.lastIndexOf(':'));
    await new ImageStore({ root: path.join(root, 'images') }).put({
      id: img.configDigest, manifestDigest: img.manifestDigest, names: [refName], repoDigests: [`${repo}@${img.manifestDigest}`],
      config: cfg, chainIds, size: img.layers.reduce((a, l) => a + l.size, 0), ...(created ? { created } : {}), pulledAt: new Date().toISOString(),
    });
  } finally {
    await arch.close();
  }
}

export async function createAgent(cfg: AgentConfig): Promise<{ agent: NodeAgent; runtime: NodeletRuntime; images: AgentImages; cgroups: Awaited<ReturnType<typeof createCgroupManager>>; close(): Promise<void> }> {
  fs.mkdirSync(cfg.root, { recursive: true, mode: 0o711 });
  fs.mkdirSync(cfg.runRoot, { recursive: true, mode: 0o711 });
  const images = new AgentImages({ root: cfg.root, maxConcurrentDownloads: cfg.maxParallelPulls });
  const cgroups = await createCgroupManager({ parent: cfg.cgroupParent ?? '/nodelet' });
  const network = createPodNetwork({
    stateDir: path.join(cfg.runRoot, 'cni'),
    cniConfDir: cfg.cniConfDir,
    cniBinDirs: cfg.cniBinDirs,
    subnet: cfg.podCidr,
    bridgeName: cfg.bridgeName,
  });
  const runtime = await NodeletRuntime.open({ runRoot: path.join(cfg.runRoot, 'runtime'), root: cfg.root, images, cgroups, pinner: createNamespacePinner({}), network });
  const volumes = new VolumeManager({ root: cfg.root });
  const agent = new NodeAgent({ root: cfg.root, runRoot: cfg.runRoot, runtime, images, volumes, importBuiltin: (ref) => importBuiltin(cfg.root, ref), backoff: cfg.backoff, resyncMs: cfg.resyncMs, logMaxBytes: cfg.logMaxBytes, logMaxFiles: cfg.logMaxFiles });
  return {
    agent, runtime, images, cgroups,
    async close() {
      await agent.close();
      await runtime.close();
    },
  };
}
