// What the container sees: PID 1, hostname, fds, mounts, masked/readonly paths, identity, caps.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import koffi from 'koffi';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeFixture, runToExit, streamText, type Fixture } from './util.js';

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(async () => {
  await f.cleanup();
});

async function run(script: string, overrides = {}) {
  const { state, log } = await runToExit(f, { argv: ['sh', '-c', script], ...overrides });
  return { code: state.exitCode, out: streamText(log, 'stdout'), err: streamText(log, 'stderr') };
}

describe('container isolation', () => {
  test('its entrypoint is PID 1 and it has its own hostname', async () => {
    const r = await run('echo $$; hostname; cat /proc/1/cmdline | tr "\\0" " "');
    expect(r.out.split('\n').slice(0, 2)).toEqual(['1', 'testhost']);
    expect(r.code).toBe(0);
  });

  test('only fds 0-2 survive exec, even fds the caller leaked without CLOEXEC', async () => {
    const libc = koffi.load('libc.so.6');
    const open = libc.func('int open(const char *path, int flags)');
    const close = libc.func('int close(int fd)');
    const leakFile = join(f.dir, 'leak');
    writeFileSync(leakFile, 'secret');
    const fd = open(leakFile, 0) as number; // O_RDONLY, no O_CLOEXEC: inherited by spawn()
    expect(fd).toBeGreaterThan(2);
    try {
      const plan = f.plan({ argv: ['sleep', '1000'] });
      const s = await f.client.start(plan);
      const { readdir } = await import('node:fs/promises');
      // read the container process's fd table from the host: no shell pipeline races
      expect((await readdir(`/proc/${s.pid}/fd`)).sort()).toEqual(['0', '1', '2']);
      process.kill(s.pid, 'SIGKILL');
      await f.client.waitExit(plan.stateDir);
    } finally {
      close(fd);
    }
  });

  test('mounts as planned: /proc, /dev with devices, /dev/pts, /dev/shm, /dev/mqueue, /sys read-only', async () => {
    const r = await run('cat /proc/self/mounts; ls /dev | tr "\\n" " "; echo; echo x > /dev/null && head -c 3 /dev/zero | wc -c; touch /sys/x 2>&1');
    const mounts = r.out.split('\n').map((l) => l.split(' '));
    const at = (t: string) => mounts.find((m) => m[1] === t);
    expect(at('/proc')?.[2]).toBe('proc');
    expect(at('/dev')?.[2]).toBe('tmpfs');
    expect(at('/dev/pts')?.[2]).toBe('devpts');
    expect(at('/dev/shm')?.[2]).toBe('tmpfs');
    expect(at('/dev/mqueue')?.[2]).toBe('mqueue');
    expect(at('/sys')?.[2]).toBe('sysfs');
    expect(at('/sys')?.[3]?.split(',')).toContain('ro');
    const devs = r.out.split('\n').find((l) => l.includes('urandom'))!.trim().split(' ');
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'pts', 'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr']) {
      expect(devs).toContain(d);
    }
    expect(r.out).toMatch(/^3$/m);
    expect(r.out).toContain('Read-only file system');
    // no host mount leaks into the container
    expect(r.out).not.toContain(f.dir);
  });

  test('masked paths are empty, readonly paths refuse writes', async () => {
    const r = await run('wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid; echo rc=$?');
    const [timer, firmware] = r.out.split('\n');
    expect(timer!.trim()).toBe('0');
    expect(firmware!.trim()).toBe('0');
    expect(r.out).toContain('rc=1');
    expect(r.err).toContain('Read-only file system');
  });

  test('readonlyRootfs: / refuses writes; /dev/shm stays writable', async () => {
    const r = await run('touch /newfile; echo rc=$?; touch /dev/shm/ok && echo shm-ok', { readonlyRootfs: true });
    expect(r.out).toContain('rc=1');
    expect(r.err).toContain('Read-only file system');
    expect(r.out).toContain('shm-ok');
  });

  test('uid/gid/groups, capabilities, no_new_privs, umask and cwd as planned', async () => {
    const r = await run('id; grep -E "^(Cap|NoNewPrivs)" /proc/self/status; umask; pwd', {
      uid: 1000,
      gid: 1000,
      additionalGids: [2000],
      cwd: '/tmp',
      umask: 0o027,
      noNewPrivs: true,
      capabilities: {
        bounding: '0x00000000a80425fb',
        effective: '0x0000000000000400',
        permitted: '0x0000000000000400',
        inheritable: '0x0000000000000400',
        ambient: '0x0000000000000400', // NET_BIND_SERVICE survives exec for a non-root user
      },
    });
    expect(r.out).toContain('uid=1000(app) gid=1000(app) groups=2000(extra)');
    expect(r.out).toMatch(/CapBnd:\s+00000000a80425fb/);
    expect(r.out).toMatch(/CapEff:\s+0000000000000400/);
    expect(r.out).toMatch(/CapAmb:\s+0000000000000400/);
    expect(r.out).toMatch(/NoNewPrivs:\s+1/);
    expect(r.out).toMatch(/^0027$/m);
    expect(r.out).toMatch(/^\/tmp$/m);
  });

  test('root gets the default capability set; no_new_privs off when not asked', async () => {
    const r = await run('grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status', { noNewPrivs: false });
    expect(r.out).toMatch(/CapEff:\s+00000000a80425fb/);
    expect(r.out).toMatch(/CapBnd:\s+00000000a80425fb/);
    expect(r.out).toMatch(/NoNewPrivs:\s+0/);
  });

  test('rlimits and oom_score_adj are applied', async () => {
    const r = await run('ulimit -n; cat /proc/self/oom_score_adj', { rlimits: [{ resource: 7, soft: 512, hard: 1024 }], oomScoreAdj: 500 });
    expect(r.out.split('\n').slice(0, 2)).toEqual(['512', '500']);
  });

  test('PATH search uses the container env', async () => {
    const r = await run('echo $PATH', { env: ['PATH=/bin'] });
    expect(r.out.trim()).toBe('/bin');
    const { state } = await runToExit(f, { argv: ['true'], env: ['PATH=/nowhere:/bin'] });
    expect(state.exitCode).toBe(0);
  });

  test('bind mounts: read-only honoured; targets resolved inside the rootfs (symlink cannot escape)', async () => {
    const vol = join(f.dir, 'vol');
    const { mkdirSync, symlinkSync, existsSync } = await import('node:fs');
    mkdirSync(vol);
    writeFileSync(join(vol, 'data'), 'volume-data');
    // a hostile image symlink pointing at the host's /tmp-ish place
    const escape = join(f.dir, 'escape-target');
    mkdirSync(escape);
    symlinkSync(escape, join(f.rootfs, 'evil'));
    const r = await run('cat /ro/data; echo; touch /ro/x; echo rc=$?; ls /evil/mnt', {
      mounts: [
        ...f.plan().mounts,
        { source: vol, target: '/ro', fstype: 'bind', flags: 0x1000 | 0x4000 | 0x1, mkdir: 'dir' },
        { source: vol, target: '/evil/mnt', fstype: 'bind', flags: 0x1000, mkdir: 'dir' },
      ],
    });
    expect(r.out).toContain('volume-data');
    expect(r.out).toContain('rc=1');
    expect(r.out).toContain('data'); // /evil/mnt is the volume, inside the rootfs
    expect(existsSync(join(escape, 'mnt'))).toBe(false);
    // (the resolved target lies under the container's /dev tmpfs here, so it vanished with the container)
  });
});

describe('joining namespaces', () => {
  test('a second container joins the first one\'s pid, net, ipc and uts namespaces (pod sharing)', async () => {
    const a = f.plan({ argv: ['sleep', '1000'], hostname: 'pod-a' });
    const sa = await f.client.start(a);
    try {
      const ns = (t: string) => `/proc/${sa.pid}/ns/${t}`;
      const r = await run('hostname; ps -o pid,args | grep "sleep 1000" | grep -v grep; readlink /proc/self/ns/net', {
        namespaces: [{ type: 'mnt' }, { type: 'pid', path: ns('pid') }, { type: 'net', path: ns('net') }, { type: 'ipc', path: ns('ipc') }, { type: 'uts', path: ns('uts') }],
        hostname: undefined,
      });
      const { readlinkSync } = await import('node:fs');
      expect(r.out).toContain('pod-a');
      expect(r.out).toMatch(/^\s*1 sleep 1000$/m); // shared pid ns: sees the other container's PID 1
      expect(r.out).toContain(readlinkSync(ns('net')));
    } finally {
      process.kill(sa.pid, 'SIGKILL');
      await f.client.waitExit(a.stateDir);
    }
  });

  test('a rootfs on ramfs works (pivot_root or its MS_MOVE+chroot fallback)', async () => {
    const { mkdirSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    const { buildBusyboxRootfs } = await import('../../helpers/rootfs.js');
    const mnt = join(f.dir, 'ramfs');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', mnt]);
    try {
      await buildBusyboxRootfs(mnt);
      const { state, log } = await runToExit(f, { rootfs: mnt, argv: ['sh', '-c', 'echo $$; ls /'] });
      expect(state.exitCode).toBe(0);
      expect(streamText(log, 'stdout')).toMatch(/^1\n/);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });
});

describe('pivot_root fallback', () => {
  test('when pivot_root is impossible (shim chrooted: / is no mount point) MS_MOVE + chroot is used', async () => {
    const { mkdtemp, writeFile: wf, copyFile, chmod, rm } = await import('node:fs/promises');
    const { DEFAULT_SHIM_BINARY, ShimClient } = await import('../../../src/runtime/shim/index.js');
    const croot = await mkdtemp('/dev/shm/nodelet-test-chroot-');
    try {
      await copyFile(DEFAULT_SHIM_BINARY, join(croot, 'nodelet-shim'));
      // a private mount namespace (gone with the shim) where the shim runs chrooted in `croot`,
      // which sees the test dir, /dev and /proc at their host paths
      const wrapper = join(croot, 'wrapper.sh');
      await wf(
        wrapper,
        [
          '#!/bin/sh',
          `export C=${croot} S=${f.dir}`,
          'exec unshare -m --propagation private sh -c \'',
          '  mkdir -p "$C/dev" "$C/proc" "$C$S" && mount --rbind /dev "$C/dev" && mount --rbind /proc "$C/proc" &&',
          '  mount --bind "$S" "$C$S" && exec ${NODELET_TEST_WRAP:-} chroot "$C" /nodelet-shim "$@"\' wrapper "$@"',
          '',
        ].join('\n'),
      );
      await chmod(wrapper, 0o755);
      const client = new ShimClient({ binary: wrapper });
      const plan = f.plan({ argv: ['sh', '-c', 'echo $$; cat /proc/self/mountinfo; ls /'] });
      const s = await client.start(plan);
      const e = await client.waitExit(plan.stateDir);
      expect(e).toMatchObject({ exitCode: 0, pid: s.pid });
      const out = streamText(await (await import('node:fs/promises')).readFile(plan.logPath, 'utf8'), 'stdout');
      expect(out).toMatch(/^1\n/);
      expect(out).toContain('bin'); // ls / shows the busybox rootfs
      expect(out).not.toContain('nodelet-shim'); // not the chroot dir
      expect(out).not.toContain('wrapper.sh');
    } finally {
      await rm(croot, { recursive: true, force: true });
    }
  });
});

describe('devices without CAP_MKNOD', () => {
  test('the host device node is bind-mounted instead (as runc does)', async () => {
    const { writeFile: wf, chmod } = await import('node:fs/promises');
    const { DEFAULT_SHIM_BINARY, ShimClient } = await import('../../../src/runtime/shim/index.js');
    const wrapper = join(f.dir, 'no-mknod.sh');
    await wf(wrapper, `#!/bin/sh\nexec setpriv --bounding-set -mknod ${DEFAULT_SHIM_BINARY} "$@"\n`);
    await chmod(wrapper, 0o755);
    const client = new ShimClient({ binary: wrapper });
    const noMknod = '0x00000000a00425fb'; // the default set minus CAP_MKNOD (a cap the shim lacks cannot be granted)
    const capabilities = { bounding: noMknod, effective: noMknod, permitted: noMknod, inheritable: '0x0', ambient: '0x0' };
    const plan = f.plan({ capabilities, argv: ['sh', '-c', 'grep " /dev/null " /proc/self/mountinfo | wc -l; echo x > /dev/null && head -c 4 /dev/zero | wc -c; mknod /tmp/n c 1 3; echo mknod=$?'] });
    await client.start(plan);
    const e = await client.waitExit(plan.stateDir);
    expect(e.exitCode).toBe(0);
    const out = streamText(await (await import('node:fs/promises')).readFile(plan.logPath, 'utf8'), 'stdout');
    expect(out).toMatch(/^1\n4\n/); // /dev/null is a bind mount and works
    expect(out).toContain('mknod=1'); // and the container really has no CAP_MKNOD
  });
});
