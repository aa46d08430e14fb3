// SPDX-License-Identifier: MIT
// Linux processes from guest memory: the current task of a vCPU and the fields of its
// task_struct that name it (pid, tgid, comm, real_parent->tgid).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "nitro/event.h"
#include "nitro/memory.h"
#include "nitro/process.h"
#include "os/linux/btf_profile.h"

namespace nitro::linux_os {

/// Whether va lies in the upper (kernel) half of the address space. Bit 63 decides for both
/// 4-level (kernel from 0xffff8000...) and 5-level paging (from 0xff00...); whether the address
/// is canonical is for the page walker to check.
constexpr bool is_kernel_address(std::uint64_t va) { return (va >> 63) != 0; }

/// The per-CPU area base of the vCPU of an event: whichever of GS.base and KERNEL_GS_BASE is a
/// kernel address (user mode, where syscall/sysret events happen, has them swapped), or
/// nothing when neither is.
std::optional<std::uint64_t> percpu_base(const SpecialRegisters& sregs);

/// Reads task_structs through the kernel's page tables. Every read is bounded and may fail;
/// failures come back as Process{valid = false, error = ...}.
class ProcessReader {
  public:
    ProcessReader(PhysicalMemory& mem, const KernelProfile& profile);

    /// The task running on the event's vCPU, read at the event. Picks the kernel page tables
    /// from the event's CR3 (see kernel_root()).
    Process current(const Event& ev);
    /// The task_struct at kernel address task, read through the current kernel root.
    Process read_task(std::uint64_t task);
    /// Address of the current task_struct on the event's vCPU (0 when unreadable).
    std::uint64_t current_task(const Event& ev);

    /// Forgets cached processes (a cache entry is also dropped on its own when the task's
    /// pid or comm changes, e.g. at exec or when the task_struct is reused).
    void clear_cache() { cache_.clear(); }
    std::size_t cache_size() const { return cache_.size(); }

  private:
    // Selects the page tables to read kernel memory with for this event and returns the
    // current task pointer: the event's CR3 if it maps the kernel's per-CPU data, else the
    // kernel half of a KPTI pair (CR3 with bit 12 cleared).
    std::optional<std::uint64_t> select_root(const Event& ev, std::string& error);
    template <typename T>
    std::optional<T> read(std::uint64_t va);

    PhysicalMemory* mem_;
    const KernelProfile* profile_;
    AddressSpace kernel_;
    struct Cached {
        std::int64_t pid = 0, tid = 0, ppid = 0;
        std::string name;
    };
    std::unordered_map<std::uint64_t, Cached> cache_;
};

}  // namespace nitro::linux_os
