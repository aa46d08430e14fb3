// SPDX-License-Identifier: MIT
// After the original Nitro's Linux test: creates and removes /tmp/test_unlink.tmp.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    const char* path = "/tmp/test_unlink.tmp";
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
        perror("create");
        return 1;
    }
    close(fd);
    if (unlink(path) != 0) {
        perror("unlink");
        return 1;
    }
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "test_unlink: %s still exists\n", path);
        return 1;
    }
    printf("test_unlink: removed %s\n", path);
    return 0;
}
