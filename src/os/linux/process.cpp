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
    // The listener read the current task at the event (Listener::set_context_word), and
    // perhaps its identity too (set_context_fields); else they are read now, which in
    // asynchronous mode may be after an exec renamed the task or another task ran.
    if (is_kernel_address(ev.context)) {
        // The listener copies them where they may have changed; between, its last copy for
        // the same task holds.
        if (const Capture* copy = ev.added_capture(CaptureKind::Context)) {
            if (auto fields = task_fields(*copy)) {
                if (copied_.size() >= kMaxCachedTasks) copied_.clear();
                copied_[ev.context] = *fields;
                return named(ev.context, *fields);
            }
            copied_.erase(ev.context);  // a failed copy: the last one may be stale too
        } else if (auto it = copied_.find(ev.context); it != copied_.end()) {
            return named(ev.context, it->second);
        }
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

std::vector<Listener::ContextField> ProcessReader::context_fields() const {
    const auto& ts = profile_->task_struct;
    std::vector<Listener::ContextField> f;
    if (pid_tgid_adjacent()) {
        f.push_back({ts.pid.offset, 8});
    } else {
        f.push_back({ts.pid.offset, 4});
        f.push_back({ts.tgid.offset, 4});
    }
    f.push_back({ts.comm.offset, 16});
    f.push_back({ts.real_parent.offset, 8});
    return f;
}

std::optional<ProcessReader::TaskFields> ProcessReader::task_fields(const Capture& c) const {
    constexpr std::size_t kBytes = 4 + 4 + 16 + 8;  // the fields of context_fields(), in order
    if (c.status != CaptureStatus::Ok || c.data.size() != kBytes || c.field != (pid_tgid_adjacent() ? 3 : 4)) {
        return std::nullopt;
    }
    TaskFields f;
    std::memcpy(&f.pid, c.data.data(), 4);
    std::memcpy(&f.tgid, c.data.data() + 4, 4);
    std::memcpy(f.comm.data(), c.data.data() + 8, 16);
    std::memcpy(&f.parent, c.data.data() + 24, 8);
    return f;
}

Process ProcessReader::read_task(std::uint64_t task) {
    const auto& ts = profile_->task_struct;
    TaskFields f;
    std::optional<std::int32_t> pid, tgid;
    if (pid_tgid_adjacent()) {  // one read
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
        Process p;
        p.descriptor = task;
        p.error = fmt::format("task_struct {:#x} unreadable", task);
        return p;
    }
    f.pid = *pid;
    f.tgid = *tgid;
    f.comm = *comm;
    // The parent's pid is one more pointer chase: it is kept for as long as the task keeps its
    // identity and its parent pointer (a reparented task gets the new parent's).
    f.parent = read<std::uint64_t>(task + ts.real_parent.offset).value_or(0);
    return named(task, f);
}

Process ProcessReader::named(std::uint64_t task, const TaskFields& f) {
    Process p;
    p.descriptor = task;
    p.tid = f.pid;
    p.pid = f.tgid;
    p.name.assign(f.comm.data(), strnlen(f.comm.data(), f.comm.size()));
    p.valid = true;
    auto it = cache_.find(task);
    if (it != cache_.end() && it->second.pid == p.pid && it->second.tid == p.tid &&
        it->second.parent == f.parent && it->second.name == p.name) {
        p.ppid = it->second.ppid;
        return p;
    }
    if (is_kernel_address(f.parent)) {
        if (auto ptgid = read<std::int32_t>(f.parent + profile_->task_struct.tgid.offset)) {
            p.ppid = *ptgid;
        }
    }
    if (cache_.size() >= kMaxCachedTasks) cache_.clear();
    cache_[task] = Cached{p.pid, p.tid, p.ppid, f.parent, p.name};
    return p;
}

}  // namespace nitro::linux_os
