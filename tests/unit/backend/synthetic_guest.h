// SPDX-License-Identifier: MIT
// A synthetic Linux guest in a BufferPhysicalMemory, for the backend's and the hooks' tests and
// for the pipeline benchmark (no GoogleTest here): 4-level page tables mapping the kernel and
// user pages, a per-CPU area per vCPU holding its current task, task_structs at made-up
// offsets (the KernelProfile below), user strings and buffers, and events that enter and
// leave system calls with the captures the TCG listener would have made.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nitro/event.h"
#include "nitro/memory.h"
#include "fake_task_profile.h"
#include "os/linux/btf_profile.h"

namespace nitro::test {

class SyntheticGuest {
  public:
    static constexpr std::uint64_t kRoot = 0x200000;     // the page-table root (PML4)
    static constexpr std::uint64_t kCurrentTask = 0x80;  // per-CPU offset of current_task
    static constexpr std::uint64_t kPercpuBase = 0xffff888000010000ULL;  // vCPU 0's area
    static constexpr std::uint64_t kPercpuPhys = 0x10000;
    static constexpr std::uint64_t kTaskBase = 0xffff888000100000ULL;  // task_structs
    static constexpr std::uint64_t kTaskPhys = 0x100000;
    static constexpr std::uint64_t kTaskSize = 0x400;
    static constexpr std::uint64_t kUserBase = 0x400000;  // user data pages
    static constexpr std::uint64_t kUserPhys = 0x800000;
    static constexpr std::uint64_t kUserPages = 64;

    explicit SyntheticGuest(std::size_t mem_size = 16 << 20)
        : mem_(std::make_shared<BufferPhysicalMemory>(mem_size)), next_table_(0x300000) {
        zero_table(kRoot);
        for (std::uint64_t i = 0; i < 16; ++i) {
            map(kPercpuBase + i * 0x1000, kPercpuPhys + i * 0x1000);
        }
        for (std::uint64_t i = 0; i < 64; ++i) map(kTaskBase + i * 0x1000, kTaskPhys + i * 0x1000);
        for (std::uint64_t i = 0; i < kUserPages; ++i) {
            map(kUserBase + i * 0x1000, kUserPhys + i * 0x1000);
        }
    }

    static linux_os::KernelProfile profile() { return fake_task_profile(); }

    std::shared_ptr<BufferPhysicalMemory> memory() const { return mem_; }

    /// Maps the 4 KiB page at va to pa (user-accessible, writable).
    void map(std::uint64_t va, std::uint64_t pa) {
        std::uint64_t table = kRoot;
        for (unsigned level = 4; level > 1; --level) {
            const std::uint64_t ea = table + ((va >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
            std::uint64_t e = peek(ea);
            if (!(e & 1)) {
                const std::uint64_t t = next_table_;
                next_table_ += 0x1000;
                zero_table(t);
                e = t | 7;
                poke(ea, e);
            }
            table = e & 0x000ffffffffff000ULL;
        }
        poke(table + ((va >> 12) & 0x1ff) * 8, pa | 7);
    }

    /// A task_struct in slot @p slot (0..255); returns its kernel address.
    std::uint64_t add_task(unsigned slot, std::int32_t pid, std::int32_t tgid,
                           std::string_view comm, std::uint64_t parent) {
        const std::uint64_t pa = kTaskPhys + slot * kTaskSize;
        const std::uint64_t ids = static_cast<std::uint32_t>(pid) |
                                  static_cast<std::uint64_t>(static_cast<std::uint32_t>(tgid))
                                      << 32;
        poke(pa + 0x10, ids);
        poke(pa + 0x20, parent);
        char name[16] = {};
        std::memcpy(name, comm.data(), std::min(comm.size(), sizeof name));
        write_phys(pa + 0x100, std::as_bytes(std::span(name, sizeof name)));
        return kTaskBase + slot * kTaskSize;
    }
    /// Makes @p task current on @p vcpu.
    void set_current(unsigned vcpu, std::uint64_t task) {
        poke(kPercpuPhys + vcpu * 0x1000 + kCurrentTask, task);
    }
    static std::uint64_t percpu(unsigned vcpu) { return kPercpuBase + vcpu * 0x1000; }

    /// Bytes at user address va (inside the user pages).
    void write_user(std::uint64_t va, std::string_view bytes) {
        if (va < kUserBase || va + bytes.size() > kUserBase + kUserPages * 0x1000) {
            throw std::out_of_range("synthetic guest: user write out of range");
        }
        write_phys(kUserPhys + (va - kUserBase), std::as_bytes(std::span(bytes)));
    }
    std::string read_user(std::uint64_t va, std::size_t len) const {
        std::string s(len, '\0');
        if (mem_->read(GuestPhys(kUserPhys + (va - kUserBase)),
                       std::as_writable_bytes(std::span(s.data(), s.size()))) != MemStatus::Ok) {
            throw std::out_of_range("synthetic guest: user read out of range");
        }
        return s;
    }

    /// A user-mode entry event on @p vcpu: GS holds the user value, KERNEL_GS_BASE the per-CPU
    /// base, CR3 the root mapping both halves.
    Event enter(unsigned vcpu, std::uint64_t nr, std::array<std::uint64_t, 6> args) {
        Event e;
        e.vcpu = vcpu;
        e.direction = Direction::Enter;
        e.nr = nr;
        e.seq = ++seq_;
        e.args = args;
        e.sregs.cr3 = kRoot;
        e.sregs.efer = x86::kEferNxe;
        e.sregs.kernel_gs_base = percpu(vcpu);
        e.regs.rax = nr;
        return e;
    }
    /// The exit paired with @p entry, returning @p ret.
    Event exit_of(const Event& entry, std::int64_t ret) {
        Event e = entry;
        e.direction = Direction::Exit;
        e.exit_insn = ExitInsn::Sysret;
        e.seq = ++seq_;
        e.entry_vcpu = entry.vcpu;
        e.entry_seq = entry.seq;
        e.regs.rax = static_cast<std::uint64_t>(ret);
        e.captures.clear();
        e.capture_storage.clear();
        return e;
    }
    /// Adds a capture of argument @p arg to @p e, as the listener makes it. (An Event with
    /// captures must not be copied: its captures point into its own storage.)
    static void add_capture(Event& e, std::uint8_t arg, CaptureKind kind, std::string_view bytes,
                            CaptureStatus status = CaptureStatus::Ok) {
        e.capture_storage.insert(e.capture_storage.end(), bytes.begin(), bytes.end());
        e.captures.push_back({arg, kind, status, bytes});
        // The storage holds the captures in order; it may have moved: re-point them all.
        std::size_t pos = 0;
        for (auto& c : e.captures) {
            c.data = std::string_view(e.capture_storage.data() + pos, c.data.size());
            pos += c.data.size();
        }
    }

  private:
    void poke(std::uint64_t pa, std::uint64_t v) {
        write_phys(pa, std::as_bytes(std::span(&v, 1)));
    }
    std::uint64_t peek(std::uint64_t pa) const {
        auto r = mem_->read_u64(GuestPhys(pa));
        if (!r.ok()) throw std::out_of_range("synthetic guest: read outside memory");
        return r.value();
    }
    void write_phys(std::uint64_t pa, std::span<const std::byte> bytes) {
        if (mem_->write(GuestPhys(pa), bytes) != MemStatus::Ok) {
            throw std::out_of_range("synthetic guest: write outside memory");
        }
    }
    void zero_table(std::uint64_t pa) {
        std::vector<std::byte> zeros(0x1000);
        write_phys(pa, zeros);
    }

    std::shared_ptr<BufferPhysicalMemory> mem_;
    std::uint64_t next_table_;
    std::uint64_t seq_ = 0;
};

}  // namespace nitro::test
