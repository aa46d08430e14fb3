// SPDX-License-Identifier: MIT
// KernelAddressSpace: kernel translations kept from event to event, checked against their leaf
// entry at each use; top-level entries learned from two roots; nothing stale comes back.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>

#include "memory/kernel_address_space.h"
#include "page_table_builder.h"

namespace nitro {
namespace {

using test::k2M;
using test::PageTableBuilder;
using test::peek64;
using test::poke64;

constexpr std::uint64_t kTaskVa = 0xffff888000020000ULL;
constexpr std::uint64_t kOtherVa = 0xffff888000031000ULL;
constexpr std::uint64_t kUserVa = 0x400000ULL;

class KernelAddressSpaceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        mem_ = std::make_unique<BufferPhysicalMemory>(8 << 20);
        pt_ = std::make_unique<PageTableBuilder>(*mem_, GuestPhys(0x200000), GuestPhys(0x300000));
        pt_->map(GuestVirt(kTaskVa), GuestPhys(0x20000));
        pt_->map(GuestVirt(kOtherVa), GuestPhys(0x31000));
        pt_->map(GuestVirt(kUserVa), GuestPhys(0x40000));
        poke64(*mem_, GuestPhys(0x20000), 0x1111);
        poke64(*mem_, GuestPhys(0x21000), 0x2222);
        poke64(*mem_, GuestPhys(0x31000), 0x3333);
        poke64(*mem_, GuestPhys(0x40000), 0x4444);
        poke64(*mem_, GuestPhys(0x41000), 0x5555);
        ks_ = std::make_unique<KernelAddressSpace>(*mem_);
    }

    // A second process's root: its own (empty) user half, the kernel half copied from the
    // first root, as the kernel's pgd_alloc does.
    GuestPhys second_root() {
        const GuestPhys root(0x280000);
        for (unsigned i = 0; i < 512; ++i) {
            poke64(*mem_, root + i * 8, i >= 256 ? peek64(*mem_, pt_->root() + i * 8) : 0);
        }
        return root;
    }
    PagingConfig config(GuestPhys root) const {
        PagingConfig c = pt_->config();
        c.root = root;
        return c;
    }
    std::uint64_t read(std::uint64_t va) {
        auto r = ks_->read_value<std::uint64_t>(GuestVirt(va));
        EXPECT_TRUE(r.ok()) << to_string(r.error());
        return r.value_or(0);
    }

    std::unique_ptr<BufferPhysicalMemory> mem_;
    std::unique_ptr<PageTableBuilder> pt_;
    std::unique_ptr<KernelAddressSpace> ks_;
};

TEST_F(KernelAddressSpaceTest, TranslationIsKeptFromEventToEvent) {
    for (int event = 0; event < 3; ++event) {
        ks_->set_roots(pt_->config(), std::nullopt);
        EXPECT_EQ(read(kTaskVa), 0x1111u);
    }
    EXPECT_EQ(ks_->stats().misses, 1u);
    EXPECT_EQ(ks_->stats().hits, 2u);
}

TEST_F(KernelAddressSpaceTest, RemappedPageIsWalkedAgain) {
    ks_->set_roots(pt_->config(), std::nullopt);
    EXPECT_EQ(read(kTaskVa), 0x1111u);
    // The kernel maps another page there: the leaf entry changed, the cached translation is
    // not used.
    pt_->set_entry(GuestVirt(kTaskVa), 1, 0x21000 | test::kP | test::kRW);
    EXPECT_EQ(read(kTaskVa), 0x2222u);
    EXPECT_EQ(ks_->stats().stale, 1u);
    EXPECT_EQ(read(kTaskVa), 0x2222u);
}

TEST_F(KernelAddressSpaceTest, UnmappedPageIsNotReadThroughTheCache) {
    ks_->set_roots(pt_->config(), std::nullopt);
    EXPECT_EQ(read(kTaskVa), 0x1111u);
    pt_->set_entry(GuestVirt(kTaskVa), 1, 0);
    auto r = ks_->read_value<std::uint64_t>(GuestVirt(kTaskVa));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, MemStatus::NotPresent);
}

TEST_F(KernelAddressSpaceTest, LargePagesAreCachedToo) {
    pt_->map(GuestVirt(0xffff888040000000ULL), GuestPhys(0x400000), k2M);
    poke64(*mem_, GuestPhys(0x400000 + 0x1234 * 8), 42);
    ks_->set_roots(pt_->config(), std::nullopt);
    EXPECT_EQ(read(0xffff888040000000ULL + 0x1234 * 8), 42u);
    EXPECT_EQ(read(0xffff888040000000ULL + 0x1234 * 8), 42u);
    EXPECT_EQ(ks_->stats().hits, 1u);
}

TEST_F(KernelAddressSpaceTest, UserAddressesAreNotCached) {
    ks_->set_roots(pt_->config(), std::nullopt);
    EXPECT_EQ(read(kUserVa), 0x4444u);
    pt_->set_entry(GuestVirt(kUserVa), 1, 0x41000 | test::kP | test::kRW | test::kUS);
    EXPECT_EQ(read(kUserVa), 0x5555u);
    EXPECT_EQ(ks_->stats().hits, 0u);
}

TEST_F(KernelAddressSpaceTest, AlternateRootWhenThePrimaryDoesNotMapTheKernel) {
    // KPTI: the user half of the pair maps nothing of the kernel.
    const GuestPhys user_half(0x201000);
    for (unsigned i = 0; i < 512; ++i) poke64(*mem_, user_half + i * 8, 0);
    ks_->set_roots(config(user_half), config(pt_->root()));
    EXPECT_EQ(read(kTaskVa), 0x1111u);
}

TEST_F(KernelAddressSpaceTest, FreedPageTablesAfterTwoRootsAgreed) {
    const GuestPhys other = second_root();
    ks_->set_roots(config(pt_->root()), std::nullopt);
    EXPECT_EQ(read(kTaskVa), 0x1111u);
    EXPECT_FALSE(ks_->knows_top_entry(GuestVirt(kTaskVa)));
    ks_->set_roots(config(other), std::nullopt);
    EXPECT_EQ(read(kOtherVa), 0x3333u);  // a walk from the second root: same top entry
    EXPECT_TRUE(ks_->knows_top_entry(GuestVirt(kOtherVa)));

    // The second process exits and the kernel frees (and reuses) its top-level table. Its
    // events, decoded late, still reach kernel memory: through the cached translation, and,
    // for a page not seen yet, below the learned top-level entry.
    for (unsigned i = 0; i < 512; ++i) poke64(*mem_, other + i * 8, 0xdeadbeefULL);
    ks_->set_roots(config(other), std::nullopt);
    EXPECT_EQ(read(kTaskVa), 0x1111u);
    pt_->map(GuestVirt(kTaskVa + 0x5000), GuestPhys(0x21000));
    EXPECT_EQ(read(kTaskVa + 0x5000), 0x2222u);
    EXPECT_GE(ks_->stats().learned_walks, 1u);
}

TEST_F(KernelAddressSpaceTest, OneRootAloneTeachesNothing) {
    // The same root seen twice is no confirmation: a garbage table could say anything.
    ks_->set_roots(pt_->config(), std::nullopt);
    EXPECT_EQ(read(kTaskVa), 0x1111u);
    EXPECT_EQ(read(kOtherVa), 0x3333u);
    EXPECT_FALSE(ks_->knows_top_entry(GuestVirt(kTaskVa)));
    // Then the root is garbage: a page never read before cannot be reached.
    pt_->map(GuestVirt(kTaskVa + 0x7000), GuestPhys(0x21000));
    for (unsigned i = 0; i < 512; ++i) poke64(*mem_, pt_->root() + i * 8, 0);
    EXPECT_FALSE(ks_->read_value<std::uint64_t>(GuestVirt(kTaskVa + 0x7000)).ok());
}

TEST_F(KernelAddressSpaceTest, ReadsAcrossPagesAndBadRanges) {
    pt_->map(GuestVirt(kTaskVa + 0x1000), GuestPhys(0x21000));
    ks_->set_roots(pt_->config(), std::nullopt);
    std::array<std::byte, 16> buf{};
    // 8 bytes at the end of one page, 8 at the start of the next.
    poke64(*mem_, GuestPhys(0x20ff8), 0xaaaa);
    Transfer t = ks_->read(GuestVirt(kTaskVa + 0xff8), buf);
    ASSERT_TRUE(t.ok());
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, buf.data(), 8);
    std::memcpy(&b, buf.data() + 8, 8);
    EXPECT_EQ(a, 0xaaaau);
    EXPECT_EQ(b, 0x2222u);
    // Wrapping past 2^64 and unmapped pages fail without reading anything beyond.
    EXPECT_FALSE(ks_->read(GuestVirt(~0ULL - 3), buf).ok());
    t = ks_->read(GuestVirt(kTaskVa + 0x1ff8), buf);
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.done, 8u);
}

TEST(TranslateBelow, MatchesAFullWalk) {
    BufferPhysicalMemory mem(4 << 20);
    PageTableBuilder pt(mem, GuestPhys(0x100000));
    pt.map(GuestVirt(kTaskVa), GuestPhys(0x20000));
    const std::uint64_t top = pt.entry(GuestVirt(kTaskVa), 4);
    auto full = translate(mem, pt.config(), GuestVirt(kTaskVa + 8));
    auto below = translate_below(mem, pt.config(), GuestVirt(kTaskVa + 8), top);
    ASSERT_TRUE(full.ok() && below.ok());
    EXPECT_EQ(below->phys, full->phys);
    // A non-present or reserved top entry faults as a read one would.
    EXPECT_EQ(translate_below(mem, pt.config(), GuestVirt(kTaskVa), 0).error().status,
              MemStatus::NotPresent);
    EXPECT_EQ(translate_below(mem, pt.config(), GuestVirt(kTaskVa), top | test::kPS)
                  .error()
                  .status,
              MemStatus::Reserved);
}

}  // namespace
}  // namespace nitro
