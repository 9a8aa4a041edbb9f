/* The attach socket (CRI Attach; conmon's attach socket): the monitor listens on
 * <stateDir>/attach.sock (0600, root peers only) for as long as the container
 * runs. Each client gets the container's output as STDOUT/STDERR frames, raw,
 * as the monitor reads it (before the log's line splitting, so a prompt without
 * a newline shows), and an EXIT frame once the output is drained after the
 * exit. Clients send STDIN (an empty one first says "this session has stdin"),
 * STDIN_EOF and RESIZE frames.
 * - stdin goes to the stdin pipe's write end, or with a tty to the pty master;
 *   the monitor never blocks on it: while a write is pending no client is read
 *   (back-pressure reaches the clients through their sockets).
 * - stdinOnce: the first session with stdin that ends (STDIN_EOF or gone)
 *   closes the container's stdin (with a tty: the terminal's EOF character);
 *   without it the container's stdin stays open across sessions, as kubelet's.
 * - a client that stops reading its output is disconnected rather than let it
 *   stall the monitor; the log still has everything. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CLIENT_BUF (NL_FRAME_HEADER_BYTES + NL_FRAME_DATA_MAX)

struct client {
  int fd; /* -1: free slot */
  int has_stdin;
  size_t ilen;
  unsigned char *ib; /* CLIENT_BUF bytes while connected: an idle shim stays small */
};

static struct {
  int listen_fd, dir_fd;
  int in_fd; /* the stdin pipe's write end, the pty master (tty), or -1 */
  int tty, stdin_once, stdin_closed;
  struct client c[NL_ATTACH_MAX_CLIENTS];
  size_t plen, poff; /* a pending stdin write */
  unsigned char pb[NL_FRAME_DATA_MAX];
} a = {.listen_fd = -1, .dir_fd = -1, .in_fd = -1};

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int attach_open(const char *state_dir, int in_fd, int tty, int stdin_once) {
  struct sockaddr_un addr;
  for (int i = 0; i < NL_ATTACH_MAX_CLIENTS; i++) a.c[i].fd = -1;
  a.in_fd = in_fd;
  a.tty = tty;
  a.stdin_once = stdin_once;
  if ((a.dir_fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return fail("attach-socket", "open %s", state_dir);
  unlinkat(a.dir_fd, NL_ATTACH_SOCKET, 0); /* left by a dead shim */
  a.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (a.listen_fd < 0) return fail("attach-socket", "socket");
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", a.dir_fd, NL_ATTACH_SOCKET);
  mode_t old = umask(0177);
  int r = bind(a.listen_fd, (struct sockaddr *)&addr, sizeof addr);
  umask(old);
  if (r < 0) return fail("attach-socket", "bind %s/%s", state_dir, NL_ATTACH_SOCKET);
  if (listen(a.listen_fd, NL_ATTACH_MAX_CLIENTS) < 0) return fail("attach-socket", "listen");
  return 0;
}

static void drop(struct client *c);

static void close_stdin(void) {
  if (a.stdin_closed || a.in_fd < 0) return;
  a.stdin_closed = 1;
  a.plen = a.poff = 0;
  if (a.tty) { /* a terminal has no half-close: its EOF character */
    struct termios t;
    char ch = tcgetattr(a.in_fd, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
    if (write(a.in_fd, &ch, 1) < 0) {}
    return;
  }
  close(a.in_fd);
  a.in_fd = -1;
}

/* 0: written (or dropped: stdin is closed); 1: the rest is pending. */
static int stdin_write(const unsigned char *p, size_t len) {
  size_t off = 0;
  while (!a.stdin_closed && a.in_fd >= 0 && off < len) {
    ssize_t n = write(a.in_fd, p + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      memcpy(a.pb, p + off, len - off);
      a.plen = len - off;
      a.poff = 0;
      return 1;
    }
    if (n < 0) { /* EPIPE: the container closed its stdin; the rest is dropped */
      if (!a.tty) close_stdin();
      return 0;
    }
    off += (size_t)n;
  }
  return 0;
}

static void flush_pending(void) {
  while (a.plen > a.poff && a.in_fd >= 0) {
    ssize_t n = write(a.in_fd, a.pb + a.poff, a.plen - a.poff);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) break;
    a.poff += (size_t)n;
  }
  a.plen = a.poff = 0;
}

static void resize(const unsigned char *p) {
  struct winsize ws = {.ws_col = (unsigned short)(p[0] << 8 | p[1]), .ws_row = (unsigned short)(p[2] << 8 | p[3])};
  if (a.tty && a.in_fd >= 0) ioctl(a.in_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
}

/* The complete frames in c->ib, until a stdin write is left pending; -1: a protocol error. */
static int handle_frames(struct client *c) {
  size_t off = 0;
  while (a.plen == 0 && c->ilen - off >= NL_FRAME_HEADER_BYTES) {
    const unsigned char *h = c->ib + off, *p = h + NL_FRAME_HEADER_BYTES;
    uint32_t len = get_u32(h + 1);
    if (len > NL_FRAME_DATA_MAX) return -1;
    if (c->ilen - off - NL_FRAME_HEADER_BYTES < len) break;
    off += NL_FRAME_HEADER_BYTES + len;
    if (h[0] == NL_FRAME_STDIN) {
      c->has_stdin = 1;
      if (len > 0) stdin_write(p, len);
    } else if (h[0] == NL_FRAME_STDIN_EOF) {
      c->has_stdin = 1;
      if (a.stdin_once) close_stdin();
    } else if (h[0] == NL_FRAME_RESIZE && len == 4) {
      resize(p);
    } else {
      return -1;
    }
  }
  memmove(c->ib, c->ib + off, c->ilen - off);
  c->ilen -= off;
  return 0;
}

static void drop(struct client *c) {
  if (c->fd < 0) return;
  int had_stdin = c->has_stdin;
  close(c->fd);
  free(c->ib);
  *c = (struct client){.fd = -1};
  if (had_stdin && a.stdin_once) close_stdin();
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(a.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    struct ucred cred;
    socklen_t len = sizeof cred;
    struct client *slot = NULL;
    for (int i = 0; i < NL_ATTACH_MAX_CLIENTS && !slot; i++)
      if (a.c[i].fd < 0) slot = &a.c[i];
    unsigned char *ib = slot ? malloc(CLIENT_BUF) : NULL;
    if (!ib || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
      free(ib);
      close(fd); /* full, out of memory, or not root: the client sees the connection closed */
      continue;
    }
    *slot = (struct client){.fd = fd, .ib = ib};
  }
}

static void read_client(struct client *c) {
  ssize_t n = read(c->fd, c->ib + c->ilen, CLIENT_BUF - c->ilen);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) return drop(c);
  c->ilen += (size_t)n;
  if (handle_frames(c) < 0) drop(c);
}

int attach_pollfds(struct pollfd *fds, int max) {
  int n = 0;
  if (a.listen_fd < 0 || max < NL_ATTACH_MAX_CLIENTS + 2) return 0;
  fds[n++] = (struct pollfd){a.listen_fd, POLLIN, 0};
  fds[n++] = (struct pollfd){a.plen > 0 ? a.in_fd : -1, POLLOUT, 0};
  for (int i = 0; i < NL_ATTACH_MAX_CLIENTS; i++) /* while stdin is pending, only hang-ups are seen */
    fds[n++] = (struct pollfd){a.c[i].fd, (short)(a.plen > 0 ? 0 : POLLIN), 0};
  return n;
}

void attach_handle(const struct pollfd *fds, int n) {
  if (n == 0) return;
  if (fds[0].revents) accept_clients();
  if (fds[1].revents) {
    flush_pending();
    for (int i = 0; i < NL_ATTACH_MAX_CLIENTS && a.plen == 0; i++) /* frames held back meanwhile */
      if (a.c[i].fd >= 0 && a.c[i].ilen > 0 && handle_frames(&a.c[i]) < 0) drop(&a.c[i]);
  }
  for (int i = 0; i < NL_ATTACH_MAX_CLIENTS; i++) {
    if (a.c[i].fd < 0 || !fds[2 + i].revents) continue;
    if (fds[2 + i].revents & POLLIN) read_client(&a.c[i]);
    else drop(&a.c[i]); /* POLLHUP/POLLERR while stdin is pending */
  }
}

/* One frame to every client, whole or not at all. */
static void broadcast(int type, const void *data, size_t len) {
  unsigned char h[NL_FRAME_HEADER_BYTES];
  h[0] = (unsigned char)type;
  put_u32(h + 1, (uint32_t)len);
  for (int i = 0; i < NL_ATTACH_MAX_CLIENTS; i++) {
    struct client *c = &a.c[i];
    if (c->fd < 0) continue;
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w != (ssize_t)(sizeof h + len)) drop(c); /* gone, or not keeping up (a partial frame cannot be resumed) */
  }
}

void attach_output(int type, const void *data, size_t len) {
  const unsigned char *p = data;
  while (len > 0) {
    size_t k = len > NL_FRAME_DATA_MAX ? NL_FRAME_DATA_MAX : len;
    broadcast(type, p, k);
    p += k;
    len -= k;
  }
}

void attach_unlisten(void) {
  if (a.listen_fd < 0) return;
  close(a.listen_fd);
  a.listen_fd = -1;
  unlinkat(a.dir_fd, NL_ATTACH_SOCKET, 0);
}

void attach_finish(const char *code, const char *signal) {
  char payload[64];
  size_t len = frame_fields(payload, sizeof payload, 2, code, signal);
  attach_unlisten();
  for (int i = 0; i < NL_ATTACH_MAX_CLIENTS; i++) {
    if (a.c[i].fd < 0) continue;
    int fl = fcntl(a.c[i].fd, F_GETFL);
    if (fl >= 0) fcntl(a.c[i].fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(a.c[i].fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* a stuck client cannot hold the exit record */
    frame_write(a.c[i].fd, NL_FRAME_EXIT, payload, len);
    close(a.c[i].fd);
    free(a.c[i].ib);
    a.c[i] = (struct client){.fd = -1};
  }
  if (a.dir_fd >= 0) close(a.dir_fd);
  a.dir_fd = -1;
}

void attach_close_fds(void) {
  if (a.listen_fd >= 0) close(a.listen_fd);
  if (a.dir_fd >= 0) close(a.dir_fd);
  if (a.in_fd >= 0 && !a.tty) close(a.in_fd); /* the master is closed by the monitor's own list */
  for (int i = 0; i < NL_ATTACH_MAX_CLIENTS; i++)
    if (a.c[i].fd >= 0) close(a.c[i].fd);
}
