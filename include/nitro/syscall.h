// SPDX-License-Identifier: MIT
/// @file
/// A decoded system call event: what a Backend makes of a listener's Event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nitro/abi.h"
#include "nitro/event.h"
#include "nitro/process.h"

namespace nitro {

/// One decoded argument.
struct SyscallArg {
    std::string name;     ///< as in the man page ("pathname"); "arg0".. for unknown calls
    std::uint64_t value;  ///< the raw register value
    std::string text;     ///< strace-like rendering ("AT_FDCWD", "\"/etc/passwd\"", "0x7ffc...")
};

/// A system call entry or exit with its name, process and decoded arguments. On exits the
/// arguments are those of the paired entry, with the buffers the call filled in (read) decoded
/// from the exit.
struct Syscall {
    std::string name;       ///< "openat"; "syscall_<nr>" when the number is unknown
    std::string full_name;  ///< the kernel's entry symbol ("__x64_sys_openat"), else = name
    Abi abi = Abi::X86_64;
    std::uint64_t nr = 0;
    Direction direction = Direction::Enter;
    bool known = false;   ///< the number is in nitro's table
    bool returns = true;  ///< false for calls that never return (exit, exit_group)
    Process process;
    std::vector<SyscallArg> args;
    /// Exits: the return value, and its errno name ("ENOENT") when it is -errno.
    std::optional<std::int64_t> ret;
    std::string errno_name;
    std::string ret_text;  ///< exits: strace-like "3", "-1 ENOENT (No such file or directory)"
    /// Exits: what strace adds after the value from what the call wrote, without the
    /// parentheses ("Timeout", "[{fd=3, revents=POLLIN}]" for poll); empty for most calls.
    /// ret_text ends with it in parentheses.
    std::string ret_detail;
};

}  // namespace nitro
