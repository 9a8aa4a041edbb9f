// The per-pod files bind-mounted into every container: /etc/hosts (kubelet's
// managed hosts file), /etc/hostname and /etc/resolv.conf. Pure text builders.

export interface HostsInput {
  hostname: string;
  podIPs: string[];
  hostAliases: { ip: string; hostnames: string[] }[];
  /** hostNetwork pods get the host's /etc/hosts (kubelet does the same) plus aliases. */
  hostNetwork: boolean;
  hostHostsFile?: string;
}

/** kubelet's managedHostsFileContent (pkg/kubelet/kubelet_pods.go). */
export function computeHostsFile(inp: HostsInput): string {
  let out: string;
  if (inp.hostNetwork) {
    out = inp.hostHostsFile ?? '';
    if (out && !out.endsWith('\n')) out += '\n';
  } else {
    out =
      '# Kubernetes-managed hosts file.\n' +
      '127.0.0.1\tlocalhost\n' +
      '::1\tlocalhost ip6-localhost ip6-loopback\n' +
      'fe00::0\tip6-localnet\n' +
      'fe00::0\tip6-mcastprefix\n' +
      'fe00::1\tip6-allnodes\n' +
      'fe00::2\tip6-allrouters\n';
    for (const ip of inp.podIPs) out += `${ip}\t${inp.hostname}\n`;
  }
  if (inp.hostAliases.length) {
    out += '\n# Entries added by HostAliases.\n';
    for (const a of inp.hostAliases) out += `${a.ip}\t${a.hostnames.join('\t')}\n`;
  }
  return out;
}

const isLoopbackNameserver = (ip: string) => /^127\./.test(ip) || ip === '::1' || /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(ip);

export interface ResolvInput {
  dns?: { nameservers: string[]; searches: string[]; options: string[] };
  hostNetwork: boolean;
  hostResolvConf: string;
}

/**
 * The pod's resolv.conf. With an explicit dns config (the pod layer resolves
 * dnsPolicy/dnsConfig into it): exactly those lines. Otherwise the host's file;
 * for pods with their own network namespace, loopback nameservers (e.g.
 * systemd-resolved's 127.0.0.53) are dropped, as docker does, because they are
 * unreachable from the pod's netns. No public fallback is added.
 */
export function computeResolvConf(inp: ResolvInput): { content: string; droppedNameservers: string[] } {
  if (inp.dns) {
    const lines: string[] = [];
    if (inp.dns.searches.length) lines.push(`search ${inp.dns.searches.join(' ')}`);
    for (const ns of inp.dns.nameservers) lines.push(`nameserver ${ns}`);
    if (inp.dns.options.length) lines.push(`options ${inp.dns.options.join(' ')}`);
    return { content: lines.join('\n') + (lines.length ? '\n' : ''), droppedNameservers: [] };
  }
  if (inp.hostNetwork) return { content: inp.hostResolvConf, droppedNameservers: [] };
  const dropped: string[] = [];
  const kept = inp.hostResolvConf.split('\n').filter((line) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isLoopbackNameserver(m[1]!)) { dropped.push(m[1]!); return false; }
    return true;
  });
  let content = kept.join('\n');
  if (content && !content.endsWith('\n')) content += '\n';
  return { content, droppedNameservers: dropped };
}
