/* An exec helper's relay: frames between the client's connection and the
 * process (pipes, or a pty master). Bounded buffers, back-pressure both ways:
 * output is read only while the outgoing buffer has room for a whole frame,
 * the connection is read only while the process takes its stdin. The client
 * going away kills the exec's process group. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX (NL_FRAME_HEADER_BYTES + NL_FRAME_DATA_MAX)
#define EXIT_ROOM 128   /* always kept free in the outgoing buffer for the EXIT frame */
#define SEND_TIMEOUT_S 5 /* the final flush to a client that stopped reading */

static struct {
  struct relay_fds f; /* -1 once closed */
  int master;         /* tty: the pty master (also f.out_fd, and f.in_fd with stdin) */
  pid_t pid;
  int exited, status;
  size_t ilen, in_off, olen;
  unsigned char ib[FRAME_MAX];
  unsigned char ob[2 * FRAME_MAX + EXIT_ROOM];
} r;

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* NUL-separated fields (truncated to fit). */
size_t frame_fields(char *buf, size_t size, int n, ...) {
  size_t len = 0;
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    const char *s = va_arg(ap, const char *);
    if (i > 0 && len < size) buf[len++] = '\0';
    size_t k = strnlen(s, size - len);
    memcpy(buf + len, s, k);
    len += k;
  }
  va_end(ap);
  return len;
}

/* One small frame (STARTED, ERROR) in one write. */
int frame_write(int fd, int type, const void *payload, size_t len) {
  unsigned char buf[NL_FRAME_HEADER_BYTES + 1024];
  if (len > 1024) len = 1024;
  buf[0] = (unsigned char)type;
  put_u32(buf + 1, (uint32_t)len);
  memcpy(buf + NL_FRAME_HEADER_BYTES, payload, len);
  return write_all(fd, buf, NL_FRAME_HEADER_BYTES + len);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void reap(int sig_fd) {
  struct signalfd_siginfo si;
  int st;
  pid_t w;
  while (read(sig_fd, &si, sizeof si) > 0) {}
  while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
    if (w != r.pid) continue;
    r.exited = 1;
    r.status = st;
  }
}

/* The client is gone (or broke the protocol): kill the exec's process group, reap, exit. */
static void client_gone(void) __attribute__((noreturn));
static void client_gone(void) {
  kill(-r.pid, SIGKILL);
  while (!r.exited && waitpid(r.pid, NULL, 0) < 0 && errno == EINTR) {}
  _exit(0);
}

static void close_fd(int *fd) {
  if (*fd >= 0 && *fd != r.master) close(*fd);
  *fd = -1;
}

static void stdin_eof(void) {
  if (r.f.in_fd >= 0 && r.f.in_fd == r.master) { /* a terminal has no half-close: its EOF character */
    struct termios t;
    char c = tcgetattr(r.master, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
    if (write(r.master, &c, 1) < 0) {}
    return;
  }
  close_fd(&r.f.in_fd);
}

/* 1: the frame is consumed; 0: the process cannot take more yet (poll POLLOUT). */
static int stdin_write(const unsigned char *p, size_t len) {
  while (r.f.in_fd >= 0 && r.in_off < len) {
    ssize_t n = write(r.f.in_fd, p + r.in_off, len - r.in_off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (n < 0) { /* EPIPE: the process closed its stdin; the rest is dropped */
      close_fd(&r.f.in_fd);
      break;
    }
    r.in_off += (size_t)n;
  }
  r.in_off = 0;
  return 1;
}

static void resize(const unsigned char *p) {
  struct winsize ws = {.ws_col = (unsigned short)(p[0] << 8 | p[1]), .ws_row = (unsigned short)(p[2] << 8 | p[3])};
  if (r.master >= 0) ioctl(r.master, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
}

/* Handle the complete frames in ib; stop at a STDIN frame the process cannot take yet. */
static int handle_frames(int *stdin_blocked) {
  size_t off = 0;
  *stdin_blocked = 0;
  while (r.ilen - off >= NL_FRAME_HEADER_BYTES) {
    const unsigned char *h = r.ib + off, *p = h + NL_FRAME_HEADER_BYTES;
    uint32_t len = get_u32(h + 1);
    if (len > NL_FRAME_DATA_MAX) return -1;
    if (r.ilen - off - NL_FRAME_HEADER_BYTES < len) break;
    if (h[0] == NL_FRAME_STDIN) {
      if (!stdin_write(p, len)) {
        *stdin_blocked = 1;
        break;
      }
    } else if (h[0] == NL_FRAME_STDIN_EOF) {
      stdin_eof();
    } else if (h[0] == NL_FRAME_RESIZE && len == 4) {
      resize(p);
    } else if (h[0] == NL_FRAME_SIGNAL && len == 4) {
      uint32_t sig = get_u32(p);
      if (sig >= 1 && sig <= 64) kill(-r.pid, (int)sig);
    } else {
      return -1;
    }
    off += NL_FRAME_HEADER_BYTES + len;
  }
  memmove(r.ib, r.ib + off, r.ilen - off);
  r.ilen -= off;
  return 0;
}

static void read_conn(int *stdin_blocked) {
  ssize_t n = read(r.f.conn, r.ib + r.ilen, sizeof r.ib - r.ilen);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) client_gone();
  r.ilen += (size_t)n;
  if (handle_frames(stdin_blocked) < 0) client_gone();
}

static int out_room(void) {
  return sizeof r.ob - r.olen >= FRAME_MAX + EXIT_ROOM;
}

static void out_frame(int type, const void *p, size_t n) {
  r.ob[r.olen] = (unsigned char)type;
  put_u32(r.ob + r.olen + 1, (uint32_t)n);
  if (p) memcpy(r.ob + r.olen + NL_FRAME_HEADER_BYTES, p, n);
  r.olen += NL_FRAME_HEADER_BYTES + n;
}

/* Read one chunk of output into a frame; EOF (EIO on a pty master: every slave closed) ends it. */
static void pump(int *fd, int type) {
  ssize_t n = read(*fd, r.ob + r.olen + NL_FRAME_HEADER_BYTES, NL_FRAME_DATA_MAX);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close_fd(fd);
    return;
  }
  out_frame(type, NULL, (size_t)n);
}

static int flush_out(void) {
  size_t done = 0;
  while (done < r.olen) {
    ssize_t n = write(r.f.conn, r.ob + done, r.olen - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return -1;
    done += (size_t)n;
  }
  memmove(r.ob, r.ob + done, r.olen - done);
  r.olen -= done;
  return 0;
}

static void nonblock(int fd) {
  int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Process gone, output at EOF (or the grace period used up): EXIT, flush, exit. */
static void finish(void) __attribute__((noreturn));
static void finish(void) {
  char buf[64], code[16];
  struct timeval tv = {SEND_TIMEOUT_S, 0};
  snprintf(code, sizeof code, "%d", WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 0);
  size_t n = frame_fields(buf, sizeof buf, 2, code, WIFSIGNALED(r.status) ? signal_name(WTERMSIG(r.status)) : "");
  out_frame(NL_FRAME_EXIT, buf, n);
  int fl = fcntl(r.f.conn, F_GETFL);
  if (fl >= 0) fcntl(r.f.conn, F_SETFL, fl & ~O_NONBLOCK);
  setsockopt(r.f.conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (write_all(r.f.conn, r.ob, r.olen) == 0 && shutdown(r.f.conn, SHUT_WR) == 0) {
    /* Linger until the client closes: it may still be writing (a STDIN_EOF racing the exit), and
     * closing now would make that write fail and the client drop the EXIT it has not read yet. */
    setsockopt(r.f.conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (read(r.f.conn, r.ib, sizeof r.ib) > 0) {}
  }
  _exit(0);
}

int relay_run(const struct relay_fds *f, pid_t pid) {
  sigset_t set;
  int stdin_blocked = 0;
  long grace = NL_EXEC_OUTPUT_GRACE_MS;
  r.f = *f;
  r.pid = pid;
  r.master = f->tty ? f->out_fd : -1;
  nonblock(r.f.conn);
  nonblock(r.f.in_fd);
  nonblock(r.f.out_fd);
  nonblock(r.f.err_fd);
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sig_fd < 0) client_gone(); /* cannot watch the process: do not leave it unwatched */
  for (;;) {
    reap(sig_fd);
    int outputs = r.f.out_fd >= 0 || r.f.err_fd >= 0;
    if (r.exited && (!outputs || grace <= 0)) finish();
    struct pollfd p[6];
    int n = 0, i_out = -1, i_err = -1, i_in = -1, i_alive = -1, room = out_room();
    p[n++] = (struct pollfd){r.f.conn, (short)((!stdin_blocked && r.ilen < sizeof r.ib ? POLLIN : 0) | (r.olen ? POLLOUT : 0)), 0};
    p[n++] = (struct pollfd){sig_fd, POLLIN, 0};
    if (room && r.f.out_fd >= 0) i_out = n, p[n++] = (struct pollfd){r.f.out_fd, POLLIN, 0};
    if (room && r.f.err_fd >= 0) i_err = n, p[n++] = (struct pollfd){r.f.err_fd, POLLIN, 0};
    if (stdin_blocked && r.f.in_fd >= 0) i_in = n, p[n++] = (struct pollfd){r.f.in_fd, POLLOUT, 0};
    if (r.f.alive_fd >= 0) i_alive = n, p[n++] = (struct pollfd){r.f.alive_fd, POLLIN, 0};
    /* after the exit, time counts only while output could be read (not while the client is slow) */
    int timing = r.exited && (i_out >= 0 || i_err >= 0);
    long t0 = now_ms();
    int k = poll(p, (nfds_t)n, timing ? (int)grace : -1);
    if (timing) grace -= now_ms() - t0;
    if (k < 0 && errno != EINTR) client_gone();
    if (k <= 0) continue;
    if (i_alive >= 0 && p[i_alive].revents) { /* the container exited: its execs end with it */
      kill(-r.pid, SIGKILL);
      close_fd(&r.f.alive_fd);
    }
    if (p[0].revents & POLLIN) read_conn(&stdin_blocked);
    else if (p[0].revents & (POLLHUP | POLLERR)) client_gone();
    if (i_in >= 0 && p[i_in].revents && handle_frames(&stdin_blocked) < 0) client_gone();
    if (i_out >= 0 && p[i_out].revents) pump(&r.f.out_fd, NL_FRAME_STDOUT);
    if (i_err >= 0 && p[i_err].revents && out_room()) pump(&r.f.err_fd, NL_FRAME_STDERR);
    if (r.olen && flush_out() < 0) client_gone();
  }
}
