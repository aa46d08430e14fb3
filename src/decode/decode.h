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

/// Appends s between double quotes with strace's escapes: \" \\ \f \n \r \t \v, other
/// non-printable bytes in octal (\0, \177, \1 -- three digits when a digit follows), or every
/// byte as \xNN when force_hex (strace's choice for random bytes, getrandom).
void append_quoted(std::string& out, std::string_view s, bool force_hex = false);
/// A quoted string of at most limit bytes, followed by "..." when more bytes existed
/// (s was longer than limit, or the source itself was cut: more_follows).
std::string quote(std::string_view s, std::size_t limit, bool more_follows = false,
                  bool force_hex = false);
/// A signal number as strace names it: "SIGKILL", "SIGRTMIN" (32), "SIGRT_3" (35), else the
/// number.
std::string format_signal(std::int64_t sig);
/// A signal set of `bytes` bytes (little-endian words) as strace prints it: "[USR2 RT_3]",
/// "[]", or "~[...]" (the signals not in the set) when two thirds or more are in it.
std::string format_sigset(std::string_view bytes);
/// "NULL" for 0, else 0x-prefixed hex.
std::string format_pointer(std::uint64_t addr);
/// "ENOENT (No such file or directory)"; the number when the name is unknown.
std::string format_errno(int err);

/// What a decoded return value looks like.
struct RetText {
    std::string text;        ///< "3", "-1 ENOENT (No such file or directory)", "0x7f00..."
    std::string errno_name;  ///< "ENOENT" when the call failed with a known errno
};
/// The return value of a call with info (nullptr: unknown call) as strace prints it. With the
/// call's arguments, returns that are flag sets print as such ("0x800 (flags O_RDONLY|...)" for
/// fcntl F_GETFL).
RetText format_return(const SyscallInfo* info, std::int64_t ret, bool compat,
                      const std::array<std::uint64_t, 6>* args = nullptr);

/// Reads the calling process's memory for decoders, when the listener captured nothing for an
/// argument or when a structure points to more memory (iovec buffers). In synchronous mode the
/// vCPU waits while nitro decodes, so the read sees what the call saw; in asynchronous mode it
/// is late. Implementations never throw.
class MemoryReader {
  public:
    virtual ~MemoryReader() = default;
    /// Copies len bytes from addr into out; returns how many were read before the first
    /// unreadable byte.
    virtual std::size_t read(std::uint64_t addr, char* out, std::size_t len) const = 0;
};

/// Everything an argument printer may use.
struct ArgContext {
    bool compat = false;
    std::array<std::uint64_t, 6> args{};
    /// The capture for this argument, from the event being decoded (nullptr: none).
    const Capture* capture = nullptr;
    /// For an iovec array argument: the buffers it points to, captured (nullptr: none).
    const Capture* iovec_data = nullptr;
    /// All of the event's captures (nullptr: none), for those found by more than the argument
    /// (CaptureKind::Deref, by its field).
    const std::vector<Capture>* event_captures = nullptr;
    /// Decoding at an exit: the return value is known.
    std::optional<std::int64_t> ret;
    std::size_t string_limit = kDefaultStringLimit;
    /// Guest memory for what was not captured (nullptr: addresses are printed instead).
    const MemoryReader* memory = nullptr;
    /// At the exit: the argument's text decoded at the entry (in/out arguments such as
    /// accept's addrlen print "[in => out]").
    std::string_view entry_text;
    /// The user stack pointer at the entry (rt_sigreturn's signal frame is there).
    std::uint64_t stack_pointer = 0;
};

/// Renders argument `index` of a call described by info.
std::string format_arg(const SyscallInfo& info, std::size_t index, const ArgContext& ctx);
/// format_arg(), appended to out: the same text, without a string of its own for the common
/// argument types (numbers, pointers, captured strings and buffers).
void append_arg(std::string& out, const SyscallInfo& info, std::size_t index,
                const ArgContext& ctx);
/// At an exit (ctx.ret set; ctx.event_captures and ctx.memory as for format_arg): what strace
/// prints in parentheses after the return value, from what the call wrote ("Timeout",
/// "[{fd=3, revents=POLLIN}]" for poll); empty for most calls and for failures.
std::string return_detail(const SyscallInfo& info, const ArgContext& ctx);
/// Whether the argument is decoded from bytes captured at the exit (read's buffer): its entry
/// rendering is provisional.
bool decoded_at_exit(const ArgInfo& arg);
/// The same for argument index of a call with these register values (some arguments are
/// outputs only for some commands, e.g. prctl's PR_GET_NAME).
bool decoded_at_exit(const SyscallInfo& info, std::size_t index, const std::array<std::uint64_t, 6>& args);

/// How many of a call's arguments strace prints for these register values: all of them, except
/// that open/openat/creat-like calls show their mode only when the flags create a file, and
/// fcntl shows its third argument only for commands that take one.
std::size_t printed_args(const SyscallInfo& info, const std::array<std::uint64_t, 6>& args);

/// Index of the first argument strace prints only at the exit (the end of the entry half of
/// an "<unfinished ...>" line); nargs when there is none. It may depend on another argument
/// (ioctl's request, prctl's option).
std::size_t first_exit_arg(const SyscallInfo& info, const std::array<std::uint64_t, 6>& args);

/// The order in which the text format prints a call's arguments, as strace does: clone shows
/// its stack before its flags. Arguments whose text is empty are not printed (clone's
/// tid pointers and tls unless the flags use them).
std::vector<std::size_t> text_order(const SyscallInfo& info, std::size_t nargs);

/// What a successful execve passed, read back at its exit from the new program's initial stack
/// (rsp: the exit's stack pointer): the old address space is gone by then, and a page the
/// caller had not touched (a string in a forked child's .rodata) could not be read at the entry.
/// The kernel copied argv, the environment and the file name (AT_EXECFN) onto that stack.
struct ExecStack {
    std::vector<std::string> argv;
    bool argv_complete = true;  ///< false: cut at a bound or an unreadable byte
    std::size_t envc = 0;
    std::string execfn;         ///< empty when there is no readable AT_EXECFN
};
std::optional<ExecStack> read_exec_stack(const MemoryReader& memory, std::uint64_t rsp,
                                         bool compat);
/// Replaces execve/execveat argument texts that the entry could not decode (an address, an
/// incomplete array) by what the exit's stack shows; `texts` are the call's argument texts in
/// spec order, `values` its raw arguments. Returns whether anything changed.
bool complete_exec_args(const SyscallInfo& info, const std::array<std::uint64_t, 6>& values,
                        const ExecStack& stack, std::vector<std::string*>& texts,
                        std::size_t string_limit = kDefaultStringLimit);

/// The capture rules nitro's decoders want for a call, per direction (empty when none).
struct CapturePlan {
    std::vector<CaptureRule> enter;
    std::vector<CaptureRule> exit;
};
CapturePlan capture_plan(const SyscallInfo& info, std::uint32_t max = kCaptureMax);

}  // namespace nitro::decode
