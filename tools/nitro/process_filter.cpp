// SPDX-License-Identifier: MIT
#include "process_filter.h"

#include <utility>

namespace nitro::cli {

namespace {

constexpr std::uint64_t kCloneThread = 0x10000;  // CLONE_THREAD: a thread, not a process

// The pid of the process sc's return created, or 0: fork, vfork, and clone or clone3 without
// CLONE_THREAD, returning in the creator (a positive value; the new task returns 0).
std::int64_t created_process(const Syscall& sc) {
    if (sc.direction != Direction::Exit || !sc.ret || *sc.ret <= 0) return 0;
    if (sc.name == "fork" || sc.name == "vfork") return *sc.ret;
    if (sc.name == "clone") {
        // x86-64 and i386 alike: the flags are the first argument.
        if (sc.args.empty() || (sc.args[0].value & kCloneThread)) return 0;
        return *sc.ret;
    }
    if (sc.name == "clone3") {
        // The flags are in the structure the first argument points to, decoded into its text.
        if (sc.args.empty() || sc.args[0].text.find("CLONE_THREAD") != std::string::npos) return 0;
        return *sc.ret;
    }
    return 0;
}

}  // namespace

ProcessFilter::ProcessFilter(std::int64_t pid, std::string name, bool follow)
    : pid_(pid), name_(std::move(name)), follow_(follow) {}

bool ProcessFilter::selected(const Process& p) const {
    if (pid_ != 0 && p.pid != pid_) return false;
    return name_.empty() || p.name == name_;
}

bool ProcessFilter::wanted(const Syscall& sc) {
    if (!active()) return true;
    const Process& p = sc.process;
    if (!p.valid) return false;
    if (!follow_) return selected(p);
    const bool in = selected(p) || followed_.count(p.pid) != 0 ||
                    (p.ppid != 0 && followed_.count(p.ppid) != 0);
    if (!in) return false;
    if (sc.direction == Direction::Enter && sc.name == "exit_group") {
        followed_.erase(p.pid);
        return true;
    }
    follow(p.pid);
    if (std::int64_t child = created_process(sc)) follow(child);
    return true;
}

}  // namespace nitro::cli
