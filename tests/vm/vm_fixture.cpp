// SPDX-License-Identifier: MIT
#include "vm_fixture.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "vm/child_process.h"

namespace nitro::test {

CommandResult run_nitro(const std::vector<std::string>& args, int timeout_s) {
    std::vector<std::string> argv = {NITRO_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    vm::ChildProcess p(argv);
    CommandResult r;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    pollfd fds[2] = {{p.stdout_fd(), POLLIN, 0}, {p.stderr_fd(), POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            p.signal(SIGKILL);
            r.err += "\n[test: nitro timed out]";
            break;
        }
        if (poll(fds, 2, 200) <= 0) continue;
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[65536];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                fds[i].fd = -1;
                open_fds--;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
            }
        }
    }
    int st = p.wait();
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

std::string guest_kernel() {
    std::string k = std::string(NITRO_GUEST_DIR) + "/vmlinuz";
    return std::filesystem::exists(k) ? k : "";
}

std::string newer_guest_kernel() {
    std::string k = std::string(NITRO_GUEST_DIR) + "/newer/vmlinuz";
    return std::filesystem::exists(k) ? k : "";
}

std::string guest_initrd() { return std::string(NITRO_GUEST_DIR) + "/initrd.img"; }

std::vector<std::string> guest_args(const std::string& cmd, int smp, const std::string& kernel) {
    return {"--kernel", kernel.empty() ? guest_kernel() : kernel,       "--initrd", guest_initrd(), "--smp",
            std::to_string(smp), "--append", "quiet nitro.run=\"" + cmd + "\""};
}

int count_lines_with(const std::string& text, const std::string& needle) {
    int n = 0;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (text.compare(start, end - start, needle) == 0 ||
            std::string_view(text).substr(start, end - start).find(needle) != std::string::npos) {
            n++;
        }
        start = end + 1;
    }
    return n;
}

}  // namespace nitro::test
