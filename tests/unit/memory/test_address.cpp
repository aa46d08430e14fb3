// SPDX-License-Identifier: MIT
// Typed guest addresses and the x86 register helpers.
#include <gtest/gtest.h>

#include <type_traits>

#include "nitro/memory.h"

namespace nitro {
namespace {

// The two address kinds must not mix, and integers must not become addresses silently.
static_assert(!std::is_convertible_v<GuestVirt, GuestPhys>);
static_assert(!std::is_convertible_v<GuestPhys, GuestVirt>);
static_assert(!std::is_constructible_v<GuestPhys, GuestVirt>);
static_assert(!std::is_constructible_v<GuestVirt, GuestPhys>);
static_assert(!std::is_convertible_v<std::uint64_t, GuestPhys>);
static_assert(!std::is_convertible_v<std::uint64_t, GuestVirt>);
static_assert(!std::is_convertible_v<GuestVirt, std::uint64_t>);
static_assert(!std::is_assignable_v<GuestPhys&, GuestVirt>);
static_assert(!std::is_assignable_v<GuestPhys&, std::uint64_t>);
static_assert(std::is_trivially_copyable_v<GuestVirt>);
static_assert(sizeof(GuestVirt) == 8);

template <typename A, typename B>
concept Addable = requires(A a, B b) {
    a + b;
};
template <typename A, typename B>
concept Comparable = requires(A a, B b) {
    a == b;
};
static_assert(Addable<GuestVirt, std::uint64_t>);
static_assert(!Addable<GuestVirt, GuestPhys>);
static_assert(!Addable<GuestVirt, GuestVirt>);
static_assert(!Comparable<GuestVirt, GuestPhys>);
static_assert(!Comparable<GuestVirt, std::uint64_t>);

TEST(GuestAddress, ArithmeticWithOffsets) {
    GuestVirt va(0x7fff'0000'1234);
    EXPECT_EQ((va + 0x10).value(), 0x7fff'0000'1244u);
    EXPECT_EQ((va - 0x34).value(), 0x7fff'0000'1200u);
    EXPECT_EQ(GuestVirt(0x5000) - GuestVirt(0x4ff8), 8u);
    va += 0xdcc;
    EXPECT_EQ(va.value(), 0x7fff'0000'2000u);
    EXPECT_EQ(GuestVirt(0x12345).page_offset(), 0x345u);
    EXPECT_EQ(GuestVirt(0x12345).page_base(), GuestVirt(0x12000));
    EXPECT_EQ(GuestPhys(0x40'1234'5678).page_base(1ULL << 30), GuestPhys(0x40'0000'0000));
    EXPECT_LT(GuestPhys(1), GuestPhys(2));
    // Wraps like the hardware.
    EXPECT_EQ((GuestVirt(~0ULL) + 1).value(), 0u);
}

TEST(GuestAddress, FormatsAsHex) {
    EXPECT_EQ(fmt::format("{}", GuestVirt(0xffff'8880'0000'1000)), "0xffff888000001000");
    EXPECT_EQ(fmt::format("{}", GuestPhys(0)), "0x0");
    EXPECT_EQ(fmt::format("{:016x}", GuestPhys(0xabc)), "0000000000000abc");
    EXPECT_EQ(fmt::format("{}", MemStatus::NotPresent), "not present");
}

TEST(X86, Canonical) {
    using x86::is_canonical;
    EXPECT_TRUE(is_canonical(GuestVirt(0), PagingMode::Level4));
    EXPECT_TRUE(is_canonical(GuestVirt(0x0000'7fff'ffff'ffff), PagingMode::Level4));
    EXPECT_FALSE(is_canonical(GuestVirt(0x0000'8000'0000'0000), PagingMode::Level4));
    EXPECT_FALSE(is_canonical(GuestVirt(0xffff'7fff'ffff'ffff), PagingMode::Level4));
    EXPECT_TRUE(is_canonical(GuestVirt(0xffff'8000'0000'0000), PagingMode::Level4));
    EXPECT_TRUE(is_canonical(GuestVirt(~0ULL), PagingMode::Level4));
    EXPECT_TRUE(is_canonical(GuestVirt(0x00ff'ffff'ffff'ffff), PagingMode::Level5));
    EXPECT_FALSE(is_canonical(GuestVirt(0x0100'0000'0000'0000), PagingMode::Level5));
    EXPECT_TRUE(is_canonical(GuestVirt(0xff00'0000'0000'0000), PagingMode::Level5));
    EXPECT_FALSE(is_canonical(GuestVirt(0xfeff'ffff'ffff'ffff), PagingMode::Level5));
    EXPECT_TRUE(is_canonical(GuestVirt(0x0000'8000'0000'0000), PagingMode::Level5));
}

TEST(X86, Cr3Helpers) {
    // PCID 0x123 and the no-flush bit do not belong to the table address.
    const std::uint64_t cr3 = (1ULL << 63) | 0x1'2345'6000ULL | 0x123;
    EXPECT_EQ(x86::pgd_from_cr3(cr3), GuestPhys(0x1'2345'6000));
    EXPECT_EQ(x86::pcid_from_cr3(cr3, x86::kCr4Pcide), 0x123);
    EXPECT_EQ(x86::pcid_from_cr3(cr3, 0), 0);
    // PWT/PCD without PCIDE are masked as well.
    EXPECT_EQ(x86::pgd_from_cr3(0x5000 | 0x18), GuestPhys(0x5000));

    EXPECT_EQ(x86::paging_mode(0), PagingMode::Level4);
    EXPECT_EQ(x86::paging_mode(x86::kCr4La57 | x86::kCr4Pcide), PagingMode::Level5);

    // KPTI pair: kernel 0x10000, user 0x11000 (user PCID has bit 11 set in Linux).
    const std::uint64_t user_cr3 = (1ULL << 63) | 0x11000 | 0x801;
    const std::uint64_t kernel_cr3 = 0x10000 | 0x001;
    EXPECT_EQ(x86::kpti_kernel_pgd(user_cr3), GuestPhys(0x10000));
    EXPECT_EQ(x86::kpti_kernel_pgd(kernel_cr3), GuestPhys(0x10000));
    EXPECT_EQ(x86::kpti_user_pgd(kernel_cr3), GuestPhys(0x11000));
    EXPECT_EQ(x86::kpti_user_pgd(user_cr3), GuestPhys(0x11000));

    auto c = PagingConfig::from_registers(user_cr3, x86::kCr4La57 | x86::kCr4Pcide, 0);
    EXPECT_EQ(c.root, GuestPhys(0x11000));
    EXPECT_EQ(c.mode, PagingMode::Level5);
    EXPECT_FALSE(c.nxe);
}

TEST(MemFault, DescribesItself) {
    MemFault f;
    EXPECT_EQ(to_string(f), "ok");
    f.status = MemStatus::NotPresent;
    f.level = kLevelPd;
    f.phys = GuestPhys(0x3ff8);
    f.entry = 0x1234;
    f.virt = GuestVirt(0x7fff0000);
    EXPECT_EQ(to_string(f), "not present at PDE 0x3ff8 = 0x1234 for virtual 0x7fff0000");
    f.level = kLevelPage;
    f.status = MemStatus::OutOfRange;
    EXPECT_EQ(to_string(f), "out of range at physical 0x3ff8 for virtual 0x7fff0000");
}

}  // namespace
}  // namespace nitro
