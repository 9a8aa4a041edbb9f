import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { credentialsFromAuthConfig, parseChallenges, parseCreds, resolveCredentials } from '../../../src/image/registry/auth.js';

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
