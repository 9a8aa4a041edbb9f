/* nodelet-shim: the per-container shim. Single-threaded, libc only. */
#ifndef NODELET_SHIM_H
#define NODELET_SHIM_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include "protocol.h"

/* The first error on the path to exec, sent to TypeScript as stage + errno + message. */
struct nl_err {
  char stage[32];
  int errnum;
  char msg[480];
};
extern struct nl_err g_err;

/* Record an error (errno captured at call time); always returns -1. */
int fail(const char *stage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fail_errno(const char *stage, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct nl_mount {
  const char *source, *target, *fstype, *data, *mkdir;
  unsigned long flags;
};
struct nl_device {
  const char *path;
  char type;
  unsigned major, minor;
  mode_t mode;
  uid_t uid;
  gid_t gid;
};
struct nl_rlimit {
  int resource;
  rlim_t soft, hard;
};
struct nl_ns {
  int flag; /* CLONE_NEW* */
  const char *name;
  const char *path; /* NULL = create */
};
struct nl_caps {
  uint64_t bounding, effective, permitted, inheritable, ambient;
};

struct nl_plan {
  int version;
  const char *container_id, *state_dir, *log_path;
  long long log_max_bytes;
  int log_max_files;
  struct nl_ns ns[NL_MAX_NAMESPACES];
  int n_ns;
  const char *cgroup_procs[NL_MAX_CGROUP_PROCS];
  int n_cgroup_procs;
  const char *oom_counter_file;
  int has_oom_score_adj, oom_score_adj;
  const char *rootfs;
  int readonly_rootfs;
  struct nl_mount mounts[NL_MAX_MOUNTS];
  int n_mounts;
  struct nl_device devices[NL_MAX_DEVICES];
  int n_devices;
  const char *symlinks[NL_MAX_SYMLINKS][2];
  int n_symlinks;
  const char *masked[NL_MAX_MASKED];
  int n_masked;
  const char *readonly[NL_MAX_READONLY];
  int n_readonly;
  const char *hostname;
  struct nl_rlimit rlimits[NL_MAX_RLIMITS];
  int n_rlimits;
  int no_new_privs;
  struct nl_caps caps;
  int has_caps;
  uid_t uid;
  gid_t gid;
  gid_t gids[NL_MAX_GIDS];
  int n_gids;
  mode_t umask;
  const char *cwd;
  const char *env[NL_MAX_ENV + 1];
  int n_env;
  const char *argv[NL_MAX_ARGV + 1];
  int n_argv;
  int tty, stdin_open, stdin_once;
  unsigned short ws_cols, ws_rows;
  pid_t exec_pid;
  const unsigned char *seccomp; /* sock_filter[] (decoded in place), NULL = none */
  size_t seccomp_len;
};

enum nl_mode { NL_MODE_RUN, NL_MODE_EXEC };

/* plan.c */
#define PLAN_ARENA_BYTES(len) ((len) + NL_MAX_RECORDS)
int plan_read(int fd, struct nl_plan *p, enum nl_mode mode);
int plan_parse(const char *msg, size_t len, char *arena, struct nl_plan *p, enum nl_mode mode);

/* util.c */
int send_record(int fd, int tag, int nfields, ...);
int send_error(int fd);
int await_exec(int status_r, const char *what);
int write_all(int fd, const void *buf, size_t len);
int write_file(const char *path, const char *content);
int write_file_atomic(const char *dir, const char *name, const char *content, size_t len);
void format_time(char *out, size_t size);
const char *signal_name(int sig);
size_t json_str(char *out, size_t size, const char *s);
unsigned long long proc_start_time(pid_t pid);
long long read_oom_kills(const char *path);
int cgroup_tasks_file(const char *procs, char *out, size_t size);
int cgroup_self_placeable(const struct nl_plan *p);
int cgroup_place_self(const struct nl_plan *p);

/* container.c: the child between clone and exec; identity.c: shared with exec */
struct child_fds {
  int sync_r, status_w, stdin_fd, out_w, err_w, mnt_ns, tty_slave;
  int new_cgroup_ns; /* unshared after the cgroup placement, as runc does */
  int self_cgroup;   /* v1: the child moves itself (cgroup_place_self); else the parent places it */
};
void container_child(const struct nl_plan *p, const struct child_fds *f) __attribute__((noreturn));
int apply_identity(const struct nl_plan *p);
/* seccomp.c: install a sock_filter[] of len bytes */
int seccomp_install(const unsigned char *prog, size_t len);
int mark_fds_cloexec(void);
int exec_plan(const struct nl_plan *p);
void reset_signals(void);

/* exec.c: the exec socket <stateDir>/exec.sock; one forked helper per connection. */
struct exec_server {
  int listen_fd, dir_fd; /* -1 when not listening */
  int alive_r, alive_w;  /* helpers poll alive_r: HUP = the container exited (or the monitor died) */
};
int exec_server_open(struct exec_server *s, const char *state_dir);
/* Accept pending connections and fork a helper for each; close_fds runs in each helper first. */
void exec_server_accept(struct exec_server *s, pid_t container_pid, void (*close_fds)(void));
/* Stop accepting, unlink the socket, signal the helpers (they kill their execs). */
void exec_server_close(struct exec_server *s);
/* A reaped child: forget it if it was a helper. */
void exec_server_reaped(pid_t pid);

/* relay.c: a helper's frame relay between the connection and the process. */
struct relay_fds {
  int conn, in_fd, out_fd, err_fd, alive_fd, tty;
};
int relay_run(const struct relay_fds *f, pid_t pid) __attribute__((noreturn));
int frame_write(int fd, int type, const void *payload, size_t len);
size_t frame_fields(char *buf, size_t size, int n, ...);

struct pollfd;
/* attach.c: the attach socket <stateDir>/attach.sock, served by the monitor itself. */
int attach_open(const char *state_dir, int in_fd, int tty, int stdin_once);
/* Fill fds (room for NL_ATTACH_MAX_CLIENTS + 2) for poll; attach_handle takes them back. */
int attach_pollfds(struct pollfd *fds, int max);
void attach_handle(const struct pollfd *fds, int n);
/* Output as it is read, to every client. */
void attach_output(int type, const void *data, size_t len);
/* The container is over: stop listening (the socket goes before exit.json appears) ... */
void attach_unlisten(void);
/* ... then EXIT (exit code, signal name) to every client once the exit is recorded. */
void attach_finish(const char *code, const char *signal);
/* In a forked exec helper: drop attach's fds. */
void attach_close_fds(void);

/* monitor.c */
struct nl_monitor {
  const struct nl_plan *plan;
  pid_t pid, shim_pid;
  int out_fd, err_fd, sig_fd;
  int in_fd; /* attach's stdin: the stdin pipe's write end, the pty master, or -1 */
  struct exec_server exec;
  char started_at[40];
  unsigned long long shim_start;
  long long oom_before;
};
int monitor_run(struct nl_monitor *m);
int write_state(const struct nl_monitor *m, int exited, int status, int oom_killed, const char *finished_at);

/* run.c */
int cmd_run(void);

/* dial.c: `dial <netns|-> <port>`, port-forward's dialer (stdin/stdout ↔ 127.0.0.1:port in the namespace) */
int cmd_dial(int argc, char **argv);

#endif
