// SPDX-License-Identifier: MIT
// AddressSpace: reads across pages, partial reads, strings, the translation cache.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>

#include "nitro/memory.h"
#include "page_table_builder.h"

namespace nitro {
namespace {

using namespace nitro::test;

constexpr std::uint64_t kMem = 8ULL << 20;

class AddressSpaceTest : public ::testing::Test {
  protected:
    AddressSpaceTest() : mem(kMem), pt(mem, GuestPhys(0x10000)), as(mem, pt.config()) {}

    void fill(GuestPhys pa, std::string_view text) {
        ASSERT_EQ(mem.write(pa, std::as_bytes(std::span(text.data(), text.size()))), MemStatus::Ok);
    }
    std::string str(std::span<const std::byte> b) {
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
    }

    BufferPhysicalMemory mem;
    PageTableBuilder pt;
    AddressSpace as;
};

TEST_F(AddressSpaceTest, ReadCrossesPagesIntoUnrelatedFrames) {
    // Two consecutive virtual pages backed by frames in reverse physical order.
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x31'0000));
    pt.map(va + k4K, GuestPhys(0x30'0000));
    fill(GuestPhys(0x31'0000 + k4K - 5), "hello");
    fill(GuestPhys(0x30'0000), " world");
    std::array<std::byte, 11> out{};
    auto t = as.read(va + k4K - 5, out);
    ASSERT_TRUE(t.ok()) << to_string(t.fault);
    EXPECT_EQ(t.done, 11u);
    EXPECT_EQ(str(out), "hello world");

    // An unaligned u64 across the boundary.
    auto v = as.read_u64(va + k4K - 4);
    ASSERT_TRUE(v.ok());
    std::uint64_t expected;
    std::memcpy(&expected, "ello wor", 8);
    EXPECT_EQ(*v, expected);
}

TEST_F(AddressSpaceTest, ReadIntoUnmappedPageReportsPartialResult) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x30'0000));
    fill(GuestPhys(0x30'0000 + k4K - 3), "abc");
    std::array<std::byte, 16> out{};
    auto t = as.read(va + k4K - 3, out);
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.done, 3u);
    EXPECT_EQ(str(std::span(out).first(3)), "abc");
    EXPECT_EQ(t.fault.status, MemStatus::NotPresent);
    EXPECT_EQ(t.fault.virt, va + k4K);
    EXPECT_EQ(t.fault.level, kLevelPt);
    EXPECT_FALSE(as.read_u32(va + k4K - 2).ok());
}

TEST_F(AddressSpaceTest, ReadOfPageOutsideRamFails) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0xFEE0'0000));  // e.g. the local APIC: not RAM
    auto r = as.read_u8(va);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::OutOfRange);
    EXPECT_EQ(r.error().level, kLevelPage);
    EXPECT_EQ(r.error().phys, GuestPhys(0xFEE0'0000));
}

TEST_F(AddressSpaceTest, TypedReadsAndWrites) {
    const GuestVirt va(0x7fff'ffff'e000);
    pt.map(va, GuestPhys(0x30'0000));
    const std::uint64_t v = 0x8877'6655'4433'2211;
    auto t = as.write(va + 8, std::as_bytes(std::span<const std::uint64_t, 1>(&v, 1)));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(*as.read_u8(va + 8), 0x11);
    EXPECT_EQ(*as.read_u16(va + 8), 0x2211);
    EXPECT_EQ(*as.read_u32(va + 8), 0x4433'2211u);
    EXPECT_EQ(*as.read_u64(va + 8), v);
    EXPECT_EQ(*as.read_ptr(va + 8), GuestVirt(v));
    EXPECT_EQ(peek64(mem, GuestPhys(0x30'0008)), v);
}

TEST_F(AddressSpaceTest, WriteStopsAtUnmappedPage) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x30'0000));
    const std::string data(10, 'x');
    auto t = as.write(va + k4K - 4, std::as_bytes(std::span(data.data(), data.size())));
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.done, 4u);
    EXPECT_EQ(t.fault.status, MemStatus::NotPresent);
    EXPECT_EQ(static_cast<char>(mem.bytes()[0x30'0000 + k4K - 1]), 'x');
}

TEST_F(AddressSpaceTest, WriteThroughReadOnlyRamFails) {
    const std::string path = testing::TempDir() + "nitro_as_ram_XXXXXX";
    std::string p = path;
    const int fd = ::mkstemp(p.data());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kMem)), 0);
    // Build the page tables in the file through a writable view, then use a read-only one.
    {
        MappedPhysicalMemory rw({.path = p, .writable = true});
        PageTableBuilder b(rw, GuestPhys(0x10000));
        b.map(GuestVirt(0x40'0000), GuestPhys(0x30'0000));
    }
    MappedPhysicalMemory ro({.path = p});
    AddressSpace space(ro, PagingConfig{.root = GuestPhys(0x10000)});
    EXPECT_TRUE(space.read_u64(GuestVirt(0x40'0000)).ok());
    const std::uint32_t v = 1;
    auto t =
        space.write(GuestVirt(0x40'0000), std::as_bytes(std::span<const std::uint32_t, 1>(&v, 1)));
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.fault.status, MemStatus::ReadOnly);
    EXPECT_EQ(t.done, 0u);
    ::close(fd);
    ::unlink(p.c_str());
}

TEST_F(AddressSpaceTest, ReadWrappingPastTopOfAddressSpaceStops) {
    const GuestVirt top(0xffff'ffff'ffff'f000);
    pt.map(top, GuestPhys(0x30'0000));
    pt.map(GuestVirt(0), GuestPhys(0x31'0000));  // must not be reached by wrapping
    std::array<std::byte, 0x2000> out{};
    auto t = as.read(top, out);
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.done, 0x1000u);
    EXPECT_EQ(t.fault.status, MemStatus::NonCanonical);
    EXPECT_EQ(t.fault.virt, GuestVirt(0));
}

TEST_F(AddressSpaceTest, ReadRunningOffTheCanonicalLowerHalfStops) {
    const GuestVirt last(0x0000'7fff'ffff'f000);
    pt.map(last, GuestPhys(0x30'0000));
    std::array<std::byte, 0x1008> out{};
    auto t = as.read(last, out);
    EXPECT_EQ(t.done, 0x1000u);
    EXPECT_EQ(t.fault.status, MemStatus::NonCanonical);
    EXPECT_EQ(t.fault.virt, GuestVirt(0x0000'8000'0000'0000));
}

TEST_F(AddressSpaceTest, ReadsTerminatedStrings) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x30'0000));
    pt.map(va + k4K, GuestPhys(0x20'0000));
    fill(GuestPhys(0x30'0000 + 0x10), std::string_view("/etc/passwd\0", 12));
    auto s = as.read_cstring(va + 0x10, 4096);
    EXPECT_EQ(s.text, "/etc/passwd");
    EXPECT_EQ(s.end, StringEnd::Terminated);
    // Across a page boundary.
    fill(GuestPhys(0x30'0000 + k4K - 3), "/tm");
    fill(GuestPhys(0x20'0000), std::string_view("p/x\0", 4));
    s = as.read_cstring(va + k4K - 3, 100);
    EXPECT_EQ(s.text, "/tmp/x");
    EXPECT_EQ(s.end, StringEnd::Terminated);
    // Exactly max_len long is complete, one more is truncated.
    s = as.read_cstring(va + k4K - 3, 6);
    EXPECT_EQ(s.text, "/tmp/x");
    EXPECT_EQ(s.end, StringEnd::Terminated);
    s = as.read_cstring(va + k4K - 3, 5);
    EXPECT_EQ(s.text, "/tmp/");
    EXPECT_EQ(s.end, StringEnd::Truncated);
    s = as.read_cstring(va + k4K - 3, 0);
    EXPECT_EQ(s.text, "");
    EXPECT_EQ(s.end, StringEnd::Truncated);
    // The empty string.
    s = as.read_cstring(va + 0x500, 10);
    EXPECT_EQ(s.text, "");
    EXPECT_EQ(s.end, StringEnd::Terminated);
}

TEST_F(AddressSpaceTest, UnterminatedStringRunningIntoUnmappedPage) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x30'0000));
    fill(GuestPhys(0x30'0000 + k4K - 8), "AAAAAAAA");
    auto s = as.read_cstring(va + k4K - 8, 4096);
    EXPECT_EQ(s.text, "AAAAAAAA");
    EXPECT_EQ(s.end, StringEnd::Faulted);
    EXPECT_EQ(s.fault.status, MemStatus::NotPresent);
    EXPECT_EQ(s.fault.virt, va + k4K);
    // If the limit is reached first, it is a truncation, not a fault.
    s = as.read_cstring(va + k4K - 8, 8);
    EXPECT_EQ(s.text, "AAAAAAAA");
    EXPECT_EQ(s.end, StringEnd::Truncated);
    // Unreadable from the first byte.
    s = as.read_cstring(GuestVirt(0x1234'0000), 10);
    EXPECT_EQ(s.text, "");
    EXPECT_EQ(s.end, StringEnd::Faulted);
}

TEST_F(AddressSpaceTest, AbsurdLengthsAreCapped) {
    // A 2 MiB page full of non-zero bytes: a string without end.
    const GuestVirt va(0x20'0000'0000);
    pt.map(va, GuestPhys(0x40'0000), k2M);
    std::memset(mem.bytes().data() + 0x40'0000, 'A', k2M);
    auto s = as.read_cstring(va, 1ULL << 40);
    EXPECT_EQ(s.end, StringEnd::Truncated);
    EXPECT_EQ(s.text.size(), AddressSpace::kMaxStringLen);

    auto b = as.read_bytes(va, 1ULL << 40);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().status, MemStatus::TooLong);
    b = as.read_bytes(va + k2M - 16, 32);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().status, MemStatus::NotPresent);
    b = as.read_bytes(va, 16);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(str(*b), std::string(16, 'A'));
}

TEST_F(AddressSpaceTest, CacheServesRepeatsUntilInvalidated) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x30'0000));
    fill(GuestPhys(0x30'0000), "old!");
    fill(GuestPhys(0x31'0000), "new!");

    EXPECT_EQ(*as.read_u8(va), 'o');
    EXPECT_EQ(as.cache_stats().misses, 1u);
    EXPECT_EQ(*as.read_u8(va + 1), 'l');
    EXPECT_EQ(as.cache_stats().hits, 1u);

    // The guest remaps the page. Until invalidate() the stale translation is used; that is the
    // documented contract, and this proves the cache is really in the path.
    pt.set_entry(va, kLevelPt, 0x31'0000 | kP | kRW | kUS);
    EXPECT_EQ(*as.read_u8(va), 'o');
    const auto gen = as.generation();
    as.invalidate();
    EXPECT_EQ(as.generation(), gen + 1);
    EXPECT_EQ(*as.read_u8(va), 'n');

    // Unmapping is seen after invalidation as well.
    pt.set_entry(va, kLevelPt, 0);
    EXPECT_TRUE(as.read_u8(va).ok());
    as.invalidate();
    EXPECT_FALSE(as.read_u8(va).ok());
}

TEST_F(AddressSpaceTest, CacheDoesNotConfuseAliasingPages) {
    // Pages whose numbers differ by the cache size share a slot.
    const GuestVirt a(0x40'0000);
    const GuestVirt b = a + AddressSpace::kCacheEntries * k4K;
    pt.map(a, GuestPhys(0x30'0000));
    pt.map(b, GuestPhys(0x31'0000));
    fill(GuestPhys(0x30'0000), "a");
    fill(GuestPhys(0x31'0000), "b");
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(*as.read_u8(a), 'a');
        EXPECT_EQ(*as.read_u8(b), 'b');
    }
}

TEST_F(AddressSpaceTest, SwitchingTablesInvalidates) {
    const GuestVirt va(0x40'0000);
    pt.map(va, GuestPhys(0x30'0000));
    fill(GuestPhys(0x30'0000), "1");
    fill(GuestPhys(0x31'0000), "2");
    PageTableBuilder other(mem, GuestPhys(0x50000));
    other.map(va, GuestPhys(0x31'0000));
    EXPECT_EQ(*as.read_u8(va), '1');
    as.set_config(other.config());
    EXPECT_EQ(*as.read_u8(va), '2');
    AddressSpace from_regs(mem, other.root().value() | 0x5, 0);
    EXPECT_EQ(*from_regs.read_u8(va), '2');
}

TEST_F(AddressSpaceTest, GarbageMemoryNeverCrashes) {
    // Random physical memory, random roots, random reads and strings: only error values.
    std::mt19937_64 rng(1234);
    BufferPhysicalMemory junk(256 * 1024);
    for (auto& b : junk.bytes()) b = static_cast<std::byte>(rng() % 4 ? rng() : 0);
    for (std::size_t i = 0; i + 8 <= junk.bytes().size(); i += 8) {
        if (rng() % 2) {
            std::uint64_t e = (rng() % 64) * k4K | (rng() & 0x0fff) | kP;
            std::memcpy(&junk.bytes()[i], &e, 8);
        }
    }
    AddressSpace space(junk, PagingConfig{});
    std::array<std::byte, 9000> buf;
    for (int i = 0; i < 3000; ++i) {
        space.set_config(PagingConfig{.root = GuestPhys((rng() % 70) * k4K)});
        const GuestVirt va(rng() % 4 ? rng() & 0x7f'ffff : rng());
        auto t = space.read(va, std::span(buf).first(rng() % buf.size()));
        EXPECT_LE(t.done, buf.size());
        auto s = space.read_cstring(va, rng() % 2 ? 64 : ~std::size_t{0});
        EXPECT_LE(s.text.size(), AddressSpace::kMaxStringLen);
    }
}

}  // namespace
}  // namespace nitro
