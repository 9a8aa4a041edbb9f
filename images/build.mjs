#!/usr/bin/env node
// Writes the built-in images as OCI image layouts: node images/build.mjs OUTDIR TESTPROG BUSYBOX
// Each image goes to OUTDIR/<name>/ (built next to it, then renamed into place).
// Run by scripts/build-images after `npm run build` (uses the compiled dist/).
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeOciLayout } from '../dist/image/archive.js';
import { images as busybox } from './busybox/image.mjs';
import { images as testprog } from './testprog/image.mjs';

const [outDir, testprogBin, busyboxBin] = process.argv.slice(2);
if (!outDir || !testprogBin || !busyboxBin) {
  console.error('usage: node images/build.mjs OUTDIR TESTPROG_BINARY BUSYBOX_BINARY');
  process.exit(2);
}
const ctx = { testprog: testprogBin, busybox: busyboxBin };
const summary = {};
for (const img of [...busybox, ...testprog]) {
  const tmp = mkdtempSync(join(outDir, `.${img.name}.tmp-`));
  chmodSync(tmp, 0o755);
  try {
    const r = await writeOciLayout(tmp, { layers: img.layers(ctx), config: img.config, refName: img.refName, compression: 'gzip' });
    rmSync(join(outDir, img.name), { recursive: true, force: true });
    renameSync(tmp, join(outDir, img.name));
    summary[img.name] = { refName: img.refName, manifestDigest: r.manifestDigest, configDigest: r.configDigest };
    console.log(`images: ${img.refName} -> ${join(outDir, img.name)} (${r.manifestDigest})`);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
writeFileSync(join(outDir, '.images.json.tmp'), JSON.stringify(summary, null, 2) + '\n');
renameSync(join(outDir, '.images.json.tmp'), join(outDir, 'images.json'));
