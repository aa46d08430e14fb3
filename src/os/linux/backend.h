// SPDX-License-Identifier: MIT
// nitro's Linux backend: names system calls from the ABI tables, finds the calling process
// through the per-CPU current task, and decodes arguments from the listener's captures.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
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
    /// vCPU numbers beyond this are not given to Listener::set_context_in_ram.
    static constexpr unsigned kMaxVcpus = 1024;

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
    /// process_event() into sc, reusing its strings and argument vector: for a loop that
    /// decodes event after event (nitro trace), where allocations would cost more than the
    /// decoding.
    void process_event_into(const Event& ev, Syscall& sc);

    const KernelProfile& profile() const { return profile_; }
    std::size_t pending_entries() const { return pending_.size(); }

  private:
    void decode_event(const Event& ev, const SyscallInfo* info, Syscall& sc);
    // Tells the listener where the event's vCPU keeps its current task in the RAM file.
    void locate_context(const Event& ev);
    void locate_linear_map(const Event& ev);
    void reread_strings(const Event& ev, const SyscallInfo& info, std::vector<SyscallArg>& args);

    KernelProfile profile_;
    std::shared_ptr<PhysicalMemory> memory_;
    ProcessReader processes_;
    AddressSpace user_;  // the calling process's address space, for reads at exits
    // Decoded entry arguments by (vCPU, seq) of the entry, for the exit to reuse: strings
    // are only captured at entry. pending_order_ holds the keys in the order they came (and
    // keys already taken, until compacted), to forget the oldest first.
    struct PendingKey {
        unsigned vcpu;
        std::uint64_t seq;
        bool operator==(const PendingKey&) const = default;
    };
    struct PendingKeyHash {
        std::size_t operator()(const PendingKey& k) const {
            return std::hash<std::uint64_t>{}(k.seq * 0x9E3779B97F4A7C15ULL ^ k.vcpu);
        }
    };
    using PendingMap = std::unordered_map<PendingKey, std::vector<SyscallArg>, PendingKeyHash>;
    // Nodes of taken entries kept for the next ones, with their strings' storage.
    static constexpr std::size_t kSpareNodes = 64;
    void remember_entry(const PendingKey& key, const std::vector<SyscallArg>& args);
    // Moves or copies the arguments of a pending entry into args; false when there is none.
    bool take_entry(const PendingKey& key, std::vector<SyscallArg>& args);
    PendingMap pending_;
    Listener* listener_ = nullptr;  // attached to (set_context_in_ram)
    std::vector<std::uint64_t> context_kgs_;  // per vCPU: the kernel GS base located last
    bool linear_map_given_ = false;  // the direct map's base given (set_context_linear_map)
    int linear_map_tries_ = 0;       // events it was looked for at
    static constexpr int kLinearMapTries = 64;
    std::deque<PendingKey> pending_order_;
    std::vector<PendingMap::node_type> spare_;
};

}  // namespace nitro::linux_os
