/* Small helpers: errors, status records, atomic files, time, JSON strings. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct nl_err g_err;

static int vfail(const char *stage, int errnum, const char *fmt, va_list ap) {
  if (g_err.stage[0]) return -1; /* keep the first (root) cause */
  snprintf(g_err.stage, sizeof g_err.stage, "%s", stage);
  vsnprintf(g_err.msg, sizeof g_err.msg, fmt, ap);
  g_err.errnum = errnum;
  return -1;
}

int fail(const char *stage, const char *fmt, ...) {
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  vfail(stage, e, fmt, ap);
  va_end(ap);
  errno = e;
  return -1;
}

int fail_errno(const char *stage, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(stage, errnum, fmt, ap);
  va_end(ap);
  errno = errnum;
  return -1;
}

int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* One status record: u32 tag, u32 length, NUL-separated fields. */
int send_record(int fd, int tag, int nfields, ...) {
  char buf[8 + 1024];
  size_t len = 0;
  va_list ap;
  va_start(ap, nfields);
  for (int i = 0; i < nfields; i++) {
    const char *s = va_arg(ap, const char *);
    size_t n = strnlen(s, 900);
    if (len + n + 1 > sizeof buf - 8) n = 0;
    if (i > 0) buf[8 + len++] = '\0';
    memcpy(buf + 8 + len, s, n);
    len += n;
  }
  va_end(ap);
  uint32_t hdr[2] = {(uint32_t)tag, (uint32_t)len};
  memcpy(buf, hdr, 8);
  return write_all(fd, buf, 8 + len);
}

/* Read a child's exec status from the close-on-exec pipe and close it: EOF with
 * nothing means it exec'd (0); else its nl_err becomes ours (-1). */
int await_exec(int status_r, const char *what) {
  struct nl_err child_err;
  ssize_t n;
  do n = read(status_r, &child_err, sizeof child_err);
  while (n < 0 && errno == EINTR);
  close(status_r);
  if (n == 0) return 0;
  if (n != (ssize_t)sizeof child_err) return fail_errno("exec", EPROTO, "short status from %s", what);
  child_err.stage[sizeof child_err.stage - 1] = '\0';
  child_err.msg[sizeof child_err.msg - 1] = '\0';
  g_err = child_err;
  return -1;
}

int send_error(int fd) {
  char num[16];
  snprintf(num, sizeof num, "%d", g_err.errnum);
  return send_record(fd, NL_TAG_ST_ERROR, 3, g_err.stage[0] ? g_err.stage : "unknown", num, g_err.msg);
}

int write_file(const char *path, const char *content) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = write_all(fd, content, strlen(content));
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

/* tmp + fsync + rename + fsync(dir): readers see the old or the new file. */
int write_file_atomic(const char *dir, const char *name, const char *content, size_t len) {
  char tmp[PATH_MAX], dst[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp) return errno = ENAMETOOLONG, -1;
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (write_all(fd, content, len) < 0 || fsync(fd) < 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return errno = e, -1;
  }
  close(fd);
  if (rename(tmp, dst) < 0) return -1;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

/* RFC 3339 with nanoseconds, UTC: 2026-11-22T04:19:54.123456789Z */
void format_time(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

const char *signal_name(int sig) {
  static const char *names[] = {
    [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
    [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE",
    [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
    [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
    [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
    [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU",
    [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
    [SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR", [SIGSYS] = "SIGSYS",
  };
  static char buf[16];
  if (sig > 0 && sig < (int)(sizeof names / sizeof names[0]) && names[sig]) return names[sig];
  snprintf(buf, sizeof buf, "SIG%d", sig);
  return buf;
}

/* A JSON string literal (with quotes); truncates rather than overflow. */
size_t json_str(char *out, size_t size, const char *s) {
  size_t n = 0;
  if (size < 3) return 0;
  out[n++] = '"';
  for (; *s && n + 8 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
    } else {
      out[n++] = (char)c;
    }
  }
  out[n++] = '"';
  out[n] = '\0';
  return n;
}

static ssize_t read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n >= 0) buf[n] = '\0';
  return n;
}

/* Field 22 of /proc/PID/stat: identifies a pid across reuse. */
unsigned long long proc_start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof buf) <= 0) return 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  for (int field = 2; field < 22 && p; field++) p = strchr(p + 1, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* The "oom_kill N" line of memory.events (v2) or memory.oom_control (v1); -1 if unknown. */
long long read_oom_kills(const char *path) {
  char buf[1024];
  if (!path || read_small(path, buf, sizeof buf) <= 0) return -1;
  for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, "oom_kill ", 9) == 0) return strtoll(line + 9, NULL, 10);
  }
  return -1;
}

/* The v1 `tasks` file beside a `.../cgroup.procs` entry; -1 if there is none (cgroup v2). */
int cgroup_tasks_file(const char *procs, char *out, size_t size) {
  const char *slash = strrchr(procs, '/');
  if (!slash || strcmp(slash, "/cgroup.procs") != 0) return -1;
  if (snprintf(out, size, "%.*s/tasks", (int)(slash - procs), procs) >= (int)size) return -1;
  return access(out, W_OK);
}

/* Can a single-threaded process place itself, i.e. is every entry a v1 hierarchy? */
int cgroup_self_placeable(const struct nl_plan *p) {
  char path[PATH_MAX];
  for (int i = 0; i < p->n_cgroup_procs; i++)
    if (cgroup_tasks_file(p->cgroup_procs[i], path, sizeof path) < 0) return 0;
  return p->n_cgroup_procs > 0;
}

/* Move the calling (single-threaded) process into every v1 cgroup by writing "0" to `tasks`.
 * The kernel migrates a thread that moves itself without the global cgroup_threadgroup_rwsem
 * (Linux >= 6.0), so this skips the RCU grace period a write of a pid to cgroup.procs waits
 * for (7-15 ms here). For a single-threaded process, moving its thread moves the process. */
int cgroup_place_self(const struct nl_plan *p) {
  char path[PATH_MAX];
  for (int i = 0; i < p->n_cgroup_procs; i++) {
    if (cgroup_tasks_file(p->cgroup_procs[i], path, sizeof path) < 0 || write_file(path, "0") < 0)
      return fail("cgroup", "join %s", p->cgroup_procs[i]);
  }
  return 0;
}
