import { describe, expect, it } from 'vitest';
import { parseImageConfig, parseManifest } from '../../../src/image/manifest.js';

const d = (c: string) => 'sha256:' + c.repeat(64);

describe('parseManifest', () => {
  it('parses an OCI index and a Docker manifest list', () => {
    const idx = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'x', digest: d('a'), size: 10, platform: { os: 'linux', architecture: 'amd64' } }] };
    expect(parseManifest(Buffer.from(JSON.stringify(idx)), '', 'm')).toMatchObject({ kind: 'index', manifests: [{ digest: d('a'), platform: { os: 'linux', architecture: 'amd64' } }] });
    const list = { schemaVersion: 2, manifests: [{ digest: d('b'), size: 1 }] };
    expect(parseManifest(Buffer.from(JSON.stringify(list)), 'application/vnd.docker.distribution.manifest.list.v2+json', 'm').kind).toBe('index');
  });
  it('parses OCI and Docker schema2 manifests', () => {
    const m = { schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { digest: d('c'), size: 5 }, layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('d'), size: 7 }] };
    expect(parseManifest(Buffer.from(JSON.stringify(m)), '', 'm')).toMatchObject({ kind: 'manifest', config: { digest: d('c') }, layers: [{ size: 7 }] });
  });
  it('refuses schema1, encrypted layers, bad descriptors and non-JSON', () => {
    const s1 = { schemaVersion: 1, name: 'x', fsLayers: [] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(s1)), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'of "x"')).toThrow(/schema 1/);
    const enc = { schemaVersion: 2, config: { digest: d('c'), size: 5 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted', digest: d('d'), size: 7 }] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(enc)), '', 'm')).toThrow(/encrypted/);
    const badSize = { schemaVersion: 2, config: { digest: d('c'), size: -1 }, layers: [] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(badSize)), '', 'm')).toThrow(/valid size/);
    expect(() => parseManifest(Buffer.from('<html>'), '', 'm')).toThrow(/not JSON/);
  });
});

describe('parseImageConfig', () => {
  it('extracts the runtime fields', () => {
    const cfg = {
      created: '2024-01-01T00:00:00Z',
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
      config: { Entrypoint: ['/e'], Cmd: ['a', 'b'], Env: ['X=1'], WorkingDir: '/w', User: 'nobody', ExposedPorts: { '53/udp': {}, '80/tcp': {} }, Labels: { l: 'v' }, StopSignal: 'SIGINT' },
      rootfs: { type: 'layers', diff_ids: [d('1'), d('2')] },
    };
    expect(parseImageConfig(Buffer.from(JSON.stringify(cfg)), 'x')).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
      entrypoint: ['/e'],
      cmd: ['a', 'b'],
      env: ['X=1'],
      workingDir: '/w',
      user: 'nobody',
      exposedPorts: ['53/udp', '80/tcp'],
      labels: { l: 'v' },
      stopSignal: 'SIGINT',
      diffIds: [d('1'), d('2')],
      created: '2024-01-01T00:00:00Z',
    });
    expect(parseImageConfig(Buffer.from(JSON.stringify({ rootfs: { diff_ids: [] } })), 'x')).toMatchObject({ env: [], exposedPorts: [], labels: {} });
    expect(() => parseImageConfig(Buffer.from('{}'), 'x')).toThrow(/diff_ids/);
  });
});
