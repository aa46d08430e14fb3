/* SPDX-License-Identifier: MIT */
/*
 * Direct reads of a vCPU's register file.
 *
 * qemu_plugin_read_register() costs ~18 ns a register (a gdbstub lookup, a QOM cast and a
 * GByteArray append), which for the ~20 registers of a system-call event is most of the
 * plugin's cost per event. The registers live in QEMU's CPU state, in this process. At the
 * vCPU's first traced events this module finds where: it reads the 16 general registers
 * through the API, searches the process's private anonymous memory for exactly one place that
 * holds them in QEMU's register-file order, locates rip, the segment bases, cs/ss and cr3 next
 * to them, and checks every located register against the API for a number of events. Only a
 * register file that was found exactly once and agreed every time is used; afterwards one
 * register is re-checked every NITRO_DIRECT_CHECK_EVERY events and any disagreement switches
 * the vCPU back to the API for good. Nothing here trusts the guest: the guest can at worst make
 * the search ambiguous (by planting copies of its registers), which only costs speed.
 */
#ifndef NITRO_DIRECT_REGS_H
#define NITRO_DIRECT_REGS_H

#include <stdbool.h>
#include <stdint.h>

#include "listener/tcg/ring_abi.h"

#define NITRO_DIRECT_VERIFY_EVENTS 64u
#define NITRO_DIRECT_CHECK_EVERY 4096u

enum direct_state {
    DIRECT_UNTRIED = 0,
    DIRECT_VERIFYING = 1,
    DIRECT_ACTIVE = 2,
    DIRECT_OFF = 3, /* not found, ambiguous, or disagreed: the API is used */
};

struct direct_regs {
    int state;
    unsigned attempts;
    bool retry_soon; /* the last try found no distinctive TLS base: try at the next call */
    unsigned verified; /* events verified so far */
    uint64_t checks;   /* events since activation */
    const uint8_t *base; /* the register file: 16 x 64-bit in hardware order */
    /* byte offset from base of each nitro_reg read directly, width 4 or 8; 0 width = API */
    int32_t off[NITRO_NREGS];
    uint8_t width[NITRO_NREGS];
    uint64_t value_mask[NITRO_NREGS]; /* width 8: all ones; width 4: the low 32 bits */
    uint64_t direct_mask; /* nitro_regs read directly once active */
};

/* Register read through QEMU's plugin API (provided by the plugin). */
typedef uint64_t (*direct_api_read)(void *ctx, int reg);

/* One discovery attempt, from a vCPU callback (register state synchronised). Without a
 * distinctive TLS base and cr3 it only sets retry_soon (not an attempt). */
void direct_discover(struct direct_regs *d, direct_api_read api, void *ctx);
/* During verification: compares every located register with the API; activates after
 * NITRO_DIRECT_VERIFY_EVENTS agreeing events, switches off at the first disagreement. */
void direct_verify(struct direct_regs *d, direct_api_read api, void *ctx);
/* Active: a periodic check of one register against the API; false (and off) on a mismatch. */
bool direct_check(struct direct_regs *d, direct_api_read api, void *ctx);

/* Every located register is read as 8 bytes (a 4-byte one is a selector followed by more of
 * its segment's fields in QEMU's CPU state) and masked: no branch on the width. */
static inline uint64_t direct_read(const struct direct_regs *d, int reg) {
    return *(const volatile uint64_t *)(d->base + d->off[reg]) & d->value_mask[reg];
}

#endif
