// SPDX-License-Identifier: MIT
// Makes exactly N system calls of one kind, so a tracer's count can be checked:
//   test_count SYSCALL N [THREADS]
// SYSCALL is getppid, getpid, gettid, uname or sched_yield. With THREADS > 1 the N calls are split
// over that many threads (clone), which the scheduler spreads over the vCPUs.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static long nr;

static void* worker(void* arg) {
    long count = (long)arg;
    struct utsname u;
    for (long i = 0; i < count; i++) {
        // Raw syscall(2): libc may cache getpid and friends.
        if (nr == SYS_uname) {
            syscall(SYS_uname, &u);
        } else {
            syscall(nr);
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_count getppid|getpid|gettid|uname|sched_yield N [THREADS]\n");
        return 2;
    }
    if (strcmp(argv[1], "getppid") == 0) {
        nr = SYS_getppid;
    } else if (strcmp(argv[1], "getpid") == 0) {
        nr = SYS_getpid;
    } else if (strcmp(argv[1], "gettid") == 0) {
        nr = SYS_gettid;
    } else if (strcmp(argv[1], "uname") == 0) {
        nr = SYS_uname;
    } else if (strcmp(argv[1], "sched_yield") == 0) {
        nr = SYS_sched_yield;
    } else {
        fprintf(stderr, "test_count: unknown syscall %s\n", argv[1]);
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    long threads = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
    if (n < 0 || threads < 1 || threads > 64) {
        fprintf(stderr, "test_count: bad arguments\n");
        return 2;
    }
    pthread_t tids[64];
    long done = 0;
    for (long t = 0; t < threads; t++) {
        long share = n / threads + (t < n % threads ? 1 : 0);
        if (threads == 1) {
            worker((void*)share);
        } else if (pthread_create(&tids[t], NULL, worker, (void*)share) != 0) {
            perror("pthread_create");
            return 1;
        }
        done += share;
    }
    if (threads > 1) {
        for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    }
    printf("test_count: %s x %ld in %ld thread(s)\n", argv[1], done, threads);
    return 0;
}
