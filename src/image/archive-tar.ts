// A tar index: one pass over the headers of an archive file, recording where
// each member's data lives, so members are read later by offset without
// extracting anything (image archives hold a few large blobs).

import * as fs from 'node:fs/promises';
import { invalidArgument } from '../errors.js';

export interface TarMember {
  name: string;
  /** '0' file, '1' hardlink, '2' symlink, '5' directory, ... */
  type: string;
  linkname: string;
  offset: number;
  size: number;
}

const BLOCK = 512;

function readString(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function readNumber(buf: Buffer, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    // base-256 (GNU): big-endian, high bit of the first byte is the marker
    let v = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = readString(buf, start, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = readNumber(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(buf.toString('utf8', pos, sp), 10);
    if (!(len > 0) || pos + len > buf.length) break;
    const rec = buf.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Normalizes a member name ("./a//b/" -> "a/b") and refuses absolute names and
 * ".." components: an image archive never needs them.
 */
export function normalizeMemberName(name: string, archive: string): string {
  if (name.startsWith('/') || name.split('/').includes('..')) {
    throw invalidArgument('ERR_ARCHIVE_PATH_INVALID', `Image archive ${archive}: member name ${JSON.stringify(name)} is absolute or contains ".."; refusing the archive`, {
      details: { archive, member: name },
    });
  }
  return name
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
}

/** Reads every header of the tar file at `file`. Later members replace earlier ones of the same name. */
export async function indexTar(file: string): Promise<Map<string, TarMember>> {
  const fh = await fs.open(file, 'r');
  const members = new Map<string, TarMember>();
  try {
    const { size: fileSize } = await fh.stat();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> = {};
    for (;;) {
      const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
      if (bytesRead === 0 && pos > 0) break; // no end-of-archive blocks: tolerated, as GNU tar does
      if (bytesRead < BLOCK) throw notTar(file, `truncated header at offset ${pos}`);
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header)) throw notTar(file, `bad header checksum at offset ${pos}`);
      const size = readNumber(header, 124, 12);
      const type = String.fromCharCode(header[156] || 0x30);
      const dataOffset = pos + BLOCK;
      if (!Number.isSafeInteger(size) || size < 0) throw notTar(file, `invalid size field at offset ${pos}`);
      if (dataOffset + size > fileSize) throw notTar(file, `member at offset ${pos} runs past the end of the file (truncated archive?)`);
      pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'x' || type === 'L' || type === 'K') {
        if (size > 1 << 20) throw notTar(file, `oversized extended header at offset ${dataOffset - BLOCK}`);
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataOffset);
        if (type === 'x') pax = parsePax(data);
        else if (type === 'L') longName = readString(data, 0, size);
        else longLink = readString(data, 0, size);
        continue;
      }
      if (type === 'g') continue;
      let name = readString(header, 0, 100);
      const magic = header.toString('latin1', 257, 263);
      if (magic === 'ustar\u0000') {
        const prefix = readString(header, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      name = pax.path ?? longName ?? name;
      const linkname = pax.linkpath ?? longLink ?? readString(header, 157, 100);
      pax = {};
      longName = longLink = undefined;
      const norm = normalizeMemberName(name, file);
      if (norm === '') continue;
      members.set(norm, { name: norm, type, linkname, offset: dataOffset, size: type === '0' || type === '7' ? size : 0 });
    }
  } finally {
    await fh.close();
  }
  return members;
}

function notTar(file: string, why: string) {
  return invalidArgument('ERR_ARCHIVE_INVALID', `${file} is not a readable tar archive: ${why}`, { details: { archive: file } });
}

/**
 * Follows symlinks and hardlinks between members (old `docker save` links
 * duplicate layer.tar files) to the member holding the data; never out of the archive.
 */
export function resolveMember(members: Map<string, TarMember>, name: string, archive: string): TarMember | undefined {
  let m = members.get(name);
  for (let hops = 0; m && (m.type === '1' || m.type === '2') && hops < 16; hops++) {
    let target = m.linkname;
    if (m.type === '2') {
      if (target.startsWith('/')) return undefined;
      const dir = m.name.split('/').slice(0, -1);
      for (const part of target.split('/')) {
        if (part === '..') {
          if (dir.length === 0) return undefined;
          dir.pop();
        } else if (part !== '.' && part !== '') dir.push(part);
      }
      target = dir.join('/');
    } else {
      target = normalizeMemberName(target, archive);
    }
    m = members.get(target);
  }
  return m && (m.type === '0' || m.type === '7') ? m : undefined;
}
