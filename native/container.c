/* The container child, between clone() and execve(): mounts, pivot_root,
 * hostname, rlimits, identity, capabilities, fds, exec. It executes the plan
 * in order and decides nothing; the first failure goes back on the status
 * pipe as {stage, errno, message} and the child exits 127. */
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PROPAGATION (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE)

/* Join `unsafe` under `root` resolving every symlink inside root (like
 * filepath-securejoin): a target can never escape the rootfs. */
static int secure_join(const char *root, const char *unsafe, char *out, size_t size) {
  char rest[PATH_MAX], cur[PATH_MAX] = "", full[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX];
  int links = 0;
  if (snprintf(rest, sizeof rest, "%s", unsafe) >= (int)sizeof rest) return errno = ENAMETOOLONG, -1;
  char *p = rest;
  while (*p) {
    while (*p == '/') p++;
    if (!*p) break;
    char *e = strchrnul(p, '/');
    size_t n = (size_t)(e - p);
    if (n == 1 && p[0] == '.') { p = e; continue; }
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      char *slash = strrchr(cur, '/');
      if (slash) *slash = '\0';
      p = e;
      continue;
    }
    size_t cl = strlen(cur);
    if (cl + 1 + n >= sizeof cur) return errno = ENAMETOOLONG, -1;
    cur[cl] = '/';
    memcpy(cur + cl + 1, p, n);
    cur[cl + 1 + n] = '\0';
    p = e;
    snprintf(full, sizeof full, "%s%s", root, cur);
    struct stat st;
    if (lstat(full, &st) < 0 || !S_ISLNK(st.st_mode)) continue; /* missing parts stay literal */
    if (++links > 40) return errno = ELOOP, -1;
    ssize_t ln = readlink(full, link, sizeof link - 1);
    if (ln < 0) return -1;
    link[ln] = '\0';
    cur[cl] = '\0'; /* drop the link itself */
    if (link[0] == '/') cur[0] = '\0';
    if (snprintf(tmp, sizeof tmp, "%s/%s", link, p) >= (int)sizeof tmp) return errno = ENAMETOOLONG, -1;
    memcpy(rest, tmp, sizeof rest);
    p = rest;
  }
  if (snprintf(out, size, "%s%s", root, cur[0] ? cur : "/") >= (int)size) return errno = ENAMETOOLONG, -1;
  return 0;
}

/* mkdir -p for the components of `path` after the first `skip` bytes (the rootfs). */
static int mkdir_under(const char *path, size_t skip) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *s = buf + skip + 1; ; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
    if (c == '\0') return 0;
    *s = c;
  }
}

static int make_target(const char *root, const char *path, const char *kind) {
  struct stat st;
  if (!kind || lstat(path, &st) == 0) return 0;
  size_t skip = strlen(root);
  if (strcmp(kind, "dir") == 0) return mkdir_under(path, skip);
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (slash && (size_t)(slash - parent) > skip) {
    *slash = '\0';
    if (mkdir_under(parent, skip) < 0) return -1;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* Flags a bind remount must keep (locked in a user namespace, harmless otherwise). */
static unsigned long locked_flags(const char *path) {
  struct statvfs sv;
  unsigned long f = 0;
  if (statvfs(path, &sv) < 0) return 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  return f;
}

static int bind_mount(const char *src, const char *dst, unsigned long flags) {
  if (mount(src, dst, NULL, MS_BIND | (flags & MS_REC), NULL) < 0) return -1;
  unsigned long extra = flags & ~(MS_BIND | MS_REC | PROPAGATION | MS_REMOUNT);
  if (extra && mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | extra | locked_flags(dst), NULL) < 0) return -1;
  return 0;
}

static int do_mount(const char *root, const struct nl_mount *m) {
  char target[PATH_MAX];
  if (secure_join(root, m->target, target, sizeof target) < 0) return fail("mount", "resolve %s under rootfs", m->target);
  if (make_target(root, target, m->mkdir) < 0) return fail("mount", "create mount point %s", m->target);
  int r;
  if (m->flags & MS_BIND) {
    r = bind_mount(m->source, target, m->flags);
  } else {
    r = mount(m->source, target, m->fstype, m->flags & ~PROPAGATION, m->data);
    if (r < 0 && errno == EPERM && strcmp(m->fstype, "sysfs") == 0) /* no own netns: runc binds /sys */
      r = bind_mount("/sys", target, MS_REC | (m->flags & ~PROPAGATION));
  }
  if (r < 0) return fail("mount", "mount %s (%s) on %s", m->source, m->fstype, m->target);
  if ((m->flags & PROPAGATION) && mount(NULL, target, NULL, m->flags & (PROPAGATION | MS_REC), NULL) < 0)
    return fail("mount", "set propagation of %s", m->target);
  return 0;
}

static int make_device(const char *root, const struct nl_device *d) {
  char path[PATH_MAX];
  if (secure_join(root, d->path, path, sizeof path) < 0) return fail("devices", "resolve %s", d->path);
  if (make_target(root, path, "file") < 0 && errno != EEXIST) return fail("devices", "create %s", d->path);
  unlink(path);
  mode_t type = d->type == 'b' ? S_IFBLK : S_IFCHR;
  if (mknod(path, type | d->mode, makedev(d->major, d->minor)) < 0) {
    /* no CAP_MKNOD: bind the host's node instead, as runc does */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return fail("devices", "create %s", d->path);
    close(fd);
    if (mount(d->path, path, NULL, MS_BIND, NULL) < 0) return fail("devices", "bind host %s", d->path);
    return 0;
  }
  if (chown(path, d->uid, d->gid) < 0) return fail("devices", "chown %s", d->path);
  if (chmod(path, d->mode) < 0) return fail("devices", "chmod %s", d->path);
  return 0;
}

static int make_symlink(const char *root, const char *link, const char *target) {
  char path[PATH_MAX];
  if (secure_join(root, link, path, sizeof path) < 0) return fail("symlinks", "resolve %s", link);
  if (symlink(target, path) < 0 && errno != EEXIST) return fail("symlinks", "symlink %s -> %s", link, target);
  return 0;
}

/* Fallback when pivot_root is impossible (rootfs on ramfs/initramfs): MS_MOVE + chroot. */
static int move_root(const char *root) {
  if (chdir(root) < 0) return fail("pivot_root", "chdir %s", root);
  if (mount(root, "/", NULL, MS_MOVE, NULL) < 0) return fail("pivot_root", "move %s to /", root);
  if (chroot(".") < 0) return fail("pivot_root", "chroot %s", root);
  if (chdir("/") < 0) return fail("pivot_root", "chdir /");
  return 0;
}

/* runc's pivot_root(".", ".") then detach the old root stacked below. */
static int pivot(const char *root) {
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  int newroot = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0 || newroot < 0) return fail("pivot_root", "open %s", root);
  if (fchdir(newroot) < 0) return fail("pivot_root", "chdir %s", root);
  if (syscall(SYS_pivot_root, ".", ".") < 0) {
    close(oldroot);
    close(newroot);
    if (errno == EINVAL) return move_root(root);
    return fail("pivot_root", "pivot_root %s", root);
  }
  if (fchdir(oldroot) < 0) return fail("pivot_root", "chdir old root");
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return fail("pivot_root", "make old root rslave");
  if (umount2(".", MNT_DETACH) < 0) return fail("pivot_root", "detach old root");
  close(oldroot);
  close(newroot);
  if (chdir("/") < 0) return fail("pivot_root", "chdir /");
  return 0;
}

static int mask_path(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return errno == ENOENT ? 0 : fail("masked_paths", "stat %s", path);
  int r = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
                              : mount("/dev/null", path, NULL, MS_BIND, NULL);
  return r < 0 ? fail("masked_paths", "mask %s", path) : 0;
}

static int readonly_path(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return errno == ENOENT ? 0 : fail("readonly_paths", "stat %s", path);
  if (bind_mount(path, path, MS_REC | MS_RDONLY) < 0) return fail("readonly_paths", "bind %s read-only", path);
  return 0;
}

static int setup_rootfs(const struct nl_plan *p) {
  const char *root = p->rootfs;
  if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0) return fail("rootfs", "bind rootfs %s", root);
  for (int i = 0; i < p->n_mounts; i++)
    if (do_mount(root, &p->mounts[i]) < 0) return -1;
  for (int i = 0; i < p->n_devices; i++)
    if (make_device(root, &p->devices[i]) < 0) return -1;
  for (int i = 0; i < p->n_symlinks; i++)
    if (make_symlink(root, p->symlinks[i][0], p->symlinks[i][1]) < 0) return -1;
  if (pivot(root) < 0) return -1;
  for (int i = 0; i < p->n_masked; i++)
    if (mask_path(p->masked[i]) < 0) return -1;
  for (int i = 0; i < p->n_readonly; i++)
    if (readonly_path(p->readonly[i]) < 0) return -1;
  if (p->readonly_rootfs && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"), NULL) < 0)
    return fail("rootfs", "remount / read-only");
  return 0;
}

static int setup_stdio(const struct child_fds *f) {
  if (setsid() < 0) return fail("stdio", "setsid");
  if (f->tty_slave >= 0) {
    if (ioctl(f->tty_slave, TIOCSCTTY, 0) < 0) return fail("stdio", "set controlling tty");
    for (int i = 0; i < 3; i++)
      if (dup2(f->tty_slave, i) < 0) return fail("stdio", "dup2 tty");
    return 0;
  }
  if (dup2(f->stdin_fd, 0) < 0 || dup2(f->out_w, 1) < 0 || dup2(f->err_w, 2) < 0) return fail("stdio", "dup2");
  return 0;
}

static int setup_process(const struct nl_plan *p) {
  if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0) return fail("hostname", "sethostname %s", p->hostname);
  for (int i = 0; i < p->n_rlimits; i++) {
    struct rlimit rl = {p->rlimits[i].soft, p->rlimits[i].hard};
    if (setrlimit(p->rlimits[i].resource, &rl) < 0) return fail("rlimits", "setrlimit resource %d", p->rlimits[i].resource);
  }
  return 0;
}

/* Join the planned mount ns, or make the new one's mounts rslave (EINVAL: "/" is not a
 * mount point because the shim runs chrooted; pivot_root then falls back to MS_MOVE). */
static int prepare_mount_ns(const struct child_fds *f) {
  if (f->mnt_ns >= 0) return setns(f->mnt_ns, CLONE_NEWNS) < 0 ? fail("mounts", "join mount namespace") : 0;
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 && errno != EINVAL) return fail("mounts", "make / rslave");
  return 0;
}

/* The parent's go-ahead: cgroups placed (unless self-placed), oom_score_adj set. */
static void await_go(int *sync_r) {
  char go;
  if (*sync_r < 0) return;
  if (read(*sync_r, &go, 1) != 1) _exit(1); /* the shim died or gave up */
  close(*sync_r);
  *sync_r = -1;
}

/* Nothing of the user's program runs before exec: the mounts are made while the
 * parent places the child, and the go-ahead is awaited only before exec (or before
 * a new cgroup namespace, whose root is the cgroup the child is in). */
void container_child(const struct nl_plan *p, const struct child_fds *f) {
  int sync_r = f->sync_r;
  reset_signals();
  umask(0);
  if (f->self_cgroup && cgroup_place_self(p) < 0) goto out;
  /* a joined mount ns outlives the child: mount there only once placement has succeeded */
  if (f->new_cgroup_ns || f->mnt_ns >= 0) await_go(&sync_r);
  if (f->new_cgroup_ns && unshare(CLONE_NEWCGROUP) < 0) {
    fail("namespaces", "create cgroup namespace");
    goto out;
  }
  if (setup_stdio(f) < 0) goto out;
  if (prepare_mount_ns(f) < 0) goto out;
  if (setup_rootfs(p) < 0 || setup_process(p) < 0) goto out;
  umask(p->umask);
  if (apply_identity(p) < 0 || mark_fds_cloexec() < 0) goto out;
  await_go(&sync_r);
  exec_plan(p);
out:
  write_all(f->status_w, &g_err, sizeof g_err);
  _exit(127);
}
