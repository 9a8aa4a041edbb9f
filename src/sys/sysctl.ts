// Sysctl names: `net.ipv4.ip_forward` or `net/ipv4/ip_forward`. In the dot
// form a slash stands for a dot inside a component (`net.ipv4.conf.eth0/100.x`
// is /proc/sys/net/ipv4/conf/eth0.100/x), as kubelet and runc read them.

/** The name with dots as separators. */
export function toDotSeparated(name: string): string {
  const first = name.search(/[./]/);
  if (first < 0 || name[first] === '.') return name;
  return swapSeparators(name);
}

/** The path under /proc/sys for a name in either form. */
export function sysctlProcPath(name: string): string {
  return swapSeparators(toDotSeparated(name));
}

function swapSeparators(s: string): string {
  return s.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}
