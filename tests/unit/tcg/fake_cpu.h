// SPDX-License-Identifier: MIT
// A register file laid out like the beginning of QEMU's x86 CPU state, and the values QEMU's
// plugin API would report for it: what the plugin's register-file finder is tested against
// (tests/unit/tcg) and what the plugin runs on in nitro-plugin-bench.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

extern "C" {
#include "direct_regs.h"
}

namespace nitro::fake {

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

}  // namespace nitro::fake
