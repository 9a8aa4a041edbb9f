/* Exec through the monitor (containerd-shim's model). The monitor listens on
 * <stateDir>/exec.sock and forks a helper per connection, never blocking on a
 * client. The helper reads the REQUEST frame, joins the container's cgroups,
 * namespaces and root, starts the process (pipes, or a pty opened inside the
 * container), reports STARTED and relays frames (relay.c) until it is gone. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_S 10 /* a client that connects must send its request within this */

static pid_t helpers[NL_EXEC_MAX_CONCURRENT];
static int n_helpers;

/* sockaddr_un holds 108 bytes, state dirs can be longer: go through /proc/self/fd/<dirfd>. */
static void sock_addr(struct sockaddr_un *a, int dir_fd) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/%s", dir_fd, NL_EXEC_SOCKET);
}

int exec_server_open(struct exec_server *s, const char *state_dir) {
  struct sockaddr_un a;
  int alive[2];
  *s = (struct exec_server){-1, -1, -1, -1};
  if ((s->dir_fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return fail("exec-socket", "open %s", state_dir);
  unlinkat(s->dir_fd, NL_EXEC_SOCKET, 0); /* left by a dead shim */
  s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->listen_fd < 0) return fail("exec-socket", "socket");
  sock_addr(&a, s->dir_fd);
  mode_t old = umask(0177); /* 0600: root only */
  int r = bind(s->listen_fd, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (r < 0) return fail("exec-socket", "bind %s/%s", state_dir, NL_EXEC_SOCKET);
  if (listen(s->listen_fd, NL_EXEC_MAX_CONCURRENT) < 0) return fail("exec-socket", "listen");
  if (pipe2(alive, O_CLOEXEC) < 0) return fail("exec-socket", "pipe");
  s->alive_r = alive[0];
  s->alive_w = alive[1];
  return 0;
}

void exec_server_close(struct exec_server *s) {
  if (s->listen_fd >= 0) close(s->listen_fd);
  if (s->dir_fd >= 0) {
    unlinkat(s->dir_fd, NL_EXEC_SOCKET, 0);
    close(s->dir_fd);
  }
  if (s->alive_w >= 0) close(s->alive_w); /* helpers see HUP */
  if (s->alive_r >= 0) close(s->alive_r);
  *s = (struct exec_server){-1, -1, -1, -1};
}

void exec_server_reaped(pid_t pid) {
  for (int i = 0; i < n_helpers; i++) {
    if (helpers[i] != pid) continue;
    helpers[i] = helpers[--n_helpers];
    return;
  }
}

static void exec_helper(int conn, pid_t container_pid, int alive_r) __attribute__((noreturn));

void exec_server_accept(struct exec_server *s, pid_t container_pid, void (*close_fds)(void)) {
  for (int i = 0; i < 16 && s->listen_fd >= 0; i++) {
    int conn = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) return; /* EAGAIN, or a transient error: the next poll retries */
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
      close(conn);
      continue;
    }
    if (n_helpers >= NL_EXEC_MAX_CONCURRENT) { /* dropped unread: the client sees ERR_EXEC_REFUSED */
      close(conn);
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(s->listen_fd);
      close(s->dir_fd);
      close(s->alive_w);
      close_fds();
      exec_helper(conn, container_pid, s->alive_r);
    }
    if (pid > 0) helpers[n_helpers++] = pid; /* fork failed: dropped like a refusal */
    close(conn);
  }
}

/* ---- the helper ---- */

static struct nl_plan req;

static int read_full(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t r = read(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail("request", "read exec request");
    if (r == 0) return fail_errno("request", EPIPE, "connection closed before the exec request was complete");
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

static int read_request(int conn) {
  unsigned char h[NL_FRAME_HEADER_BYTES];
  struct timeval tv = {REQUEST_TIMEOUT_S, 0};
  int flags = fcntl(conn, F_GETFL);
  if (flags < 0 || fcntl(conn, F_SETFL, flags & ~O_NONBLOCK) < 0) return fail("request", "fcntl");
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (read_full(conn, h, sizeof h) < 0) return -1;
  uint32_t len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
  if (h[0] != NL_FRAME_REQUEST) return fail_errno("request", EPROTO, "first frame is type %d, not REQUEST", h[0]);
  if (len > NL_MAX_MESSAGE_BYTES) return fail_errno("plan", E2BIG, "plan larger than %d bytes", NL_MAX_MESSAGE_BYTES);
  char *msg = malloc(len + 1), *arena = malloc(PLAN_ARENA_BYTES(len));
  if (!msg || !arena) return fail("request", "malloc");
  if (read_full(conn, msg, len) < 0) return -1;
  tv.tv_sec = 0;
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return plan_parse(msg, len, arena, &req, NL_MODE_EXEC);
}

static const struct { const char *name; int flag; } exec_ns[] = {
  {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
  {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
};
#define N_NS (sizeof exec_ns / sizeof exec_ns[0])

static int same_ns(const char *name, const char *path) {
  char self[64];
  struct stat a, b;
  snprintf(self, sizeof self, "/proc/self/ns/%s", name);
  return stat(self, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* The exec process joins the container's cgroups itself, the helper stays out (a cgroup kill
 * of the container must not take the helper, which reports the exit): open the files now,
 * while they are reachable (v1: `tasks`, moving the single-threaded child without the global
 * lock; v2: `cgroup.procs`, checked against the cgroup ns at open time). */
static int cg_fds[NL_MAX_CGROUP_PROCS];

static int open_cgroups(void) {
  char path[PATH_MAX];
  int v1 = cgroup_self_placeable(&req);
  for (int i = 0; i < req.n_cgroup_procs; i++) {
    const char *file = req.cgroup_procs[i];
    if (v1 && cgroup_tasks_file(file, path, sizeof path) == 0) file = path;
    if ((cg_fds[i] = open(file, O_WRONLY | O_CLOEXEC)) < 0) return fail("cgroup", "open %s", file);
  }
  return 0;
}

static int join_cgroups(void) {
  for (int i = 0; i < req.n_cgroup_procs; i++)
    if (write(cg_fds[i], "0", 1) != 1) return fail("cgroup", "join %s", req.cgroup_procs[i]);
  return 0;
}

/* Open every namespace first (paths die with the mount ns switch), then join in order, mnt last. */
static int join_container(pid_t pid) {
  int fds[N_NS], root;
  char path[64];
  for (size_t i = 0; i < N_NS; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, exec_ns[i].name);
    fds[i] = same_ns(exec_ns[i].name, path) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0 && !same_ns(exec_ns[i].name, path)) return fail("namespaces", "open %s", path);
  }
  snprintf(path, sizeof path, "/proc/%d/root", (int)pid);
  if ((root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return fail("namespaces", "open %s", path);
  for (size_t i = 0; i < N_NS; i++) {
    if (fds[i] < 0) continue;
    if (setns(fds[i], exec_ns[i].flag) < 0) return fail("namespaces", "join %s namespace of pid %d", exec_ns[i].name, (int)pid);
    close(fds[i]);
  }
  /* the container's root, also when it was entered by chroot rather than pivot_root */
  if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0) return fail("namespaces", "enter root of pid %d", (int)pid);
  close(root);
  return 0;
}

struct exec_stdio {
  int child[3];   /* the process's 0, 1, 2 */
  int in_w, out_r, err_r;
  int master;     /* tty: the pty master (-1 without) */
};

/* Before joining: pipes, /dev/null for a closed stdin (with a tty: nothing yet). */
static int open_pipes(struct exec_stdio *io) {
  int in[2], out[2], err[2];
  memset(io, 0xff, sizeof *io);
  if (req.tty) return 0;
  if (req.stdin_open) {
    if (pipe2(in, O_CLOEXEC) < 0) return fail("stdio", "pipe");
    io->child[0] = in[0];
    io->in_w = in[1];
  } else if ((io->child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    return fail("stdio", "open /dev/null");
  }
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return fail("stdio", "pipe");
  io->out_r = out[0]; io->child[1] = out[1];
  io->err_r = err[0]; io->child[2] = err[1];
  return 0;
}

/* After joining mnt ns + root: a pty of the container's own devpts instance. */
static int open_pty(struct exec_stdio *io) {
  int unlock = 0, slave;
  io->master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (io->master < 0) return fail("stdio", "open /dev/ptmx in the container");
  if (ioctl(io->master, TIOCSPTLCK, &unlock) < 0) return fail("stdio", "unlock pty");
  /* the peer by fd, not by a path the container controls */
  slave = ioctl(io->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return fail("stdio", "open pty slave");
  if (req.ws_cols && req.ws_rows) {
    struct winsize ws = {.ws_row = req.ws_rows, .ws_col = req.ws_cols};
    if (ioctl(io->master, TIOCSWINSZ, &ws) < 0) return fail("stdio", "set window size");
  }
  io->child[0] = slave;
  io->child[1] = slave;
  io->child[2] = slave;
  io->in_w = req.stdin_open ? io->master : -1;
  io->out_r = io->master;
  return 0;
}

static void exec_child(const struct exec_stdio *io, int status_w) __attribute__((noreturn));
static void exec_child(const struct exec_stdio *io, int status_w) {
  reset_signals();
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (join_cgroups() < 0) {}
  else if (setsid() < 0) fail("exec", "setsid");
  else if (io->master >= 0 && ioctl(io->child[0], TIOCSCTTY, 0) < 0) fail("stdio", "set controlling tty");
  else if (dup2(io->child[0], 0) < 0 || dup2(io->child[1], 1) < 0 || dup2(io->child[2], 2) < 0) fail("stdio", "dup2");
  else if (apply_identity(&req) == 0 && mark_fds_cloexec() == 0) exec_plan(&req);
  write_all(status_w, &g_err, sizeof g_err);
  _exit(127);
}

/* Fork the process; returns its pid once it exec'd, -1 with g_err set if it did not. */
static pid_t start_process(const struct exec_stdio *io) {
  int st[2];
  if (pipe2(st, O_CLOEXEC) < 0) return fail("exec", "pipe");
  pid_t pid = fork();
  if (pid < 0) return fail("exec", "fork");
  if (pid == 0) exec_child(io, st[1]);
  close(st[1]);
  if (await_exec(st[0], "exec process") == 0) return pid;
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  return -1;
}

static void send_err(int conn) {
  char buf[640], num[16];
  snprintf(num, sizeof num, "%d", g_err.errnum);
  size_t n = frame_fields(buf, sizeof buf, 3, g_err.stage[0] ? g_err.stage : "unknown", num, g_err.msg);
  frame_write(conn, NL_FRAME_ERROR, buf, n);
}

static void exec_helper(int conn, pid_t container_pid, int alive_r) {
  struct exec_stdio io;
  pid_t pid = -1;
  memset(&g_err, 0, sizeof g_err); /* the monitor's, inherited */
  prctl(PR_SET_NAME, "nodelet-exec", 0, 0, 0);
  if (read_request(conn) == 0) {
    if (req.exec_pid != container_pid)
      fail_errno("namespaces", ESRCH, "pid %d is not this shim's container (pid %d)", (int)req.exec_pid, (int)container_pid);
    else if (open_cgroups() == 0 && open_pipes(&io) == 0 && join_container(container_pid) == 0 && (!req.tty || open_pty(&io) == 0))
      pid = start_process(&io);
  }
  if (pid < 0) {
    send_err(conn);
    _exit(1);
  }
  for (int i = 0; i < 3; i++)
    if (i == 0 || io.child[i] != io.child[0]) close(io.child[i]);
  char buf[32];
  snprintf(buf, sizeof buf, "%d", (int)pid);
  if (frame_write(conn, NL_FRAME_STARTED, buf, strlen(buf)) < 0) {
    kill(-pid, SIGKILL); /* the client is gone already */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    _exit(1);
  }
  struct relay_fds f = {conn, io.in_w, io.out_r, io.err_r, alive_r, io.master >= 0};
  relay_run(&f, pid);
}
