// SPDX-License-Identifier: MIT
// strace comparison corpus, file family: every call is made once through its own system call
// number (raw syscall(2), so libc cannot substitute another call), with successes and failures.
// Deterministic: fixed paths under /tmp/corpus_file.d, fixed modes.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DIR "/tmp/corpus_file.d"

int main(void) {
    struct stat st;
    struct statx stx;
    char buf[256];
    syscall(SYS_mkdir, DIR, 0755);
    syscall(SYS_mkdir, DIR, 0755); /* EEXIST */
    syscall(SYS_chdir, DIR);
    int dfd = (int)syscall(SYS_open, DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    syscall(SYS_mkdirat, dfd, "sub", 0700);
    int fd = (int)syscall(SYS_creat, DIR "/a.txt", 0644);
    syscall(SYS_write, fd, "corpus\n", 7);
    syscall(SYS_close, fd);
    fd = (int)syscall(SYS_open, "a.txt", O_RDWR | O_APPEND | O_NOFOLLOW);
    syscall(SYS_close, fd);
    fd = (int)syscall(SYS_openat, AT_FDCWD, "/nonexistent/file", O_RDONLY); /* ENOENT */
    fd = (int)syscall(SYS_openat, dfd, "b.txt", O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0600);
    syscall(SYS_close, fd);
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .mode = 0, .resolve = RESOLVE_BENEATH};
    fd = (int)syscall(SYS_openat2, dfd, "a.txt", &how, sizeof how);
    syscall(SYS_stat, DIR "/a.txt", &st);
    syscall(SYS_lstat, "a.txt", &st);
    syscall(SYS_fstat, fd, &st);
    syscall(SYS_newfstatat, dfd, "b.txt", &st, AT_SYMLINK_NOFOLLOW);
    syscall(SYS_newfstatat, AT_FDCWD, "missing", &st, 0); /* ENOENT */
    syscall(SYS_statx, AT_FDCWD, "a.txt", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx);
    syscall(SYS_close, fd);
    syscall(SYS_access, "a.txt", R_OK | W_OK);
    syscall(SYS_access, "missing", F_OK); /* ENOENT */
    syscall(SYS_faccessat, dfd, "b.txt", X_OK); /* EACCES for non-root, root: 0600 -> EACCES */
    syscall(SYS_faccessat2, AT_FDCWD, "a.txt", R_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
    syscall(SYS_symlink, "a.txt", "link");
    syscall(SYS_readlink, "link", buf, sizeof buf);
    syscall(SYS_readlinkat, dfd, "link", buf, 3); /* truncated to 3 bytes */
    syscall(SYS_readlink, "a.txt", buf, sizeof buf); /* EINVAL: not a link */
    syscall(SYS_rename, "a.txt", "c.txt");
    syscall(SYS_renameat, dfd, "c.txt", AT_FDCWD, DIR "/d.txt");
    syscall(SYS_renameat2, AT_FDCWD, "d.txt", dfd, "b.txt", RENAME_NOREPLACE); /* EEXIST */
    syscall(SYS_renameat2, AT_FDCWD, "d.txt", dfd, "b.txt", RENAME_EXCHANGE);
    /* The directory's entries, as readdir reads them, to the end; and with the old call. */
    static char dents[32768];
    syscall(SYS_getdents64, dfd, dents, sizeof dents);
    syscall(SYS_getdents64, dfd, dents, sizeof dents); /* 0: the end */
    syscall(SYS_lseek, dfd, 0, SEEK_SET);
    syscall(SYS_getdents, dfd, dents, sizeof dents);
    syscall(SYS_getdents64, fd, dents, sizeof dents); /* EBADF: closed */
    syscall(SYS_unlink, "link");
    syscall(SYS_unlink, "link"); /* ENOENT */
    syscall(SYS_unlinkat, dfd, "b.txt", 0);
    syscall(SYS_unlinkat, AT_FDCWD, "d.txt", 0);
    syscall(SYS_unlinkat, dfd, "sub", AT_REMOVEDIR);
    syscall(SYS_chdir, "/tmp");
    syscall(SYS_rmdir, DIR "/sub"); /* ENOENT */
    /* Modes and masks: a whole st_mode passed as a creation mode (gzip does), set-user-ID,
     * the sticky bit of a directory, the process's file mask and the previous one. */
    syscall(SYS_umask, 022);
    syscall(SYS_umask, 077);
    int mf = (int)syscall(SYS_openat, AT_FDCWD, "/tmp/corpus_mode", O_WRONLY | O_CREAT | O_EXCL, 0100644);
    syscall(SYS_fchmod, mf, 04755);
    syscall(SYS_close, mf);
    syscall(SYS_mkdir, "/tmp/corpus_sticky", 01777); /* 01700 after the mask */
    syscall(SYS_newfstatat, AT_FDCWD, "/tmp/corpus_sticky", &st, 0);
    syscall(SYS_rmdir, "/tmp/corpus_sticky");
    /* File times: given, left alone (UTIME_OMIT), now (UTIME_NOW), all now (NULL). */
    struct timespec times[2] = {{1700000000, 5}, {0, UTIME_OMIT}};
    syscall(SYS_utimensat, AT_FDCWD, "/tmp/corpus_mode", times, 0);
    times[1].tv_sec = 86400;
    times[1].tv_nsec = 0;
    syscall(SYS_utimensat, AT_FDCWD, "/tmp/corpus_mode", times, 0);
    times[0].tv_nsec = UTIME_NOW;
    times[1].tv_nsec = UTIME_NOW;
    syscall(SYS_utimensat, AT_FDCWD, "/tmp/corpus_mode", times, AT_SYMLINK_NOFOLLOW);
    syscall(SYS_utimensat, AT_FDCWD, "/tmp/corpus_mode", NULL, 0);
    syscall(SYS_utimensat, AT_FDCWD, "missing", NULL, 0); /* ENOENT */
    syscall(SYS_unlink, "/tmp/corpus_mode");
    /* A FIFO (no device number shown) and a character device (its number shown). */
    syscall(SYS_mknodat, AT_FDCWD, "/tmp/corpus_fifo", S_IFIFO | 0600, 0);
    syscall(SYS_mknod, "/tmp/corpus_null", S_IFCHR | 0600, makedev(1, 3));
    syscall(SYS_unlink, "/tmp/corpus_fifo");
    syscall(SYS_unlink, "/tmp/corpus_null");
    /* A file system mounted with flags, and detached. */
    syscall(SYS_mkdir, "/tmp/corpus_mnt", 0700);
    syscall(SYS_mount, "none", "/tmp/corpus_mnt", "tmpfs", MS_NOSUID | MS_NODEV | MS_SILENT, NULL);
    syscall(SYS_umount2, "/tmp/corpus_mnt", MNT_DETACH);
    syscall(SYS_umount2, "/tmp/corpus_mnt", MNT_DETACH); /* EINVAL: no longer mounted */
    syscall(SYS_rmdir, "/tmp/corpus_mnt");
    /* The file system of a path and of a descriptor; the system's memory and load. */
    struct statfs sfs;
    syscall(SYS_statfs, "/proc", &sfs);
    int pfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self", O_RDONLY | O_DIRECTORY);
    syscall(SYS_fstatfs, pfd, &sfs);
    syscall(SYS_close, pfd);
    syscall(SYS_statfs, "missing", &sfs); /* ENOENT */
    struct sysinfo si;
    syscall(SYS_sysinfo, &si);
    /* The kernel log: its size, and a read of nothing (what it holds differs per boot). */
    char klog[16];
    syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
    syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, klog, 0);
    /* Supplementary groups: how many, set, read back. */
    gid_t groups[4] = {0, 1, 2, 3};
    syscall(SYS_getgroups, 0, NULL);
    syscall(SYS_setgroups, 2, groups + 1);
    syscall(SYS_getgroups, 4, groups);
    syscall(SYS_setgroups, 0, NULL);
    syscall(SYS_close, dfd);
    syscall(SYS_rmdir, DIR);
    syscall(SYS_write, 1, "corpus_file: done\n", 18);
    return 0;
}
