// SPDX-License-Identifier: MIT
// strace comparison corpus, memory: brk, mmap (anonymous, file, fixed), mprotect, munmap.
// Deterministic apart from the addresses the kernel picks (compared as they are: nitro and strace
// watch the same run).
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long cur = syscall(SYS_brk, 0);
    syscall(SYS_brk, cur + 0x21000);
    syscall(SYS_brk, cur);
    char* p = (char*)syscall(SYS_mmap, 0, 0x3000, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    syscall(SYS_mprotect, p, 0x1000, PROT_READ);
    syscall(SYS_mprotect, p + 0x1000, 0x1000, PROT_NONE);
    syscall(SYS_mprotect, p, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC);
    syscall(SYS_mmap, p + 0x2000, 0x1000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
            -1, 0);
    syscall(SYS_munmap, p, 0x3000);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/tests/corpus_mem", O_RDONLY);
    void* f = (void*)syscall(SYS_mmap, 0, 0x2000, PROT_READ, MAP_SHARED, fd, 0x1000);
    syscall(SYS_munmap, f, 0x2000);
    syscall(SYS_mmap, 0, 0x1000, PROT_READ, MAP_PRIVATE | MAP_POPULATE | MAP_NORESERVE, fd, 0);
    syscall(SYS_mmap, 0, 0x1000, PROT_WRITE, MAP_SHARED, fd, 0); /* EACCES: read-only fd */
    syscall(SYS_mmap, 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* EINVAL */
    syscall(SYS_mmap, 0, 0x200000, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_GROWSDOWN, -1, 0);
    syscall(SYS_close, fd);
    syscall(SYS_write, 1, "corpus_mem: done\n", 17);
    return 0;
}
