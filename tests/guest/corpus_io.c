// SPDX-License-Identifier: MIT
// strace comparison corpus, fd I/O: read, write, pread64, pwrite64, readv, writev and lseek on
// a tmpfs file, poll, ppoll, epoll, select and pselect6 on a pipe, memfd_create, eventfd2, timerfd_create and
// inotify with their flags, with buffers that need escaping, buffers longer than strace's -s limit, short
// and failed reads. Deterministic.
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    static const char bin[] = "tab\there \"quoted\" back\\slash\x01\x7f\xff end\n";
    static const char longer[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char buf[128];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/tmp/corpus_io.dat", O_RDWR | O_CREAT | O_TRUNC,
                          0640);
    syscall(SYS_write, fd, bin, sizeof bin - 1);
    syscall(SYS_write, fd, longer, sizeof longer - 1);
    syscall(SYS_write, fd, "", 0);
    syscall(SYS_pwrite64, fd, "PW", 2, 4);
    syscall(SYS_lseek, fd, 0, SEEK_SET);
    syscall(SYS_read, fd, buf, 10);
    syscall(SYS_read, fd, buf, sizeof buf);
    syscall(SYS_read, fd, buf, sizeof buf); /* end of file: 0 */
    syscall(SYS_pread64, fd, buf, 6, 3);
    syscall(SYS_lseek, fd, -5L, SEEK_END);
    char a[4], b[8];
    struct iovec rv[2] = {{a, sizeof a}, {b, sizeof b}};
    syscall(SYS_lseek, fd, 0, SEEK_SET);
    syscall(SYS_readv, fd, rv, 2);
    struct iovec wv[3] = {{(void*)"one ", 4}, {(void*)"two\n", 4}, {(void*)longer, 40}};
    syscall(SYS_writev, fd, wv, 3);
    /* poll and ppoll on a pipe: nothing to read yet (a timeout), then data; a negative fd is
       skipped. */
    int p[2];
    syscall(SYS_pipe2, p, 0);
    struct pollfd pf[3] = {{p[0], POLLIN, 0}, {-1, POLLIN, 0}, {p[1], POLLOUT | POLLPRI, 0}};
    syscall(SYS_poll, pf, 1, 0);
    syscall(SYS_write, p[1], "x", 1);
    syscall(SYS_poll, pf, 3, 1000);
    syscall(SYS_ppoll, pf, 2, NULL, NULL, 8);
    /* epoll on the same pipe (its byte still unread): ready, then no longer watched. */
    int ep = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
    struct epoll_event ev = {EPOLLIN, {.fd = p[0]}}, got[8];
    syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev);
    syscall(SYS_epoll_wait, ep, got, 8, 0);
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = 0x123456789aULL;
    syscall(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, p[0], &ev);
    syscall(SYS_epoll_pwait, ep, got, 8, 0, NULL, 8);
    syscall(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[0], NULL);
    syscall(SYS_epoll_wait, ep, got, 8, 0); /* nothing watched: 0 */
    syscall(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[0], NULL); /* ENOENT */
    syscall(SYS_close, ep);
    /* select and pselect6 on it: readable (and writable), then nothing asked for (a timeout). */
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {1, 0};
    syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    FD_ZERO(&ws);
    FD_SET(p[1], &ws);
    struct timespec ts0 = {0, 0};
    syscall(SYS_pselect6, (p[0] > p[1] ? p[0] : p[1]) + 1, &rs, &ws, NULL, &ts0, NULL);
    FD_ZERO(&rs);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    syscall(SYS_select, p[0] + 1, &rs, NULL, NULL, &tv);
    syscall(SYS_close, p[0]);
    syscall(SYS_close, p[1]);
    /* Descriptors of the kernel's own kinds, with their flags. */
    int mfd = (int)syscall(SYS_memfd_create, "corpus", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    syscall(SYS_close, mfd);
    int efd = (int)syscall(SYS_eventfd2, 3, EFD_CLOEXEC | EFD_NONBLOCK);
    syscall(SYS_close, efd);
    int tfd = (int)syscall(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    syscall(SYS_close, tfd);
    int ifd = (int)syscall(SYS_inotify_init1, IN_CLOEXEC | IN_NONBLOCK);
    syscall(SYS_inotify_add_watch, ifd, "/tmp", IN_CREATE | IN_DELETE | IN_ONLYDIR);
    syscall(SYS_close, ifd);
    /* ioctl: requests by name, each argument as its request defines it. On a pipe: bytes
     * waiting, non-blocking mode, close-on-exec, and tty requests that fail (ENOTTY). */
    syscall(SYS_pipe2, p, 0);
    syscall(SYS_write, p[1], "abc", 3);
    int nread = 0, on = 1;
    syscall(SYS_ioctl, p[0], FIONREAD, &nread);
    syscall(SYS_ioctl, p[0], FIONBIO, &on);
    syscall(SYS_ioctl, p[0], FIOCLEX);
    syscall(SYS_ioctl, p[0], FIONCLEX);
    struct termios tio;
    struct winsize wsz = {24, 80, 0, 0};
    syscall(SYS_ioctl, p[0], TCGETS, &tio);
    syscall(SYS_ioctl, p[0], TIOCGWINSZ, &wsz);
    syscall(SYS_ioctl, p[0], _IOR(0x99, 1, int), &nread); /* a request nobody defines */
    syscall(SYS_ioctl, p[0], _IOWR('T', 0x77, struct winsize), &wsz);
    syscall(SYS_ioctl, p[0], _IO(0x99, 2), 0);
    syscall(SYS_close, p[0]);
    syscall(SYS_close, p[1]);
    /* A pseudo-terminal's master: its number, unlocking, the line settings, the window size. */
    int pt = (int)syscall(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY);
    if (pt >= 0) {
        int ptn = -1, unlock = 0;
        syscall(SYS_ioctl, pt, TIOCGPTN, &ptn);
        syscall(SYS_ioctl, pt, TIOCSPTLCK, &unlock);
        syscall(SYS_ioctl, pt, TCGETS, &tio);
        syscall(SYS_ioctl, pt, TIOCSWINSZ, &wsz);
        syscall(SYS_ioctl, pt, TIOCGWINSZ, &wsz);
        syscall(SYS_ioctl, pt, TCSETS, &tio);
        syscall(SYS_ioctl, pt, TCFLSH, TCIFLUSH);
        syscall(SYS_ioctl, pt, TIOCOUTQ, &nread);
        syscall(SYS_ioctl, pt, TIOCGPGRP, &nread);
        syscall(SYS_close, pt);
    }
    syscall(SYS_read, 99, buf, 1);      /* EBADF */
    syscall(SYS_write, fd, NULL, 4);    /* EFAULT */
    syscall(SYS_close, fd);
    syscall(SYS_unlink, "/tmp/corpus_io.dat");
    syscall(SYS_write, 1, "corpus_io: done\n", 16);
    return 0;
}
