// SPDX-License-Identifier: MIT
// The x86-64 page walker over hand-built page tables.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "nitro/memory.h"
#include "page_table_builder.h"

namespace nitro {
namespace {

using namespace nitro::test;

constexpr std::uint64_t kMem = 8ULL << 20;  // 8 MiB of guest RAM
constexpr GuestPhys kTables(0x10000);

class Walk : public ::testing::TestWithParam<PagingMode> {
  protected:
    Walk() : mem(kMem), pt(mem, kTables, GetParam()) {}

    Result<Translation, MemFault> walk(GuestVirt va, WalkTrace* trace = nullptr) {
        return translate(mem, pt.config(), va, trace);
    }

    BufferPhysicalMemory mem;
    PageTableBuilder pt;
};

INSTANTIATE_TEST_SUITE_P(Modes, Walk, ::testing::Values(PagingMode::Level4, PagingMode::Level5),
                         [](const auto& info) {
                             return info.param == PagingMode::Level5 ? "Level5" : "Level4";
                         });

TEST_P(Walk, Translates4KPagesAndRecordsEachLevel) {
    const GuestVirt va(0x7f12'3456'7abc);
    pt.map(va.page_base(), GuestPhys(0x40'5000));
    WalkTrace trace;
    auto r = walk(va, &trace);
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(r->phys, GuestPhys(0x40'5abc));
    EXPECT_EQ(r->page_size, k4K);
    EXPECT_EQ(r->leaf_level, kLevelPt);
    EXPECT_TRUE(r->perms.user);
    EXPECT_TRUE(r->perms.writable);
    EXPECT_FALSE(r->perms.nx);

    ASSERT_EQ(trace.count, pt.top_level());
    for (unsigned i = 0; i < trace.count; ++i) {
        const unsigned level = pt.top_level() - i;
        EXPECT_EQ(trace.steps[i].level, level);
        EXPECT_EQ(trace.steps[i].entry_addr, pt.entry_addr(va, level));
        EXPECT_EQ(trace.steps[i].entry, pt.entry(va, level));
    }
    EXPECT_EQ(trace.steps[0].entry_addr,
              PageTableBuilder::entry_addr_in(pt.root(), va, pt.top_level()));
    EXPECT_NE(trace.to_string().find("PTE[0x167]"), std::string::npos) << trace.to_string();
    // The neighbouring page is not mapped.
    EXPECT_FALSE(walk(va + k4K).ok());
}

TEST_P(Walk, Translates2MAnd1GPages) {
    const GuestVirt va2m(0xffff'8880'0060'0000);
    const GuestVirt va1g(0xffff'c900'4000'0000);
    pt.map(va2m, GuestPhys(0x20'0000), k2M);
    pt.map(va1g, GuestPhys(0x1'4000'0000), k1G, kRW | kNX);
    auto r = walk(va2m + 0x1'2345);
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(r->phys, GuestPhys(0x21'2345));
    EXPECT_EQ(r->page_size, k2M);
    EXPECT_EQ(r->leaf_level, kLevelPd);

    WalkTrace trace;
    r = walk(va1g + 0x3abc'def0, &trace);
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(r->phys, GuestPhys(0x1'7abc'def0));
    EXPECT_EQ(r->page_size, k1G);
    EXPECT_EQ(r->leaf_level, kLevelPdpt);
    EXPECT_EQ(trace.count, pt.top_level() - 2);
    EXPECT_FALSE(r->perms.user);
    EXPECT_TRUE(r->perms.nx);

    // Bit 12 of a large-page entry is PAT, not an address bit.
    pt.set_entry(va2m, kLevelPd, pt.entry(va2m, kLevelPd) | (1ULL << 12));
    r = walk(va2m + 0x10);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->phys, GuestPhys(0x20'0010));
}

TEST_P(Walk, LargePagesWithReservedBitsFail) {
    const GuestVirt va2m(0x4000'0000);
    const GuestVirt va1g(0x80'0000'0000);
    pt.map(va2m, GuestPhys(0x20'0000), k2M);
    pt.map(va1g, GuestPhys(0x4000'0000), k1G);
    pt.set_entry(va2m, kLevelPd, pt.entry(va2m, kLevelPd) | (1ULL << 13));
    pt.set_entry(va1g, kLevelPdpt, pt.entry(va1g, kLevelPdpt) | (1ULL << 29));
    auto r = walk(va2m);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::Reserved);
    EXPECT_EQ(r.error().level, kLevelPd);
    r = walk(va1g);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::Reserved);
    EXPECT_EQ(r.error().level, kLevelPdpt);
}

TEST_P(Walk, NotPresentAtEachLevel) {
    const GuestVirt va(0x5555'5555'5000);
    for (unsigned level = 1; level <= pt.top_level(); ++level) {
        SCOPED_TRACE(fmt::format("level {}", level));
        pt.map(va, GuestPhys(0x30'0000));
        ASSERT_TRUE(walk(va).ok());
        const GuestPhys ea = pt.entry_addr(va, level);
        const std::uint64_t old = pt.entry(va, level);
        poke64(mem, ea, old & ~kP);

        WalkTrace trace;
        auto r = walk(va + 0x18, &trace);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().status, MemStatus::NotPresent);
        EXPECT_EQ(r.error().level, level);
        EXPECT_EQ(r.error().phys, ea);
        EXPECT_EQ(r.error().entry, old & ~kP);
        EXPECT_EQ(r.error().virt, va + 0x18);
        EXPECT_EQ(trace.count, pt.top_level() - level + 1);
        poke64(mem, ea, old);
    }
}

TEST_P(Walk, AddressBitsAboveMaxPhyAddrAreReserved) {
    const GuestVirt va(0x1000);
    pt.map(va, GuestPhys(0x30'0000));
    PagingConfig c = pt.config();
    c.maxphyaddr = 40;
    for (unsigned level = 1; level <= pt.top_level(); ++level) {
        SCOPED_TRACE(fmt::format("level {}", level));
        const std::uint64_t old = pt.entry(va, level);
        pt.set_entry(va, level, old | (1ULL << 45));
        auto r = translate(mem, c, va);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().status, MemStatus::Reserved);
        EXPECT_EQ(r.error().level, level);
        // With the architectural maximum the same bit is an address bit: the walk goes on to
        // read beyond RAM (or, for the leaf, translates to an address outside it).
        auto lenient = walk(va);
        if (level == 1) {
            ASSERT_TRUE(lenient.ok());
            EXPECT_EQ(lenient->phys, GuestPhys((1ULL << 45) | 0x30'0000));
        } else {
            ASSERT_FALSE(lenient.ok());
            EXPECT_EQ(lenient.error().status, MemStatus::OutOfRange);
            EXPECT_EQ(lenient.error().level, level - 1);
        }
        pt.set_entry(va, level, old);
    }
}

TEST_P(Walk, XdIsReservedWithoutNxe) {
    const GuestVirt va(0x2000);
    pt.map(va, GuestPhys(0x30'0000), k4K, kRW | kUS | kNX);
    PagingConfig c = pt.config();
    auto r = translate(mem, c, va);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->perms.nx);
    c.nxe = false;
    r = translate(mem, c, va);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::Reserved);
    EXPECT_EQ(r.error().level, kLevelPt);
}

TEST_P(Walk, PageSizeBitInTopLevelsIsReserved) {
    const GuestVirt va(0x3000);
    pt.map(va, GuestPhys(0x30'0000));
    for (unsigned level = 4; level <= pt.top_level(); ++level) {
        const std::uint64_t old = pt.entry(va, level);
        pt.set_entry(va, level, old | kPS);
        auto r = walk(va);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().status, MemStatus::Reserved);
        EXPECT_EQ(r.error().level, level);
        pt.set_entry(va, level, old);
    }
}

TEST_P(Walk, PermissionsCombineAcrossLevels) {
    const GuestVirt va(0x7000'0000'0000);
    pt.map(va, GuestPhys(0x30'0000));
    pt.set_entry(va, kLevelPd, pt.entry(va, kLevelPd) & ~kUS);
    pt.set_entry(va, pt.top_level(), pt.entry(va, pt.top_level()) & ~kRW);
    pt.set_entry(va, kLevelPdpt, pt.entry(va, kLevelPdpt) | kNX);
    auto r = walk(va);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->perms.user);
    EXPECT_FALSE(r->perms.writable);
    EXPECT_TRUE(r->perms.nx);
}

TEST_P(Walk, RejectsNonCanonicalAddresses) {
    const GuestVirt bad = GetParam() == PagingMode::Level5 ? GuestVirt(0x0100'0000'0000'0000)
                                                           : GuestVirt(0x0000'8000'0000'0000);
    WalkTrace trace;
    auto r = walk(bad, &trace);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::NonCanonical);
    EXPECT_EQ(r.error().virt, bad);
    EXPECT_EQ(trace.count, 0);  // no memory was touched
    EXPECT_FALSE(walk(GuestVirt(0xdead'0000'0000'0000)).ok());
}

TEST_P(Walk, EntriesPointingOutsideRamFailCleanly) {
    const GuestVirt va(0x4000);
    pt.map(va, GuestPhys(0x30'0000));
    const std::uint64_t far = 0x7'0000'0000ULL;  // 28 GiB: far past the 8 MiB of RAM
    pt.set_entry(va, kLevelPdpt, far | kP | kRW);
    WalkTrace trace;
    auto r = walk(va, &trace);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::OutOfRange);
    EXPECT_EQ(r.error().level, kLevelPd);  // the PD could not be read
    EXPECT_EQ(r.error().phys, GuestPhys(far));
    EXPECT_EQ(trace.count, pt.top_level() - 1);

    // A root outside RAM fails at the top level.
    PagingConfig c = pt.config();
    c.root = GuestPhys(0xFFFF'FFFF'F000);
    r = translate(mem, c, va);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::OutOfRange);
    EXPECT_EQ(r.error().level, pt.top_level());
}

TEST_P(Walk, FinalPageOutsideRamStillTranslates) {
    // A mapping of MMIO or of a bogus frame is a valid translation; reading it is what fails.
    const GuestVirt va(0x5000);
    pt.map(va, GuestPhys(0xFE00'0000));
    auto r = walk(va);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->phys, GuestPhys(0xFE00'0000));
}

TEST_P(Walk, SelfReferencingTableTerminates) {
    // Windows-style recursive slot: the top-level entry 0x1ed points at the top-level table.
    // Following it at every level must end after top_level() reads, landing in the table.
    const std::uint64_t slot = 0x1ed;
    poke64(mem, pt.root() + slot * 8, pt.root().value() | kP | kRW);
    std::uint64_t v = 0;
    for (unsigned i = 0; i < pt.top_level(); ++i) v |= slot << (12 + 9 * i);
    const unsigned bits = GetParam() == PagingMode::Level5 ? 57 : 48;
    if (v & (1ULL << (bits - 1))) v |= ~0ULL << bits;  // sign-extend
    const GuestVirt va = GuestVirt(v) + 0x18;
    WalkTrace trace;
    auto r = walk(va, &trace);
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(r->phys, pt.root() + 0x18);
    EXPECT_EQ(trace.count, pt.top_level());
}

TEST_P(Walk, CycleBetweenTablesTerminates) {
    // The top-level table points at a second table that points back at the first, and so on.
    BufferPhysicalMemory cyc(3 * k4K);
    const GuestPhys a(0), b(k4K);
    for (unsigned i = 0; i < 512; ++i) {
        poke64(cyc, a + i * 8, b.value() | kP | kRW | kUS);
        poke64(cyc, b + i * 8, a.value() | kP | kRW | kUS);
    }
    PagingConfig c{.root = a, .mode = GetParam()};
    std::mt19937_64 rng(42);
    for (int i = 0; i < 1000; ++i) {
        GuestVirt va(rng() & 0x0000'7fff'ffff'ffffULL);
        WalkTrace trace;
        auto r = translate(cyc, c, va, &trace);
        ASSERT_TRUE(r.ok());
        EXPECT_LE(trace.count, 5);
        EXPECT_LT(r->phys.value(), 2 * k4K);
    }
}

TEST(PageWalk, KptiKernelPgdFromUserCr3) {
    BufferPhysicalMemory mem(kMem);
    // Kernel PGD at an 8 KiB-aligned page, user PGD 4 KiB above it.
    PageTableBuilder kernel(mem, GuestPhys(0x20000), GuestPhys(0x40000));
    PageTableBuilder user(mem, GuestPhys(0x21000), GuestPhys(0x60000));

    const GuestVirt uva(0x5555'0000'0000);
    const GuestVirt kva(0xffff'ffff'8100'0000);
    // The user tables map only user space (plus, in real kernels, an entry trampoline).
    user.map(uva, GuestPhys(0x30'0000));
    kernel.map(kva, GuestPhys(0x20'0000), k2M, kRW);

    const std::uint64_t user_cr3 = (1ULL << 63) | 0x21000 | 0x801;
    const std::uint64_t cr4 = x86::kCr4Pcide;
    auto as_user = PagingConfig::from_registers(user_cr3, cr4);
    EXPECT_EQ(as_user.root, GuestPhys(0x21000));
    EXPECT_TRUE(translate(mem, as_user, uva).ok());
    auto r = translate(mem, as_user, kva);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::NotPresent);

    PagingConfig as_kernel = as_user;
    as_kernel.root = x86::kpti_kernel_pgd(user_cr3);
    r = translate(mem, as_kernel, kva + 0x1234);
    ASSERT_TRUE(r.ok()) << to_string(r.error());
    EXPECT_EQ(r->phys, GuestPhys(0x20'1234));
    EXPECT_FALSE(r->perms.user);
}

TEST(PageWalk, GarbageTablesNeverCrash) {
    // Random bytes as page tables: every walk must end in a translation or an error.
    std::mt19937_64 rng(7);
    std::vector<std::byte> bytes(64 * 1024);
    for (auto& b : bytes) b = static_cast<std::byte>(rng());
    // Make most entries present and point inside the buffer, with few large-page or XD bits,
    // so that walks often go all the way down.
    for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        if (rng() % 8) {
            std::uint64_t e = (rng() % 16) * k4K | (rng() & 0x0fff) | kP;
            if (rng() % 4) e &= ~kPS;
            if (rng() % 8 == 0) e |= kNX;
            std::memcpy(&bytes[i], &e, 8);
        }
    }
    BufferPhysicalMemory mem(std::move(bytes));
    int ok = 0, failed = 0;
    for (int i = 0; i < 20000; ++i) {
        PagingConfig c;
        c.root = GuestPhys((rng() % 20) * k4K);  // some roots are outside the buffer
        c.mode = rng() % 2 ? PagingMode::Level5 : PagingMode::Level4;
        c.maxphyaddr = 20 + rng() % 33;
        c.nxe = rng() % 2;
        WalkTrace trace;
        // Mostly canonical addresses (sign-extended from bit 47), some arbitrary ones.
        std::uint64_t va = rng();
        if (rng() % 8) va = static_cast<std::uint64_t>(static_cast<std::int64_t>(va << 16) >> 16);
        auto r = translate(mem, c, GuestVirt(va), &trace);
        EXPECT_LE(trace.count, 5);
        (r.ok() ? ok : failed)++;
    }
    // The generator is meant to reach both outcomes; if it does not, the test proves little.
    EXPECT_GT(ok, 100);
    EXPECT_GT(failed, 100);
}

}  // namespace
}  // namespace nitro
