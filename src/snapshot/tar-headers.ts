// tar-stream decodes PAX records as UTF-8 strings, which corrupts binary
// xattr values (security.capability, ACLs). Patch its decoder, once, so that
// SCHILY.xattr.* values are decoded as latin1 (one char per byte) and can be
// turned back into the exact bytes with Buffer.from(v, 'latin1').

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let patched = false;

export function patchTarStreamPax(): void {
  if (patched) return;
  patched = true;
  const headersPath = join(dirname(require.resolve('tar-stream')), 'headers.js');
  const headers = require(headersPath) as { decodePax: (buf: Buffer) => Record<string, string> };
  headers.decodePax = function decodePax(buf: Buffer): Record<string, string> {
    const result: Record<string, string> = {};
    while (buf.length) {
      let i = 0;
      while (i < buf.length && buf[i] !== 32) i++;
      const len = parseInt(buf.subarray(0, i).toString('latin1'), 10);
      if (!len || len > buf.length) return result;
      const rec = buf.subarray(i + 1, len - 1);
      const eq = rec.indexOf(61 /* = */);
      if (eq === -1) return result;
      const key = rec.subarray(0, eq).toString('utf8');
      const val = rec.subarray(eq + 1);
      result[key] = key.startsWith('SCHILY.xattr.') ? val.toString('latin1') : val.toString('utf8');
      buf = buf.subarray(len);
    }
    return result;
  };
}
