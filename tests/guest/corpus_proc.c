// SPDX-License-Identifier: MIT
// strace comparison corpus, processes: getpid/getppid/gettid, uname, clone (fork-like, and writing
// the child's TID for the parent), clone3 (also with CLONE_PARENT_SETTID and CLONE_PIDFD),
// fork, vfork, exit, exit_group, wait4 (also with a struct rusage), kill, execve and execveat
// with argv; nanosleep and clock_gettime (struct timespec); futex; ptrace (PTRACE_TRACEME) and prctl
// (a new task name); getpriority/setpriority, ioprio_get/ioprio_set, getrlimit/setrlimit,
// sched_getaffinity/sched_setaffinity, personality.
//   corpus_proc          runs the whole sequence
//   corpus_proc exec N   (the re-executed image) writes a line and exits with status N
// Deterministic; children are waited for in creation order.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char self[] = "/tests/corpus_proc";

static void child_exec(int how) {
    char* argv[] = {(char*)"corpus_proc", (char*)"exec", how ? (char*)"7" : (char*)"6", NULL};
    char* envp[] = {(char*)"CORPUS=1", (char*)"PATH=/tests:/bin", NULL};
    if (how == 0) {
        syscall(SYS_execve, self, argv, envp);
    } else {
        syscall(SYS_execveat, AT_FDCWD, self, argv, envp, 0);
    }
    syscall(SYS_exit_group, 99);
}

int main(int argc, char** argv) {
    int status;
    if (argc == 3 && strcmp(argv[1], "exec") == 0) {
        syscall(SYS_write, 1, "corpus_proc: exec\n", 18);
        syscall(SYS_exit_group, atoi(argv[2]));
    }
    syscall(SYS_getpid);
    syscall(SYS_getppid);
    syscall(SYS_gettid);
    struct utsname un;
    syscall(SYS_uname, &un); /* what a program fingerprinting its host asks first */
    /* reboot, refused: a command the kernel does not know, and a wrong magic (EINVAL both) */
    syscall(SYS_reboot, 0xfee1dead, 672274793, 0x12345678, NULL);
    syscall(SYS_reboot, 1, 85072278, 0x4321fedc, NULL);
    syscall(SYS_reboot, 2, 369367448, 0xa1b2c3d4, "now"); /* RESTART2 shows its string */
    /* Priorities (whose, and the I/O priority's class and level) and a resource limit. */
    syscall(SYS_getpriority, PRIO_PROCESS, 0);
    syscall(SYS_setpriority, PRIO_PROCESS, 0, 0);
    syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, 2 << 13 | 4 /* BE, 4 */);
    syscall(SYS_ioprio_get, 1, 0);
    syscall(SYS_ioprio_get, 7, 0); /* EINVAL */
    struct rlimit rl;
    syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl);
    syscall(SYS_setrlimit, RLIMIT_NOFILE, &rl);
    /* The CPUs it may run on: as many bytes as the kernel writes, then the set given back. */
    unsigned long cpus[16] = {0};
    long n = syscall(SYS_sched_getaffinity, 0, sizeof cpus, cpus);
    syscall(SYS_sched_setaffinity, 0, n > 0 ? n : 8, cpus);
    syscall(SYS_sched_getaffinity, 0, 1, cpus); /* EINVAL: shorter than the kernel's set */
    /* The execution domain: asked, then set to what it is (with a flag, then back). */
    long persona = syscall(SYS_personality, 0xffffffffUL);
    syscall(SYS_personality, (unsigned long)persona | 0x0040000 /* ADDR_NO_RANDOMIZE */);
    syscall(SYS_personality, (unsigned long)persona);

    /* clone used as fork; the child leaves with exit(2). */
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) syscall(SYS_exit, 3);
    syscall(SYS_wait4, pid, &status, 0, NULL);

    /* clone3 used as fork; the child runs execve. */
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) child_exec(0);
    syscall(SYS_wait4, pid, &status, 0, NULL);

    /* clone and clone3 that write the child's TID (and a pidfd) for the parent. */
    pid_t ptid = 0;
    pid = syscall(SYS_clone, CLONE_PARENT_SETTID | SIGCHLD, 0, &ptid, 0, 0);
    if (pid == 0) syscall(SYS_exit, 4);
    syscall(SYS_wait4, pid, &status, 0, NULL);
    int pidfd = -1;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_PARENT_SETTID | CLONE_PIDFD;
    ca.pidfd = (unsigned long)&pidfd;
    ca.parent_tid = (unsigned long)&ptid;
    ca.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) syscall(SYS_exit, 5);
    syscall(SYS_wait4, pid, &status, 0, NULL);
    syscall(SYS_close, pidfd);

    /* A child that checks for a tracer (under strace: EPERM) and renames itself, as malware
       hiding from ps does. */
    pid = syscall(SYS_fork);
    if (pid == 0) {
        char name[16] = {0};
        syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
        syscall(SYS_prctl, PR_SET_NAME, "kworker/0:1", 0, 0, 0);
        syscall(SYS_prctl, PR_GET_NAME, name, 0, 0, 0);
        syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        syscall(SYS_exit, 0);
    }
    syscall(SYS_wait4, pid, &status, 0, NULL);

    /* fork; the child runs execveat. */
    pid = syscall(SYS_fork);
    if (pid == 0) child_exec(1);
    syscall(SYS_wait4, -1, &status, __WALL, NULL);

    /* vfork; the child leaves at once; its resource usage is asked for. */
    struct rusage ru;
    pid = vfork();
    if (pid == 0) _exit(5);
    syscall(SYS_wait4, pid, &status, 0, &ru);

    /* futex on words of its own: a value that differs (EAGAIN), a wake without waiters, waits
       that time out (relative, and an absolute time long past), requeues with nobody queued. */
    static unsigned int word = 1, word2 = 0;
    struct timespec short_wait = {0, 1000}, long_past = {0, 0};
    syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    syscall(SYS_futex, &word, FUTEX_WAIT, 1, &short_wait, NULL, 0);
    syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 1, &long_past, NULL,
            FUTEX_BITSET_MATCH_ANY);
    syscall(SYS_futex, &word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 2);
    syscall(SYS_futex, &word, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &word2, 1);
    syscall(SYS_futex, &word, FUTEX_REQUEUE, 1, 2, &word2, 0);

    /* struct timespec in and out (raw calls: glibc answers clock_gettime in user mode). */
    struct timespec ts = {0, 1000};
    syscall(SYS_nanosleep, &ts, &ts);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);

    /* fork; the child kills itself (its kill never returns). Killing it from the parent would
       race with what the child is doing, and strace and nitro report such races differently. */
    pid = syscall(SYS_fork);
    if (pid == 0) {
        syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
        syscall(SYS_exit_group, 1);
    }
    syscall(SYS_kill, pid, 0); /* running or a zombie: 0 either way */
    syscall(SYS_wait4, pid, &status, 0, NULL);
    syscall(SYS_wait4, -1, &status, WNOHANG, NULL); /* ECHILD */
    syscall(SYS_kill, 999999, SIGTERM);             /* ESRCH */
    syscall(SYS_write, 1, "corpus_proc: done\n", 18);
    syscall(SYS_exit_group, 0);
    return 0;
}
