// SPDX-License-Identifier: MIT
// Thread ids and stop replies ('T05thread:p1.2;...', 'S05', 'W00', 'X09').
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nitro::gdb {

/// A thread id; with the multiprocess extension it is "p<pid>.<tid>" (hex). For QEMU a thread
/// is a vCPU, numbered from 1.
struct ThreadId {
    std::optional<std::int64_t> pid;  // set in the multiprocess form
    std::int64_t tid = 0;             // -1: all threads, 0: any thread

    static ThreadId all() { return {std::nullopt, -1}; }
    static ThreadId any() { return {std::nullopt, 0}; }
    /// Throws nitro::Error when malformed.
    static ThreadId parse(std::string_view text);
    std::string to_string() const;
    bool operator==(const ThreadId&) const = default;
};

struct StopReply {
    enum class Kind {
        Signal,      // 'S' or 'T': the target stopped
        Exited,      // 'W': the process exited with `code`
        Terminated,  // 'X': the process was killed by signal `code`
        NoResumed,   // 'N': nothing left to run
    };

    Kind kind = Kind::Signal;
    int code = 0;  // signal number (Signal, Terminated) or exit status (Exited)
    std::optional<ThreadId> thread;
    std::optional<int> core;
    std::optional<std::int64_t> process;  // ";process:pid" of W/X
    /// Why it stopped, when the stub says: "watch", "rwatch", "awatch", "swbreak", "hwbreak", ...
    std::string reason;
    std::optional<std::uint64_t> reason_address;  // watchpoint data address
    /// Registers the stub sent along (register number -> target-order bytes).
    std::vector<std::pair<int, std::vector<std::uint8_t>>> registers;

    /// A register sent with the reply, as a little-endian number (at most 8 bytes).
    std::optional<std::uint64_t> register_value(int regnum) const;
    bool is_exit() const { return kind == Kind::Exited || kind == Kind::Terminated; }

    /// Parses a stop reply; throws nitro::Error when malformed.
    static StopReply parse(std::string_view payload);
};

/// True when a payload starts like a stop reply (as opposed to 'O' console output or 'OK').
bool looks_like_stop_reply(std::string_view payload);

}  // namespace nitro::gdb
