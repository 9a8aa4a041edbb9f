/* Reading and validating the plan (fd 3) or an exec request (a REQUEST frame on
 * the exec socket). Bounded: the message, the record count and every list have
 * fixed maximums. */
#include "shim.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char msg[NL_MAX_MESSAGE_BYTES + 1];
/* Payloads are copied here NUL-terminated; each copy is at most its record. */
static char arena[PLAN_ARENA_BYTES(NL_MAX_MESSAGE_BYTES)];

static int read_message(int fd, size_t *len) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, msg + n, sizeof msg - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail("plan", "read plan from fd %d", fd);
    if (r == 0) break;
    n += (size_t)r;
    if (n > NL_MAX_MESSAGE_BYTES) return fail_errno("plan", E2BIG, "plan larger than %d bytes", NL_MAX_MESSAGE_BYTES);
  }
  *len = n;
  return 0;
}

static int parse_u64(const char *s, int base, unsigned long long max, unsigned long long *out) {
  char *end;
  if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_int(const char *s, long long min, long long max, long long *out) {
  char *end;
  if (*s == '\0') return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < min || v > max) return -1;
  *out = v;
  return 0;
}

#define NUM(field, s, lo, hi)                                                  \
  do {                                                                         \
    long long v_;                                                              \
    if (parse_int((s), (lo), (hi), &v_) < 0)                                   \
      return fail_errno("plan", EINVAL, "%s: invalid number \"%s\"", (field), (s)); \
    out = v_;                                                                  \
  } while (0)

static int ns_flag(const char *name) {
  static const struct { const char *n; int f; } t[] = {
    {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(t[i].n, name) == 0) return t[i].f;
  return 0;
}

static int abs_path(const char *field, const char *s) {
  if (s[0] != '/') return fail_errno("plan", EINVAL, "%s: \"%s\" is not an absolute path", field, s);
  return 0;
}

#define ADD(arr, n, max, field)                                                \
  do {                                                                         \
    if ((n) >= (max)) return fail_errno("plan", E2BIG, "too many %s (max %d)", (field), (max)); \
  } while (0)

static int parse_rlim(const char *s, rlim_t *out) {
  unsigned long long v;
  if (strcmp(s, "unlimited") == 0) { *out = RLIM_INFINITY; return 0; }
  if (parse_u64(s, 10, ~0ULL, &v) < 0) return fail_errno("plan", EINVAL, "rlimit: invalid value \"%s\"", s);
  *out = (rlim_t)v;
  return 0;
}

static int parse_caps(char **f, struct nl_caps *c) {
  uint64_t *dst[5] = {&c->bounding, &c->effective, &c->permitted, &c->inheritable, &c->ambient};
  for (int i = 0; i < 5; i++) {
    unsigned long long v;
    if (parse_u64(f[i], 0, ~0ULL, &v) < 0) return fail_errno("plan", EINVAL, "capabilities: invalid mask \"%s\"", f[i]);
    *dst[i] = v;
  }
  return 0;
}

static int apply_mount(struct nl_plan *p, char **f) {
  long long out;
  ADD(p->mounts, p->n_mounts, NL_MAX_MOUNTS, "mounts");
  struct nl_mount *m = &p->mounts[p->n_mounts++];
  if (abs_path("mount target", f[1]) < 0) return -1;
  NUM("mount flags", f[3], 0, 0xffffffffLL);
  m->source = f[0]; m->target = f[1]; m->fstype = f[2]; m->flags = (unsigned long)out;
  m->data = f[4][0] ? f[4] : NULL;
  m->mkdir = f[5][0] ? f[5] : NULL;
  if (m->mkdir && strcmp(m->mkdir, "dir") && strcmp(m->mkdir, "file"))
    return fail_errno("plan", EINVAL, "mount %s: mkdir must be dir or file", f[1]);
  return 0;
}

static int apply_device(struct nl_plan *p, char **f) {
  long long out;
  ADD(p->devices, p->n_devices, NL_MAX_DEVICES, "devices");
  struct nl_device *d = &p->devices[p->n_devices++];
  if (abs_path("device path", f[0]) < 0) return -1;
  if (strcmp(f[1], "c") && strcmp(f[1], "b")) return fail_errno("plan", EINVAL, "device %s: type must be c or b", f[0]);
  d->path = f[0]; d->type = f[1][0];
  NUM("device major", f[2], 0, 0xfffffLL); d->major = (unsigned)out;
  NUM("device minor", f[3], 0, 0xfffffLL); d->minor = (unsigned)out;
  NUM("device mode", f[4], 0, 07777); d->mode = (mode_t)out;
  NUM("device uid", f[5], 0, 0xfffffffeLL); d->uid = (uid_t)out;
  NUM("device gid", f[6], 0, 0xfffffffeLL); d->gid = (gid_t)out;
  return 0;
}

/* Hex in the arena -> bytes, in place (the output never overtakes the input). */
static int parse_seccomp(struct nl_plan *p, char *hex) {
  size_t n = strlen(hex);
  unsigned char *out = (unsigned char *)hex;
  if (n == 0 || n % 16 != 0) return fail_errno("plan", EINVAL, "seccomp: %zu hex digits is not a whole number of instructions", n);
  for (size_t i = 0; i < n; i += 2) {
    int v = 0;
    for (int j = 0; j < 2; j++) {
      char c = hex[i + j];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return fail_errno("plan", EINVAL, "seccomp: invalid hex digit at %zu", i + j);
      v = v * 16 + d;
    }
    out[i / 2] = (unsigned char)v;
  }
  p->seccomp = out;
  p->seccomp_len = n / 2;
  return 0;
}

static int apply_ns(struct nl_plan *p, char **f) {
  ADD(p->ns, p->n_ns, NL_MAX_NAMESPACES, "namespaces");
  int flag = ns_flag(f[0]);
  if (!flag) return fail_errno("plan", EINVAL, "namespace type \"%s\" unknown", f[0]);
  for (int i = 0; i < p->n_ns; i++)
    if (p->ns[i].flag == flag) return fail_errno("plan", EINVAL, "namespace %s listed twice", f[0]);
  p->ns[p->n_ns++] = (struct nl_ns){flag, f[0], f[1][0] ? f[1] : NULL};
  return 0;
}

static int apply_record(struct nl_plan *p, int tag, char **f) {
  long long out;
  switch (tag) {
  case NL_TAG_VERSION: NUM("version", f[0], 1, 1000); p->version = (int)out; return 0;
  case NL_TAG_CONTAINER_ID: p->container_id = f[0]; return 0;
  case NL_TAG_STATE_DIR: p->state_dir = f[0]; return abs_path("stateDir", f[0]);
  case NL_TAG_LOG_PATH: p->log_path = f[0]; return abs_path("logPath", f[0]);
  case NL_TAG_LOG_MAX_BYTES: NUM("logMaxBytes", f[0], 0, 1LL << 50); p->log_max_bytes = out; return 0;
  case NL_TAG_LOG_MAX_FILES: NUM("logMaxFiles", f[0], 0, 1000); p->log_max_files = (int)out; return 0;
  case NL_TAG_NAMESPACE: return apply_ns(p, f);
  case NL_TAG_CGROUP_PROCS:
    ADD(p->cgroup_procs, p->n_cgroup_procs, NL_MAX_CGROUP_PROCS, "cgroupProcsFiles");
    p->cgroup_procs[p->n_cgroup_procs++] = f[0];
    return abs_path("cgroupProcsFiles", f[0]);
  case NL_TAG_OOM_COUNTER_FILE: p->oom_counter_file = f[0]; return 0;
  case NL_TAG_OOM_SCORE_ADJ: NUM("oomScoreAdj", f[0], -1000, 1000); p->oom_score_adj = (int)out; p->has_oom_score_adj = 1; return 0;
  case NL_TAG_ROOTFS: p->rootfs = f[0]; return abs_path("rootfs", f[0]);
  case NL_TAG_READONLY_ROOTFS: NUM("readonlyRootfs", f[0], 0, 1); p->readonly_rootfs = (int)out; return 0;
  case NL_TAG_MOUNT: return apply_mount(p, f);
  case NL_TAG_DEVICE: return apply_device(p, f);
  case NL_TAG_SYMLINK:
    ADD(p->symlinks, p->n_symlinks, NL_MAX_SYMLINKS, "symlinks");
    p->symlinks[p->n_symlinks][0] = f[0];
    p->symlinks[p->n_symlinks++][1] = f[1];
    return abs_path("symlink", f[0]);
  case NL_TAG_MASKED_PATH:
    ADD(p->masked, p->n_masked, NL_MAX_MASKED, "maskedPaths");
    p->masked[p->n_masked++] = f[0];
    return abs_path("maskedPaths", f[0]);
  case NL_TAG_READONLY_PATH:
    ADD(p->readonly, p->n_readonly, NL_MAX_READONLY, "readonlyPaths");
    p->readonly[p->n_readonly++] = f[0];
    return abs_path("readonlyPaths", f[0]);
  case NL_TAG_HOSTNAME: p->hostname = f[0]; return 0;
  case NL_TAG_RLIMIT: {
    ADD(p->rlimits, p->n_rlimits, NL_MAX_RLIMITS, "rlimits");
    struct nl_rlimit *r = &p->rlimits[p->n_rlimits++];
    NUM("rlimit resource", f[0], 0, RLIM_NLIMITS - 1); r->resource = (int)out;
    if (parse_rlim(f[1], &r->soft) < 0 || parse_rlim(f[2], &r->hard) < 0) return -1;
    return 0;
  }
  case NL_TAG_NO_NEW_PRIVS: NUM("noNewPrivs", f[0], 0, 1); p->no_new_privs = (int)out; return 0;
  case NL_TAG_CAPS: p->has_caps = 1; return parse_caps(f, &p->caps);
  case NL_TAG_UID: NUM("uid", f[0], 0, 0xfffffffeLL); p->uid = (uid_t)out; return 0;
  case NL_TAG_GID: NUM("gid", f[0], 0, 0xfffffffeLL); p->gid = (gid_t)out; return 0;
  case NL_TAG_ADDITIONAL_GID:
    ADD(p->gids, p->n_gids, NL_MAX_GIDS, "additionalGids");
    NUM("additionalGids", f[0], 0, 0xfffffffeLL); p->gids[p->n_gids++] = (gid_t)out;
    return 0;
  case NL_TAG_UMASK: NUM("umask", f[0], 0, 0777); p->umask = (mode_t)out; return 0;
  case NL_TAG_CWD: p->cwd = f[0]; return abs_path("cwd", f[0]);
  case NL_TAG_ENV:
    ADD(p->env, p->n_env, NL_MAX_ENV, "env");
    p->env[p->n_env++] = f[0];
    return 0;
  case NL_TAG_ARGV:
    ADD(p->argv, p->n_argv, NL_MAX_ARGV, "argv");
    p->argv[p->n_argv++] = f[0];
    return 0;
  case NL_TAG_TTY: NUM("tty", f[0], 0, 1); p->tty = (int)out; return 0;
  case NL_TAG_STDIN: NUM("stdin", f[0], 0, 1); p->stdin_open = (int)out; return 0;
  case NL_TAG_STDIN_ONCE: NUM("stdin once", f[0], 0, 1); p->stdin_once = (int)out; return 0;
  case NL_TAG_EXEC_PID: NUM("pid", f[0], 1, 0x3fffffff); p->exec_pid = (pid_t)out; return 0;
  case NL_TAG_SECCOMP: return parse_seccomp(p, f[0]);
  case NL_TAG_WINSIZE:
    NUM("winsize cols", f[0], 0, 0xffff); p->ws_cols = (unsigned short)out;
    NUM("winsize rows", f[1], 0, 0xffff); p->ws_rows = (unsigned short)out;
    return 0;
  default: return fail_errno("plan", EINVAL, "unknown record tag %d", tag);
  }
}

static int tag_fields(int tag) {
#define X(name) if (tag == NL_TAG_##name && tag < 64) return NL_FIELDS_##name;
  NL_TAG_TABLE(X)
#undef X
  return -1;
}

/* Split one payload (already NUL-terminated in the arena) into its fields. */
static int split_fields(char *s, size_t len, int want, char **f) {
  int n = 1;
  f[0] = s;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '\0') continue;
    if (n >= want) return -1;
    f[n++] = s + i + 1;
  }
  return n == want ? 0 : -1;
}

static int check_complete(const struct nl_plan *p, enum nl_mode mode) {
  if (p->version != NL_PROTOCOL_VERSION) return fail_errno("plan", EINVAL, "protocol version %d unsupported (want %d)", p->version, NL_PROTOCOL_VERSION);
  if (p->n_argv == 0) return fail_errno("plan", EINVAL, "argv is empty");
  if (!p->cwd) return fail_errno("plan", EINVAL, "cwd missing");
  if (mode == NL_MODE_EXEC) return p->exec_pid ? 0 : fail_errno("plan", EINVAL, "exec pid missing");
  if (!p->container_id || !p->state_dir || !p->log_path || !p->rootfs) return fail_errno("plan", EINVAL, "containerId, stateDir, logPath and rootfs are required");
  return 0;
}

int plan_read(int fd, struct nl_plan *p, enum nl_mode mode) {
  size_t len = 0;
  if (read_message(fd, &len) < 0) return -1;
  return plan_parse(msg, len, arena, p, mode);
}

/* Parse `len` bytes of records; strings are copied NUL-terminated into `arena`
 * (PLAN_ARENA_BYTES(len) bytes) and the plan points into it. */
int plan_parse(const char *msg, size_t len, char *arena, struct nl_plan *p, enum nl_mode mode) {
  size_t off = 0, used = 0;
  int records = 0;
  if (len > NL_MAX_MESSAGE_BYTES) return fail_errno("plan", E2BIG, "plan larger than %d bytes", NL_MAX_MESSAGE_BYTES);
  p->umask = 022;
  while (off < len) {
    uint32_t hdr[2];
    if (len - off < 8) return fail_errno("plan", EINVAL, "truncated record header at byte %zu", off);
    memcpy(hdr, msg + off, 8); /* little-endian hosts only (x86_64, aarch64) */
    off += 8;
    if (hdr[1] > NL_MAX_FIELD_BYTES || hdr[1] > len - off) return fail_errno("plan", EINVAL, "record tag %u: bad length %u", hdr[0], hdr[1]);
    if (++records > NL_MAX_RECORDS) return fail_errno("plan", E2BIG, "more than %d records", NL_MAX_RECORDS);
    int want = tag_fields((int)hdr[0]);
    if (want < 0) return fail_errno("plan", EINVAL, "unknown record tag %u", hdr[0]);
    char *s = arena + used, *f[8];
    memcpy(s, msg + off, hdr[1]);
    s[hdr[1]] = '\0';
    used += hdr[1] + 1;
    off += hdr[1];
    if (split_fields(s, hdr[1], want, f) < 0) return fail_errno("plan", EINVAL, "record tag %u: want %d fields", hdr[0], want);
    if (apply_record(p, (int)hdr[0], f) < 0) return -1;
  }
  p->argv[p->n_argv] = NULL;
  p->env[p->n_env] = NULL;
  return check_complete(p, mode);
}
