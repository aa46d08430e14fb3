// SPDX-License-Identifier: MIT
#include "os/linux/process.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <vector>

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
    : mem_(&mem), profile_(&profile), kernel_(mem), context_fields_(make_context_fields()) {
    for (const auto& f : context_fields_) context_bytes_ += f.len;
}

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

std::vector<Listener::ContextField> ProcessReader::make_context_fields() const {
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
    // The address space too where there is room: the executable is the mm's, and an exec
    // replaces it before a late event is handled.
    if (ts.mm.valid && f.size() < 4) f.push_back({ts.mm.offset, 8});
    return f;
}

std::optional<ProcessReader::TaskFields> ProcessReader::task_fields(const Capture& c) const {
    // The fields of context_fields(), in order: pid, tgid, comm, real_parent, then perhaps mm.
    constexpr std::size_t kNamingBytes = 4 + 4 + 16 + 8;
    if (c.status != CaptureStatus::Ok || c.data.size() != context_bytes_ || c.field != context_fields_.size()) {
        return std::nullopt;
    }
    TaskFields f;
    std::memcpy(&f.pid, c.data.data(), 4);
    std::memcpy(&f.tgid, c.data.data() + 4, 4);
    std::memcpy(f.comm.data(), c.data.data() + 8, 16);
    std::memcpy(&f.parent, c.data.data() + 24, 8);
    if (context_bytes_ == kNamingBytes + 8) {
        std::uint64_t mm = 0;
        std::memcpy(&mm, c.data.data() + kNamingBytes, 8);
        f.mm = mm;
    }
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
    if (ts.mm.valid) f.mm = read<std::uint64_t>(task + ts.mm.offset);
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
        it->second.parent == f.parent && it->second.name == p.name && it->second.mm == f.mm) {
        p.ppid = it->second.ppid;
        p.exe = it->second.exe;
        return p;
    }
    if (is_kernel_address(f.parent)) {
        if (auto ptgid = read<std::int32_t>(f.parent + profile_->task_struct.tgid.offset)) {
            p.ppid = *ptgid;
        }
    }
    // Read once per identity and address space (an exec replaces both the name and the mm):
    // the mm as it was at the event when the listener copied it, else as it is now.
    std::optional<std::uint64_t> mm = f.mm;
    if (!mm && profile_->task_struct.mm.valid) mm = read<std::uint64_t>(task + profile_->task_struct.mm.offset);
    if (mm && *mm != 0) p.exe = mm_exe(*mm, p.pid).value_or("");  // 0: a kernel thread
    if (cache_.size() >= kMaxCachedTasks) cache_.clear();
    cache_[task] = Cached{p.pid, p.tid, p.ppid, f.parent, p.name, f.mm, p.exe};
    return p;
}

std::optional<std::string> ProcessReader::mm_exe(std::uint64_t mm, std::int64_t tgid) {
    if (!profile_->mm_struct.exe_file.valid) return std::nullopt;
    auto file = read<std::uint64_t>(mm + profile_->mm_struct.exe_file.offset);
    auto it = exe_by_mm_.find(mm);
    if (it != exe_by_mm_.end() && it->second.tgid != tgid) it = exe_by_mm_.end();
    if (!file || !is_kernel_address(*file)) {
        // The address space has ended since (its exe_file dropped): as it was when seen alive.
        if (it != exe_by_mm_.end()) return it->second.path;
        return std::nullopt;
    }
    if (it != exe_by_mm_.end() && it->second.file == *file) return it->second.path;
    auto path = file_path(*file);
    if (!path) return std::nullopt;
    if (exe_by_mm_.size() >= kMaxCachedTasks) exe_by_mm_.clear();
    exe_by_mm_[mm] = ExeOfMm{tgid, *file, *path};
    return path;
}

std::optional<std::string> ProcessReader::file_path(std::uint64_t file) {
    const KernelProfile& k = *profile_;
    if (!k.file.f_path.valid || !k.path.dentry.valid || !k.path.mnt.valid || !k.dentry.d_name.valid ||
        !k.dentry.d_parent.valid || !k.qstr.name.valid || !k.qstr.len.valid) {
        return std::nullopt;
    }
    const bool mounts = k.mount.mnt.valid && k.mount.mnt_parent.valid &&
                        k.mount.mnt_mountpoint.valid && k.vfsmount.mnt_root.valid;
    auto dentry = read<std::uint64_t>(file + k.file.f_path.offset + k.path.dentry.offset);
    auto mnt = read<std::uint64_t>(file + k.file.f_path.offset + k.path.mnt.offset);
    if (!dentry || !mnt) return std::nullopt;
    std::vector<std::string> names;  // from the file up
    std::size_t bytes = 0;
    int step = 0;
    for (; step < kMaxPathSteps; ++step) {
        auto parent = read<std::uint64_t>(*dentry + k.dentry.d_parent.offset);
        if (!parent) return std::nullopt;
        std::optional<std::uint64_t> mnt_root;
        if (mounts) mnt_root = read<std::uint64_t>(*mnt + k.vfsmount.mnt_root.offset);
        if (*parent == *dentry || (mnt_root && *mnt_root == *dentry)) {
            // The root of a mount: on from its mount point in the parent mount, unless this is
            // the namespace's root (a mount that is its own parent).
            if (!mounts || !mnt_root || *mnt_root != *dentry) break;
            const std::uint64_t mount = *mnt - k.mount.mnt.offset;
            auto up = read<std::uint64_t>(mount + k.mount.mnt_parent.offset);
            auto point = read<std::uint64_t>(mount + k.mount.mnt_mountpoint.offset);
            if (!up || !point) return std::nullopt;
            if (*up == mount) break;
            dentry = *point;
            mnt = *up + k.mount.mnt.offset;
            continue;
        }
        auto len = read<std::uint32_t>(*dentry + k.dentry.d_name.offset + k.qstr.len.offset);
        auto name = read<std::uint64_t>(*dentry + k.dentry.d_name.offset + k.qstr.name.offset);
        if (!len || !name || *len == 0 || *len > 255) return std::nullopt;  // NAME_MAX
        bytes += 1 + *len;
        if (bytes > kMaxPathBytes) return std::nullopt;
        std::string component(*len, '\0');
        if (!kernel_.read_into(GuestVirt(*name), component.data(), component.size())) return std::nullopt;
        names.push_back(std::move(component));
        dentry = *parent;
    }
    if (step == kMaxPathSteps) return std::nullopt;  // a cycle, or deeper than any real path
    if (names.empty()) return std::string("/");
    std::string path;
    for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + *it;
    return path;
}

}  // namespace nitro::linux_os
