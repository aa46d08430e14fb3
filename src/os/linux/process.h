// SPDX-License-Identifier: MIT
// Linux processes from guest memory: the current task of a vCPU and the fields of its
// task_struct that name it (pid, tgid, comm, real_parent->tgid).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "memory/kernel_address_space.h"
#include "nitro/event.h"
#include "nitro/listener.h"
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
///
/// Kernel memory is read through a KernelAddressSpace: translations of kernel pages are kept
/// from event to event (each use checks that the page's leaf entry is unchanged), and once the
/// kernel's own top-level entries are known, a process's page tables are not needed any more
/// (they may have been freed by the time an asynchronous event is decoded). The fields that
/// identify a task (pid, tgid, comm, real_parent) are read again at every event: what is
/// cached is only how to reach them, and the parent's pid for an unchanged parent pointer.
class ProcessReader {
  public:
    ProcessReader(PhysicalMemory& mem, const KernelProfile& profile);

    /// The task running on the event's vCPU, read at the event. Walks the event's page tables
    /// (or the kernel half of a KPTI pair) when a kernel page is not known yet.
    Process current(const Event& ev);
    void current(const Event& ev, Process& out) { out = current(ev); }
    /// The task_struct at kernel address task, read through the roots of the last event.
    Process read_task(std::uint64_t task);
    /// The task_struct fields that name a task (pid and tgid, comm, real_parent), for a
    /// listener to copy at each event (Listener::set_context_fields); current() uses them
    /// when an event carries them.
    const std::vector<Listener::ContextField>& context_fields() const { return context_fields_; }
    /// Bounds of the walk from an executable's file to the root (Process::exe): a hostile
    /// guest can link dentries or mounts into a cycle.
    static constexpr int kMaxPathSteps = 256;
    static constexpr std::size_t kMaxPathBytes = 4096;
    /// Address of the current task_struct on the event's vCPU (0 when unreadable).
    std::uint64_t current_task(const Event& ev);
    /// The guest-physical address of kernel address va, through the event's page tables.
    std::optional<GuestPhys> kernel_phys(const Event& ev, std::uint64_t va);

    /// Forgets cached processes (an entry is also replaced on its own when the task's pid,
    /// comm or parent pointer changes, e.g. at exec, at reparenting or when the task_struct is
    /// reused).
    void clear_cache() {
        cache_.clear();
        copied_.clear();
        exe_by_mm_.clear();
    }
    std::size_t cache_size() const { return cache_.size(); }
    const KernelAddressSpace& kernel() const { return kernel_; }

  private:
    // The identity of a task as read (now, or by the listener at the event).
    struct TaskFields {
        std::int32_t pid = 0, tgid = 0;
        std::array<char, 16> comm{};
        std::uint64_t parent = 0;  // real_parent
        std::optional<std::uint64_t> mm;  // the address space, when copied or read
    };
    // pid_t pid; pid_t tgid; side by side, as in every kernel: read and copied as one field.
    bool pid_tgid_adjacent() const {
        return profile_->task_struct.tgid.offset == profile_->task_struct.pid.offset + 4;
    }
    // The fields a listener copied (a Context capture of context_fields()); nothing when the
    // copy failed or holds other fields.
    std::optional<TaskFields> task_fields(const Capture& copy) const;
    // The Process of task from its fields (the parent's pid and the executable's path from the
    // cache or read now).
    Process named(std::uint64_t task, const TaskFields& f);
    std::vector<Listener::ContextField> make_context_fields() const;
    // The path of the address space mm's executable (mm->exe_file) in process tgid,
    // remembered per mm and process so that an event handled after the address space ended
    // (an exec, an exit: exe_file is then NULL) still gets it if nitro saw it alive (another
    // process's mm at the same address, reused memory, is not taken for it); nothing when
    // unreadable.
    std::optional<std::string> mm_exe(std::uint64_t mm, std::int64_t tgid);
    // The path of a struct file: its dentries' names up to the root of their mount, then on
    // from where that mount is mounted, up to the namespace's root; nothing when a pointer, a
    // name or the profile's fields are missing, or beyond kMaxPathSteps / kMaxPathBytes.
    std::optional<std::string> file_path(std::uint64_t file);
    // Points the kernel reads at the event's page tables.
    void use_roots(const Event& ev);
    // The per-CPU current task pointer of the event's vCPU (read now).
    std::optional<std::uint64_t> percpu_current(const Event& ev, std::string& error);
    template <typename T>
    std::optional<T> read(std::uint64_t va);

    PhysicalMemory* mem_;
    const KernelProfile* profile_;
    KernelAddressSpace kernel_;
    std::vector<Listener::ContextField> context_fields_;  // the profile's, made once
    std::size_t context_bytes_ = 0;                       // their lengths' sum
    bool roots_set_ = false;
    std::uint64_t roots_cr3_ = 0, roots_cr4_ = 0, roots_efer_ = 0;
    struct Cached {
        std::int64_t pid = 0, tid = 0, ppid = 0;
        std::uint64_t parent = 0;  // real_parent when ppid was read
        std::string name;
        std::optional<std::uint64_t> mm;
        std::string exe;
    };
    struct ExeOfMm {
        std::int64_t tgid = 0;   // the process the mm was seen in
        std::uint64_t file = 0;  // mm->exe_file when the path was read
        std::string path;
    };
    std::unordered_map<std::uint64_t, ExeOfMm> exe_by_mm_;
    std::unordered_map<std::uint64_t, Cached> cache_;
    std::unordered_map<std::uint64_t, TaskFields> copied_;  // by task: the listener's last copy
};

}  // namespace nitro::linux_os
