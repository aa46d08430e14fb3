// SPDX-License-Identifier: MIT
// The plugin's register-file finder, run against a register file laid out like QEMU's x86 CPU
// state in this test's own heap, with a fake "plugin API" that reports the true values.
#include <gtest/gtest.h>

#include "fake_cpu.h"

namespace {

using namespace nitro::fake;

TEST(DirectRegs, FindsVerifiesAndReadsTheRegisterFile) {
    Cpu cpu(1);
    direct_regs d{};
    direct_discover(&d, Cpu::api, &cpu);
    ASSERT_EQ(d.state, DIRECT_VERIFYING);
    EXPECT_EQ(d.base, reinterpret_cast<const uint8_t*>(cpu.env.get()));
    EXPECT_EQ(d.off[NITRO_REG_RIP], 128);
    EXPECT_EQ(d.off[NITRO_REG_FS_BASE], 288);
    EXPECT_EQ(d.off[NITRO_REG_CR3], static_cast<int32_t>(offsetof(FakeEnv, cr) + 3 * 8));
    for (uint64_t i = 0; i < NITRO_DIRECT_VERIFY_EVENTS; i++) {
        cpu.step(i);
        direct_verify(&d, Cpu::api, &cpu);
    }
    ASSERT_EQ(d.state, DIRECT_ACTIVE);
    cpu.step(1234);
    EXPECT_EQ(d.off[NITRO_REG_K_GS_BASE], static_cast<int32_t>(offsetof(FakeEnv, msrs) + 5 * 8));
    for (int r : {NITRO_REG_RAX, NITRO_REG_RDI, NITRO_REG_RSP, NITRO_REG_RIP, NITRO_REG_CS,
                  NITRO_REG_SS, NITRO_REG_FS_BASE, NITRO_REG_GS_BASE, NITRO_REG_CR3,
                  NITRO_REG_K_GS_BASE}) {
        ASSERT_TRUE(d.direct_mask >> r & 1) << r;
        EXPECT_EQ(direct_read(&d, r), cpu.truth[r]) << r;
    }
    EXPECT_FALSE(d.direct_mask >> NITRO_REG_RFLAGS & 1);  // eflags is computed: via the API
    EXPECT_TRUE(direct_check(&d, Cpu::api, &cpu));
}

// The kernel's GS base is read directly only when exactly one copy follows the control
// registers; the other registers are found regardless.
TEST(DirectRegs, AmbiguousKernelGsBaseStaysWithTheApi) {
    Cpu cpu(3);
    cpu.env->rest[0] = 0;  // a second copy of the value after cr3:
    std::memcpy(cpu.env->rest + 64, &cpu.truth[NITRO_REG_K_GS_BASE], 8);
    direct_regs d{};
    direct_discover(&d, Cpu::api, &cpu);
    ASSERT_EQ(d.state, DIRECT_VERIFYING);
    EXPECT_FALSE(d.direct_mask >> NITRO_REG_K_GS_BASE & 1);
    EXPECT_TRUE(d.direct_mask >> NITRO_REG_CR3 & 1);
}

TEST(DirectRegs, TwoCopiesAreAmbiguousAndNeverUsed) {
    Cpu cpu(2);
    auto twin = std::make_unique<FakeEnv>();
    std::memcpy(twin.get(), cpu.env.get(), sizeof(FakeEnv));  // e.g. planted by a guest
    direct_regs d{};
    direct_discover(&d, Cpu::api, &cpu);
    EXPECT_EQ(d.state, DIRECT_OFF);
    EXPECT_EQ(d.direct_mask, 0u);
}

TEST(DirectRegs, DisagreementDuringVerificationSwitchesOff) {
    Cpu cpu(3);
    direct_regs d{};
    direct_discover(&d, Cpu::api, &cpu);
    ASSERT_EQ(d.state, DIRECT_VERIFYING);
    direct_verify(&d, Cpu::api, &cpu);
    cpu.truth[NITRO_REG_CR3] += 0x1000;  // the API sees a change the located copy doesn't
    direct_verify(&d, Cpu::api, &cpu);
    EXPECT_EQ(d.state, DIRECT_OFF);
}

TEST(DirectRegs, PeriodicCheckCatchesAStaleCopy) {
    Cpu cpu(4);
    direct_regs d{};
    direct_discover(&d, Cpu::api, &cpu);
    for (uint64_t i = 0; i < NITRO_DIRECT_VERIFY_EVENTS; i++) direct_verify(&d, Cpu::api, &cpu);
    ASSERT_EQ(d.state, DIRECT_ACTIVE);
    for (int r = 0; r < NITRO_NREGS; r++) cpu.truth[r] ^= 0x10;  // the copy went stale
    EXPECT_FALSE(direct_check(&d, Cpu::api, &cpu));
    EXPECT_EQ(d.state, DIRECT_OFF);
}

TEST(DirectRegs, WaitsForADistinctiveTlsBase) {
    Cpu cpu(5);
    cpu.truth[NITRO_REG_FS_BASE] = 0;  // no TLS yet: searching would be ambiguous
    cpu.sync();
    direct_regs d{};
    direct_discover(&d, Cpu::api, &cpu);
    EXPECT_EQ(d.state, DIRECT_UNTRIED);
    EXPECT_EQ(d.attempts, 0u);  // no attempt spent: try again at the next call
    EXPECT_TRUE(d.retry_soon);
    cpu.truth[NITRO_REG_FS_BASE] = 0x7f1122339000ULL;  // the thread set its TLS base
    cpu.sync();
    direct_discover(&d, Cpu::api, &cpu);
    EXPECT_EQ(d.state, DIRECT_VERIFYING);
    EXPECT_FALSE(d.retry_soon);
}

TEST(DirectRegs, NotFoundGivesUpAfterAttempts) {
    Cpu cpu(6);
    cpu.env->regs[3] ^= 1;  // the CPU state never matches what the API says
    direct_regs d{};
    for (int i = 0; i < 20 && d.state == DIRECT_UNTRIED; i++) direct_discover(&d, Cpu::api, &cpu);
    EXPECT_EQ(d.state, DIRECT_OFF);
}

}  // namespace
