/* Identity, capabilities, fds and exec: shared by `run` and `exec`. */
#include "shim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

void reset_signals(void) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  int sigs[] = {SIGHUP, SIGINT, SIGPIPE, SIGTERM, SIGCHLD, SIGQUIT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}

static int drop_bounding(uint64_t keep) {
  for (int cap = 0; cap < 64; cap++) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break; /* past the kernel's last cap */
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return fail("capabilities", "drop bounding capability %d", cap);
  }
  return 0;
}

static int set_caps(const struct nl_caps *c) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  for (int i = 0; i < 2; i++) {
    data[i].effective = (uint32_t)(c->effective >> (32 * i));
    data[i].permitted = (uint32_t)(c->permitted >> (32 * i));
    data[i].inheritable = (uint32_t)(c->inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return fail("capabilities", "capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return fail("capabilities", "clear ambient");
  for (int cap = 0; cap < 64; cap++) {
    if (!(c->ambient & (1ULL << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return fail("capabilities", "raise ambient capability %d", cap);
  }
  return 0;
}

/* Bounding set, groups, gid, uid (keeping caps across setuid), then capset and no_new_privs.
 * Seccomp as runc orders it: without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes
 * in first; with no_new_privs as late as possible (after chdir), so less runs under it. */
int apply_identity(const struct nl_plan *p) {
  if (p->seccomp && !p->no_new_privs && seccomp_install(p->seccomp, p->seccomp_len) < 0) return -1;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail("user", "PR_SET_KEEPCAPS");
  if (p->has_caps && drop_bounding(p->caps.bounding) < 0) return -1;
  if (setgroups((size_t)p->n_gids, p->gids) < 0) return fail("user", "setgroups");
  if (setresgid(p->gid, p->gid, p->gid) < 0) return fail("user", "setgid %u", (unsigned)p->gid);
  if (setresuid(p->uid, p->uid, p->uid) < 0) return fail("user", "setuid %u", (unsigned)p->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return fail("user", "PR_SET_KEEPCAPS");
  if (p->has_caps && set_caps(&p->caps) < 0) return -1;
  if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail("no_new_privs", "PR_SET_NO_NEW_PRIVS");
  if (chdir(p->cwd) < 0) return fail("chdir", "chdir to working directory %s", p->cwd);
  if (p->seccomp && p->no_new_privs && seccomp_install(p->seccomp, p->seccomp_len) < 0) return -1;
  return 0;
}

/* Every fd above 2 closes at exec (CVE-2024-21626): only 0-2 reach the process. */
int mark_fds_cloexec(void) {
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return fail("fds", "close_range and /proc/self/fd both unavailable");
  int self = dirfd(d);
  for (struct dirent *e; (e = readdir(d));) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != self && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return fail("fds", "set FD_CLOEXEC on %d", fd);
  }
  closedir(d);
  return 0;
}

static const char *env_path(const char *const *env) {
  for (; *env; env++)
    if (strncmp(*env, "PATH=", 5) == 0) return *env + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* EACCES from execve: name a noexec mount when that is the cause (a store on /dev/shm, a
 * noexec volume), not the file's mode. errno is EACCES on entry. */
static int exec_denied(const char *path) {
  struct statvfs sv;
  if (statvfs(path, &sv) == 0 && (sv.f_flag & ST_NOEXEC))
    return fail_errno("exec", EACCES, "cannot run %s: its filesystem is mounted noexec (put nodelet's --root, or that volume, on a filesystem that allows exec)", path);
  return fail_errno("exec", EACCES, "cannot run %s: permission denied (not executable by the container's user?)", path);
}

/* execvpe with the container's own PATH, as runc resolves it. Returns only on failure. */
int exec_plan(const struct nl_plan *p) {
  const char *file = p->argv[0];
  char *const *argv = (char *const *)p->argv;
  char *const *envp = (char *const *)p->env;
  if (file[0] == '\0') return fail_errno("exec", ENOENT, "empty executable name");
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    return errno == EACCES ? exec_denied(file) : fail("exec", "exec %s", file);
  }
  const char *path = env_path(p->env);
  int err = ENOENT;
  char buf[PATH_MAX], denied[PATH_MAX] = "";
  for (const char *dir = path; ; ) {
    const char *end = strchrnul(dir, ':');
    int n = snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - dir), end == dir ? "." : dir, file);
    if (end == dir) n = snprintf(buf, sizeof buf, "%s", file);
    if (n > 0 && n < (int)sizeof buf) {
      execve(buf, argv, envp);
      if (errno == EACCES) {
        if (!denied[0]) snprintf(denied, sizeof denied, "%s", buf);
        err = EACCES;
      } else if (errno != ENOENT && errno != ENOTDIR) return fail("exec", "exec %s", buf);
    }
    if (!*end) break;
    dir = end + 1;
  }
  if (denied[0]) return exec_denied(denied); /* found, but not runnable: say why (execvp reports EACCES too) */
  return fail_errno("exec", err, "executable file \"%s\" not found in $PATH (%s)", file, path);
}
