/* `nodelet-shim exec PID`: run a process inside a running container (exec
 * probes, `nodelet exec`): join its cgroups and namespaces, fork, become the
 * requested user, exec; report the pid, then the exit. SIGTERM/SIGINT/SIGHUP
 * to this shim kill the exec'd process group. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD 4
static struct nl_plan req;

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

/* Open every namespace first (paths die with the mount ns switch), then join in order, mnt last. */
static int join_container(pid_t pid) {
  int fds[N_NS], root;
  char path[64], buf[32];
  snprintf(buf, sizeof buf, "%d", (int)getpid());
  if (cgroup_self_placeable(&req)) {
    if (cgroup_place_self(&req) < 0) return -1; /* single-threaded: v1 self-move, no global lock */
  } else {
    for (int i = 0; i < req.n_cgroup_procs; i++)
      if (write_file(req.cgroup_procs[i], buf) < 0) return fail("cgroup", "join %s", req.cgroup_procs[i]);
  }
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

static void exec_child(int status_w) {
  reset_signals();
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (setsid() < 0) fail("exec", "setsid");
  else if (apply_identity(&req) == 0 && mark_fds_cloexec() == 0) exec_plan(&req);
  write_all(status_w, &g_err, sizeof g_err);
  _exit(127);
}

static int wait_child(pid_t pid, int sig_fd, int *status) {
  struct signalfd_siginfo si;
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid) return 0;
    if (w < 0 && errno != EINTR) return fail("exec", "waitpid");
    ssize_t n = read(sig_fd, &si, sizeof si);
    if (n == sizeof si && si.ssi_signo != SIGCHLD) kill(-pid, SIGKILL); /* the caller gave up */
  }
}

static int exec_main(int sig_fd) {
  int pipefd[2], status;
  struct nl_err child_err;
  if (join_container(req.exec_pid) < 0) return -1;
  if (pipe2(pipefd, O_CLOEXEC) < 0) return fail("exec", "pipe");
  pid_t pid = fork();
  if (pid < 0) return fail("exec", "fork");
  if (pid == 0) exec_child(pipefd[1]);
  close(pipefd[1]);
  ssize_t n = read(pipefd[0], &child_err, sizeof child_err);
  if (n == (ssize_t)sizeof child_err) {
    g_err = child_err;
    g_err.msg[sizeof g_err.msg - 1] = '\0';
    waitpid(pid, NULL, 0);
    return -1;
  }
  char pidbuf[16], ts[40], code[16];
  snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
  format_time(ts, sizeof ts);
  send_record(STATUS_FD, NL_TAG_ST_STARTED, 2, pidbuf, ts);
  if (wait_child(pid, sig_fd, &status) < 0) return -1;
  snprintf(code, sizeof code, "%d", WIFEXITED(status) ? WEXITSTATUS(status) : 0);
  send_record(STATUS_FD, NL_TAG_ST_EXIT, 2, code, WIFSIGNALED(status) ? signal_name(WTERMSIG(status)) : "");
  return 0;
}

int cmd_exec(void) {
  sigset_t set;
  if (plan_read(3, &req, NL_MODE_EXEC) < 0) {
    send_error(STATUS_FD);
    return 1;
  }
  close(3);
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
  if (getppid() != 1) prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0); /* caller gone: kill the exec */
  if (sig_fd < 0 || exec_main(sig_fd) < 0) {
    if (sig_fd < 0) fail("exec", "signalfd");
    send_error(STATUS_FD);
    return 1;
  }
  return 0;
}
