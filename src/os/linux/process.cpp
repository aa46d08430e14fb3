// SPDX-License-Identifier: MIT
#include "os/linux/process.h"

#include <fmt/format.h>

#include <array>
#include <cstring>

namespace nitro::linux_os {

namespace {

// Enough for every live task of a test or desktop guest; beyond it the cache restarts rather
// than grow with whatever a guest that forks endlessly makes us see.
constexpr std::size_t kMaxCachedTasks = 8192;

}  // namespace

std::optional<std::uint64_t> percpu_base(const SpecialRegisters& sregs) {
    if (is_kernel_address(sregs.gs_base)) return sregs.gs_base;
    if (is_kernel_address(sregs.kernel_gs_base)) return sregs.kernel_gs_base;
    return std::nullopt;
}

ProcessReader::ProcessReader(PhysicalMemory& mem, const KernelProfile& profile)
    : mem_(&mem), profile_(&profile), kernel_(mem) {}

template <typename T>
std::optional<T> ProcessReader::read(std::uint64_t va) {
    T value;
    if (!kernel_.read_into(GuestVirt(va), &value, sizeof value)) return std::nullopt;
    return value;
}

void ProcessReader::use_roots(const Event& ev) {
    // Events come in runs from one address space: the roots are set again only when they change.
    if (roots_set_ && ev.sregs.cr3 == roots_cr3_ && ev.sregs.cr4 == roots_cr4_ &&
        ev.sregs.efer == roots_efer_) {
        return;
    }
    roots_set_ = true;
    roots_cr3_ = ev.sregs.cr3;
    roots_cr4_ = ev.sregs.cr4;
    roots_efer_ = ev.sregs.efer;
    // Without KPTI the event's own tables map the kernel; with it, user-mode CR3 is the user
    // half of the pair, which does not map the per-CPU data or task_structs, and the kernel
    // half does.
    const PagingConfig own =
        PagingConfig::from_registers(ev.sregs.cr3, ev.sregs.cr4, ev.sregs.efer);
    PagingConfig kpti = own;
    kpti.root = x86::kpti_kernel_pgd(ev.sregs.cr3);
    kernel_.set_roots(own, kpti);
}

std::optional<std::uint64_t> ProcessReader::percpu_current(const Event& ev, std::string& error) {
    auto base = percpu_base(ev.sregs);
    if (!base) {
        error = "no per-CPU base in GS";
        return std::nullopt;
    }
    const std::uint64_t where = *base + profile_->current_task_percpu;
    auto task = read<std::uint64_t>(where);
    if (task && is_kernel_address(*task)) return task;
    error = fmt::format("current task unreadable at {:#x}", where);
    return std::nullopt;
}

std::uint64_t ProcessReader::current_task(const Event& ev) {
    if (is_kernel_address(ev.context)) return ev.context;  // as the listener read it at the event
    use_roots(ev);
    std::string error;
    return percpu_current(ev, error).value_or(0);
}

std::optional<GuestPhys> ProcessReader::kernel_phys(const Event& ev, std::uint64_t va) {
    if (!is_kernel_address(va)) return std::nullopt;
    use_roots(ev);
    auto t = kernel_.translate(GuestVirt(va));
    if (!t) return std::nullopt;
    return t.value().phys;
}

Process ProcessReader::current(const Event& ev) {
    use_roots(ev);
    // The listener read the current task at the event (Listener::set_context_word); else it is
    // read now, which in asynchronous mode may already be another task.
    if (is_kernel_address(ev.context)) {
        Process p = read_task(ev.context);
        if (p.valid) return p;
    }
    std::string error;
    auto task = percpu_current(ev, error);
    if (!task) {
        Process p;
        p.error = std::move(error);
        return p;
    }
    return read_task(*task);
}

Process ProcessReader::read_task(std::uint64_t task) {
    const auto& ts = profile_->task_struct;
    Process p;
    p.descriptor = task;
    std::optional<std::int32_t> pid, tgid;
    if (ts.tgid.offset == ts.pid.offset + 4) {
        // Adjacent in every kernel (pid_t pid; pid_t tgid;): one read.
        if (auto both = read<std::array<std::int32_t, 2>>(task + ts.pid.offset)) {
            pid = (*both)[0];
            tgid = (*both)[1];
        }
    } else {
        pid = read<std::int32_t>(task + ts.pid.offset);
        tgid = read<std::int32_t>(task + ts.tgid.offset);
    }
    auto comm = read<std::array<char, 16>>(task + ts.comm.offset);
    if (!pid || !tgid || !comm) {
        p.error = fmt::format("task_struct {:#x} unreadable", task);
        return p;
    }
    p.tid = *pid;
    p.pid = *tgid;
    p.name.assign(comm->data(), strnlen(comm->data(), comm->size()));
    p.valid = true;

    // The parent's pid is one more pointer chase: it is kept for as long as the task keeps its
    // identity and its parent pointer (a reparented task gets the new parent's).
    const std::uint64_t parent = read<std::uint64_t>(task + ts.real_parent.offset).value_or(0);
    auto it = cache_.find(task);
    if (it != cache_.end() && it->second.pid == p.pid && it->second.tid == p.tid &&
        it->second.parent == parent && it->second.name == p.name) {
        p.ppid = it->second.ppid;
        return p;
    }
    if (is_kernel_address(parent)) {
        if (auto ptgid = read<std::int32_t>(parent + ts.tgid.offset)) p.ppid = *ptgid;
    }
    if (cache_.size() >= kMaxCachedTasks) cache_.clear();
    cache_[task] = Cached{p.pid, p.tid, p.ppid, parent, p.name};
    return p;
}

}  // namespace nitro::linux_os
