// SPDX-License-Identifier: MIT
// After the original Nitro's Linux test: writes "Hello World!" to a file it opened.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    const char msg[] = "Hello World!";
    int fd = open("/tmp/test_write.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open /tmp/test_write.txt");
        return 1;
    }
    ssize_t n = write(fd, msg, strlen(msg));
    close(fd);
    if (n != (ssize_t)strlen(msg)) {
        perror("write");
        return 1;
    }
    printf("test_write: wrote %zd bytes to fd %d\n", n, fd);
    return 0;
}
