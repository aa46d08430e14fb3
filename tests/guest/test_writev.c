// SPDX-License-Identifier: MIT
// writev of buffers that the program overwrites right after each call: what a call wrote is
// known only at the call, so a tracer that reads the buffers later sees other bytes.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    char a[16], b[16];
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0) return 1;
    for (int i = 0; i < 20; i++) {
        snprintf(a, sizeof a, "round %02d", i);
        snprintf(b, sizeof b, "part two %02d", i);
        struct iovec v[2] = {{a, strlen(a)}, {b, strlen(b)}};
        if (writev(fd, v, 2) != (ssize_t)(strlen(a) + strlen(b))) return 1;
        memset(a, 'x', sizeof a - 1);
        memset(b, 'y', sizeof b - 1);
    }
    close(fd);
    printf("test_writev: wrote 20 rounds to fd %d\n", fd);
    return 0;
}
