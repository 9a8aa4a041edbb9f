// scripts/setup --dry-run prints the plan and runs nothing that changes the machine: apt-get, npm, ln, mkdir,
// systemctl and go are replaced by recorders first on PATH. The systemd unit's Documentation= is what setup links.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = mkdtempSync(path.join(os.tmpdir(), 'nodelet-setup-plan-'));
const record = path.join(bin, 'calls');
for (const tool of ['apt-get', 'npm', 'ln', 'mkdir', 'systemctl', 'go']) {
  writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${record}\n`);
  chmodSync(path.join(bin, tool), 0o755);
}
afterAll(() => rmSync(bin, { recursive: true, force: true }));

const setup = (...args: string[]) => spawnSync(path.join(REPO, 'scripts/setup'), args, { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });

describe('scripts/setup --dry-run', () => {
  it('says what it would install and change, and changes nothing', () => {
    const r = setup('--dry-run');
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(record) ? readFileSync(record, 'utf8') : '').toBe('');
    const out = r.stdout;
    expect(out).toMatch(/^scripts\/setup: plan \(checkout .+\)$/m);
    expect(out).toMatch(/packages for running nodelet: busybox-static containernetworking-plugins iproute2 iptables util-linux zstd/);
    expect(out).toMatch(/packages for tests and benchmarks: docker-registry .*podman/);
    expect(out).toContain(`symlink /usr/local/bin/nodelet -> ${REPO}/dist/bundle/nodelet.cjs`);
    expect(out).toContain(`symlink /usr/local/share/doc/nodelet -> ${REPO}/docs`);
    expect(out).toMatch(/Kubernetes control plane/);
    expect(out).toMatch(/cgroup-v2 test VM/);
    expect(out).toMatch(/--dry-run: nothing changed\n$/);
  });
  it('--no-vm and --no-control-plane leave those out; an unknown option is an error', () => {
    const r = setup('--dry-run', '--no-vm', '--no-control-plane');
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/control plane|test VM/);
    const bad = setup('--dry-rn');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown option --dry-rn');
  });
  it("the systemd unit's Documentation= is under the docs link setup makes, and names a page of docs/", () => {
    const unit = readFileSync(path.join(REPO, 'contrib/systemd/nodelet.service'), 'utf8');
    const doc = /^Documentation=file:\/\/(\S+)$/m.exec(unit)?.[1];
    expect(doc).toBeDefined();
    expect(doc!.startsWith('/usr/local/share/doc/nodelet/')).toBe(true);
    expect(existsSync(path.join(REPO, 'docs', path.relative('/usr/local/share/doc/nodelet', doc!)))).toBe(true);
  });
});
