// SPDX-License-Identifier: MIT
// The sub-commands of the nitro program.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "vm/qemu_launcher.h"

namespace nitro::tcg {
class TcgListener;
}

namespace nitro::cli {

/// True once SIGINT or SIGTERM arrived.
bool interrupted();

/// Options that describe a guest nitro boots itself.
struct GuestOptions {
    std::string kernel;
    std::string initrd;
    std::string append;
    std::string disk;
    int smp = 1;
    int memory = 512;
    std::string accel = "tcg";
    std::string console = "-";  ///< "-" = terminal (stdout), "" = discard, else a file
};
void add_guest_options(CLI::App& cmd, GuestOptions& g);

struct RunOptions {
    GuestOptions guest;
};
int run_command(const RunOptions& opts);

struct TraceOptions {
    GuestOptions guest;
    bool nobackend = false;
    std::string format = "text";
    std::string out;
    bool sync = false;
    bool stats = false;
    std::vector<std::string> syscalls;
    double duration = 0;
};
CLI::App* add_trace_command(CLI::App& app, TraceOptions& opts);
int trace_command(const TraceOptions& opts);

/// Attaches the TCG listener to a guest nitro booted with its plugin, with the Linux calls that
/// change a thread's identity (execve, arch_prctl...) marked for the plugin's pairing.
std::unique_ptr<tcg::TcgListener> attach_listener(const vm::QemuLauncher& vm, bool sync);
/// When --duration SEC ends the trace (never if 0).
std::chrono::steady_clock::time_point trace_deadline(double duration_s);

/// Turns the guest options into a launch configuration with the console routed as asked.
vm::LaunchConfig launch_config(const GuestOptions& g);

}  // namespace nitro::cli
