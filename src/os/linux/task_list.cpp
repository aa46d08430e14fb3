// SPDX-License-Identifier: MIT
#include "os/linux/task_list.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <unordered_set>

#include "os/linux/process.h"

namespace nitro::linux_os {
namespace {

struct Walker {
    AddressSpace& as;
    const KernelProfile& p;
    const TaskListOptions& o;
    TaskList out;
    std::unordered_set<uint64_t> seen;  // task_structs already listed
    size_t steps = 0;                   // list links followed, over all lists

    std::optional<uint64_t> read_ptr(uint64_t va) {
        auto r = as.read_u64(GuestVirt(va));
        if (!r.ok()) return std::nullopt;
        return r.value();
    }

    // Adds the task; false when the walk must stop (limit reached or unreadable).
    bool add(uint64_t task) {
        if (out.tasks.size() >= o.max_tasks) {
            out.truncated = true;
            return false;
        }
        const auto& t = p.task_struct;
        auto pid = as.read_u32(GuestVirt(task + t.pid.offset));
        auto tgid = as.read_u32(GuestVirt(task + t.tgid.offset));
        std::array<char, 64> comm{};
        const size_t n = std::min<size_t>(t.comm.size, comm.size());
        auto c = as.read(GuestVirt(task + t.comm.offset),
                         std::as_writable_bytes(std::span(comm.data(), n)));
        if (!pid.ok() || !tgid.ok() || !c.ok()) {
            out.corrupt = true;
            out.error = fmt::format("task_struct {:#x} unreadable", task);
            return false;
        }
        out.tasks.push_back({task, static_cast<int32_t>(pid.value()),
                             static_cast<int32_t>(tgid.value()),
                             std::string(comm.data(), strnlen(comm.data(), n))});
        seen.insert(task);
        return true;
    }

    // Follows the circular list whose head is embedded at head_task + field; every other
    // node is the same field of another task. Returns false when the walk must stop.
    bool walk(uint64_t head_task, uint32_t field, bool add_members) {
        return walk_from(head_task + field, field, add_members);
    }

    // Follows the circular list whose head is at head; every other node is the field of a task.
    bool walk_from(uint64_t head, uint32_t field, bool add_members) {
        std::unordered_set<uint64_t> nodes;
        uint64_t node = head;
        for (;;) {
            auto next = read_ptr(node + p.list_head.next.offset);
            if (!next || !is_kernel_address(*next)) {
                out.corrupt = true;
                out.error =
                    fmt::format("list link at {:#x} unreadable or not a kernel address", node);
                return false;
            }
            if (*next == head) return true;
            if (!nodes.insert(*next).second) {
                out.corrupt = true;
                out.error =
                    fmt::format("task list cycle at {:#x} that does not return to the head", *next);
                return false;
            }
            // Every list is bounded, and so is the total: a hostile guest could otherwise make
            // each of max_tasks thread lists max_tasks long.
            if (nodes.size() > o.max_tasks || ++steps > 4 * o.max_tasks + 16) {
                out.truncated = true;
                return false;
            }
            const uint64_t task = *next - field;
            if (add_members && !seen.count(task) && !add(task)) return false;
            node = *next;
        }
    }
};

}  // namespace

TaskList list_tasks(AddressSpace& kernel, const KernelProfile& profile, uint64_t init_task,
                    const TaskListOptions& options) {
    Walker w{kernel, profile, options, {}, {}, 0};
    const auto& t = profile.task_struct;
    if (!t.tasks.valid || !profile.list_head.next.valid) {
        w.out.error = "the profile has no task_struct.tasks";
        return w.out;
    }
    if (!w.add(init_task)) return w.out;
    if (!w.walk(init_task, t.tasks.offset, true)) return w.out;
    const size_t leaders = w.out.tasks.size();
    if (options.threads && t.thread_group.valid) {
        // Thread-group leaders are what .tasks links; each has its threads on thread_group.
        for (size_t i = 0; i < leaders; ++i)
            if (!w.walk(w.out.tasks[i].task, t.thread_group.offset, true)) return w.out;
    } else if (options.threads && t.thread_node.valid && t.signal.valid &&
               profile.signal_struct.thread_head.valid) {
        // Since 6.6: a process's threads (the leader too) hang on its signal_struct's
        // thread_head, linked through task_struct.thread_node.
        for (size_t i = 0; i < leaders; ++i) {
            auto signal = w.read_ptr(w.out.tasks[i].task + t.signal.offset);
            if (!signal || !is_kernel_address(*signal)) {
                w.out.corrupt = true;
                w.out.error = fmt::format("task_struct {:#x}: signal pointer unreadable",
                                          w.out.tasks[i].task);
                return w.out;
            }
            if (!w.walk_from(*signal + profile.signal_struct.thread_head.offset,
                             t.thread_node.offset, true)) {
                return w.out;
            }
        }
    }
    return w.out;
}

}  // namespace nitro::linux_os
