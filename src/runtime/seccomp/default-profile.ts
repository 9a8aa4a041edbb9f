// RuntimeDefault: the profile containerd (contrib/seccomp) and Docker (profiles/seccomp)
// apply by default, restated as data here: deny with EPERM by default, allow the
// ordinary syscalls, and allow the privileged ones only when the container holds
// the capability that makes them useful. Differences from those sources: no
// io_uring (blocked by current Docker and containerd 2.x), no minKernel gates
// (nodelet needs a kernel far newer than any of them).

import { ENOSYS, type SeccompProfile, type SeccompRule } from './profile.js';

/** Always allowed, on every architecture (names unknown to an arch are skipped). */
const ALLOWED = `
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area
gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat
openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64
statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4
waitid waitpid write writev
`;

/** Allowed when the container's effective set holds the capability. */
const BY_CAPABILITY: [cap: string, names: string][] = [
  ['CAP_DAC_READ_SEARCH', 'open_by_handle_at'],
  ['CAP_SYS_ADMIN', 'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare'],
  ['CAP_SYS_BOOT', 'reboot'],
  ['CAP_SYS_CHROOT', 'chroot'],
  ['CAP_SYS_MODULE', 'delete_module init_module finit_module'],
  ['CAP_SYS_PACCT', 'acct'],
  ['CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'],
  ['CAP_SYS_RAWIO', 'iopl ioperm'],
  ['CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64'],
  ['CAP_SYS_TTY_CONFIG', 'vhangup'],
  ['CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'],
  ['CAP_SYSLOG', 'syslog'],
  ['CAP_BPF', 'bpf'],
  ['CAP_PERFMON', 'perf_event_open'],
];

/** personality(2) values a container may set: PER_LINUX, UNAME26, PER_LINUX32, and their combination; 0xffffffff queries. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Namespace flags of clone(2): without CAP_SYS_ADMIN a clone may not create namespaces. */
const CLONE_NEW_FLAGS = 0x00020000 /* NS */ | 0x04000000 /* UTS */ | 0x08000000 /* IPC */ | 0x10000000 /* USER */ |
  0x20000000 /* PID */ | 0x40000000 /* NET */ | 0x02000000; /* CGROUP */

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const allow = (names: string, extra: Partial<SeccompRule> = {}): SeccompRule => ({ names: words(names), action: 'SCMP_ACT_ALLOW', args: [], ...extra });

/** The RuntimeDefault profile; capability-dependent rules are filtered by the compiler. */
export function runtimeDefaultProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1, // EPERM
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      allow(ALLOWED),
      ...PERSONALITIES.map((v) => allow('personality', { args: [{ index: 0, value: BigInt(v), valueTwo: 0n, op: 'SCMP_CMP_EQ' }] })),
      allow('arch_prctl', { includes: { arches: ['amd64', 'x32'] } }),
      allow('modify_ldt', { includes: { arches: ['amd64', 'x32', 'x86', '386'] } }),
      ...BY_CAPABILITY.map(([cap, names]) => allow(names, { includes: { caps: [cap] } })),
      // without CAP_SYS_ADMIN: clone only without namespace flags; clone3 (flags in memory,
      // uncheckable) says ENOSYS so libcs fall back to clone
      allow('clone', { args: [{ index: 0, value: BigInt(CLONE_NEW_FLAGS), valueTwo: 0n, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'] } }),
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, args: [], excludes: { caps: ['CAP_SYS_ADMIN'] } },
    ],
  };
}
