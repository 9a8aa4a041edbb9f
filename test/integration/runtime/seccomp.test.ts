// Seccomp on the real kernel, through the whole runtime: RuntimeDefault denies
// what it should (userns, mount, keyrings) and runs ordinary work, Unconfined and
// privileged containers have no filter, a Localhost profile applies, execs get
// the container's filter, and a bad Localhost path fails cleanly.
// Run inside `unshare --net` (scripts/test does).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerConfig, makeFixture, mountsUnder, podConfig, waitFor, type Fixture } from './fixture.js';
import { NodeletRuntime } from '../../../src/runtime/runtime.js';
import type { ContainerConfig } from '../../../src/runtime/types.js';
import { isNodeletError } from '../../../src/errors.js';

// A static probe bind-mounted into the containers: tries each named syscall, prints "name ok|ERRNO".
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/keyctl.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *c = argv[i];
    long r = -1;
    errno = 0;
    if (!strcmp(c, "userns")) {
      pid_t p = fork();
      if (p == 0) _exit(unshare(CLONE_NEWUSER) < 0 ? errno : 0);
      int st = 0;
      waitpid(p, &st, 0);
      errno = WEXITSTATUS(st);
      r = errno ? -1 : 0;
    } else if (!strcmp(c, "mount")) r = mount("none", "/tmp", "tmpfs", 0, NULL);
    else if (!strcmp(c, "keyctl")) r = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    else if (!strcmp(c, "add_key")) r = syscall(SYS_add_key, "user", "nodelet-test", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    else if (!strcmp(c, "getpid")) r = getpid();
    printf("%s %s\n", c, r < 0 ? strerrorname_np(errno) : "ok");
  }
  return 0;
}
`;

let f: Fixture;
let sbId: string;
let probe: string;
let root: string;
const PROBES = ['userns', 'mount', 'keyctl', 'add_key', 'getpid'];

beforeAll(async () => {
  f = await makeFixture();
  // a runtime that knows its state root (Localhost profiles live in <root>/seccomp)
  await f.rt.close();
  root = path.join(f.dir, 'root');
  fs.mkdirSync(path.join(root, 'seccomp', 'profiles'), { recursive: true });
  f.opts = { ...f.opts, root };
  f.rt = new NodeletRuntime(f.opts);
  fs.writeFileSync(path.join(root, 'seccomp', 'profiles', 'deny-mkdir.json'), JSON.stringify({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
  }));
  fs.writeFileSync(path.join(f.dir, 'probe.c'), PROBE_C);
  probe = path.join(f.dir, 'probe');
  execFileSync('cc', ['-static', '-O1', '-o', probe, path.join(f.dir, 'probe.c')]);
  sbId = await f.rt.runPodSandbox(podConfig({ name: 'seccomp' }));
});
afterAll(async () => {
  await f?.teardown();
});

const sh = (script: string) => ['/bin/sh', '-c', script];
async function run(name: string, seccomp: ContainerConfig['security']['seccomp'], sec: Partial<ContainerConfig['security']> = {}, argv = ['sleep', '1000']): Promise<string> {
  const cfg = containerConfig(f, name, argv, { mounts: [{ hostPath: probe, containerPath: '/probe', readOnly: true }] }, { ...sec, ...(seccomp ? { seccomp } : {}) });
  const id = await f.rt.createContainer(sbId, cfg);
  await f.rt.startContainer(id);
  return id;
}
async function exec(id: string, script: string) {
  const r = await f.rt.execSync(id, sh(script), { timeoutMs: 10_000 });
  return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString().trim() };
}
const seccompMode = async (id: string) => (await exec(id, 'grep Seccomp: /proc/1/status /proc/self/status | tr -s "\\t " " "')).out;
const probes = async (id: string) => Object.fromEntries((await exec(id, `/probe ${PROBES.join(' ')}`)).out.split('\n').map((l) => l.split(' ')));

describe('seccomp', () => {
  it('RuntimeDefault (installed before the capability drop) denies userns, mount, keyrings and runs ordinary work', async () => {
    const id = await run('default', { type: 'RuntimeDefault' }, {}, sh('mkdir -p /www && echo ok-net > /www/i.html && exec httpd -f -p 8080 -h /www'));
    expect(await seccompMode(id)).toBe('/proc/1/status:Seccomp: 2\n/proc/self/status:Seccomp: 2');
    expect(await probes(id)).toEqual({ userns: 'EPERM', mount: 'EPERM', keyctl: 'EPERM', add_key: 'EPERM', getpid: 'ok' });
    const u = await exec(id, 'unshare -r true');
    expect(u.code).not.toBe(0);
    expect(u.err).toMatch(/Operation not permitted/);
    expect(await exec(id, 'ls / >/dev/null && mkdir /tmp/d && echo x > /tmp/d/f && cat /tmp/d/f && sleep 0.1 && id -u')).toMatchObject({ code: 0, out: 'x\n0' });
    const body = await waitFor(async () => {
      const r = await exec(id, 'wget -qO- http://127.0.0.1:8080/i.html');
      return r.code === 0 ? r.out : undefined;
    }, 10_000, 'httpd under RuntimeDefault');
    expect(body).toBe('ok-net');
  });

  it('RuntimeDefault with no_new_privs (installed last) as a non-root user', async () => {
    const id = await run('nnp', { type: 'RuntimeDefault' }, { noNewPrivs: true, runAsUser: 1000, runAsGroup: 1000 });
    expect(await seccompMode(id)).toBe('/proc/1/status:Seccomp: 2\n/proc/self/status:Seccomp: 2');
    expect(await probes(id)).toMatchObject({ userns: 'EPERM', keyctl: 'EPERM', getpid: 'ok' });
    expect(await exec(id, 'grep NoNewPrivs: /proc/self/status | tr -s "\\t " " "; id -u')).toMatchObject({ code: 0, out: 'NoNewPrivs: 1\n1000' });
  });

  it('the capability-dependent part follows the container: CAP_SYS_ADMIN allows mount and unshare', async () => {
    const id = await run('admin', { type: 'RuntimeDefault' }, { capabilitiesAdd: ['SYS_ADMIN'] });
    expect(await probes(id)).toMatchObject({ userns: 'ok', mount: 'ok', keyctl: 'EPERM' });
  });

  it('Unconfined and no profile: no filter', async () => {
    for (const [name, s] of [['unconfined', { type: 'Unconfined' as const }], ['none', undefined]] as const) {
      const id = await run(name, s);
      expect(await seccompMode(id)).toBe('/proc/1/status:Seccomp: 0\n/proc/self/status:Seccomp: 0');
      expect(await probes(id)).toMatchObject({ userns: 'ok', keyctl: 'ok', add_key: 'ok', mount: 'EPERM' /* no CAP_SYS_ADMIN */ });
    }
  });

  it('a privileged container is unconfined even with RuntimeDefault', async () => {
    const id = await run('privileged', { type: 'RuntimeDefault' }, { privileged: true });
    expect(await seccompMode(id)).toBe('/proc/1/status:Seccomp: 0\n/proc/self/status:Seccomp: 0');
    expect(await probes(id)).toMatchObject({ userns: 'ok', mount: 'ok', keyctl: 'ok' });
  });

  it('a Localhost profile denying mkdir with EACCES: busybox mkdir says Permission denied, in the container and in execs', async () => {
    const id = await run('localhost', { type: 'Localhost', localhostProfile: 'profiles/deny-mkdir.json' }, {}, sh('mkdir /tmp/main 2>/tmp/main.err; exec sleep 1000'));
    expect(await seccompMode(id)).toBe('/proc/1/status:Seccomp: 2\n/proc/self/status:Seccomp: 2');
    expect((await exec(id, 'cat /tmp/main.err')).out).toMatch(/mkdir: can't create directory '\/tmp\/main': Permission denied/);
    const r = await exec(id, 'mkdir /tmp/x');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/Permission denied/);
    expect(await probes(id)).toMatchObject({ userns: 'ok', keyctl: 'ok' }); // everything else allowed
  });

  it('a bad Localhost path is a clear create error and leaves nothing behind', async () => {
    const containersDir = path.join(f.runRoot, 'containers');
    const snapshot = async () => ({
      containers: (await f.rt.listContainers()).length,
      dirs: fs.readdirSync(containersDir).sort(),
      mounts: mountsUnder(containersDir).length,
      cgroups: cgroupDirs(),
    });
    const before = await snapshot();
    for (const [rel, re] of [
      ['missing.json', /Cannot load seccomp profile ".*\/root\/seccomp\/missing.json" \(localhostProfile "missing.json"\): no such file/],
      ['../escape.json', /must be a relative path without "\.\."/],
    ] as const) {
      const err = await f.rt.createContainer(sbId, containerConfig(f, 'bad', ['true'], {}, { seccomp: { type: 'Localhost', localhostProfile: rel } })).catch((e: unknown) => e);
      expect(isNodeletError(err, 'ERR_SECCOMP_PROFILE_LOAD'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(re);
    }
    expect(await snapshot()).toEqual(before);
  });
});

/** Every cgroup directory under the test's parent, on every hierarchy. */
function cgroupDirs(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) { out.push(path.join(d, e.name)); walk(path.join(d, e.name)); }
  };
  for (const file of f.cgroups.procsFiles(f.cgroupParent)) walk(path.dirname(file));
  return out.sort();
}
