// Child process for the cross-process test: apply one layer from a file,
// slowly, and report whether this process had to open (unpack) it.
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { SnapshotStore } from '../../../src/snapshot/index.js';

const [root, blobPath, chainId, diffId] = process.argv.slice(2) as [string, string, string, string];
const store = new SnapshotStore({ root, driver: 'overlay' });
let opened = false;
await store.applyLayer({
  parentChainId: null,
  chainId,
  diffId,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  open: () => {
    opened = true;
    const blob = fs.readFileSync(blobPath);
    return Readable.from(
      (async function* () {
        for (let i = 0; i < blob.length; i += 4096) {
          await new Promise((r) => setTimeout(r, 5));
          yield blob.subarray(i, i + 4096);
        }
      })(),
    );
  },
});
process.stdout.write(opened ? 'opened\n' : 'skipped\n');
