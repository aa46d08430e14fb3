// SPDX-License-Identifier: MIT
// All tasks of a Linux guest, from init_task along task_struct.tasks (one entry per process)
// and, when the kernel has it, each process's thread_group list. Guest memory is untrusted:
// the walk is bounded, detects cycles that do not come back to the head, and reports what it
// could not read instead of failing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nitro/memory.h"
#include "os/linux/btf_profile.h"

namespace nitro::linux_os {

struct TaskEntry {
    uint64_t task = 0;  // kernel address of the task_struct
    int32_t pid = 0;    // thread id
    int32_t tgid = 0;   // process id
    std::string comm;
};

struct TaskList {
    std::vector<TaskEntry> tasks;  // init_task first, then in list order
    bool truncated = false;        // stopped at max_tasks
    bool corrupt = false;          // a cycle not through the head, or an unreadable link
    std::string error;             // what stopped the walk early (empty when it completed)
};

struct TaskListOptions {
    size_t max_tasks = 65536;
    bool threads = true;  // also walk thread_group (kernels that have it, e.g. 6.1)
};

// Walks the task list through `kernel` (an address space that maps kernel memory, e.g. the
// kernel page tables or any process's without KPTI). init_task is its runtime address.
TaskList list_tasks(AddressSpace& kernel, const KernelProfile& profile, uint64_t init_task,
                    const TaskListOptions& options = {});

}  // namespace nitro::linux_os
