/*
 * testprog: a small static program used as a precise container payload in
 * nodelet's tests (in the spirit of crun's tests/init.c).
 *
 * Exit codes: 0 success, 1 runtime failure (message on stderr), 2 usage
 * error, 3 forkbomb could not create every process, CODE for "exit CODE".
 * Every subcommand writes one line per event and flushes it at once, so a
 * test can wait for a line on the container's log.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term;

static void on_term(int sig) {
  (void)sig;
  got_term = 1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: testprog COMMAND [ARGS]\n"
          "  sleep SECONDS|inf [--ignore-term]\n"
          "  exit CODE\n"
          "  serve-http PORT [--ready-file F] [--healthy-file F]\n"
          "  serve-tcp PORT\n"
          "  alloc MB\n"
          "  spin\n"
          "  forkbomb N [--hold SECONDS]\n"
          "  world\n"
          "  echo-lines N [--stderr]\n"
          "  cat FILE\n"
          "  write FILE TEXT\n"
          "  fds\n");
  return 2;
}

static int fail(const char *what, const char *arg) {
  fprintf(stderr, "testprog: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  return 1;
}

/* SIGTERM sets got_term; without SA_RESTART so blocking calls return EINTR. */
static void install_term_handler(int ignore) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ignore ? SIG_IGN : on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}

static int parse_long(const char *s, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

/* Sleeps until the deadline (seconds < 0: forever) or SIGTERM. Returns 1 on SIGTERM. */
static int sleep_until_term(double seconds) {
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (seconds >= 0) {
    end.tv_sec += (time_t)seconds;
    end.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (end.tv_nsec >= 1000000000L) { end.tv_sec++; end.tv_nsec -= 1000000000L; }
  }
  while (!got_term) {
    if (seconds < 0) { pause(); continue; }
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL);
    if (rc == 0) return 0;
  }
  return 1;
}

static int cmd_sleep(int argc, char **argv) {
  if (argc < 1) return usage();
  int ignore = argc > 1 && strcmp(argv[1], "--ignore-term") == 0;
  double secs = -1;
  if (strcmp(argv[0], "inf") != 0 && strcmp(argv[0], "infinity") != 0) {
    char *end;
    secs = strtod(argv[0], &end);
    if (end == argv[0] || *end || secs < 0) return usage();
  }
  install_term_handler(ignore);
  printf("sleeping %s\n", argv[0]);
  fflush(stdout);
  if (sleep_until_term(secs)) {
    printf("got SIGTERM\n");
    fflush(stdout);
  }
  return 0;
}

static int listen_on(long port) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int v6 = fd >= 0;
  if (!v6) fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons((unsigned short)port);
    a6.sin6_addr = in6addr_any;
    rc = bind(fd, (struct sockaddr *)&a6, sizeof a6);
  } else {
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_port = htons((unsigned short)port);
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    rc = bind(fd, (struct sockaddr *)&a4, sizeof a4);
  }
  if (rc < 0 || listen(fd, 64) < 0) { int e = errno; close(fd); errno = e; return -1; }
  return fd;
}

static long bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Accepts connections until SIGTERM; each one is served by a forked child. */
static int accept_loop(int lfd, void (*serve)(int, void *), void *arg) {
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  install_term_handler(0);
  while (!got_term) {
    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return fail("accept", NULL);
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(lfd);
      serve(c, arg);
      _exit(0);
    }
    if (pid < 0) { /* e.g. at a pids limit: serve inline rather than drop the client */
      serve(c, arg);
      alarm(0);
      continue;
    }
    close(c);
  }
  printf("got SIGTERM\n");
  fflush(stdout);
  return 0;
}

struct http_opts { const char *ready_file, *healthy_file; };

static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) { if (errno == EINTR) continue; return; }
    buf += n;
    len -= (size_t)n;
  }
}

static void http_reply(int fd, int status, const char *body) {
  char head[256];
  const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 400 ? "Bad Request" : "Internal Server Error";
  int n = snprintf(head, sizeof head, "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, reason, strlen(body));
  write_all(fd, head, (size_t)n);
  write_all(fd, body, strlen(body));
}

static void serve_http_conn(int fd, void *arg) {
  struct http_opts *o = arg;
  char req[4096] = "";
  size_t len = 0;
  alarm(10);
  while (len < sizeof req - 1 && !strstr(req, "\r\n\r\n") && !strstr(req, "\n\n")) {
    ssize_t n = read(fd, req + len, sizeof req - 1 - len);
    if (n <= 0) break;
    len += (size_t)n;
    req[len] = 0;
  }
  req[len] = 0;
  char method[16], path[1024];
  if (sscanf(req, "%15s %1023s", method, path) != 2) { http_reply(fd, 400, "bad request\n"); close(fd); return; }
  char *q = strchr(path, '?');
  if (q) *q = 0;
  if (strcmp(path, "/") == 0) {
    char host[256] = "", body[320];
    gethostname(host, sizeof host - 1);
    snprintf(body, sizeof body, "hello from %s\n", host);
    http_reply(fd, 200, body);
  } else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
    const char *f = path[1] == 'h' ? o->healthy_file : o->ready_file;
    if (f && access(f, F_OK) != 0) http_reply(fd, 500, "not ok\n");
    else http_reply(fd, 200, "ok\n");
  } else {
    http_reply(fd, 404, "not found\n");
  }
  shutdown(fd, SHUT_WR);
  close(fd);
}

static int cmd_serve_http(int argc, char **argv) {
  long port;
  if (argc < 1 || parse_long(argv[0], &port) || port < 0 || port > 65535) return usage();
  struct http_opts o = {NULL, NULL};
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && strcmp(argv[i], "--ready-file") == 0) o.ready_file = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--healthy-file") == 0) o.healthy_file = argv[++i];
    else return usage();
  }
  int lfd = listen_on(port);
  if (lfd < 0) return fail("listen on port", argv[0]);
  printf("listening on port %ld (http)\n", bound_port(lfd));
  fflush(stdout);
  return accept_loop(lfd, serve_http_conn, &o);
}

/* serve-tcp: echoes every byte back until the client closes. */
static void serve_tcp_conn(int fd, void *arg) {
  (void)arg;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) write_all(fd, buf, (size_t)n);
  close(fd);
}

static int cmd_serve_tcp(int argc, char **argv) {
  long port;
  if (argc != 1 || parse_long(argv[0], &port) || port < 0 || port > 65535) return usage();
  int lfd = listen_on(port);
  if (lfd < 0) return fail("listen on port", argv[0]);
  printf("listening on port %ld (tcp echo)\n", bound_port(lfd));
  fflush(stdout);
  return accept_loop(lfd, serve_tcp_conn, NULL);
}

static int cmd_alloc(int argc, char **argv) {
  long mb;
  if (argc != 1 || parse_long(argv[0], &mb) || mb < 0) return usage();
  install_term_handler(0);
  for (long i = 1; i <= mb && !got_term; i++) {
    char *p = malloc(1 << 20);
    if (!p) { fprintf(stderr, "testprog: malloc failed after %ld MB\n", i - 1); return 1; }
    memset(p, (int)(i & 0xff) | 1, 1 << 20);
    printf("allocated %ld MB\n", i);
    fflush(stdout);
  }
  printf("done allocating\n");
  fflush(stdout);
  sleep_until_term(-1);
  return 0;
}

static int cmd_spin(void) {
  install_term_handler(0);
  printf("spinning\n");
  fflush(stdout);
  volatile unsigned long x = 0;
  while (!got_term) x++;
  return 0;
}

static int cmd_forkbomb(int argc, char **argv) {
  long n, hold = 0;
  if (argc < 1 || parse_long(argv[0], &n) || n < 0) return usage();
  if (argc == 3 && strcmp(argv[1], "--hold") == 0) { if (parse_long(argv[2], &hold) || hold < 0) return usage(); }
  else if (argc != 1) return usage();
  pid_t *kids = calloc((size_t)n + 1, sizeof(pid_t));
  long made = 0;
  int err = 0;
  for (; made < n; made++) {
    pid_t pid = fork();
    if (pid < 0) { err = errno; break; }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) pause();
    }
    kids[made] = pid;
  }
  if (err) printf("fork failed after %ld of %ld: %s\n", made, n, strerror(err));
  else printf("forked %ld of %ld\n", made, n);
  fflush(stdout);
  install_term_handler(0);
  if (hold > 0) sleep_until_term((double)hold);
  for (long i = 0; i < made; i++) kill(kids[i], SIGKILL);
  for (long i = 0; i < made; i++) waitpid(kids[i], NULL, 0);
  free(kids);
  return err ? 3 : 0;
}

/* Prints the lines of /proc/self/status that start with one of the keys, as key=value. */
static void print_status_fields(void) {
  static const char *keys[] = {"CapEff", "CapBnd", "CapPrm", "CapInh", "CapAmb", "NoNewPrivs", "Seccomp", NULL};
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    for (int i = 0; keys[i]; i++) {
      size_t k = strlen(keys[i]);
      if (strncmp(line, keys[i], k) == 0 && line[k] == ':') {
        char *v = line + k + 1;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        printf("%s=%s\n", keys[i], v);
      }
    }
  }
  fclose(f);
}

static int cmd_world(void) {
  char buf[PATH_MAX];
  FILE *f;
  printf("pid=%d\nppid=%d\n", (int)getpid(), (int)getppid());
  if (gethostname(buf, sizeof buf) == 0) printf("hostname=%s\n", buf);
  printf("uid=%d\ngid=%d\neuid=%d\negid=%d\n", (int)getuid(), (int)getgid(), (int)geteuid(), (int)getegid());
  gid_t groups[256];
  int ng = getgroups(256, groups);
  printf("groups=");
  for (int i = 0; i < ng; i++) printf(i ? ",%d" : "%d", (int)groups[i]);
  printf("\n");
  print_status_fields();
  if (getcwd(buf, sizeof buf)) printf("cwd=%s\n", buf);
  mode_t m = umask(0);
  umask(m);
  printf("umask=%04o\n", (unsigned)m);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) printf("rlimit_nofile=%llu:%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  if (getrlimit(RLIMIT_NPROC, &rl) == 0) printf("rlimit_nproc=%llu:%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  f = fopen("/proc/self/oom_score_adj", "r");
  if (f) {
    if (fgets(buf, sizeof buf, f)) { buf[strcspn(buf, "\n")] = 0; printf("oom_score_adj=%s\n", buf); }
    fclose(f);
  }
  f = fopen("/proc/self/cgroup", "r");
  if (f) {
    while (fgets(buf, sizeof buf, f)) { buf[strcspn(buf, "\n")] = 0; printf("cgroup=%s\n", buf); }
    fclose(f);
  }
  f = fopen("/proc/self/mountinfo", "r");
  if (f) {
    char line[4096];
    while (fgets(line, sizeof line, f)) {
      /* fields: id parent maj:min root mountpoint options ... - fstype source superopts */
      char mp[4096], fstype[256] = "?";
      if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
      char *dash = strstr(line, " - ");
      if (dash) sscanf(dash + 3, "%255s", fstype);
      printf("mount=%s %s\n", mp, fstype);
    }
    fclose(f);
  }
  return 0;
}

static int cmd_echo_lines(int argc, char **argv) {
  long n;
  if (argc < 1 || parse_long(argv[0], &n) || n < 0) return usage();
  FILE *out = stdout;
  if (argc == 2 && strcmp(argv[1], "--stderr") == 0) out = stderr;
  else if (argc != 1) return usage();
  for (long i = 1; i <= n; i++) fprintf(out, "line %ld\n", i);
  fflush(out);
  return 0;
}

static int cmd_cat(int argc, char **argv) {
  if (argc != 1) return usage();
  int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("open", argv[0]);
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) write_all(1, buf, (size_t)n);
  int e = errno;
  close(fd);
  if (n < 0) { errno = e; return fail("read", argv[0]); }
  return 0;
}

static int cmd_write(int argc, char **argv) {
  if (argc != 2) return usage();
  int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("open", argv[0]);
  size_t len = strlen(argv[1]);
  if (write(fd, argv[1], len) != (ssize_t)len) { int e = errno; close(fd); errno = e; return fail("write", argv[0]); }
  if (close(fd) < 0) return fail("close", argv[0]);
  return 0;
}

static int cmd_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return fail("opendir", "/proc/self/fd");
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd == self) continue;
    char path[64], target[PATH_MAX];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = 0;
    printf("fd=%d %s\n", fd, target);
  }
  closedir(d);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return usage();
  const char *cmd = argv[1];
  int n = argc - 2;
  char **a = argv + 2;
  if (strcmp(cmd, "sleep") == 0) return cmd_sleep(n, a);
  if (strcmp(cmd, "exit") == 0) {
    long code;
    if (n != 1 || parse_long(a[0], &code)) return usage();
    return (int)(code & 0xff);
  }
  if (strcmp(cmd, "serve-http") == 0) return cmd_serve_http(n, a);
  if (strcmp(cmd, "serve-tcp") == 0) return cmd_serve_tcp(n, a);
  if (strcmp(cmd, "alloc") == 0) return cmd_alloc(n, a);
  if (strcmp(cmd, "spin") == 0) return cmd_spin();
  if (strcmp(cmd, "forkbomb") == 0) return cmd_forkbomb(n, a);
  if (strcmp(cmd, "world") == 0) return cmd_world();
  if (strcmp(cmd, "echo-lines") == 0) return cmd_echo_lines(n, a);
  if (strcmp(cmd, "cat") == 0) return cmd_cat(n, a);
  if (strcmp(cmd, "write") == 0) return cmd_write(n, a);
  if (strcmp(cmd, "fds") == 0) return cmd_fds();
  return usage();
}
