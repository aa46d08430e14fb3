// SPDX-License-Identifier: MIT
// A child process nitro starts and owns: it dies with nitro (PR_SET_PDEATHSIG), lives in
// its own process group (so a terminal's Ctrl-C reaches only nitro, which then stops it
// cleanly), and its stdout/stderr come back through pipes.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace nitro::vm {

class ChildProcess {
public:
    /// Starts argv[0] (searched in PATH); throws nitro::Error if it cannot be executed.
    explicit ChildProcess(const std::vector<std::string>& argv);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    int stdout_fd() const { return out_fd_; }
    int stderr_fd() const { return err_fd_; }

    /// Non-blocking: the exit status (as from waitpid) once the child has ended.
    std::optional<int> poll();
    /// Blocks until the child ends; returns the waitpid status.
    int wait();
    /// SIGTERM, then SIGKILL after grace_ms; returns the waitpid status.
    int terminate(int grace_ms);
    void signal(int sig);

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    std::optional<int> status_;
};

/// "exited with status 1", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

}  // namespace nitro::vm
