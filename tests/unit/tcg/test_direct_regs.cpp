// SPDX-License-Identifier: MIT
// The plugin's register-file finder, run against a register file laid out like QEMU's x86 CPU
// state in this test's own heap, with a fake "plugin API" that reports the true values.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

extern "C" {
#include "direct_regs.h"
}

namespace {

// The beginning of QEMU's CPUX86State (target/i386/cpu.h), as far as the finder relies on it.
struct Seg {
    uint32_t selector;
    uint32_t pad;
    uint64_t base;
    uint32_t limit;
    uint32_t flags;
};
struct FakeEnv {
    uint64_t regs[16];  // hardware order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15
    uint64_t eip, eflags, cc_dst, cc_src, cc_src2;
    uint32_t cc_op, df, hflags, hflags2;
    Seg segs[6];  // es cs ss ds fs gs
    Seg ldt, tr, gdt, idt;
    uint64_t cr[5];
    uint64_t msrs[8];  // efer, star, lstar, cstar, fmask, kernelgsbase, ...
    uint8_t rest[4096];
};
static_assert(offsetof(FakeEnv, eip) == 128);
static_assert(offsetof(FakeEnv, segs) + 4 * sizeof(Seg) + 8 == 288);

const int kHw[16] = {NITRO_REG_RAX, NITRO_REG_RCX, NITRO_REG_RDX, NITRO_REG_RBX,
                     NITRO_REG_RSP, NITRO_REG_RBP, NITRO_REG_RSI, NITRO_REG_RDI,
                     NITRO_REG_R8,  NITRO_REG_R9,  NITRO_REG_R10, NITRO_REG_R11,
                     NITRO_REG_R12, NITRO_REG_R13, NITRO_REG_R14, NITRO_REG_R15};

// What the plugin API reports (nitro_reg order), and a CPU state that mirrors it.
struct Cpu {
    uint64_t truth[NITRO_NREGS] = {};
    std::unique_ptr<FakeEnv> env = std::make_unique<FakeEnv>();
    int api_reads = 0;

    explicit Cpu(uint64_t seed) {
        std::memset(env.get(), 0, sizeof(FakeEnv));
        for (int r = 0; r < 16; r++) truth[kHw[r]] = 0x5500000000000000ULL + seed * 0x10000 + r * 0x111;
        truth[NITRO_REG_RSP] = 0x7ffc12340000ULL + seed * 0x100;
        truth[NITRO_REG_RIP] = 0x401000 + seed;
        truth[NITRO_REG_CS] = 0x33;
        truth[NITRO_REG_SS] = 0x2b;
        truth[NITRO_REG_FS_BASE] = 0x7f1122334000ULL + seed * 0x1000;
        truth[NITRO_REG_GS_BASE] = 0;
        truth[NITRO_REG_CR3] = 0x2a5f000 + seed * 0x1000;
        truth[NITRO_REG_K_GS_BASE] = 0xffff88807dc00000ULL + seed * 0x40000;
        sync();
    }
    void sync() {
        for (int k = 0; k < 16; k++) env->regs[k] = truth[kHw[k]];
        env->eip = truth[NITRO_REG_RIP];
        env->segs[1].selector = static_cast<uint32_t>(truth[NITRO_REG_CS]);
        env->segs[2].selector = static_cast<uint32_t>(truth[NITRO_REG_SS]);
        env->segs[4].base = truth[NITRO_REG_FS_BASE];
        env->segs[5].base = truth[NITRO_REG_GS_BASE];
        env->cr[3] = truth[NITRO_REG_CR3];
        env->msrs[5] = truth[NITRO_REG_K_GS_BASE];
    }
    // Another system call: new argument registers and stack pointer.
    void step(uint64_t i) {
        truth[NITRO_REG_RAX] = i % 300;
        truth[NITRO_REG_RDI] = 0x1000 + i;
        truth[NITRO_REG_RSP] -= 16;
        sync();
    }
    static uint64_t api(void* ctx, int reg) {
        auto* c = static_cast<Cpu*>(ctx);
        c->api_reads++;
        return c->truth[reg];
    }
};

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
