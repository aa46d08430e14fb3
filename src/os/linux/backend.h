// SPDX-License-Identifier: MIT
// nitro's Linux backend: names system calls from the ABI tables, finds the calling process
// through the per-CPU current task, and decodes arguments from the listener's captures.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nitro/backend.h"
#include "nitro/memory.h"
#include "nitro/syscall_table.h"
#include "os/linux/btf_profile.h"
#include "os/linux/process.h"

namespace nitro::linux_os {

class LinuxBackend final : public Backend {
  public:
    /// Entries waiting for their exit; beyond this the oldest are forgotten (calls that never
    /// return, exits lost to a dropping listener).
    static constexpr std::size_t kMaxPendingEntries = 4096;

    LinuxBackend(KernelProfile profile, std::shared_ptr<PhysicalMemory> memory);
    /// From the guest's kernel image (bzImage or vmlinux, for its BTF profile) and the file
    /// holding its RAM (QEMU's shared memory backend). Throws nitro::Error.
    static std::unique_ptr<LinuxBackend> open(const std::string& kernel_image,
                                              const std::string& ram_file, std::uint64_t ram_size);
    /// From guest memory alone (no kernel image): the running kernel's BTF, kallsyms and
    /// vmcoreinfo found in its RAM, cached per build id (defined in profile_source.cpp).
    /// Call it once the guest has booted, e.g. at its first event. Throws nitro::Error.
    static std::unique_ptr<LinuxBackend> open_from_memory(const std::string& ram_file,
                                                          std::uint64_t ram_size,
                                                          const Event* event = nullptr);

    void attach(Listener& listener) override;
    Syscall process_event(const Event& ev) override;

    const KernelProfile& profile() const { return profile_; }
    std::size_t pending_entries() const { return pending_.size(); }

  private:
    Syscall decode_event(const Event& ev, const SyscallInfo* info);
    void reread_strings(const Event& ev, const SyscallInfo& info, std::vector<SyscallArg>& args);

    KernelProfile profile_;
    std::shared_ptr<PhysicalMemory> memory_;
    ProcessReader processes_;
    AddressSpace user_;  // the calling process's address space, for reads at exits
    // Decoded entry arguments by (vCPU, seq) of the entry, for the exit to reuse: strings
    // are only captured at entry.
    std::map<std::pair<unsigned, std::uint64_t>, std::vector<SyscallArg>> pending_;
};

}  // namespace nitro::linux_os
