/* SPDX-License-Identifier: MIT */
/* A wait4 whose return runs a SIGCHLD handler, twice: with a plain handler and with an
 * SA_SIGINFO one (for a 32-bit program, the kernel's two frame layouts). The result the
 * program got is printed; nitro must show the same, not the handler's register. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_child(int sig) { handled += sig == SIGCHLD; }

static void on_child_info(int sig, siginfo_t *info, void *uc) {
    (void)uc;
    handled += sig == SIGCHLD && info->si_signo == SIGCHLD;
}

static int wait_for_child(int siginfo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (siginfo) {
        sa.sa_sigaction = on_child_info;
        sa.sa_flags = SA_RESTART | SA_SIGINFO;
    } else {
        sa.sa_handler = on_child;
        sa.sa_flags = SA_RESTART;
    }
    if (sigaction(SIGCHLD, &sa, NULL) != 0) return 1;
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        usleep(100000); /* the parent is in wait4 by then */
        _exit(3);
    }
    int status = 0;
    pid_t got = wait4(-1, &status, 0, NULL);
    printf("test_signal: wait4 returned %d (%s handler, handled %d)\n", (int)got,
           siginfo ? "siginfo" : "plain", (int)handled);
    fflush(stdout);
    return got == child && WIFEXITED(status) && WEXITSTATUS(status) == 3 ? 0 : 1;
}

int main(void) {
    int failed = wait_for_child(0);
    failed |= wait_for_child(1);
    return failed;
}
