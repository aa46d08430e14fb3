// SPDX-License-Identifier: MIT
// A stand-in for the part of QEMU's TCG plugin API that nitro's plugin calls, so that the
// plugin's own code runs outside QEMU: one vCPU whose registers come from a register file laid
// out like QEMU's (fake_cpu.h, found and read in place by the plugin), guest memory as a map
// of byte ranges, and the two instrumented instructions (syscall, sysretq) "executed" the way
// QEMU calls their callbacks. Used by nitro-plugin-bench and the plugin's unit tests. The
// plugin keeps process-wide state: one FakeQemu per process.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "fake_cpu.h"

namespace nitro::fake {

/// Where the fake guest's syscall instruction is (its sysret returns after it), 16 bytes into
/// its translated block.
inline constexpr uint64_t kSyscallAddress = 0x401000;
inline constexpr uint64_t kSyscallBlock = kSyscallAddress - 16;

class FakeQemu {
public:
    /// Loads the plugin (qemu_plugin_install with a control file of its own) and initialises
    /// its one vCPU. extra_args: more plugin arguments ("ring=...").
    explicit FakeQemu(const std::string& extra_args = "");
    ~FakeQemu();
    FakeQemu(const FakeQemu&) = delete;
    FakeQemu& operator=(const FakeQemu&) = delete;

    /// The plugin's control file, for a TcgListener.
    const std::string& ctl_path() const { return ctl_path_; }
    /// Translates the block of the two instrumented instructions: call once a consumer has
    /// attached (the plugin then instruments at its first translation).
    void translate();
    /// One system call: entry with the registers set, exit with rax = ret.
    void call(uint64_t nr, const uint64_t (&args)[6], uint64_t ret);
    /// Its two halves, for a change of guest memory in between.
    void enter(uint64_t nr, const uint64_t (&args)[6]);
    void leave(uint64_t ret);
    /// Returns elsewhere than after the syscall (a signal handler, at rip with the stack rsp).
    void leave_to(uint64_t ret, uint64_t rip, uint64_t rsp);
    /// An interrupt's return to user mode (iretq) at rip, rax as the interrupted code had it.
    void interrupt_return(uint64_t rax, uint64_t rip);
    /// Runs the syscall's block, as translated, from shift bytes (whole pages) further: the
    /// same physical page mapped at another address in another process, whose code QEMU
    /// shares (CF_PCREL). rip is the block's start there at the entry; sysret returns after
    /// the syscall there.
    void run_code_at(uint64_t shift) { shift_ = shift; }
    /// Sets one register as QEMU keeps it before a callback (API view and register file).
    void set(int reg, uint64_t value);
    /// Guest memory at a virtual address (what qemu_plugin_read_memory_vaddr reads). Like
    /// real memory, the rest of the bytes' last 4 KiB page reads (as zeros) too.
    void map(uint64_t addr, std::string bytes) {
        bytes.resize(bytes.size() + (4096 - (addr + bytes.size()) % 4096) % 4096, '\0');
        memory_[addr] = std::move(bytes);
    }
    void unmap_all() { memory_.clear(); }
    /// Copies len bytes at addr if all are mapped.
    bool read(uint64_t addr, void* out, size_t len) const;

private:
    std::string ctl_path_;
    std::map<uint64_t, std::string> memory_;
    uint64_t shift_ = 0;
};

/// The one instance's CPU (its registers), for callbacks of the API stand-in.
Cpu& fake_cpu();

}  // namespace nitro::fake
