// Docker credential helpers with a real helper process: a shell script written
// as docker-credential-<name> into a temp dir that is first on the child's PATH.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credHelperFor, resolveCredentials } from '../../../src/image/registry/auth.js';
import { parseHelperOutput, runCredentialHelper } from '../../../src/image/registry/cred-helpers.js';

let dir: string;
let env: NodeJS.ProcessEnv;
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A helper answering per server (stdin) from a table; it records each call as "<argv> <stdin>" in <dir>/calls.<name>. */
function helper(name: string, table: Record<string, string>, extra = ''): void {
  const cases = Object.entries(table).map(([server, answer]) => `  '${server}') printf '%s' '${answer}' ;;`).join('\n');
  writeFileSync(path.join(dir, `docker-credential-${name}`), `#!/bin/sh
url=$(cat)
echo "$* $url" >> "${dir}/calls.${name}"
${extra}
case "$url" in
${cases}
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`);
  chmodSync(path.join(dir, `docker-credential-${name}`), 0o755);
}
const calls = (name: string) => { try { return readFileSync(path.join(dir, `calls.${name}`), 'utf8').trim().split('\n'); } catch { return []; } };

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nodelet-credhelper-'));
  env = { HOME: dir, PATH: `${dir}:${process.env.PATH}` };
  helper('fake', {
    'quay.io': JSON.stringify({ ServerURL: 'quay.io', Username: 'quser', Secret: 'qpass' }),
    'https://index.docker.io/v1/': JSON.stringify({ ServerURL: 'https://index.docker.io/v1/', Username: 'hubuser', Secret: 'hubpass' }),
    'tok.io': JSON.stringify({ ServerURL: 'tok.io', Username: '<token>', Secret: 'refresh-123' }),
    'garbage.io': 'not json',
  });
  helper('store', { 'store.io': JSON.stringify({ ServerURL: 'store.io', Username: 'suser', Secret: 'spass' }) });
  helper('broken', {}, `echo 'gpg: decryption failed: No secret key' >&2; exit 2`);
  helper('slow', {}, 'sleep 5');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runCredentialHelper (a real helper process)', () => {
  it('runs "<helper> get" with the server on stdin and parses ServerURL/Username/Secret', async () => {
    expect(await runCredentialHelper('fake', 'quay.io', { env })).toEqual({ username: 'quser', password: 'qpass' });
    expect(calls('fake')).toContain('get quay.io');
  });
  it('a <token> username is an identity token', async () => {
    expect(await runCredentialHelper('fake', 'tok.io', { env })).toEqual({ username: '<token>', password: 'refresh-123', identityToken: 'refresh-123' });
  });
  it('"credentials not found" is no credentials, not an error', async () => {
    expect(await runCredentialHelper('fake', 'nothing.io', { env })).toBeUndefined();
  });
  it('errors name the helper and say what to do', async () => {
    await expect(runCredentialHelper('missing', 'quay.io', { env, source: 'credHelpers["quay.io"] in /x/auth.json' })).rejects.toThrow(
      /credential helper docker-credential-missing \(credHelpers\["quay.io"\] in \/x\/auth.json\) is not installed or not on PATH: install it, or remove it/,
    );
    await expect(runCredentialHelper('broken', 'quay.io', { env })).rejects.toThrow(/docker-credential-broken failed for quay.io \(exit 2\): gpg: decryption failed: No secret key; log in again/);
    await expect(runCredentialHelper('fake', 'garbage.io', { env })).rejects.toThrow(/docker-credential-fake answered "get" for garbage.io with something that is not JSON/);
    await expect(runCredentialHelper('slow', 'quay.io', { env, timeoutMs: 300 })).rejects.toThrow(/docker-credential-slow did not answer "get" for quay.io within 0.3 s/);
    await expect(runCredentialHelper('../../bin/sh', 'quay.io', { env })).rejects.toThrow(/invalid credential helper name/);
    await expect(runCredentialHelper('broken', 'quay.io', { env })).rejects.toMatchObject({ code: 'ERR_IMAGE_CREDENTIAL_HELPER' });
  });
  it('parseHelperOutput: empty answers are no credentials', () => {
    expect(parseHelperOutput('x', 's', '{"ServerURL":"s","Username":"","Secret":""}')).toBeUndefined();
  });
});

describe('credHelpers and credsStore in auth files', () => {
  it('finds the registry\'s helper by normalised key', () => {
    const cfg = { credHelpers: { 'quay.io': 'fake', 'https://index.docker.io/v1/': 'hub', 'localhost:5000': 'l' } };
    expect(credHelperFor(cfg, 'quay.io')).toEqual({ helper: 'fake', key: 'quay.io' });
    expect(credHelperFor(cfg, 'docker.io')).toEqual({ helper: 'hub', key: 'https://index.docker.io/v1/' });
    expect(credHelperFor(cfg, 'ghcr.io')).toBeUndefined();
    expect(credHelperFor({}, 'quay.io')).toBeUndefined();
  });
  it('resolves: credHelpers, then auths, then credsStore; --creds wins', async () => {
    const f = path.join(dir, 'auth.json');
    writeFileSync(f, JSON.stringify({
      auths: { 'quay.io': { auth: b64('fromfile:x') }, 'plain.io': { auth: b64('plain:1') }, 'store.io': {} },
      credHelpers: { 'quay.io': 'fake', 'docker.io': 'fake', 'nobody.io': 'fake' },
      credsStore: 'store',
    }));
    const o = { authFile: f, env };
    expect(await resolveCredentials('quay.io', 'org/app', o)).toEqual({ username: 'quser', password: 'qpass' }); // the helper beats auths
    expect(await resolveCredentials('docker.io', 'library/busybox', o)).toEqual({ username: 'hubuser', password: 'hubpass' }); // Hub as docker login keys it
    expect(calls('fake')).toContain('get https://index.docker.io/v1/');
    expect(await resolveCredentials('plain.io', 'a', o)).toEqual({ username: 'plain', password: '1' }); // no helper for it: auths
    expect(await resolveCredentials('store.io', 'a', o)).toEqual({ username: 'suser', password: 'spass' }); // credsStore for the rest
    expect(await resolveCredentials('nobody.io', 'a', o)).toBeUndefined(); // helper and store have nothing: anonymous
    expect(calls('store')).toEqual(['get store.io', 'get nobody.io']);
    expect(await resolveCredentials('quay.io', 'a', { ...o, creds: 'c:1' })).toEqual({ username: 'c', password: '1' });
  });
  it('a failing helper is an error naming it and the file', async () => {
    const f = path.join(dir, 'broken.json');
    writeFileSync(f, JSON.stringify({ credHelpers: { 'quay.io': 'broken' } }));
    await expect(resolveCredentials('quay.io', 'a', { authFile: f, env })).rejects.toThrow(new RegExp(`docker-credential-broken \\(credHelpers\\["quay.io"\\] in ${f.replace(/[.]/g, '\\.')}\\) failed`));
  });
});
