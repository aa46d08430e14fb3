// SPDX-License-Identifier: MIT
#include "vm/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "nitro/error.h"

namespace nitro::vm {

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
    NITRO_ASSERT(!argv.empty());
    int out[2], err[2], exec_err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(exec_err, O_CLOEXEC)) {
        fail_errno("pipe");
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t parent = getpid();

    pid_ = fork();
    if (pid_ < 0) fail_errno("fork");
    if (pid_ == 0) {
        // Child: only async-signal-safe calls from here on.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);  // nitro died before prctl took effect
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execvp(args[0], args.data());
        int e = errno;
        (void)!write(exec_err[1], &e, sizeof e);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    close(exec_err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    int e = 0;
    ssize_t n;
    do {
        n = read(exec_err[0], &e, sizeof e);
    } while (n < 0 && errno == EINTR);
    close(exec_err[0]);
    if (n == sizeof e) {
        wait();
        close(out_fd_);
        close(err_fd_);
        out_fd_ = err_fd_ = -1;
        pid_ = -1;
        throw Error(fmt::format("cannot run {}: {}", argv[0], std::strerror(e)));
    }
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !status_) terminate(2000);
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
}

std::optional<int> ChildProcess::poll() {
    if (status_ || pid_ <= 0) return status_;
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) status_ = st;
    return status_;
}

int ChildProcess::wait() {
    while (!status_) {
        int st = 0;
        pid_t r = waitpid(pid_, &st, 0);
        if (r == pid_) {
            status_ = st;
        } else if (r < 0 && errno != EINTR) {
            fail_errno("waitpid");
        }
    }
    return *status_;
}

void ChildProcess::signal(int sig) {
    if (pid_ > 0 && !poll()) kill(pid_, sig);
}

int ChildProcess::terminate(int grace_ms) {
    if (poll()) return *status_;
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (poll()) return *status_;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    return wait();
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        return fmt::format("killed by signal {} ({})", WTERMSIG(status),
                           strsignal(WTERMSIG(status)));
    }
    return fmt::format("ended with wait status {:#x}", status);
}

}  // namespace nitro::vm
