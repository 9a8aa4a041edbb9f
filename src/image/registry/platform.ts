// Platform matching for OCI image indexes / Docker manifest lists, after
// containerd's platforms package: normalise names, default the host's
// os/arch/variant, prefer the exact variant, then lower compatible variants.
import { readFileSync } from 'node:fs';
import { invalidArgument } from '../../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const archAliases: Record<string, string> = {
  x64: 'amd64',
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  ia32: '386',
  i386: '386',
  i686: '386',
  armhf: 'arm',
  armel: 'arm',
  ppc64: 'ppc64',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let architecture = archAliases[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  if (architecture === 'arm64') {
    if (variant === '8' || variant === 'v8') variant = undefined;
  } else if (architecture === 'arm') {
    if (p.architecture === 'armhf') variant ??= 'v7';
    if (p.architecture === 'armel') variant ??= 'v6';
    if (variant === undefined) variant = 'v7';
    else if (/^[5-8]$/.test(variant)) variant = 'v' + variant;
  } else if (architecture === 'amd64' && (variant === 'v1')) {
    variant = undefined;
  }
  void architecture;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** "os/arch[/variant]" -> Platform. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p)))
    throw invalidArgument('ERR_IMAGE_PLATFORM_INVALID', `invalid platform "${spec}": want os/arch[/variant], e.g. linux/arm64`);
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

let hostCache: Platform | undefined;
/** This host's platform (arm variant read from /proc/cpuinfo like containerd). */
export function hostPlatform(): Platform {
  if (hostCache) return hostCache;
  const arch = process.arch;
  let variant: string | undefined;
  if (arch === 'arm') {
    try {
      const m = /CPU architecture\s*:\s*(\d+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
      if (m) variant = 'v' + (Number(m[1]) >= 8 ? 8 : m[1]);
    } catch {
      /* default v7 */
    }
  }
  hostCache = normalizePlatform({ os: process.platform, architecture: arch, ...(variant ? { variant } : {}) });
  return hostCache;
}

/**
 * Ranks a candidate for the wanted platform: 0 = no match, higher = better.
 * arm variants are backwards compatible (v8 runs v7, v6, v5), amd64 levels too.
 */
export function matchPlatform(want: Platform, cand: Platform): number {
  const w = normalizePlatform(want);
  const c = normalizePlatform(cand);
  if (w.os !== c.os || w.architecture !== c.architecture) return 0;
  if (w.variant === c.variant) return 100;
  const num = (v: string | undefined) => (v === undefined ? 0 : Number(/\d+/.exec(v)?.[0] ?? 0));
  if (w.architecture === 'arm' || w.architecture === 'amd64') {
    const wv = num(w.variant) || (w.architecture === 'amd64' ? 1 : 7);
    const cv = num(c.variant) || (c.architecture === 'amd64' ? 1 : 7);
    return cv <= wv ? 50 + cv : 0;
  }
  if (c.variant === undefined) return 40; // unspecified variant in the index
  return 0;
}

/** Picks the best entry of an index for the platform; undefined when none fits. */
export function selectPlatform<T extends { platform?: Platform }>(entries: T[], want: Platform): T | undefined {
  let best: { score: number; e: T } | undefined;
  for (const e of entries) {
    if (!e.platform) continue;
    const score = matchPlatform(want, e.platform);
    if (score > 0 && (!best || score > best.score)) best = { score, e };
  }
  return best?.e;
}
