/* `nodelet-shim dial <netns|-> <port>`: the dialer behind kubelet's port-forward
 * (a CRI runtime's PortForward). Node cannot move a thread into another network
 * namespace, so the daemon runs this per forwarded connection:
 * - joins the pod's pinned network namespace (setns CLONE_NEWNET; "-" stays in
 *   the caller's, for hostNetwork pods);
 * - connects to 127.0.0.1:<port>, then [::1]:<port> (containerd's order);
 * - relays stdin → socket and socket → stdout with bounded buffers in one poll
 *   loop until both directions are over: stdin's EOF becomes shutdown(SHUT_WR),
 *   the socket's EOF closes stdout. A destination that fails has its source
 *   drained and dropped, so the other side is never left blocked.
 * Exit: 0 both directions ended; 1 the relay failed, e.g. a reset (stderr says how); 2 bad
 * arguments or the namespace could not be joined; 3 neither address took the
 * connection: one line per address on stderr in Go's words ("dial tcp4
 * 127.0.0.1:80: connect: connection refused"), which the daemon quotes. */
#include "shim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DIAL_BUF 65536
#define EXIT_RELAY 1
#define EXIT_SETUP 2
#define EXIT_REFUSED 3

/* One direction: from → buf → to. */
struct half {
  int from, to;
  const char *from_name, *to_name;
  int eof;    /* the source ended (or failed) */
  int broken; /* the destination failed: what the source still sends is dropped */
  int done;   /* eof, nothing buffered, the destination ended */
  size_t len, off;
  unsigned char buf[DIAL_BUF];
};

static struct half up, down; /* stdin → socket, socket → stdout */

static int usage(void) {
  fprintf(stderr, "usage: nodelet-shim dial <netns path|-> <port 1-65535>\n");
  return EXIT_SETUP;
}

static void print_err(void) {
  fprintf(stderr, "%s %s: %s\n", g_err.stage, g_err.msg, strerror(g_err.errnum));
}

static int join_netns(const char *path) {
  if (strcmp(path, "-") == 0) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("open", "%s", path);
  int r = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  return r < 0 ? fail_errno("setns", e, "%s (network namespace)", path) : 0;
}

/* Go's text for an errno: its strerror, lower-case first ("connection refused"). */
static void go_errno(char *out, size_t size, int e) {
  snprintf(out, size, "%s", strerror(e));
  out[0] = (char)tolower((unsigned char)out[0]);
}

/* A connected socket, or -1 with Go's "dial tcp4 127.0.0.1:80: connect: ..." in why. */
static int dial_loopback(int family, int port, char *why, size_t size) {
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_loopback};
  const char *net = family == AF_INET ? "tcp4" : "tcp6";
  char addr[32], err[128];
  snprintf(addr, sizeof addr, family == AF_INET ? "127.0.0.1:%d" : "[::1]:%d", port);
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    go_errno(err, sizeof err, errno);
    snprintf(why, size, "dial %s %s: socket: %s", net, addr, err);
    return -1;
  }
  int r = family == AF_INET ? connect(s, (struct sockaddr *)&a4, sizeof a4) : connect(s, (struct sockaddr *)&a6, sizeof a6);
  if (r < 0) {
    go_errno(err, sizeof err, errno);
    snprintf(why, size, "dial %s %s: connect: %s", net, addr, err);
    close(s);
    return -1;
  }
  return s;
}

static int nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? fail("fcntl", "O_NONBLOCK on fd %d", fd) : 0;
}

/* The source is readable: fill the (empty) buffer, or drop the bytes when the destination is broken. */
static void half_read(struct half *h) {
  ssize_t n = read(h->from, h->buf, sizeof h->buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n < 0) fail("relay", "read from %s", h->from_name);
  if (n <= 0) {
    h->eof = 1;
    return;
  }
  if (!h->broken) {
    h->len = (size_t)n;
    h->off = 0;
  }
}

/* The destination is writable: drain the buffer; a failure breaks the direction. */
static void half_write(struct half *h) {
  ssize_t n = write(h->to, h->buf + h->off, h->len - h->off);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n < 0) {
    if (errno != EPIPE || h->to != STDOUT_FILENO) fail("relay", "write to %s", h->to_name);
    h->broken = 1;
    h->len = h->off = 0;
    return;
  }
  h->off += (size_t)n;
  if (h->off == h->len) h->len = h->off = 0;
}

/* Past the source's end with nothing left to write: half-close the socket, or close stdout. */
static void half_finish(struct half *h, int sock) {
  if (h->done || !h->eof || h->len) return;
  h->done = 1;
  if (h->broken) return;
  if (h->to == sock) shutdown(sock, SHUT_WR);
  else close(h->to);
}

/* Until both directions are over, or the connection failed (a reset ends both at once). */
static int relay(int sock) {
  up.from = STDIN_FILENO, up.to = sock, up.from_name = "stdin", up.to_name = "the socket";
  down.from = sock, down.to = STDOUT_FILENO, down.from_name = "the socket", down.to_name = "stdout";
  if (nonblock(STDIN_FILENO) < 0 || nonblock(STDOUT_FILENO) < 0 || nonblock(sock) < 0) return -1;
  struct half *hs[2] = {&up, &down};
  while ((!up.done || !down.done) && !g_err.stage[0]) {
    struct pollfd p[2];
    for (int i = 0; i < 2; i++) { /* a done half polls nothing: poll ignores fd -1 */
      struct half *h = hs[i];
      p[i] = (struct pollfd){.fd = h->done ? -1 : h->len ? h->to : h->from, .events = h->len ? POLLOUT : POLLIN};
    }
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return fail("relay", "poll");
    }
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !p[i].revents) continue;
      if (hs[i]->len) half_write(hs[i]);
      else half_read(hs[i]);
      half_finish(hs[i], sock);
    }
  }
  close(sock);
  return g_err.stage[0] ? -1 : 0;
}

int cmd_dial(int argc, char **argv) {
  if (argc != 2) return usage();
  char *end;
  long port = strtol(argv[1], &end, 10);
  if (!argv[1][0] || *end || port < 1 || port > 65535) return usage();
  signal(SIGPIPE, SIG_IGN); /* EPIPE instead: a closed stdout or a reset socket ends a direction */
  if (join_netns(argv[0]) < 0) {
    print_err();
    return EXIT_SETUP;
  }
  char why4[256], why6[256];
  int sock = dial_loopback(AF_INET, (int)port, why4, sizeof why4);
  if (sock < 0) sock = dial_loopback(AF_INET6, (int)port, why6, sizeof why6);
  if (sock < 0) {
    fprintf(stderr, "%s\n%s\n", why4, why6);
    return EXIT_REFUSED;
  }
  if (relay(sock) < 0) {
    print_err();
    return EXIT_RELAY;
  }
  return 0;
}
