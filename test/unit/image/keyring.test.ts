import { describe, expect, it } from 'vitest';
import {
  keyMatches,
  keyringFromSecrets,
  labelGlobMatch,
  lookupKeyring,
  normaliseLocation,
  pullSecretEntries,
  type PullSecretLike,
} from '../../../src/image/registry/keyring.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const jsonSecret = (name: string, auths: unknown, extra: Record<string, unknown> = {}): PullSecretLike => ({
  metadata: { name, namespace: 'ns' },
  type: 'kubernetes.io/dockerconfigjson',
  data: { '.dockerconfigjson': b64(JSON.stringify({ auths, ...extra })) },
});

describe('pullSecretEntries', () => {
  it('reads a dockerconfigjson secret: auth (padded or not) wins over username/password', () => {
    const s = jsonSecret('a', {
      'localhost:5000': { auth: 'dXNlcjpwYXNzd29yZA==' }, // the e2e suite's user:password
      'b.example.com': { auth: b64('u:p:with:colons').replace(/=+$/, ''), username: 'ignored', password: 'ignored' },
      'c.example.com': { username: 'cu', password: 'cp', email: 'x@y' },
    });
    expect(pullSecretEntries(s)).toEqual([
      { location: 'localhost:5000', credentials: { username: 'user', password: 'password' } },
      { location: 'b.example.com', credentials: { username: 'u', password: 'p:with:colons' } },
      { location: 'c.example.com', credentials: { username: 'cu', password: 'cp' } },
    ]);
  });
  it('reads a dockercfg secret: the bare map under .dockercfg', () => {
    const s: PullSecretLike = { metadata: { name: 'old' }, type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify({ 'https://r.io': { auth: b64('a:b') } })) } };
    expect(pullSecretEntries(s)).toEqual([{ location: 'https://r.io', credentials: { username: 'a', password: 'b' } }]);
  });
  it('skips other types and a missing or empty key, as kubelet does', () => {
    expect(pullSecretEntries({ type: 'Opaque', data: { '.dockerconfigjson': b64('{"auths":{}}') } })).toBeUndefined();
    expect(pullSecretEntries({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockercfg': b64('{}') } })).toBeUndefined();
    expect(pullSecretEntries({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '' } })).toBeUndefined();
    expect(pullSecretEntries({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{}') } })).toEqual([]);
  });
  it('refuses malformed JSON and an auth field that is not base64 of user:password', () => {
    expect(() => pullSecretEntries({ metadata: { name: 'bad' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{nope') } })).toThrow(
      /image pull secret "bad": .dockerconfigjson is not valid JSON/,
    );
    expect(() => pullSecretEntries(jsonSecret('x', { r: { auth: b64('nocolon') } }))).toThrow(/base64\(username:password\)/);
    expect(() => pullSecretEntries(jsonSecret('x', { r: { auth: '!!' } }))).toThrow(/not base64/);
    expect(() => pullSecretEntries(jsonSecret('x', { r: 'str' }))).toThrow(/is not an object/);
  });
});

describe('normaliseLocation (BasicDockerKeyring.Add)', () => {
  it('drops the scheme, a /v1/ or /v2/ prefix and a bare slash; keeps other paths', () => {
    expect(normaliseLocation('https://index.docker.io/v1/')).toBe('index.docker.io');
    expect(normaliseLocation('http://localhost:5000')).toBe('localhost:5000');
    expect(normaliseLocation('quay.io/')).toBe('quay.io');
    expect(normaliseLocation('https://quay.io/v2/team')).toBe('quay.io/team');
    expect(normaliseLocation('quay.io/team/app')).toBe('quay.io/team/app');
  });
});

describe('keyMatches (URLsMatchStr)', () => {
  it('matches host and port exactly, and the key path as a prefix', () => {
    expect(keyMatches('localhost:5000', 'localhost:5000/pause')).toBe(true);
    expect(keyMatches('localhost:5000', 'localhost/pause')).toBe(false);
    expect(keyMatches('localhost', 'localhost:5000/pause')).toBe(false);
    expect(keyMatches('quay.io/team', 'quay.io/team/app')).toBe(true);
    expect(keyMatches('quay.io/team', 'quay.io/other/app')).toBe(false);
    expect(keyMatches('quay.io', 'gcr.io/app')).toBe(false);
  });
  it('globs each host label; the number of labels must be the same', () => {
    expect(keyMatches('*.kubernetes.io', 'prefix.kubernetes.io/foo')).toBe(true);
    expect(keyMatches('*.kubernetes.io', 'kubernetes.io/foo')).toBe(false);
    expect(keyMatches('*.kubernetes.io', 'a.b.kubernetes.io/foo')).toBe(false);
    expect(keyMatches('*.*.io', 'a.b.io/x')).toBe(true);
    expect(keyMatches('prefix.*.io', 'prefix.kubernetes.io/x')).toBe(true);
    expect(keyMatches('*-good.kubernetes.io', 'bad.kubernetes.io/x')).toBe(false);
  });
  it('label globs as filepath.Match', () => {
    expect(labelGlobMatch('reg?', 'reg1')).toBe(true);
    expect(labelGlobMatch('reg[0-9]', 'reg7')).toBe(true);
    expect(labelGlobMatch('reg[0-9]', 'regx')).toBe(false);
    expect(labelGlobMatch('reg[', 'reg[')).toBe(false); // malformed: no match
    expect(labelGlobMatch('a.b', 'aXb')).toBe(false);
  });
});

describe('lookupKeyring', () => {
  it('returns every matching entry, most specific key first, secrets in the pod order per key', () => {
    const ring = keyringFromSecrets([
      jsonSecret('one', { 'quay.io': { auth: b64('host:1') }, 'quay.io/team': { auth: b64('team:1') } }),
      { metadata: { name: 'opaque' }, type: 'Opaque', data: {} },
      jsonSecret('two', { 'https://quay.io/v1/': { auth: b64('host:2') }, 'gcr.io': { auth: b64('gcr:2') } }),
    ]);
    const got = lookupKeyring(ring, 'quay.io/team/app').map((e) => `${e.credentials.username}:${e.credentials.password}@${e.source}`);
    expect(got).toEqual(['team:1@ns/one', 'host:1@ns/one', 'host:2@ns/two']);
    expect(lookupKeyring(ring, 'quay.io/other/app').map((e) => e.credentials.username)).toEqual(['host', 'host']);
    expect(lookupKeyring(ring, 'localhost:5000/pause')).toEqual([]);
  });
  it('falls back to an index.docker.io entry for Docker Hub repositories only', () => {
    const ring = keyringFromSecrets([jsonSecret('hub', { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } })]);
    expect(lookupKeyring(ring, 'docker.io/library/busybox').map((e) => e.credentials.username)).toEqual(['hub']);
    expect(lookupKeyring(ring, 'quay.io/library/busybox')).toEqual([]);
  });
  it('the e2e suite secret matches its registry', () => {
    const ring = keyringFromSecrets([jsonSecret('image-pull-secret-x', { 'localhost:5000': { auth: 'dXNlcjpwYXNzd29yZA==' } })]);
    expect(lookupKeyring(ring, 'localhost:5000/pause').map((e) => e.credentials)).toEqual([{ username: 'user', password: 'password' }]);
  });
});
