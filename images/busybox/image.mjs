// localhost/nodelet/busybox:v1 (and the busybox-nonroot variant): Debian's
// static busybox with a symlink per applet, /etc/passwd and /etc/group with
// root, app (1000) and nobody (65534), /tmp 1777, and /usr/local/bin/testprog.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function rootfsEntries({ busybox, testprog }) {
  const dirs = [
    ['bin'], ['dev'], ['etc'], ['home'], ['home/app', 0o755, 1000, 1000], ['proc'], ['root', 0o700], ['run'],
    ['sbin'], ['sys'], ['tmp', 0o1777], ['usr'], ['usr/bin'], ['usr/local'], ['usr/local/bin'], ['usr/sbin'],
    ['var'], ['var/tmp', 0o1777],
  ];
  const entries = dirs.map(([path, mode = 0o755, uid = 0, gid = 0]) => ({ path, type: 'dir', mode, uid, gid }));
  entries.push({ path: 'bin/busybox', type: 'file', mode: 0o755, content: readFileSync(busybox) });
  const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .filter((p) => p.includes('/') && !p.endsWith('/') && p !== 'bin/busybox')
    .sort();
  for (const p of applets) entries.push({ path: p, type: 'symlink', linkname: '/bin/busybox' });
  for (const f of ['passwd', 'group']) entries.push({ path: `etc/${f}`, type: 'file', mode: 0o644, content: readFileSync(`${here}files/etc/${f}`) });
  entries.push({ path: 'usr/local/bin/testprog', type: 'file', mode: 0o755, content: readFileSync(testprog) });
  // parents before children, as tar producers emit them
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export const images = [
  {
    name: 'busybox',
    refName: 'localhost/nodelet/busybox:v1',
    layers: (ctx) => [{ entries: rootfsEntries(ctx) }],
    config: { cmd: ['sh'], env: [PATH] },
  },
  {
    name: 'busybox-nonroot',
    refName: 'localhost/nodelet/busybox-nonroot:v1',
    layers: (ctx) => [{ entries: rootfsEntries(ctx) }],
    config: { cmd: ['sh'], env: [PATH], user: 'app', workingDir: '/home/app' },
  },
];
