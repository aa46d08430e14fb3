// SPDX-License-Identifier: MIT
// strace comparison corpus, flags and signals: rt_sigaction, rt_sigprocmask, kill/tgkill/tkill
// of blocked and ignored signals, rt_sigpending, signalfd4, fcntl, dup/dup2/dup3, pipe2 with
// flag sets; handlers that run as a call returns (its result is then in the signal frame, not in RAX) and a call that
// a handler interrupts and SA_RESTART restarts.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

static int wake_fd = -1;
static void on_child(int sig) { (void)sig; }
static void on_alarm(int sig) {
    (void)sig;
    syscall(SYS_write, wake_fd, "w", 1);
}

int main(void) {
    struct ksigaction act, old;
    memset(&act, 0, sizeof act);
    act.handler = SIG_IGN;
    act.flags = SA_RESTART;
    act.mask = 1UL << (SIGUSR2 - 1) | 1UL << (SIGTERM - 1);
    syscall(SYS_rt_sigaction, SIGUSR1, &act, &old, 8);
    syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 8);
    act.handler = SIG_DFL;
    act.flags = 0;
    act.mask = 0;
    syscall(SYS_rt_sigaction, SIGHUP, &act, NULL, 8);
    syscall(SYS_rt_sigaction, SIGKILL, &act, NULL, 8); /* EINVAL */
    unsigned long set = 1UL << (SIGUSR2 - 1) | 1UL << (SIGRTMIN + 1 - 1), oldset = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, &oldset, 8);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, NULL, &oldset, 8);
    long pid = syscall(SYS_getpid);
    syscall(SYS_kill, pid, SIGUSR1);
    syscall(SYS_tgkill, pid, syscall(SYS_gettid), SIGUSR2);
    syscall(SYS_tkill, syscall(SYS_gettid), SIGRTMIN + 1);
    /* The two blocked signals are pending; a signalfd would read USR2. */
    unsigned long pending = 0, usr2 = 1UL << (SIGUSR2 - 1);
    syscall(SYS_rt_sigpending, &pending, 8);
    long sfd = syscall(SYS_signalfd4, -1, &usr2, 8, SFD_CLOEXEC | SFD_NONBLOCK);
    syscall(SYS_close, sfd);
    /* Ignoring the blocked signals discards them, so unblocking all delivers nothing. */
    act.handler = SIG_IGN;
    syscall(SYS_rt_sigaction, SIGUSR2, &act, NULL, 8);
    syscall(SYS_rt_sigaction, SIGRTMIN + 1, &act, NULL, 8);
    set = ~0UL;
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8);
    syscall(SYS_rt_sigprocmask, 7, &set, NULL, 8); /* EINVAL */

    int p[2];
    syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK);
    syscall(SYS_fcntl, p[0], F_GETFL);
    syscall(SYS_fcntl, p[0], F_SETFL, O_NONBLOCK | O_APPEND);
    syscall(SYS_fcntl, p[1], F_GETFD);
    syscall(SYS_fcntl, p[1], F_SETFD, FD_CLOEXEC);
    syscall(SYS_fcntl, p[1], F_DUPFD_CLOEXEC, 10);
    syscall(SYS_dup, p[0]);
    syscall(SYS_dup2, p[0], 20);
    syscall(SYS_dup3, p[1], 21, O_CLOEXEC);
    syscall(SYS_dup3, p[1], 21, 0x40); /* EINVAL */
    syscall(SYS_write, p[1], "x", 1);
    char c;
    syscall(SYS_read, p[0], &c, 1);
    syscall(SYS_read, p[0], &c, 1); /* EAGAIN */

    /* A child's end: wait4 returns its pid, then the SIGCHLD handler runs on that return. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sigaction(SIGCHLD, &sa, NULL);
    long child = syscall(SYS_fork);
    if (child == 0) syscall(SYS_exit_group, 0);
    int status = 0;
    syscall(SYS_wait4, child, &status, 0, NULL);
    /* A read that a timer's handler interrupts (ERESTARTSYS); SA_RESTART restarts it, and
     * the handler's byte ends it. */
    int q[2];
    syscall(SYS_pipe2, q, 0);
    wake_fd = q[1];
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 50000}};
    syscall(SYS_setitimer, ITIMER_REAL, &it, NULL);
    syscall(SYS_read, q[0], &c, 1);
    syscall(SYS_getitimer, ITIMER_REAL, &it);
    syscall(SYS_write, 1, "corpus_sig: done\n", 17);
    return 0;
}
