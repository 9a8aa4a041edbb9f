/* The monitor (conmon's role): CRI log lines with rotation, reaping, exit record,
 * and the exec socket (exec.c): a helper forked per connection, never waited on. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LINE 16384 /* longer lines are split into P records, like kubelet/containerd */
#define DRAIN_MS 200   /* after exit, stop when the pipes stay idle this long */

struct stream {
  int fd;
  int frame; /* the attach frame type of its output */
  const char *name;
  size_t len;
  char buf[MAX_LINE];
};

struct logfile {
  int fd;
  const char *path;
  long long size, max;
  int max_files;
};

static struct stream out_s = {.name = "stdout", .frame = NL_FRAME_STDOUT}, err_s = {.name = "stderr", .frame = NL_FRAME_STDERR};
static struct logfile lg;
static char line[MAX_LINE + 128];
static char chunk[MAX_LINE];

static int log_open(struct logfile *l) {
  struct stat st;
  l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (l->fd < 0) return -1;
  l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
  return 0;
}

/* kubelet-style size rotation: log -> log.1 -> ... -> log.(maxFiles-1); rename, then reopen. */
static void log_rotate(struct logfile *l) {
  char from[PATH_MAX], to[PATH_MAX];
  if (l->max_files <= 1) {
    if (ftruncate(l->fd, 0) == 0) l->size = 0;
    return;
  }
  for (int i = l->max_files - 1; i >= 1; i--) {
    if (i == 1) snprintf(from, sizeof from, "%s", l->path);
    else snprintf(from, sizeof from, "%s.%d", l->path, i - 1);
    snprintf(to, sizeof to, "%s.%d", l->path, i);
    rename(from, to);
  }
  close(l->fd);
  if (log_open(l) < 0) l->fd = -1;
}

/* One CRI line: "<RFC3339Nano> <stream> <F|P> <a><b>\n". */
static void emit(const struct stream *s, char tag, const char *a, size_t alen, const char *b, size_t blen) {
  char ts[40];
  format_time(ts, sizeof ts);
  int n = snprintf(line, sizeof line, "%s %s %c ", ts, s->name, tag);
  memcpy(line + n, a, alen);
  memcpy(line + n + alen, b, blen);
  size_t len = (size_t)n + alen + blen;
  line[len++] = '\n';
  if (lg.fd >= 0 && lg.max > 0 && lg.size > 0 && lg.size + (long long)len > lg.max) log_rotate(&lg);
  if (lg.fd < 0 && log_open(&lg) < 0) return;
  if (write_all(lg.fd, line, len) == 0) lg.size += (long long)len;
}

static void feed(struct stream *s, const char *data, size_t n) {
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    if (s->len + take > MAX_LINE) { /* full buffer: partial line */
      size_t fill = MAX_LINE - s->len;
      emit(s, 'P', s->buf, s->len, data, fill);
      s->len = 0;
      data += fill;
      n -= fill;
      continue;
    }
    if (!nl) {
      memcpy(s->buf + s->len, data, take);
      s->len += take;
      return;
    }
    emit(s, 'F', s->buf, s->len, data, take);
    s->len = 0;
    data += take + 1;
    n -= take + 1;
  }
}

static void drain(struct stream *s) {
  ssize_t r = read(s->fd, chunk, sizeof chunk);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (r > 0) {
    attach_output(s->frame, chunk, (size_t)r);
    feed(s, chunk, (size_t)r);
    return;
  }
  if (s->len > 0) emit(s, 'P', s->buf, s->len, "", 0); /* unterminated tail at EOF (EIO on a pty) */
  s->len = 0;
  close(s->fd);
  s->fd = -1;
}

/* Reap every child (the container, exec helpers, re-parented orphans); note the container's status. */
static void reap(int sig_fd, pid_t pid, int *exited, int *status) {
  struct signalfd_siginfo si;
  int st;
  pid_t w;
  while (read(sig_fd, &si, sizeof si) > 0) {}
  while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
    if (w == pid) {
      *exited = 1;
      *status = st;
    } else {
      exec_server_reaped(w);
    }
  }
}

static int helper_closes[3] = {-1, -1, -1};

/* In a freshly forked exec helper: drop the monitor's own fds (log, container pipes, signalfd). */
static void close_monitor_fds(void) {
  for (int i = 0; i < 3; i++)
    if (helper_closes[i] >= 0) close(helper_closes[i]);
  if (lg.fd >= 0) close(lg.fd);
  attach_close_fds();
}

int write_state(const struct nl_monitor *m, int exited, int status, int oom_killed, const char *finished_at) {
  char id[600], buf[2048];
  int n;
  json_str(id, sizeof id, m->plan->container_id);
  n = snprintf(buf, sizeof buf,
               "{\"containerId\":%s,\"shimPid\":%d,\"shimStartTime\":%llu,\"pid\":%d,\"status\":\"%s\",\"startedAt\":\"%s\"",
               id, (int)m->shim_pid, m->shim_start, (int)m->pid, exited ? "exited" : "running", m->started_at);
  if (exited) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"finishedAt\":\"%s\",\"exitCode\":%d", finished_at, code);
    if (WIFSIGNALED(status))
      n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"signal\":\"%s\"", signal_name(WTERMSIG(status)));
    n += snprintf(buf + n, sizeof buf - (size_t)n, ",\"oomKilled\":%s", oom_killed ? "true" : "false");
  }
  n += snprintf(buf + n, sizeof buf - (size_t)n, "}\n");
  return write_file_atomic(m->plan->state_dir, exited ? "exit.json" : "state.json", buf, (size_t)n);
}

static void record_exit(struct nl_monitor *m, int status) {
  char finished[40];
  format_time(finished, sizeof finished);
  long long after = read_oom_kills(m->plan->oom_counter_file);
  int oom = m->oom_before >= 0 && after > m->oom_before;
  if (write_state(m, 1, status, oom, finished) < 0) {
    /* nothing else can record it: leave a trace for the operator */
    fail("state", "write exit.json");
  }
}

int monitor_run(struct nl_monitor *m) {
  int exited = 0, status = 0;
  lg = (struct logfile){.fd = -1, .path = m->plan->log_path, .max = m->plan->log_max_bytes, .max_files = m->plan->log_max_files};
  log_open(&lg);
  out_s.fd = m->out_fd;
  err_s.fd = m->err_fd;
  for (;;) {
    helper_closes[0] = out_s.fd;
    helper_closes[1] = err_s.fd;
    helper_closes[2] = m->sig_fd;
    struct pollfd fds[4 + NL_ATTACH_MAX_CLIENTS + 2] = {{out_s.fd, POLLIN, 0}, {err_s.fd, POLLIN, 0}, {m->sig_fd, POLLIN, 0}, {m->exec.listen_fd, POLLIN, 0}};
    int n_attach = attach_pollfds(fds + 4, NL_ATTACH_MAX_CLIENTS + 2);
    if (exited && out_s.fd < 0 && err_s.fd < 0) break;
    int r = poll(fds, (nfds_t)(4 + n_attach), exited ? DRAIN_MS : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) break; /* exited and idle: someone else holds the pipe (shared pid ns) */
    attach_handle(fds + 4, n_attach);
    if (fds[2].revents) reap(m->sig_fd, m->pid, &exited, &status);
    if (exited && m->exec.dir_fd >= 0) exec_server_close(&m->exec); /* no new execs; running ones end */
    else if (fds[3].revents) exec_server_accept(&m->exec, m->pid, close_monitor_fds);
    if (fds[0].revents) drain(&out_s);
    if (fds[1].revents) drain(&err_s);
  }
  exec_server_close(&m->exec);
  if (out_s.fd >= 0 && out_s.len) emit(&out_s, 'P', out_s.buf, out_s.len, "", 0);
  if (err_s.fd >= 0 && err_s.len) emit(&err_s, 'P', err_s.buf, err_s.len, "", 0);
  char code[16];
  snprintf(code, sizeof code, "%d", WIFEXITED(status) ? WEXITSTATUS(status) : 0);
  attach_unlisten(); /* no socket left once exit.json is there */
  record_exit(m, status); /* before EXIT: a client told of the exit finds it recorded */
  attach_finish(code, WIFSIGNALED(status) ? signal_name(WTERMSIG(status)) : "");
  return 0;
}
