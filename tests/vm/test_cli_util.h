// SPDX-License-Identifier: MIT
// Helpers of the command-line VM tests: a nitro running in the background (for Ctrl-C), a QEMU
// the test starts itself (for --qmp), files.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vm/child_process.h"
#include "vm_fixture.h"

namespace nitro::test {

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

/// A temporary directory, removed with everything in it.
struct ScratchDir {
    std::string path;
    explicit ScratchDir(const std::string& parent = "/tmp") {
        std::string t = parent + "/nitro-test-XXXXXX";
        path = mkdtemp(t.data()) ? t : "";
        if (!path.empty()) std::filesystem::permissions(path, std::filesystem::perms(0755));
    }
    ~ScratchDir() {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
};

/// A process whose output is collected by threads (so it never blocks on a full pipe).
class Background {
  public:
    explicit Background(const std::vector<std::string>& argv) : p_(argv) {
        out_thread_ = std::thread([this] { drain(p_.stdout_fd(), out_); });
        err_thread_ = std::thread([this] { drain(p_.stderr_fd(), err_); });
    }
    ~Background() {
        if (!p_.poll()) p_.terminate(2000);
        join();
    }
    pid_t pid() const { return p_.pid(); }
    bool running() { return !p_.poll(); }
    void signal(int sig) { p_.signal(sig); }
    /// Waits for the end (SIGKILL after timeout); the exit code, or 128 + signal.
    int wait(int timeout_s) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
        while (!p_.poll() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (!p_.poll()) p_.signal(SIGKILL);
        int st = p_.wait();
        join();
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    const std::string& out() const { return out_; }
    const std::string& err() const { return err_; }

  private:
    static void drain(int fd, std::string& into) {
        char buf[65536];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            into.append(buf, static_cast<size_t>(n));
        }
    }
    void join() {
        if (out_thread_.joinable()) out_thread_.join();
        if (err_thread_.joinable()) err_thread_.join();
    }
    vm::ChildProcess p_;
    std::string out_, err_;
    std::thread out_thread_, err_thread_;
};

/// Waits until pred() or the timeout; returns pred().
template <typename Pred>
bool wait_for(Pred pred, int timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return pred();
}

/// The line of test_open's open of /proc/cpuinfo in nitro's text output.
inline constexpr const char* kCpuinfoOpen = "test_open openat(AT_FDCWD, \"/proc/cpuinfo\"";

}  // namespace nitro::test
