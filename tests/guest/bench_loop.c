// SPDX-License-Identifier: MIT
// Guest-timed benchmark workloads; prints one line "BENCH name iterations ns_per_op".
//   bench_loop null N   N x getppid (a null system call)
//   bench_loop file N   N x open/read/close of a small file on tmpfs
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_loop null|file N\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    char buf[256];
    const char* path = "/tmp/bench_loop.dat";
    if (strcmp(argv[1], "file") == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "0123456789abcdef", 16) != 16) {
            perror("bench_loop setup");
            return 1;
        }
        close(fd);
    } else if (strcmp(argv[1], "null") != 0) {
        fprintf(stderr, "bench_loop: unknown workload %s\n", argv[1]);
        return 2;
    }
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (argv[1][0] == 'n') {
            syscall(SYS_getppid);
        } else {
            int fd = open(path, O_RDONLY);
            if (fd < 0 || read(fd, buf, sizeof buf) < 0) {
                perror("bench_loop");
                return 1;
            }
            close(fd);
        }
    }
    double t1 = now_ns();
    printf("BENCH %s %ld %.1f\n", argv[1], n, n ? (t1 - t0) / n : 0.0);
    return 0;
}
