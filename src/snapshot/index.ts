// The snapshot subsystem: layer unpacking and the overlay / copy snapshotters.
export { SnapshotStore, computeMounts, keyDirName, OVERLAY_MAX_STACK } from './store.js';
export type { SnapshotDriver, ChainMeta, ActiveRecord } from './store.js';
// The mount helpers moved to src/sys/mounts.ts (shared with the runtime and the pinner); re-exported for the image side.
export { mountAll, unmountAll, computeMountPlan, compactOverlayData, mountsUnder } from '../sys/mounts.js';
export type { MountPlan, UnmountOptions } from '../sys/mounts.js';
// unpackLayer: import it from './unpack.js' (it pulls in tar-stream and the decompressors; the run path must not load them)
export type { UnpackMode, UnpackResult } from './unpack.js';
export { cleanEntryPath, classifyWhiteout, compressionFromMediaType, sniffCompression, symlinkEscapes } from './paths.js';
export { DEFAULT_MAX_LAYER_BYTES, reserveBytes, checkFreeSpace, checkLayerSize } from './limits.js';
export type { LayerLimits } from './limits.js';
