import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { credentialsFromAuthConfig, parseChallenges, parseCreds, realmProblem, resolveCredentials } from '../../../src/image/registry/auth.js';
import { RegistryClient } from '../../../src/image/registry/client.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

describe('parseChallenges', () => {
  it('parses a Bearer challenge with quoted params', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
  });
  it('parses Basic, unquoted values, spaces and several challenges', () => {
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseChallenges('Bearer realm=https://a/t , service=svc, Basic realm="x, y"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://a/t', service: 'svc' } },
      { scheme: 'basic', params: { realm: 'x, y' } },
    ]);
    expect(parseChallenges('BEARER Realm="r",error="invalid_token"')).toEqual([{ scheme: 'bearer', params: { realm: 'r', error: 'invalid_token' } }]);
  });
  it('handles escapes and scopes with several repositories', () => {
    expect(parseChallenges('Bearer realm="a\\"b",scope="repository:a:pull repository:b:pull"')[0]!.params).toEqual({
      realm: 'a"b',
      scope: 'repository:a:pull repository:b:pull',
    });
  });
  it('returns nothing for garbage', () => {
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('  ,  ')).toEqual([]);
  });
});

describe('credentials', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('parses --creds with a colon in the password', () => {
    expect(parseCreds('u:p:q')).toEqual({ username: 'u', password: 'p:q' });
    expect(() => parseCreds('nopass')).toThrow(/USERNAME:PASSWORD/);
    expect(() => parseCreds(':x')).toThrow(/USERNAME:PASSWORD/);
  });
  it('reads docker config.json / podman auth.json entries', () => {
    const cfg = {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hub:pw') },
        'quay.io': { auth: b64('q:1') },
        'quay.io/org': { auth: b64('org:2') },
        'quay.io/org/app': { auth: b64('app:3') },
        'localhost:5000': { username: 'l', password: 'p' },
      },
    };
    expect(credentialsFromAuthConfig(cfg, 'docker.io', 'library/busybox')).toEqual({ username: 'hub', password: 'pw' });
    expect(credentialsFromAuthConfig(cfg, 'quay.io', 'other/x')).toEqual({ username: 'q', password: '1' });
    expect(credentialsFromAuthConfig(cfg, 'quay.io', 'org/x')).toEqual({ username: 'org', password: '2' });
    expect(credentialsFromAuthConfig(cfg, 'quay.io', 'org/app')).toEqual({ username: 'app', password: '3' });
    expect(credentialsFromAuthConfig(cfg, 'localhost:5000', 'a')).toEqual({ username: 'l', password: 'p' });
    expect(credentialsFromAuthConfig(cfg, 'ghcr.io', 'a')).toBeUndefined();
    expect(() => credentialsFromAuthConfig({ auths: { 'x.io': { auth: b64('nocolon') } } }, 'x.io')).toThrow(/base64/);
  });
  it('resolves --creds over --authfile over $REGISTRY_AUTH_FILE', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nodelet-auth-'));
    try {
      const a = path.join(dir, 'a.json');
      const b = path.join(dir, 'b.json');
      writeFileSync(a, JSON.stringify({ auths: { 'r.io': { auth: b64('fromA:1') } } }));
      writeFileSync(b, JSON.stringify({ auths: { 'r.io': { auth: b64('fromB:2') } } }));
      const env = { REGISTRY_AUTH_FILE: b, HOME: dir };
      expect((await resolveCredentials('r.io', 'x', { creds: 'c:3', authFile: a, env }))?.username).toBe('c');
      expect((await resolveCredentials('r.io', 'x', { authFile: a, env }))?.username).toBe('fromA');
      expect((await resolveCredentials('r.io', 'x', { env }))?.username).toBe('fromB');
      expect(await resolveCredentials('r.io', 'x', { env: { HOME: dir } })).toBeUndefined();
      await expect(resolveCredentials('r.io', 'x', { authFile: path.join(dir, 'missing.json'), env: { HOME: dir } })).rejects.toThrow(/cannot read auth file/);
      writeFileSync(a, '{not json');
      await expect(resolveCredentials('r.io', 'x', { authFile: a, env })).rejects.toThrow(/not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('token realms', () => {
  it('follows only an http(s) URL on the registry\'s own host family', () => {
    expect(realmProblem('https://registry-1.docker.io', 'https://auth.docker.io/token')).toBeUndefined();
    expect(realmProblem('https://registry.gitlab.com', 'https://gitlab.com/jwt/auth')).toBeUndefined();
    expect(realmProblem('http://127.0.0.1:5000', 'http://127.0.0.1:5001/token')).toBeUndefined();
    expect(realmProblem('https://ghcr.io', 'https://ghcr.io/token')).toBeUndefined();
    expect(realmProblem('https://registry-1.docker.io', 'https://evil.example/token')).toBe("its token realm host evil.example is not the registry's own (registry-1.docker.io)");
    expect(realmProblem('http://127.0.0.1:5000', 'http://10.0.0.1/token')).toBe("its token realm host 10.0.0.1 is not the registry's own (127.0.0.1)");
    expect(realmProblem('https://ghcr.io', 'http://ghcr.io/token')).toBe('its token realm "http://ghcr.io/token" is plain http while the registry is https');
    expect(realmProblem('https://ghcr.io', 'file:///etc/passwd')).toBe('its token realm "file:///etc/passwd" is not http(s)');
    expect(realmProblem('https://ghcr.io', 'Registry Realm')).toBe('its token realm "Registry Realm" is not a URL');
  });

  it('a registry whose challenge cannot be followed fails with an authentication error saying why, and nothing is fetched from the realm', async () => {
    let realmHits = 0;
    const realm = http.createServer((_q, s) => {
      realmHits++;
      s.end('{"token":"t"}');
    });
    await new Promise<void>((r) => realm.listen(0, '127.0.0.2', () => r()));
    const realmPort = (realm.address() as AddressInfo).port;
    const challenges = [`Bearer realm="http://127.0.0.2:${realmPort}/token",service="x"`, 'Bearer service="x"', 'Negotiate abc', 'Bearer realm="not a url"'];
    let next = '';
    const reg = http.createServer((_q, s) => {
      s.writeHead(401, next ? { 'www-authenticate': next } : {});
      s.end();
    });
    await new Promise<void>((r) => reg.listen(0, '127.0.0.1', () => r()));
    const port = (reg.address() as AddressInfo).port;
    try {
      const want = [
        `registry 127.0.0.1:${port} asks for authentication, but its token realm host 127.0.0.2 is not the registry's own (127.0.0.1): nodelet does not authenticate there`,
        'its Bearer challenge names no token realm',
        'its challenge "Negotiate abc" is neither Bearer nor Basic (or cannot be parsed)',
        'its token realm "not a url" is not a URL',
      ];
      for (const [i, ch] of challenges.entries()) {
        next = ch;
        const c = new RegistryClient({ domain: `127.0.0.1:${port}`, endpoint: `http://127.0.0.1:${port}`, retry: { attempts: 1 } });
        const e = await c.getManifest('app', 'v1').catch((x: unknown) => x);
        await c.close();
        expect(e).toMatchObject({ code: 'ERR_IMAGE_AUTH_CHALLENGE', category: 'PermissionDenied' });
        expect((e as Error).message).toContain(want[i]!);
      }
      expect(realmHits).toBe(0);
    } finally {
      reg.close();
      realm.close();
    }
  });
});
