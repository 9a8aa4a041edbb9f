// The snapshot subsystem: layer unpacking and the overlay / copy snapshotters.
export { SnapshotStore, computeMounts, keyDirName, OVERLAY_MAX_STACK } from './store.js';
export type { SnapshotDriver, ChainMeta, ActiveRecord } from './store.js';
export { mountAll, unmountAll, computeMountPlan, compactOverlayData, mountsUnder } from './mount.js';
export { unpackLayer } from './unpack.js';
export type { UnpackMode, UnpackResult } from './unpack.js';
export { cleanEntryPath, classifyWhiteout, compressionFromMediaType, sniffCompression, symlinkEscapes } from './paths.js';
