/* `nodelet-shim run`: detach, create the container, report, then monitor it. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <limits.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD 4
static struct nl_plan plan;

struct io {
  int out_r, err_r, tty_master, sync_w, status_r, stdin_w;
  struct child_fds child;
};

static int open_tty(struct io *io) {
  io->tty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (io->tty_master < 0 || grantpt(io->tty_master) < 0 || unlockpt(io->tty_master) < 0) return fail("stdio", "allocate pty");
  const char *name = ptsname(io->tty_master);
  io->child.tty_slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (io->child.tty_slave < 0) return fail("stdio", "open pty slave");
  io->out_r = io->tty_master;
  return 0;
}

/* stdin is /dev/null, or (plan.stdin, no tty) a pipe whose write end the monitor
 * holds for attach (attach.c): it stays open across sessions unless stdinOnce.
 * With a tty the process's stdin is the terminal and attach writes to the master. */
static int open_stdin(const struct nl_plan *p, struct io *io) {
  int in[2];
  if (!p->stdin_open || p->tty) {
    io->child.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return io->child.stdin_fd < 0 ? fail("stdio", "open /dev/null") : 0;
  }
  if (pipe2(in, O_CLOEXEC) < 0) return fail("stdio", "stdin pipe");
  io->child.stdin_fd = in[0];
  io->stdin_w = in[1];
  if (fcntl(io->stdin_w, F_SETFL, O_NONBLOCK) < 0) return fail("stdio", "stdin pipe O_NONBLOCK");
  return 0;
}

/* Pipes for stdout/stderr (or one pty), /dev/null stdin, the go-ahead and exec-status pipes. */
static int open_io(const struct nl_plan *p, struct io *io) {
  int out[2], err[2], sync[2], status[2];
  memset(io, 0xff, sizeof *io); /* all -1 */
  if (open_stdin(p, io) < 0) return -1;
  if (p->tty) {
    if (open_tty(io) < 0) return -1;
  } else {
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return fail("stdio", "pipe");
    io->out_r = out[0]; io->child.out_w = out[1];
    io->err_r = err[0]; io->child.err_w = err[1];
  }
  if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) return fail("sync", "pipe");
  io->child.sync_r = sync[0];
  io->sync_w = sync[1];
  io->status_r = status[0];
  io->child.status_w = status[1];
  return 0;
}

/* Join the namespaces that have a path (mnt is joined by the child), return CLONE_NEW* flags to create. */
static int join_namespaces(const struct nl_plan *p, struct io *io, int *clone_flags) {
  *clone_flags = 0;
  for (int i = 0; i < p->n_ns; i++) {
    const struct nl_ns *ns = &p->ns[i];
    if (!ns->path) {
      *clone_flags |= ns->flag;
      continue;
    }
    int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("namespaces", "open %s namespace %s", ns->name, ns->path);
    if (ns->flag == CLONE_NEWNS) {
      io->child.mnt_ns = fd;
      continue;
    }
    if (setns(fd, ns->flag) < 0) return fail("namespaces", "join %s namespace %s", ns->name, ns->path);
    close(fd);
  }
  if (!(*clone_flags & CLONE_NEWNS) && io->child.mnt_ns < 0)
    return fail_errno("namespaces", EINVAL, "a container needs a mount namespace (new or joined)");
  return 0;
}

/* Put the child in its cgroups (unless it places itself) and set oom_score_adj before it may exec. */
static int place_child(const struct nl_plan *p, pid_t pid, int self_cgroup) {
  char buf[32];
  snprintf(buf, sizeof buf, "%d", (int)pid);
  for (int i = 0; !self_cgroup && i < p->n_cgroup_procs; i++)
    if (write_file(p->cgroup_procs[i], buf) < 0) return fail("cgroup", "add pid %d to %s", (int)pid, p->cgroup_procs[i]);
  if (p->has_oom_score_adj) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
    snprintf(buf, sizeof buf, "%d", p->oom_score_adj);
    if (write_file(path, buf) < 0) return fail("oom_score_adj", "write %s", path);
  }
  return 0;
}

static void abort_child(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

static int setup_signals(void) {
  sigset_t set;
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  return fd < 0 ? fail("shim", "signalfd") : fd;
}

static int create_container(struct nl_monitor *m) {
  const struct nl_plan *p = &plan;
  struct io io;
  int flags;
  if (open_io(p, &io) < 0) return -1;
  int sync_w = io.sync_w, status_r = io.status_r;
  if (join_namespaces(p, &io, &flags) < 0) return -1;
  m->oom_before = read_oom_kills(p->oom_counter_file);
  io.child.new_cgroup_ns = !!(flags & CLONE_NEWCGROUP);
  io.child.self_cgroup = cgroup_self_placeable(p);
  flags &= ~CLONE_NEWCGROUP;
  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) return fail("clone", "clone container process");
  if (pid == 0) {
    close(sync_w);
    close(status_r);
    container_child(p, &io.child);
  }
  close(io.child.sync_r);
  close(io.child.status_w);
  /* The child sets up its mounts meanwhile and waits for the go-ahead only right before exec. */
  if (place_child(p, pid, io.child.self_cgroup) < 0) {
    struct nl_err mine = g_err;
    abort_child(pid);
    /* the child may have failed first (then it is gone: ESRCH here): its error is the cause */
    if (await_exec(status_r, "container process") == 0) g_err = mine;
    return -1;
  }
  /* EPIPE: the child failed already and says why on the status pipe */
  if (write_all(sync_w, "g", 1) < 0 && errno != EPIPE) {
    fail("sync", "release container process");
    abort_child(pid);
    return -1;
  }
  close(sync_w);
  if (await_exec(status_r, "container process") < 0) {
    abort_child(pid);
    return -1;
  }
  format_time(m->started_at, sizeof m->started_at);
  close(io.child.out_w);
  close(io.child.err_w);
  close(io.child.tty_slave);
  close(io.child.stdin_fd);
  if (io.child.mnt_ns >= 0) close(io.child.mnt_ns);
  m->pid = pid;
  m->out_fd = io.out_r;
  m->err_fd = io.err_r;
  m->in_fd = !p->stdin_open ? -1 : p->tty ? io.tty_master : io.stdin_w;
  return 0;
}

static void redirect_stdio(void) {
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; fd >= 0 && i < 3; i++) dup2(fd, i);
  if (fd > 2) close(fd);
}

/* The detached shim: create, report {pid} on fd 4, close it, monitor. */
static int shim_main(void) {
  struct nl_monitor m = {.plan = &plan, .shim_pid = getpid(), .out_fd = -1, .err_fd = -1, .in_fd = -1, .exec = {-1, -1, -1, -1}};
  char num[16], pidbuf[16];
  snprintf(num, sizeof num, "%d", (int)m.shim_pid);
  send_record(STATUS_FD, NL_TAG_ST_SHIM_PID, 1, num);
  m.shim_start = proc_start_time(m.shim_pid);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return fail("shim", "PR_SET_CHILD_SUBREAPER");
  if ((m.sig_fd = setup_signals()) < 0) return -1;
  if (exec_server_open(&m.exec, plan.state_dir) < 0) return -1; /* listening before anyone learns the pid */
  if (create_container(&m) < 0) {
    exec_server_close(&m.exec);
    return -1;
  }
  if (attach_open(plan.state_dir, m.in_fd, plan.tty, plan.stdin_once) < 0) {
    abort_child(m.pid);
    exec_server_close(&m.exec);
    return -1;
  }
  if (write_state(&m, 0, 0, 0, NULL) < 0) {
    fail("state", "write %s/state.json", plan.state_dir);
    abort_child(m.pid);
    exec_server_close(&m.exec);
    return -1;
  }
  snprintf(pidbuf, sizeof pidbuf, "%d", (int)m.pid);
  send_record(STATUS_FD, NL_TAG_ST_STARTED, 2, pidbuf, m.started_at);
  close(STATUS_FD);
  redirect_stdio();
  return monitor_run(&m);
}

int cmd_run(void) {
  if (plan_read(3, &plan, NL_MODE_RUN) < 0) {
    send_error(STATUS_FD);
    return 1;
  }
  close(3);
  pid_t pid = fork();
  if (pid < 0) {
    fail("shim", "fork");
    send_error(STATUS_FD);
    return 1;
  }
  if (pid > 0) _exit(0); /* the caller's child exits at once; the shim is re-parented */
  setsid();
  if (shim_main() < 0) {
    send_error(STATUS_FD);
    _exit(1);
  }
  _exit(0);
}
