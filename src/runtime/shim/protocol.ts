// The wire format between the TypeScript client and the C shim, defined once.
// native/protocol.h is GENERATED from this file (node native/gen-protocol.mjs
// after `npm run build:ts`); test/unit/shim/protocol.test.ts fails on drift.
//
// A message is a sequence of records: u32 tag (LE) + u32 length (LE) + payload.
// A payload is a tuple of `fields` NUL-separated strings (no NUL inside a
// field); numbers are decimal strings, capability masks "0x" hex strings.
// The plan is sent on fd 3 and ends at EOF; status records come back on fd 4.
// An exec request travels in a REQUEST frame on the monitor's exec socket (FRAMES below).

import { invalidArgument } from '../../errors.js';

export const PROTOCOL_VERSION = 1;
/** Bounds the C side enforces (and the encoder checks first). */
export const LIMITS = {
  MESSAGE_BYTES: 1 << 20,
  RECORDS: 8192,
  FIELD_BYTES: 65536,
  ARGV: 1024,
  ENV: 1024,
  NAMESPACES: 8,
  CGROUP_PROCS: 16,
  MOUNTS: 512,
  DEVICES: 256,
  SYMLINKS: 256,
  MASKED: 256,
  READONLY: 256,
  RLIMITS: 16,
  GIDS: 64,
} as const;

/** tag -> [number, fields]. Plan/exec records (fd 3) below 64, status records (fd 4) from 64. */
export const TAGS = {
  VERSION: [1, 1],
  CONTAINER_ID: [2, 1],
  STATE_DIR: [3, 1],
  LOG_PATH: [4, 1],
  LOG_MAX_BYTES: [5, 1],
  LOG_MAX_FILES: [6, 1],
  NAMESPACE: [7, 2], // type, path ("" = create)
  CGROUP_PROCS: [8, 1],
  OOM_COUNTER_FILE: [9, 1],
  OOM_SCORE_ADJ: [10, 1],
  ROOTFS: [11, 1],
  READONLY_ROOTFS: [12, 1],
  MOUNT: [13, 6], // source, target, fstype, flags, data, mkdir ("", "dir", "file")
  DEVICE: [14, 7], // path, type (c|b), major, minor, mode, uid, gid
  SYMLINK: [15, 2], // link path, target
  MASKED_PATH: [16, 1],
  READONLY_PATH: [17, 1],
  HOSTNAME: [18, 1],
  RLIMIT: [19, 3], // resource, soft, hard
  NO_NEW_PRIVS: [20, 1],
  CAPS: [21, 5], // bounding, effective, permitted, inheritable, ambient
  UID: [22, 1],
  GID: [23, 1],
  ADDITIONAL_GID: [24, 1],
  UMASK: [25, 1],
  CWD: [26, 1],
  ENV: [27, 1],
  ARGV: [28, 1],
  TTY: [29, 1],
  STDIN: [30, 1],
  EXEC_PID: [31, 1],
  WINSIZE: [32, 2], // exec with tty: initial cols, rows
  SECCOMP: [33, 1], // seccomp filter: struct sock_filter[] as lowercase hex (installed unchanged)
  STDIN_ONCE: [34, 1], // with STDIN: the first attach session with stdin that ends closes it
  ST_SHIM_PID: [64, 1], // shim pid (sent first, so a hung start can be killed)
  ST_STARTED: [65, 2], // container pid, startedAt
  ST_ERROR: [66, 3], // stage, errno, message
} as const satisfies Record<string, readonly [number, number]>;

export type TagName = keyof typeof TAGS;

/**
 * The exec socket: each running container's monitor listens on <stateDir>/EXEC_SOCKET
 * (mode 0600, root peers only) and forks a helper per connection. Frames in both
 * directions: [type u8][len u32 BE][payload]. The client sends REQUEST (the exec records,
 * TAGS above) first; fields-payloads are NUL-separated strings like the records'.
 */
export const FRAMES = {
  REQUEST: 1, // client -> shim, first and once: exec records (encodeExec)
  STDIN: 2, // data for the process's stdin (or the terminal)
  STDIN_EOF: 3, // close stdin (with a tty: the terminal's EOF character)
  RESIZE: 4, // cols u16 BE, rows u16 BE (tty only)
  SIGNAL: 5, // signal number u32 BE, sent to the exec's process group
  STARTED: 16, // shim -> client, fields: pid (host pid, also the process group)
  STDOUT: 17, // data (with a tty: the terminal's output)
  STDERR: 18, // data
  EXIT: 19, // fields: exit code (WEXITSTATUS, 0 if signalled), signal name ("" if none); last frame
  ERROR: 20, // fields: stage, errno, message; the exec never ran; last frame
} as const;
export type FrameName = keyof typeof FRAMES;
export const FRAME_HEADER_BYTES = 5;
/** Largest payload of every frame but REQUEST (which is bounded by LIMITS.MESSAGE_BYTES). */
export const FRAME_DATA_MAX = 32768;
export const EXEC_SOCKET = 'exec.sock';
/** After the exec'd process exits, output still arriving is relayed for at most this long
 * (a `setsid` daemon that keeps the pipes open cannot hold an exec probe open). */
export const EXEC_OUTPUT_GRACE_MS = 1000;
/** Concurrent execs per container; more are refused with EAGAIN. */
export const EXEC_MAX_CONCURRENT = 128;
/**
 * The attach socket (CRI Attach): the monitor listens on <stateDir>/ATTACH_SOCKET while the
 * container runs (native/attach.c). No REQUEST: the client sends STDIN (an empty one first when
 * the session has stdin), STDIN_EOF and RESIZE; the shim sends the container's output as STDOUT and
 * STDERR as it reads it, and EXIT (as an exec's) once it is over. More clients are refused.
 */
export const ATTACH_SOCKET = 'attach.sock';
export const ATTACH_MAX_CLIENTS = 16;

/** One frame: header + payload. */
export function encodeFrame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(p.length, 1);
  return Buffer.concat([h, p], FRAME_HEADER_BYTES + p.length);
}

export interface WireRecord {
  tag: number;
  fields: string[];
}

/** Encode records; rejects NUL in fields, wrong arity and oversize messages. */
export function encodeRecords(records: [TagName, (string | number)[]][]): Buffer {
  if (records.length > LIMITS.RECORDS) throw invalidArgument('ERR_SHIM_PLAN_TOO_LARGE', `shim message has ${records.length} records (max ${LIMITS.RECORDS})`);
  const parts: Buffer[] = [];
  let total = 0;
  for (const [name, values] of records) {
    const [tag, arity] = TAGS[name];
    if (values.length !== arity) throw invalidArgument('ERR_SHIM_PLAN_INVALID', `shim record ${name} needs ${arity} fields, got ${values.length}`);
    const strs = values.map(String);
    for (const s of strs) {
      if (s.includes('\0')) throw invalidArgument('ERR_SHIM_PLAN_INVALID', `shim record ${name}: field ${JSON.stringify(s)} contains a NUL byte`);
    }
    const payload = Buffer.from(strs.join('\0'), 'utf8');
    if (payload.length > LIMITS.FIELD_BYTES) throw invalidArgument('ERR_SHIM_PLAN_TOO_LARGE', `shim record ${name} is ${payload.length} bytes (max ${LIMITS.FIELD_BYTES})`);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(tag, 0);
    head.writeUInt32LE(payload.length, 4);
    parts.push(head, payload);
    total += 8 + payload.length;
  }
  if (total > LIMITS.MESSAGE_BYTES) throw invalidArgument('ERR_SHIM_PLAN_TOO_LARGE', `shim message is ${total} bytes (max ${LIMITS.MESSAGE_BYTES})`);
  return Buffer.concat(parts, total);
}

/** Decode as many complete records as `buf` holds; `rest` is the incomplete tail. */
export function decodeRecords(buf: Buffer): { records: WireRecord[]; rest: Buffer } {
  const records: WireRecord[] = [];
  let off = 0;
  while (buf.length - off >= 8) {
    const tag = buf.readUInt32LE(off);
    const len = buf.readUInt32LE(off + 4);
    if (len > LIMITS.FIELD_BYTES) throw invalidArgument('ERR_SHIM_PROTOCOL', `shim sent a ${len}-byte record (tag ${tag})`);
    if (buf.length - off - 8 < len) break;
    records.push({ tag, fields: buf.subarray(off + 8, off + 8 + len).toString('utf8').split('\0') });
    off += 8 + len;
  }
  return { records, rest: buf.subarray(off) };
}

export function tagName(tag: number): TagName | undefined {
  return (Object.keys(TAGS) as TagName[]).find((k) => TAGS[k][0] === tag);
}

/** The C header, generated. Keep the output stable: the drift test compares bytes. */
export function renderProtocolHeader(): string {
  const lines = [
    '/* GENERATED from src/runtime/shim/protocol.ts by native/gen-protocol.mjs: do not edit. */',
    '#ifndef NODELET_PROTOCOL_H',
    '#define NODELET_PROTOCOL_H',
    '',
    `#define NL_PROTOCOL_VERSION ${PROTOCOL_VERSION}`,
  ];
  for (const [k, v] of Object.entries(LIMITS)) lines.push(`#define NL_MAX_${k} ${v}`);
  lines.push('');
  for (const [k, [tag, arity]] of Object.entries(TAGS)) {
    lines.push(`#define NL_TAG_${k} ${tag}`, `#define NL_FIELDS_${k} ${arity}`);
  }
  lines.push('');
  for (const [k, v] of Object.entries(FRAMES)) lines.push(`#define NL_FRAME_${k} ${v}`);
  lines.push(
    `#define NL_FRAME_HEADER_BYTES ${FRAME_HEADER_BYTES}`,
    `#define NL_FRAME_DATA_MAX ${FRAME_DATA_MAX}`,
    `#define NL_EXEC_SOCKET "${EXEC_SOCKET}"`,
    `#define NL_EXEC_OUTPUT_GRACE_MS ${EXEC_OUTPUT_GRACE_MS}`,
    `#define NL_EXEC_MAX_CONCURRENT ${EXEC_MAX_CONCURRENT}`,
    `#define NL_ATTACH_SOCKET "${ATTACH_SOCKET}"`,
    `#define NL_ATTACH_MAX_CLIENTS ${ATTACH_MAX_CLIENTS}`,
  );
  lines.push('', '#define NL_TAG_TABLE(X) \\');
  const entries = Object.entries(TAGS);
  entries.forEach(([k], i) => lines.push(`  X(${k})${i === entries.length - 1 ? '' : ' \\'}`));
  lines.push('', '#endif', '');
  return lines.join('\n');
}
