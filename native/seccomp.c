/* Installing the seccomp filter TypeScript compiled (src/runtime/seccomp): the
 * bytes are a struct sock_filter array, installed unchanged. */
#include "shim.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SECCOMP_MAX_INSNS 4096 /* BPF_MAXINSNS */

int seccomp_install(const unsigned char *prog, size_t len) {
  if (len == 0 || len % sizeof(struct sock_filter) != 0)
    return fail_errno("seccomp", EINVAL, "filter of %zu bytes is not a whole number of instructions", len);
  if (len / sizeof(struct sock_filter) > SECCOMP_MAX_INSNS)
    return fail_errno("seccomp", E2BIG, "filter has %zu instructions (max %d)", len / sizeof(struct sock_filter), SECCOMP_MAX_INSNS);
  struct sock_fprog fprog = {
    .len = (unsigned short)(len / sizeof(struct sock_filter)),
    .filter = (struct sock_filter *)prog, /* copied in by the kernel */
  };
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0) return 0;
  if (errno != ENOSYS) return fail("seccomp", "install filter (%u instructions)", fprog.len);
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) == 0) return 0;
  return fail("seccomp", "install filter (%u instructions)", fprog.len);
}
