// Docker credential helpers (docker-credential-helpers' protocol), as docker
// and podman run them: `docker-credential-<name> get` with the server URL on
// stdin answers {"ServerURL","Username","Secret"} on stdout; a Username of
// "<token>" means Secret is an identity token; "credentials not found" (exit
// 1) means the helper has nothing for that server. The helper is a real
// process, run asynchronously (a daemon's pull never blocks its event loop).
import { spawn } from 'node:child_process';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import type { Credentials } from './auth.js';

export const HELPER_PREFIX = 'docker-credential-';
const NOT_FOUND = /credentials not found/i;

export interface HelperRun {
  /** the child's environment (PATH finds the helper); default process.env */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** where the helper was named, for messages: `credHelpers["quay.io"] in /root/.docker/config.json` */
  source?: string;
}

/** What a `get` answered, parsed (pure): credentials, or undefined when the helper has none for the server. */
export function parseHelperOutput(helper: string, server: string, stdout: string): Credentials | undefined {
  let doc: { Username?: unknown; Secret?: unknown };
  try {
    doc = JSON.parse(stdout);
  } catch (e) {
    throw failedPrecondition('ERR_IMAGE_CREDENTIAL_HELPER', `credential helper ${HELPER_PREFIX}${helper} answered "get" for ${server} with something that is not JSON: ${JSON.stringify(stdout.slice(0, 200))}; check the helper (run: echo ${server} | ${HELPER_PREFIX}${helper} get)`, { cause: e, details: { helper } });
  }
  const username = typeof doc?.Username === 'string' ? doc.Username : '';
  const secret = typeof doc?.Secret === 'string' ? doc.Secret : '';
  if (!username && !secret) return undefined;
  // no OAuth2 refresh-token POST flow yet (docs/image.md): the token also goes as the Basic password to the realm
  if (username === '<token>') return { username: '<token>', password: secret, identityToken: secret };
  return { username, password: secret };
}

/** Runs `docker-credential-<helper> get` for one server; undefined when the helper has no credentials for it. */
export function runCredentialHelper(helper: string, server: string, o: HelperRun = {}): Promise<Credentials | undefined> {
  const where = o.source ? ` (${o.source})` : '';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper))
    return Promise.reject(invalidArgument('ERR_IMAGE_CREDENTIAL_HELPER', `invalid credential helper name "${helper}"${where}: want a name like "pass" or "ecr-login" (the program ${HELPER_PREFIX}<name> on PATH)`, { details: { helper } }));
  const prog = HELPER_PREFIX + helper;
  const timeoutMs = o.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    // its own process group, so a timeout kills what the helper started too (gpg, a keyring client holding the pipes)
    const child = spawn(prog, ['get'], { env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
      reject(failedPrecondition('ERR_IMAGE_CREDENTIAL_HELPER', `credential helper ${prog}${where} did not answer "get" for ${server} within ${timeoutMs / 1000} s (waiting for a passphrase or a keyring?): unlock it, or pass --creds USER:PASS`, { details: { helper } }));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin.on('error', () => { /* a helper that exits without reading stdin */ });
    child.stdin.end(server);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT')
        reject(failedPrecondition('ERR_IMAGE_CREDENTIAL_HELPER', `credential helper ${prog}${where} is not installed or not on PATH: install it, or remove it from the auth file (then pull anonymously or pass --creds USER:PASS)`, { cause: e, details: { helper } }));
      else reject(failedPrecondition('ERR_IMAGE_CREDENTIAL_HELPER', `cannot run credential helper ${prog}${where}: ${e.message}`, { cause: e, details: { helper } }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const msg = (out.trim() || err.trim()).slice(0, 500);
      if (code !== 0) {
        if (NOT_FOUND.test(msg)) return resolve(undefined);
        return reject(failedPrecondition('ERR_IMAGE_CREDENTIAL_HELPER', `credential helper ${prog}${where} failed for ${server} (${signal ? `signal ${signal}` : `exit ${code}`}): ${msg || 'no output'}; log in again (docker login / podman login ${server}), check the helper (echo ${server} | ${prog} get), or pass --creds USER:PASS`, { details: { helper, exitCode: code } }));
      }
      try {
        resolve(parseHelperOutput(helper, server, out));
      } catch (e) {
        reject(e);
      }
    });
  });
}
