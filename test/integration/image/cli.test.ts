// The image verbs through the CLI (image-commands.ts wired like src/cli/main.ts, bundled).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, makeLayer, pushImage, startProxy, startRegistry, tmpRoot, type BuiltImage, type TestRegistry } from '../../helpers/registry.js';

const exec = promisify(execFile);
// the CLI is bundled with esbuild (fast, never stale) next to node_modules so packages resolve
const bundleDir = path.resolve('node_modules/.cache', `nodelet-test-cli-${process.pid}`);
const main = path.join(bundleDir, 'main.mjs');
const busyboxLayout = path.resolve('images/build/busybox');

let reg: TestRegistry;
let img: BuiltImage;
let root: string;
async function nodelet(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await exec(process.execPath, [main, '--root', path.join(root, 'state'), ...args], { env: { ...process.env, NODELET_LOG_LEVEL: 'warn' } });
    return { ...r, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code };
  }
}

beforeAll(async () => {
  await exec(path.resolve('node_modules/.bin/esbuild'), ['test/integration/image/fixtures/image-cli.ts', '--bundle', '--platform=node', '--format=esm', '--packages=external', `--outfile=${main}`, '--log-level=warning']);
  root = tmpRoot();
  reg = await startRegistry();
  const l = await makeLayer([{ name: 'etc/', type: 'directory' }, { name: 'etc/hello', content: 'hi\n' }]);
  img = makeImage([l]);
  await pushImage(reg, 'cli/app', 'v1', img);
});
afterAll(async () => {
  await nodelet('image', 'unmount', path.join(root, 'mnt'));
  await reg?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  rmSync(bundleDir, { recursive: true, force: true });
});

describe('nodelet image CLI', () => {
  it('pull --quiet prints only the image ID; plain progress lines without a TTY', async () => {
    const q = await nodelet('pull', '--quiet', `${reg.host}/cli/app:v1`);
    expect(q.code).toBe(0);
    expect(q.stdout).toBe(`${img.configDigest}\n`);
    const p = await nodelet('pull', `${reg.host}/cli/app:v1`);
    expect(p.code).toBe(0);
    expect(p.stderr).toMatch(/resolving/);
    expect(p.stderr).not.toMatch(/\x1b\[/);
    const missing = await nodelet('pull', `${reg.host}/cli/app:nope`);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Cannot pull "${reg.host}/cli/app:nope": manifest unknown (does the tag exist?)`);
    const bad = await nodelet('pull', 'app/UPPER');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('ERR_IMAGE_REFERENCE_INVALID');
  });

  it('imports the built-in busybox layout, lists, inspects, mounts, removes and prunes', async () => {
    expect(existsSync(busyboxLayout)).toBe(true); // built by scripts/build-images
    const imp = await nodelet('image', 'import', busyboxLayout, 'localhost/bb:test');
    expect(imp.code).toBe(0);
    const id = imp.stdout.trim();
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);

    const table = await nodelet('images');
    expect(table.stdout.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(table.stdout).toMatch(new RegExp(`localhost/bb\\s+test\\s+${id.slice(7, 19)}`));
    expect(table.stdout).toMatch(new RegExp(`${reg.host.replace(/\./g, '\\.')}/cli/app\\s+v1\\s+${img.configDigest.slice(7, 19)}`));
    const json = JSON.parse((await nodelet('images', '-o', 'json')).stdout) as { id: string; names: string[] }[];
    expect(json.map((i) => i.id).sort()).toEqual([id, img.configDigest].sort());
    expect((await nodelet('images', '-q')).stdout.trim().split('\n').sort()).toEqual([id.slice(7, 19), img.configDigest.slice(7, 19)].sort());
    const insp = JSON.parse((await nodelet('image', 'inspect', 'localhost/bb:test')).stdout) as { id: string; config: { diffIds: string[] } };
    expect(insp.id).toBe(id);

    const mnt = path.join(root, 'mnt');
    const m = await nodelet('image', 'mount', id.slice(7, 19), mnt);
    expect(m.code).toBe(0);
    expect(existsSync(path.join(mnt, 'bin/busybox')) || existsSync(path.join(mnt, 'bin/sh'))).toBe(true);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toContain(` ${mnt} `);
    expect((await nodelet('image', 'unmount', mnt)).code).toBe(0);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${mnt} `);

    const rmi = await nodelet('rmi', 'localhost/bb:test', `${reg.host}/cli/app:v1`);
    expect(rmi.code).toBe(0);
    expect(rmi.stdout).toContain(`Deleted: ${id}`);
    expect((await nodelet('rmi', 'localhost/none:x')).code).toBe(1);
    const pr = await nodelet('image', 'prune');
    expect(pr.stdout).toMatch(/^Deleted \d+ blobs, \d+ layer chains/);
    expect((await nodelet('images', '-q')).stdout).toBe('');
  });

  it('two processes pulling the same image download each blob once', async () => {
    const big = await makeLayer([{ name: 'big', content: Buffer.alloc(4 << 20, 7) }]);
    const two = makeImage([big]);
    await pushImage(reg, 'cli/two', 'v1', two);
    const proxy = await startProxy(reg.url, () => ({ kind: 'pass' }));
    try {
      const ref = `${proxy.host}/cli/two:v1`;
      const [a, b] = await Promise.all([nodelet('pull', '-q', ref), nodelet('pull', '-q', ref)]);
      expect([a.code, b.code, a.stdout, b.stdout]).toEqual([0, 0, `${two.configDigest}\n`, `${two.configDigest}\n`]);
      for (const d of [big.digest, two.configDigest]) {
        expect(proxy.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${d}`))).toHaveLength(1);
      }
    } finally {
      await proxy.stop();
    }
  });
});
