// SPDX-License-Identifier: MIT
// Reads of the guest kernel's memory (the upper half of the address space) for every event,
// with translations that outlive the event.
//
// The kernel half of every process's page tables maps the same memory through the same
// lower-level tables (x86-64 Linux copies the kernel's top-level entries into each new pgd and
// never changes them afterwards). Two things follow:
//  - a translation of a kernel page stays right from event to event for as long as the entry
//    that mapped it (the leaf) still holds the same value: each use re-reads that one entry
//    (8 bytes at a known physical address) instead of walking four or five levels;
//  - once two different roots (CR3 values) have given the same top-level entry for a kernel
//    address, that entry is the kernel's own (init_top_pgt's), and walks start below it: a
//    process's page tables that the kernel freed after its event (an exiting process, read
//    late in asynchronous mode) are then not needed any more.
// A translation whose leaf changed, or a walk from a learned entry that fails, falls back to a
// full walk from the roots given for the event.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

#include "nitro/memory.h"

namespace nitro {

/// Translates va like translate(), but with the top-level entry (PML4E, or PML5E in 5-level
/// mode) given instead of read from config.root. Defined in page_walker.cpp.
Result<Translation, MemFault> translate_below(const PhysicalMemory& mem, const PagingConfig& config,
                                              GuestVirt va, std::uint64_t top_entry,
                                              WalkTrace* trace = nullptr);

/// Reads of kernel addresses (bit 63 set) through a translation cache that persists across
/// events (see the file comment). User addresses are walked from the primary root, uncached.
/// Not thread-safe.
class KernelAddressSpace {
  public:
    /// Entries of the direct-mapped translation cache (per 4 KiB virtual page).
    static constexpr std::size_t kCacheEntries = 512;

    explicit KernelAddressSpace(PhysicalMemory& mem);

    /// The tables to walk on a miss, for the reads of the coming event: the event's own
    /// (primary), then, if it fails, an alternate (the kernel half of a KPTI pair). Keeps the
    /// cached translations.
    void set_roots(const PagingConfig& primary, const std::optional<PagingConfig>& alternate);

    /// Reads out.size() bytes from va (crossing pages as needed). On a fault, Transfer::done
    /// bytes from the start have been read.
    Transfer read(GuestVirt va, std::span<std::byte> out);
    template <typename T>
    Result<T, MemFault> read_value(GuestVirt va) {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        if (const std::byte* at = cached(va, sizeof(T))) {
            std::memcpy(&value, at, sizeof(T));
            return value;
        }
        auto t = read(va, std::as_writable_bytes(std::span<T, 1>(&value, 1)));
        if (!t.ok()) return Result<T, MemFault>::error(t.fault);
        return value;
    }
    /// Reads len bytes from va into out; false (out partly written) on a fault.
    bool read_into(GuestVirt va, void* out, std::size_t len) {
        if (const std::byte* at = cached(va, len)) {
            std::memcpy(out, at, len);
            return true;
        }
        return read(va, std::span<std::byte>(static_cast<std::byte*>(out), len)).ok();
    }
    Result<Translation, MemFault> translate(GuestVirt va);

    /// Forgets every cached translation and learned top-level entry.
    void invalidate();

    struct Stats {
        std::uint64_t hits = 0;      ///< cached translation, leaf unchanged
        std::uint64_t stale = 0;     ///< cached translation whose leaf changed: walked again
        std::uint64_t misses = 0;    ///< walks (not counting stale ones)
        std::uint64_t learned_walks = 0;  ///< walks that started below a learned top entry
    };
    const Stats& stats() const { return stats_; }
    /// Whether walks of va start below a learned (confirmed) top-level entry.
    bool knows_top_entry(GuestVirt va) const;

  private:
    // Where [va, va + len) is in nitro's memory when it lies in one kernel page whose cached
    // translation is still that page's (the leaf entry is unchanged); else nullptr.
    const std::byte* cached(GuestVirt va, std::size_t len) {
        const std::uint64_t vpn = va.value() >> 12;
        const CacheEntry& e = cache_[vpn % kCacheEntries];
        if ((va.value() >> 63) == 0 || va.page_offset() + len > 4096 || !e.valid ||
            e.vpn != vpn || !e.page_host) {
            return nullptr;
        }
        std::uint64_t now;
        std::memcpy(&now, e.leaf_host, 8);
        if (now != e.leaf) return nullptr;
        ++stats_.hits;
        return e.page_host + va.page_offset();
    }

    struct CacheEntry {
        std::uint64_t vpn = 0;
        bool valid = false;
        PagingMode mode = PagingMode::Level4;
        Translation page;        // the translation of the page's first byte
        GuestPhys leaf_addr{};   // where the leaf entry is
        std::uint64_t leaf = 0;  // its value when cached
        // Both in nitro's memory (PhysicalMemory::host_view), when the memory has them there.
        const std::byte* leaf_host = nullptr;
        const std::byte* page_host = nullptr;
    };
    struct TopEntry {
        std::uint64_t value = 0;
        GuestPhys first_root{};  // the root it was first seen in
        bool seen = false;
        bool confirmed = false;  // seen with the same value in another root
    };

    Result<Translation, MemFault> walk(GuestVirt va);
    void learn_top(GuestVirt va, const PagingConfig& config, const WalkTrace& trace);
    unsigned top_index(GuestVirt va) const;

    PhysicalMemory* mem_;
    PagingConfig primary_;
    std::optional<PagingConfig> alternate_;
    PagingMode learned_mode_ = PagingMode::Level4;
    std::array<TopEntry, 512> top_{};
    std::array<CacheEntry, kCacheEntries> cache_{};
    Stats stats_;
};

}  // namespace nitro
