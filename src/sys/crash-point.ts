// Crash points: named instants of a container's life at which a test can make
// the process die by SIGKILL, to prove that a restarted daemon converges from
// whatever was on disk at that instant (docs/runtime.md, "Crash points").
//
//   NODELET_TEST_HOOKS=1 NODELET_CRASH_AT=<name>[@<subject>][:<n>]
//
// kills the process the n-th time (default: the first) it reaches
// crashPoint('<name>') — with @<subject>, only counting the calls about that
// subject (a container's name: `container-started@web:2` is web's first
// restart). Without NODELET_TEST_HOOKS=1 the variable is ignored,
// so no production process dies by its environment. The variables are read
// once, at load; a call is a string compare when armed and nothing otherwise.

/** The crash points, in the order a container's life reaches them. */
export const CRASH_POINTS = [
  'sandbox-pinned', // runtime: the pod's namespaces are pinned; no sandbox.json yet
  'container-mounted', // runtime: the rootfs is mounted (cgroup, snapshot made); no container.json yet
  'container-created', // runtime: container.json written (started: false), no shim yet
  'container-started', // runtime: the shim reports the process exec'd; the start is not recorded yet
  'container-start-recorded', // agent: the runtime recorded the start; the agent has not seen it (no Started event, log link)
  'exit-recorded', // runtime: the shim's exit.json is there; the runtime has not recorded the exit
  'exit-reported', // runtime: the exit is recorded in container.json; the agent has not been told
  'stop-signalled', // runtime: the stop signal was sent; no SIGKILL, no wait yet
  'remove-unmounted', // runtime: removing a container: rootfs unmounted, snapshot and cgroup still there
  'remove-state-removed', // runtime: removing a container: everything gone but container.json
  'sandbox-remove-unpinned', // runtime: removing a sandbox: namespaces unpinned, cgroup and directory still there
  'pod-torn-down', // agent: sandboxes and volumes gone, the pod's record and logs not yet
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

function armed(): { name: string; subject?: string; nth: number } | undefined {
  if (process.env.NODELET_TEST_HOOKS !== '1') return undefined;
  const m = /^([a-z-]+)(?:@([^:]+))?(?::(\d+))?$/.exec(process.env.NODELET_CRASH_AT ?? '');
  return m ? { name: m[1]!, subject: m[2], nth: Math.max(1, Number(m[3] ?? 1)) } : undefined;
}

const target = armed();
let hits = 0;

/** Die here by SIGKILL when the test hooks ask for it (see above); otherwise nothing. `subject`: the container's name (the pod's, at sandbox and pod points). */
export function crashPoint(name: CrashPointName, subject?: string): void {
  if (target?.name !== name || (target.subject !== undefined && target.subject !== subject) || ++hits < target.nth) return;
  process.kill(process.pid, 'SIGKILL');
}
