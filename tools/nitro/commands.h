// SPDX-License-Identifier: MIT
// The sub-commands of the nitro program.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "vm/qemu_launcher.h"

namespace nitro::cli {

/// True once SIGINT or SIGTERM arrived.
bool interrupted();
/// -v count (0 = warnings only).
int verbosity();

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
/// Adds --kernel ... --accel; with kernel_required, --kernel is mandatory.
void add_guest_options(CLI::App& cmd, GuestOptions& g, bool kernel_required = true);

struct RunOptions {
    GuestOptions guest;
};
int run_command(const RunOptions& opts);

/// `nitro trace`: one target (boot, libvirt domain or QMP socket), one listener, output.
struct TraceOptions {
    GuestOptions guest;  ///< target 1: nitro boots the guest (--kernel ...)
    std::string domain;  ///< target 2: a libvirt domain (--domain)
    std::string connect = "qemu:///system";
    bool start = false;        ///< start the domain when it is shut off (--start)
    std::string qmp;           ///< target 3: a QEMU's QMP socket (--qmp)
    std::string ctl;           ///< the plugin's control file of a --qmp target (default by pid)
    std::string kernel_image;  ///< the guest's kernel image for the profile (attached targets)
    std::string profile_file;  ///< --profile: ISF (.json/.json.xz), offsets or nitro profile
    std::string profile_cache; ///< --profile-cache DIR (default ~/.cache/nitro)
    bool no_profile_cache = false;

    std::string listener = "tcg";
    bool nobackend = false;
    std::string format = "text";
    std::string out;
    bool sync = false;
    bool stats = false;
    /// --registers: read every register at every event (tcg listener) and list them in
    /// decoded JSON records too (by default these list cr3 and rax, raw ones what was read)
    bool registers = false;
    std::vector<std::string> syscalls;  ///< -e NAME,... : only these calls
    int64_t pid = 0;                    ///< --pid: only this process (0 = all)
    std::string process;                ///< --process: only processes with this name
    bool follow = false;                ///< -f,--follow: also their descendants (strace -f)
    double duration = 0;
};
CLI::App* add_trace_command(CLI::App& app, TraceOptions& opts);
int trace_command(const TraceOptions& opts);

/// `nitro prepare DOMAIN [--connect URI] [--undo]`.
struct PrepareOptions {
    std::string domain;
    std::string connect = "qemu:///system";
    bool undo = false;
};
CLI::App* add_prepare_command(CLI::App& app, PrepareOptions& opts);
int prepare_command(const PrepareOptions& opts);

/// `nitro convert FILE`: a capture file to text or JSON.
struct ConvertOptions {
    std::string file;
    std::string format = "jsonl";
    std::string out;
    std::vector<std::string> syscalls;
    bool stats = false;
};
CLI::App* add_convert_command(CLI::App& app, ConvertOptions& opts);
int convert_command(const ConvertOptions& opts);

/// When --duration SEC ends the trace (never if 0).
std::chrono::steady_clock::time_point trace_deadline(double duration_s);

/// Turns the guest options into a launch configuration with the console routed as asked.
vm::LaunchConfig launch_config(const GuestOptions& g);

}  // namespace nitro::cli
