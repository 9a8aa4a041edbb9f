// The test images the Kubernetes NodeConformance suite (e2e.test v1.36) runs, as
// image definitions for images/conformance/build.mjs. Built on this machine, never
// downloaded: the Go binaries come from scripts/build-conformance (the module's own
// sources), busybox is Debian's busybox-static. Each image has the repository path
// and tag test/utils/image/manifest.go gives it, relative to the local registry
// (the KUBE_TEST_REPO_LIST written by build.mjs maps every registry key there).
//
//   image                                   what it is here
//   e2e-test-images/agnhost:2.63.0           agnhost from test/images/agnhost (CGO_ENABLED=0), on a busybox
//                                            userland instead of alpine's; /agnhost-2, /uploads, porter's
//                                            localhost.crt/key, curl and nc (images/conformance/netutil: a Go
//                                            stand-in for alpine's curl and netcat-openbsd, the subset the
//                                            suite calls), /bin/bash and /bin/sh from Debian's bash-static
//                                            (alpine's agnhost has bash; /bin/sh not busybox ash, see busyboxRoot),
//                                            user-defined-in-image (1000) in
//                                            group-defined-in-image (50000), /var/registry holding
//                                            pause:testing for `agnhost fake-registry-server` (its Dockerfile
//                                            fills it with crane from registry.k8s.io: here from our pause)
//   e2e-test-images/agnhost:2.55             the same image (AgnhostPrev: only "a different agnhost tag")
//   e2e-test-images/busybox:1.37.0-1         Debian's static busybox (1.35): a link per applet at its usual path
//                                            and in /bin (the official image has them all in /bin); /bin/sh is
//                                            Debian's bash-static (busybox 1.35's ash loses env names like data-1)
//   e2e-test-images/nonewprivs:1.4           test/images/nonewprivs' nnp, setuid root, on busybox
//   e2e-test-images/nonroot:1.5              busybox with USER 1234 (the real one: debian-base + USER 1234)
//   e2e-test-images/nginx:1.15-4, :1.27-0    STAND-IN: busybox httpd serving /usr/share/nginx/html on :80
//                                            (nginx is not built from source here)
//   e2e-test-images/glibc-dns-testing:2.0.0  busybox plus the host's glibc `hostname` (Debian's, with the ld.so and
//                                            libc it links: `hostname -f` resolves through glibc and /etc/hosts, as
//                                            in the real debian-based image; no dnsutils/coredns, which the
//                                            NodeConformance specs, the hostnameOverride ones, do not run)
//   pause:3.10.2 (gcRegistry)                build/pause/linux/pause.c, gcc -static; USER 65535:65535
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`;
const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
`;

/** A busybox userland: dirs, /bin/busybox, a symlink per applet, /etc/passwd and /etc/group. */
function busyboxRoot(ctx, { passwd = PASSWD, group = GROUP } = {}) {
  const dirs = [
    ['bin'], ['dev'], ['etc'], ['home'], ['proc'], ['root', 0o700], ['run'], ['sbin'], ['sys'], ['tmp', 0o1777],
    ['usr'], ['usr/bin'], ['usr/local'], ['usr/local/bin'], ['usr/sbin'], ['var'], ['var/tmp', 0o1777], ['var/www'],
  ];
  const entries = dirs.map(([path, mode = 0o755]) => ({ path, type: 'dir', mode }));
  entries.push({ path: 'bin/busybox', type: 'file', mode: 0o755, content: readFileSync(ctx.busybox) });
  const applets = execFileSync(ctx.busybox, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .filter((p) => p.includes('/') && !p.endsWith('/') && p !== 'bin/busybox');
  for (const p of applets) entries.push({ path: p, type: 'symlink', linkname: '/bin/busybox' });
  // the official busybox image has every applet in /bin (tests run /bin/sysctl, /bin/sh ...)
  for (const p of applets) {
    const bin = `bin/${p.slice(p.lastIndexOf('/') + 1)}`;
    if (bin !== p) entries.push({ path: bin, type: 'symlink', linkname: '/bin/busybox' });
  }
  entries.push({ path: 'etc/passwd', type: 'file', mode: 0o644, content: passwd });
  entries.push({ path: 'etc/group', type: 'file', mode: 0o644, content: group });
  entries.push({ path: 'etc/hostname', type: 'file', mode: 0o644, content: 'localhost\n' });
  if (ctx.bash) {
    // /bin/sh is Debian's bash-static, not busybox 1.35's ash: that ash drops environment variables whose
    // names are not shell identifiers (`data-1`, set through envFrom) before running `sh -c env`, and runs
    // its own applets before PATH (agnhost's nc); the images' busybox 1.37 ash keeps the former
    entries.push({ path: 'bin/bash', type: 'file', mode: 0o755, content: readFileSync(ctx.bash) });
    entries.push({ path: 'bin/sh', type: 'symlink', linkname: '/bin/bash' });
  }
  return entries;
}

/** Parents before children, each path once (the last wins), as tar producers emit them. */
function tidy(entries) {
  const byPath = new Map();
  for (const e of entries) byPath.set(e.path, e);
  const parents = new Set();
  for (const p of byPath.keys()) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join('/'));
  }
  for (const d of parents) if (!byPath.has(d)) byPath.set(d, { path: d, type: 'dir', mode: 0o755 });
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const AGNHOST_PASSWD = PASSWD + 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n';
const AGNHOST_GROUP = GROUP + 'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n';

function agnhostLayer(ctx) {
  const entries = busyboxRoot(ctx, { passwd: AGNHOST_PASSWD, group: AGNHOST_GROUP });
  entries.push({ path: 'agnhost', type: 'file', mode: 0o755, content: readFileSync(join(ctx.bin, 'agnhost')) });
  entries.push({ path: 'agnhost-2', type: 'symlink', linkname: 'agnhost' });
  // alpine's curl and netcat-openbsd in the real image: the suite runs `curl ...` in lifecycle-hook pods and
  // `nc -w 1 -u IP PORT` from host-network pods; busybox's nc has no -u and busybox has no curl
  entries.push({ path: 'usr/local/bin/netutil', type: 'file', mode: 0o755, content: readFileSync(ctx.netutil) });
  entries.push({ path: 'usr/bin/curl', type: 'symlink', linkname: '/usr/local/bin/netutil' });
  entries.push({ path: 'usr/bin/nc', type: 'symlink', linkname: '/usr/local/bin/netutil' });
  // alpine's agnhost has bash (apk add bash): the probe-during-termination specs run /bin/bash -c SCRIPT
  // (bash-static, from busyboxRoot; without it, busybox ash stands in and the node-pod udp spec fails)
  if (!ctx.bash) entries.push({ path: 'bin/bash', type: 'file', mode: 0o755, content: '#!/bin/sh\n# stand-in for bash: busybox ash\nexec /bin/busybox ash "$@"\n' });
  entries.push({ path: 'uploads', type: 'dir', mode: 0o755 });
  entries.push({ path: 'home/user-defined-in-image', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 });
  for (const f of ['localhost.crt', 'localhost.key']) {
    entries.push({ path: f, type: 'file', mode: 0o644, content: readFileSync(join(ctx.k8sDir, 'test/images/agnhost/porter', f)) });
  }
  // agnhost fake-registry-server serves /var/registry/<name>/{manifests,blobs}/... (prepare_registry.sh's layout)
  for (const e of ctx.fakeRegistry ?? []) entries.push(e);
  return tidy(entries);
}

const agnhost = (tag) => ({
  ref: `e2e-test-images/agnhost:${tag}`,
  layers: (ctx) => [{ entries: agnhostLayer(ctx) }],
  config: { entrypoint: ['/agnhost'], cmd: ['pause'], env: [PATH], exposedPorts: ['80', '8080', '8081', '9376', '5000'] },
});

const nginx = (tag) => ({
  ref: `e2e-test-images/nginx:${tag}`,
  layers: (ctx) => [{
    entries: tidy([
      ...busyboxRoot(ctx),
      { path: 'usr/share/nginx/html/index.html', type: 'file', mode: 0o644, content: '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n' },
    ]),
  }],
  config: { cmd: ['httpd', '-f', '-v', '-p', '80', '-h', '/usr/share/nginx/html'], env: [PATH], exposedPorts: ['80'], stopSignal: 'SIGQUIT' },
});

/** A dynamically linked host binary at its own path, with the loader and libraries `ldd` names. */
export function glibcBinaryEntries(bin) {
  const libs = execFileSync('ldd', [bin], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.match(/(?:=>\s*)?(\/\S+)\s+\(0x/)?.[1])
    .filter((p) => p !== undefined);
  return [bin, ...libs].map((p) => ({ path: p.slice(1), type: 'file', mode: 0o755, content: readFileSync(realpathSync(p)) }));
}

/** pause first: agnhost embeds it (pause:testing of the fake registry). */
export const pause = {
  ref: 'pause:3.10.2',
  layers: (ctx) => [{ entries: [{ path: 'pause', type: 'file', mode: 0o755, content: readFileSync(join(ctx.bin, 'pause')) }] }],
  config: { entrypoint: ['/pause'], user: '65535:65535', env: [PATH] },
};

export const images = [
  agnhost('2.63.0'),
  agnhost('2.55'),
  {
    ref: 'e2e-test-images/busybox:1.37.0-1',
    layers: (ctx) => [{ entries: tidy(busyboxRoot(ctx)) }],
    config: { cmd: ['sh'], env: [PATH] },
  },
  {
    ref: 'e2e-test-images/nonewprivs:1.4',
    layers: (ctx) => [{
      entries: tidy([...busyboxRoot(ctx), { path: 'usr/local/bin/nnp', type: 'file', mode: 0o4755, content: readFileSync(join(ctx.bin, 'nnp')) }]),
    }],
    config: { cmd: ['nnp'], env: [PATH] },
  },
  {
    ref: 'e2e-test-images/nonroot:1.5',
    layers: (ctx) => [{ entries: tidy(busyboxRoot(ctx)) }],
    config: { cmd: ['sh'], env: [PATH], user: '1234' },
  },
  {
    // GlibcDnsTesting: the hostnameOverride specs run `sh -c "echo $(hostname)';'$(hostname -f)';'"`
    ref: 'e2e-test-images/glibc-dns-testing:2.0.0',
    layers: (ctx) => [{ entries: tidy([...busyboxRoot(ctx), ...glibcBinaryEntries(ctx.hostnameBin ?? '/usr/bin/hostname')]) }],
    config: { cmd: ['sh'], env: [PATH] },
  },
  nginx('1.15-4'),
  nginx('1.27-0'),
];

/** Where each registry key of test/utils/image/manifest.go points, below the local registry HOST. */
export function repoList(host) {
  return {
    promoterE2eRegistry: `${host}/e2e-test-images`,
    buildImageRegistry: `${host}/build-image`,
    // nothing is pushed below these two: pulls from them fail (manifest unknown), as the tests expect
    invalidRegistry: `${host}/invalid`,
    privateRegistry: `${host}/k8s-authenticated-test`,
    gcEtcdRegistry: host,
    gcRegistry: host,
    sigStorageRegistry: `${host}/sig-storage`,
    dockerLibraryRegistry: `${host}/library`,
    cloudProviderGcpRegistry: `${host}/cloud-provider-gcp`,
  };
}
