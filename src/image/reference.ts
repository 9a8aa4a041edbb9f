// Image references: the distribution/reference grammar plus docker's
// normalisation ("busybox" -> "docker.io/library/busybox:latest").
//
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [domain "/"] path-component ["/" path-component]*
//   domain    := host [":" port]        host: dns name, IPv4 or [IPv6]
//   path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | __ | -+
//   tag       := [\w][\w.-]{0,127}
//   digest    := algorithm ":" hex      (sha256: 64 lowercase hex)
import { invalidArgument } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_MAX = 255;

const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainRe = new RegExp(`^(?:${domainName}|${ipv6})(?::[0-9]+)?$`);
const pathComponentRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestRe = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ImageReference {
  /** Registry host[:port] as written (docker.io for Docker Hub). */
  domain: string;
  /** Repository path inside the registry ("library/busybox"). */
  path: string;
  tag?: string;
  digest?: string;
}

function bad(ref: string, why: string): Error {
  return invalidArgument('ERR_IMAGE_REFERENCE_INVALID', `invalid image reference "${ref}": ${why}`, {
    details: { reference: ref },
  });
}

/** Validates a digest string ("sha256:<64 hex>"); returns it or throws. */
export function validateDigest(d: string, ref = d): string {
  if (!digestRe.test(d)) throw bad(ref, `invalid digest "${d}"`);
  const [alg, hex] = d.split(':', 2) as [string, string];
  if (alg === 'sha256' && !/^[a-f0-9]{64}$/.test(hex)) throw bad(ref, `invalid sha256 digest "${d}" (want 64 lowercase hex characters)`);
  if (alg === 'sha512' && !/^[a-f0-9]{128}$/.test(hex)) throw bad(ref, `invalid sha512 digest "${d}"`);
  if (alg !== 'sha256' && alg !== 'sha512') throw bad(ref, `unsupported digest algorithm "${alg}"`);
  return d;
}

/**
 * Parses and normalises a reference like docker/podman do. A reference without
 * tag and digest gets ":latest". Throws ERR_IMAGE_REFERENCE_INVALID.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): ImageReference {
  const ref = input;
  if (ref.length === 0) throw bad(ref, 'empty reference');
  if (/\s/.test(ref)) throw bad(ref, 'contains whitespace');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = validateDigest(rest.slice(at + 1), ref);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagRe.test(tag)) throw bad(ref, `invalid tag "${tag}"`);
  }
  if (rest.length === 0) throw bad(ref, 'missing repository name');
  if (rest.length > NAME_TOTAL_MAX) throw bad(ref, `repository name longer than ${NAME_TOTAL_MAX} characters`);

  // docker's splitDockerDomain: the first component is a registry when it has
  // a '.' or ':', is "localhost", or has uppercase letters.
  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first && !first.startsWith('['))) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (!domainRe.test(domain)) throw bad(ref, `invalid registry host "${domain}"`);
  const port = /:([0-9]+)$/.exec(domain)?.[1];
  if (port !== undefined && (Number(port) > 65535 || Number(port) === 0)) throw bad(ref, `invalid port in "${domain}"`);
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  for (const c of path.split('/')) {
    if (c.length === 0) throw bad(ref, 'empty path component');
    if (!pathComponentRe.test(c)) {
      if (c.toLowerCase() !== c && pathComponentRe.test(c.toLowerCase()))
        throw bad(ref, 'repository name must be lowercase');
      throw bad(ref, `invalid path component "${c}"`);
    }
  }
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX)
    throw bad(ref, `repository name longer than ${NAME_TOTAL_MAX} characters`);
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = 'latest';
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** "domain/path" */
export function repositoryName(r: ImageReference): string {
  return `${r.domain}/${r.path}`;
}

/** Canonical string: "domain/path[:tag][@digest]". */
export function formatReference(r: ImageReference): string {
  return repositoryName(r) + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** Shortest familiar form, like docker: "busybox:latest", "localhost:5000/a:b". */
export function familiarReference(r: ImageReference): string {
  let name = repositoryName(r);
  if (r.domain === DEFAULT_DOMAIN) {
    name = r.path.startsWith(OFFICIAL_REPO_PREFIX) ? r.path.slice(OFFICIAL_REPO_PREFIX.length) : r.path;
  }
  return name + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** True when the string looks like a reference rather than an image ID prefix. */
export function isLoopbackHost(domain: string): boolean {
  const host = hostOf(domain);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Host without port, IPv6 brackets removed. */
export function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const i = domain.lastIndexOf(':');
  return i < 0 ? domain : domain.slice(0, i);
}
