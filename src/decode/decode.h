// SPDX-License-Identifier: MIT
// Argument printers: system call arguments and return values rendered as strace renders them,
// from register values and the bytes the listener captured at event time. Printers never fail:
// what was not captured (or could not be read) is printed as the raw address.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nitro/event.h"
#include "nitro/listener.h"
#include "nitro/syscall_table.h"

namespace nitro::decode {

/// strace's default -s: bytes of a buffer printed before "...".
inline constexpr std::size_t kDefaultStringLimit = 32;
/// Bytes the listener is asked to copy per string or buffer.
inline constexpr std::uint32_t kCaptureMax = 4096;

/// Appends s between double quotes with C escapes (\n \t \" \\, other non-printables \xNN).
void append_quoted(std::string& out, std::string_view s);
/// A quoted string of at most limit bytes, followed by "..." when more bytes existed
/// (s was longer than limit, or the source itself was cut: more_follows).
std::string quote(std::string_view s, std::size_t limit, bool more_follows = false);
/// "NULL" for 0, else 0x-prefixed hex.
std::string format_pointer(std::uint64_t addr);
/// "ENOENT (No such file or directory)"; the number when the name is unknown.
std::string format_errno(int err);

/// What a decoded return value looks like.
struct RetText {
    std::string text;        ///< "3", "-1 ENOENT (No such file or directory)", "0x7f00..."
    std::string errno_name;  ///< "ENOENT" when the call failed with a known errno
};
/// The return value of a call with info (nullptr: unknown call) as strace prints it.
RetText format_return(const SyscallInfo* info, std::int64_t ret, bool compat);

/// Everything an argument printer may use.
struct ArgContext {
    bool compat = false;
    std::array<std::uint64_t, 6> args{};
    /// The capture for this argument, from the event being decoded (nullptr: none).
    const Capture* capture = nullptr;
    /// Decoding at an exit: the return value is known.
    std::optional<std::int64_t> ret;
    std::size_t string_limit = kDefaultStringLimit;
};

/// Renders argument `index` of a call described by info.
std::string format_arg(const SyscallInfo& info, std::size_t index, const ArgContext& ctx);
/// Whether the argument is decoded from bytes captured at the exit (read's buffer): its entry
/// rendering is provisional.
bool decoded_at_exit(const ArgInfo& arg);

/// How many of a call's arguments strace prints for these register values: all of them, except
/// that open/openat/creat-like calls show their mode only when the flags create a file.
std::size_t printed_args(const SyscallInfo& info, const std::array<std::uint64_t, 6>& args);

/// The capture rules nitro's decoders want for a call, per direction (empty when none).
struct CapturePlan {
    std::vector<CaptureRule> enter;
    std::vector<CaptureRule> exit;
};
CapturePlan capture_plan(const SyscallInfo& info, std::uint32_t max = kCaptureMax);

}  // namespace nitro::decode
