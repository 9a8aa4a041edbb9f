// Image verbs: pull, images, rmi, image import|mount|unmount|prune|inspect.
import type { Command } from 'commander';
import path from 'node:path';
import type { ImageService } from '../image/service.js';
import { parseReference } from '../image/reference.js';
import type { ImageRecord, PullProgress } from '../image/types.js';
import type { GlobalsFn } from './globals.js';

// The image service (and undici with it) is loaded only when an image verb
// runs: every other verb, `nodelet run` first, starts without it.
async function service(globals: GlobalsFn, extra: { maxConcurrentDownloads?: number } = {}): Promise<ImageService> {
  const g = globals();
  const { ImageService, loadRegistriesConfig } = await import('../image/service.js');
  const cfgFile = process.env.NODELET_REGISTRIES_CONFIG ?? '/etc/nodelet/registries.json';
  return new ImageService({ root: g.root, config: loadRegistriesConfig(cfgFile), layerLimits: g.layerLimits, ...extra });
}

const short = (d: string | undefined) => (d ?? '').replace(/^sha256:/, '').slice(0, 12);

function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

function humanAgo(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return '';
  const u: [number, string][] = [
    [365 * 86400, 'year'],
    [30 * 86400, 'month'],
    [7 * 86400, 'week'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [sec, name] of u) if (s >= sec) {
    const n = Math.floor(s / sec);
    return `${n} ${name}${n > 1 ? 's' : ''} ago`;
  }
  return 'Less than a minute ago';
}

/** Progress renderer: one bar per layer on a TTY (redrawn in place), plain lines otherwise. */
export function progressPrinter(out: NodeJS.WriteStream): (p: PullProgress) => void {
  if (!out.isTTY) {
    const seen = new Set<string>();
    return (p) => {
      const key = `${p.digest}|${p.phase}`;
      if (p.phase === 'downloading' || seen.has(key)) return;
      seen.add(key);
      const what = p.digest ? `${short(p.digest)}: ` : '';
      out.write(`${what}${p.phase}${p.total !== undefined && p.phase === 'waiting' ? ` (${humanSize(p.total)})` : ''}\n`);
    };
  }
  const rows = new Map<string, string>();
  let drawn = 0;
  const draw = () => {
    if (drawn) out.write(`\x1b[${drawn}A`);
    for (const line of rows.values()) out.write(`\x1b[2K${line}\n`);
    drawn = rows.size;
  };
  return (p) => {
    if (!p.digest) return;
    const width = 30;
    const frac = p.total ? Math.min(1, (p.current ?? 0) / p.total) : 0;
    const bar = p.phase === 'downloading' ? `[${'='.repeat(Math.round(frac * width)).padEnd(width)}] ${humanSize(p.current ?? 0)} / ${humanSize(p.total ?? 0)}` : '';
    rows.set(p.digest, `${short(p.digest)}: ${p.phase.padEnd(11)} ${bar}`);
    draw();
  };
}

/** podman's REPOSITORY / TAG columns: the full repository name and the tag. */
function splitName(name: string): { repo: string; tag: string } {
  const r = parseReference(name);
  return { repo: `${r.domain}/${r.path}`, tag: r.tag ?? '<none>' };
}

function imageRows(images: ImageRecord[]): string[][] {
  const rows: string[][] = [];
  for (const img of images) {
    const names = img.names.length ? img.names : [];
    if (names.length === 0) rows.push(['<none>', '<none>', short(img.id), humanAgo(img.created), humanSize(img.size)]);
    for (const n of names) {
      const { repo, tag } = splitName(n);
      rows.push([repo, tag, short(img.id), humanAgo(img.created), humanSize(img.size)]);
    }
  }
  return rows;
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 2))).join('')).join('\n') + '\n';
}

export function registerImageCommands(program: Command, globals: GlobalsFn): void {
  program
    .command('pull')
    .description('pull an image from a registry')
    .argument('<ref>', 'image reference, e.g. busybox or 127.0.0.1:5000/app:v1')
    .option('--platform <os/arch[/variant]>', 'platform to pull from a multi-platform image')
    .option('--creds <user:pass>', 'registry credentials')
    .option('--authfile <file>', 'docker config.json / podman auth.json (default $REGISTRY_AUTH_FILE)')
    .option('--tls-verify <bool>', 'require HTTPS and verify certificates (false allows plain HTTP)', 'true')
    .option('--max-concurrent-downloads <n>', 'layers downloaded in parallel', '3')
    .option('-q, --quiet', 'print only the image ID')
    .action(async (ref: string, o: { platform?: string; creds?: string; authfile?: string; tlsVerify: string; quiet?: boolean; maxConcurrentDownloads: string }) => {
      const svc = await service(globals, { maxConcurrentDownloads: Number(o.maxConcurrentDownloads) || 3 });
      const img = await svc.pull(ref, {
        ...(o.platform ? { platform: o.platform } : {}),
        ...(o.creds ? { creds: o.creds } : {}),
        ...(o.authfile ? { authFile: o.authfile } : {}),
        tlsVerify: o.tlsVerify !== 'false',
        ...(o.quiet ? {} : { onProgress: progressPrinter(process.stderr) }),
      });
      process.stdout.write(o.quiet ? `${img.id}\n` : `${img.id}\n`);
    });

  program
    .command('images')
    .description('list images')
    .option('-o, --output <format>', 'table or json', 'table')
    .option('-q, --quiet', 'print only image IDs')
    .action(async (o: { output: string; quiet?: boolean }) => {
      const images = (await (await service(globals)).list()).sort((a, b) => (b.pulledAt ?? '').localeCompare(a.pulledAt ?? ''));
      if (o.quiet) process.stdout.write(images.map((i) => short(i.id) + '\n').join(''));
      else if (o.output === 'json') process.stdout.write(JSON.stringify(images, null, 2) + '\n');
      else process.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], imageRows(images)));
    });

  program
    .command('rmi')
    .description('remove images (untag; the image goes with its last name)')
    .argument('<refs...>')
    .action(async (refs: string[]) => {
      const svc = await service(globals);
      let failed = false;
      for (const r of refs) {
        try {
          const res = await svc.remove(r);
          for (const u of res.untagged) process.stdout.write(`Untagged: ${u}\n`);
          if (res.deleted) process.stdout.write(`Deleted: ${res.deleted}\n`);
        } catch (e) {
          failed = true;
          process.stderr.write(`nodelet: ${(e as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = 1;
    });

  const image = program.command('image').description('manage images');
  image
    .command('import')
    .description('import an OCI image layout (dir or tar) or a docker save archive')
    .argument('<path>')
    .argument('[ref]', 'name for the imported image')
    .option('--platform <os/arch[/variant]>')
    .action(async (p: string, ref: string | undefined, o: { platform?: string }) => {
      const imgs = await (await service(globals)).import(path.resolve(p), ref, o.platform ? { platform: o.platform } : {});
      for (const i of imgs) process.stdout.write(`${i.id}\n`);
    });
  image
    .command('mount')
    .description('mount a read-only view of the image rootfs at DIR')
    .argument('<ref>')
    .argument('<dir>')
    .action(async (ref: string, dir: string) => {
      process.stdout.write((await (await service(globals)).mountImage(ref, path.resolve(dir))) + '\n');
    });
  image
    .command('unmount')
    .alias('umount')
    .description('unmount an image mounted with image mount')
    .argument('<dir>')
    .action(async (dir: string) => {
      await (await service(globals)).unmountImage(path.resolve(dir));
    });
  image
    .command('prune')
    .description('remove blobs and layers no image or container uses')
    .action(async () => {
      const r = await (await service(globals)).prune();
      process.stdout.write(`Deleted ${r.blobs.length} blobs, ${r.chains.length} layer chains, ${humanSize(r.bytes)} of blobs\n`);
    });
  image
    .command('inspect')
    .description('show an image record as JSON')
    .argument('<ref>')
    .action(async (ref: string) => {
      const img = await (await service(globals)).getImage(ref);
      if (!img) {
        const { notFound } = await import('../errors.js');
        throw notFound('ERR_IMAGE_NOT_FOUND', `image "${ref}" not found: see nodelet images`);
      }
      process.stdout.write(JSON.stringify(img, null, 2) + '\n');
    });
}
