// SPDX-License-Identifier: MIT
// After the original Nitro's Linux test: opens /proc/cpuinfo and closes it.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    int fd = open("/proc/cpuinfo", O_RDONLY);
    if (fd < 0) {
        perror("open /proc/cpuinfo");
        return 1;
    }
    close(fd);
    printf("test_open: opened /proc/cpuinfo as fd %d\n", fd);
    return 0;
}
