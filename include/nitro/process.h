// SPDX-License-Identifier: MIT
/// @file
/// The guest process (thread) that made a system call, as a backend reads it from guest memory.
#pragma once

#include <cstdint>
#include <string>

namespace nitro {

/// A guest thread and the process it belongs to. Values come from guest memory (untrusted):
/// when they could not be read, valid is false and error says why; the numbers are then 0.
struct Process {
    std::string name;       ///< the thread's command name (Linux: task_struct.comm, <= 15 chars)
    std::int64_t pid = 0;   ///< process id (Linux: tgid)
    std::int64_t tid = 0;   ///< thread id (Linux: task_struct.pid)
    std::int64_t ppid = 0;  ///< parent's process id (Linux: real_parent->tgid); 0 if unknown
    std::uint64_t descriptor = 0;  ///< kernel address of the OS's descriptor (task_struct)
    /// The executable's path (Linux: the task's mm->exe_file, as /proc/PID/exe shows it); empty
    /// for a task without one (a kernel thread) or when it could not be read.
    std::string exe;
    bool valid = false;
    std::string error;  ///< what could not be read, when !valid
};

}  // namespace nitro
