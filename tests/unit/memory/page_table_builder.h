// SPDX-License-Identifier: MIT
// Builds x86-64 page tables by hand inside a BufferPhysicalMemory, for tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "nitro/memory.h"

namespace nitro::test {

inline constexpr std::uint64_t kP = 1ULL << 0;
inline constexpr std::uint64_t kRW = 1ULL << 1;
inline constexpr std::uint64_t kUS = 1ULL << 2;
inline constexpr std::uint64_t kPS = 1ULL << 7;
inline constexpr std::uint64_t kNX = 1ULL << 63;
inline constexpr std::uint64_t k4K = 1ULL << 12;
inline constexpr std::uint64_t k2M = 1ULL << 21;
inline constexpr std::uint64_t k1G = 1ULL << 30;

inline void poke64(PhysicalMemory& mem, GuestPhys pa, std::uint64_t v) {
    ASSERT_EQ(mem.write(pa, std::as_bytes(std::span<std::uint64_t, 1>(&v, 1))), MemStatus::Ok);
}

inline std::uint64_t peek64(const PhysicalMemory& mem, GuestPhys pa) {
    auto r = mem.read_u64(pa);
    EXPECT_TRUE(r.ok());
    return r.value_or(0);
}

// Allocates zeroed table pages upwards from `first_table` and maps pages in them.
class PageTableBuilder {
  public:
    PageTableBuilder(PhysicalMemory& mem, GuestPhys first_table,
                     PagingMode mode = PagingMode::Level4)
        : mem_(mem), next_(first_table), mode_(mode) {
        root_ = alloc_table();
    }
    // The root at `root`, other tables from `pool` upwards.
    PageTableBuilder(PhysicalMemory& mem, GuestPhys root, GuestPhys pool,
                     PagingMode mode = PagingMode::Level4)
        : mem_(mem), next_(root), mode_(mode) {
        root_ = alloc_table();
        next_ = pool;
    }

    GuestPhys root() const { return root_; }
    PagingMode mode() const { return mode_; }
    PagingConfig config() const {
        PagingConfig c;
        c.root = root_;
        c.mode = mode_;
        return c;
    }
    unsigned top_level() const { return mode_ == PagingMode::Level5 ? 5 : 4; }

    GuestPhys alloc_table() {
        GuestPhys t = next_;
        next_ += k4K;
        std::uint64_t zero = 0;
        for (unsigned i = 0; i < 512; ++i) {
            EXPECT_EQ(mem_.write(t + i * 8, std::as_bytes(std::span<std::uint64_t, 1>(&zero, 1))),
                      MemStatus::Ok);
        }
        return t;
    }

    // Maps the page of `size` (4K, 2M, 1G) at `va` to `pa`. Intermediate entries get
    // P|RW|US so that the leaf's `flags` decide the permissions.
    void map(GuestVirt va, GuestPhys pa, std::uint64_t size = k4K,
             std::uint64_t flags = kRW | kUS) {
        const unsigned leaf = size == k1G ? 3 : size == k2M ? 2 : 1;
        GuestPhys table = root_;
        for (unsigned level = top_level(); level > leaf; --level) {
            GuestPhys ea = entry_addr_in(table, va, level);
            std::uint64_t e = peek64(mem_, ea);
            if (!(e & kP)) {
                e = alloc_table().value() | kP | kRW | kUS;
                poke64(mem_, ea, e);
            }
            table = GuestPhys(e & 0x000F'FFFF'FFFF'F000ULL);
        }
        poke64(mem_, entry_addr_in(table, va, leaf),
               pa.value() | flags | kP | (leaf > 1 ? kPS : 0));
    }

    // Address of the entry for `va` at `level` (the tables above it must exist).
    GuestPhys entry_addr(GuestVirt va, unsigned level) const {
        GuestPhys table = root_;
        for (unsigned l = top_level(); l > level; --l) {
            table = GuestPhys(peek64(mem_, entry_addr_in(table, va, l)) & 0x000F'FFFF'FFFF'F000ULL);
        }
        return entry_addr_in(table, va, level);
    }
    std::uint64_t entry(GuestVirt va, unsigned level) const {
        return peek64(mem_, entry_addr(va, level));
    }
    void set_entry(GuestVirt va, unsigned level, std::uint64_t v) {
        poke64(mem_, entry_addr(va, level), v);
    }

    static GuestPhys entry_addr_in(GuestPhys table, GuestVirt va, unsigned level) {
        return table + ((va.value() >> (12 + 9 * (level - 1))) & 0x1FF) * 8;
    }

  private:
    PhysicalMemory& mem_;
    GuestPhys next_;
    PagingMode mode_;
    GuestPhys root_;
};

}  // namespace nitro::test
