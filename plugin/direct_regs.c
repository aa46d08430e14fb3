/* SPDX-License-Identifier: MIT */
/* Direct reads of a vCPU's register file: discovery and verification (see direct_regs.h). */
#define _GNU_SOURCE
#include "direct_regs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/* QEMU keeps x86 general registers in hardware encoding order. */
static const int hw_order[16] = {
    NITRO_REG_RAX, NITRO_REG_RCX, NITRO_REG_RDX, NITRO_REG_RBX, NITRO_REG_RSP, NITRO_REG_RBP,
    NITRO_REG_RSI, NITRO_REG_RDI, NITRO_REG_R8,  NITRO_REG_R9,  NITRO_REG_R10, NITRO_REG_R11,
    NITRO_REG_R12, NITRO_REG_R13, NITRO_REG_R14, NITRO_REG_R15,
};

/* The expected values are kept XOR-masked so that the search never finds its own copy. */
#define VALUE_MASK 0xa5c3e1f00f1e3c5aULL
#define SCAN_CHUNK (1u << 20)
#define MAX_REGION (256ULL << 20)
#define WINDOW 65536 /* bytes searched on each side of the register file */
#define MAX_ATTEMPTS 8

/* x86 SegmentCache in QEMU: u32 selector, (pad), u64 base, u32 limit, u32 flags = 24 bytes;
 * segs[] = es, cs, ss, ds, fs, gs. Offsets relative to the fs base field. */
#define SEG_SIZE 24
#define CS_SEL_FROM_FS_BASE (-(4 * SEG_SIZE + 8) + 1 * SEG_SIZE)
#define SS_SEL_FROM_FS_BASE (-(4 * SEG_SIZE + 8) + 2 * SEG_SIZE)
#define GS_BASE_FROM_FS_BASE (SEG_SIZE)

static bool distinctive(uint64_t v) { return v > 0x100000 && v != UINT64_MAX; }

/* Copies len bytes at addr of this process; the amount copied (a region may be unmapped
 * concurrently by another QEMU thread: process_vm_readv reports that instead of faulting). */
static size_t self_read(uintptr_t addr, void *out, size_t len) {
    struct iovec local = {out, len}, remote = {(void *)addr, len};
    ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    return n > 0 ? (size_t)n : 0;
}

struct scan {
    uint64_t want[16]; /* masked, hardware order */
    int anchor;        /* index in want[] searched first */
    uintptr_t found[2];
    unsigned nfound;
    uint8_t *buf;
};

static void scan_region(struct scan *s, uintptr_t start, uintptr_t end) {
    const size_t pattern = sizeof s->want;
    for (uintptr_t a = start; a < end && s->nfound < 2;) {
        size_t len = end - a < SCAN_CHUNK ? (size_t)(end - a) : SCAN_CHUNK;
        size_t got = self_read(a, s->buf, len);
        if (got < pattern) {
            a += len; /* unreadable now: skip */
            continue;
        }
        const uint64_t *q = (const uint64_t *)s->buf;
        size_t nq = got / 8;
        uint64_t anchor = s->want[s->anchor];
        for (size_t i = (size_t)s->anchor; i + 16 - (size_t)s->anchor <= nq; i++) {
            if ((q[i] ^ VALUE_MASK) != anchor) continue;
            size_t first = i - (size_t)s->anchor;
            bool all = true;
            for (int k = 0; k < 16 && all; k++) all = (q[first + k] ^ VALUE_MASK) == s->want[k];
            if (all && s->nfound < 2) s->found[s->nfound++] = a + first * 8;
        }
        if (got < len || a + got >= end) {
            a += len;
        } else {
            a += got - pattern + 8; /* overlap so a match across chunks is seen */
        }
    }
}

/* Searches the process's private anonymous memory for the register file. */
static unsigned find_register_file(struct scan *s) {
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) return 0;
    uintptr_t own = (uintptr_t)s->buf;
    char line[512];
    while (s->nfound < 2 && fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        char perms[8] = "";
        char path[256] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &start, &end, perms, path) < 3) continue;
        if (strcmp(perms, "rw-p") != 0) continue;
        if (path[0] && strcmp(path, "[heap]") != 0) continue;
        if (end - start > MAX_REGION) continue;
        if (own >= start && own < end) continue;
        scan_region(s, start, end);
    }
    fclose(maps);
    return s->nfound;
}

/* Offsets in the window around the register file where an 8-byte value equals v. */
static unsigned find_value(const uint8_t *window, size_t wlen, intptr_t wstart_off, uint64_t v,
                           int32_t *out, unsigned max) {
    unsigned n = 0;
    for (size_t i = 0; i + 8 <= wlen && n < max; i += 8) {
        uint64_t x;
        memcpy(&x, window + i, 8);
        if (x == v) out[n++] = (int32_t)((intptr_t)i + wstart_off);
    }
    return n;
}

static uint32_t load32(const uint8_t *window, size_t wlen, intptr_t off_in_window) {
    if (off_in_window < 0 || (size_t)off_in_window + 4 > wlen) return UINT32_MAX;
    uint32_t x;
    memcpy(&x, window + off_in_window, 4);
    return x;
}

static void give_up(struct direct_regs *d) {
    if (d->attempts >= MAX_ATTEMPTS) d->state = DIRECT_OFF;
}

void direct_discover(struct direct_regs *d, direct_api_read api, void *ctx) {
    d->retry_soon = false;
    uint64_t v[NITRO_NREGS];
    for (int r = 0; r < NITRO_NREGS; r++) v[r] = 0;
    for (int k = 0; k < 16; k++) v[hw_order[k]] = api(ctx, hw_order[k]);
    v[NITRO_REG_RIP] = api(ctx, NITRO_REG_RIP);
    v[NITRO_REG_CS] = api(ctx, NITRO_REG_CS);
    v[NITRO_REG_SS] = api(ctx, NITRO_REG_SS);
    v[NITRO_REG_FS_BASE] = api(ctx, NITRO_REG_FS_BASE);
    v[NITRO_REG_GS_BASE] = api(ctx, NITRO_REG_GS_BASE);
    v[NITRO_REG_CR3] = api(ctx, NITRO_REG_CR3);
    v[NITRO_REG_K_GS_BASE] = api(ctx, NITRO_REG_K_GS_BASE);
    /* The fs base (the thread's TLS pointer) and cr3 must be distinctive to be found: a
     * thread without TLS yet (a fresh image) is no attempt; try again at the next call. */
    if (!distinctive(v[NITRO_REG_FS_BASE]) || !distinctive(v[NITRO_REG_CR3])) {
        d->retry_soon = true;
        return;
    }
    d->attempts++;

    struct scan s = {.anchor = -1};
    for (int k = 0; k < 16; k++) {
        s.want[k] = v[hw_order[k]] ^ VALUE_MASK;
        if (s.anchor < 0 && distinctive(v[hw_order[k]])) s.anchor = k;
    }
    if (s.anchor < 0) {
        give_up(d);
        return;
    }
    s.buf = mmap(NULL, SCAN_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s.buf == MAP_FAILED) {
        give_up(d);
        return;
    }
    unsigned n = find_register_file(&s);
    if (n != 1) {
        munmap(s.buf, SCAN_CHUNK);
        /* none: not where we look; two: ambiguous (possibly planted): never guess */
        if (n > 1) d->attempts = MAX_ATTEMPTS;
        give_up(d);
        return;
    }
    uintptr_t base = s.found[0];
    /* The window around the register file, read safely. */
    uintptr_t wstart = base > WINDOW ? base - WINDOW : 0;
    size_t wlen = self_read(wstart, s.buf, 2 * WINDOW);
    const uint8_t *w = s.buf;
    intptr_t wbase = (intptr_t)(base - wstart); /* the register file's offset in the window */
    intptr_t wstart_off = -wbase;                /* window offset -> offset from base */

    for (int r = 0; r < NITRO_NREGS; r++) d->width[r] = 0;
    for (int k = 0; k < 16; k++) {
        d->off[hw_order[k]] = k * 8;
        d->width[hw_order[k]] = 8;
    }
    int32_t cand[8];
    /* rip: right after the general registers in QEMU's layout; else anywhere near. */
    unsigned nc = find_value(w, wlen, wstart_off, v[NITRO_REG_RIP], cand, 8);
    for (unsigned i = 0; i < nc; i++) {
        if (!d->width[NITRO_REG_RIP] || cand[i] == 128) {
            d->off[NITRO_REG_RIP] = cand[i];
            d->width[NITRO_REG_RIP] = 8;
        }
    }
    /* fs base: the candidate whose neighbours hold cs and ss as the API reports them. */
    nc = find_value(w, wlen, wstart_off, v[NITRO_REG_FS_BASE], cand, 8);
    int found_fs = 0;
    int32_t fs_off = 0;
    for (unsigned i = 0; i < nc; i++) {
        intptr_t in_w = cand[i] + wbase;
        if (load32(w, wlen, in_w + CS_SEL_FROM_FS_BASE) == (uint32_t)v[NITRO_REG_CS] &&
            load32(w, wlen, in_w + SS_SEL_FROM_FS_BASE) == (uint32_t)v[NITRO_REG_SS]) {
            fs_off = cand[i];
            found_fs++;
        }
    }
    if (found_fs == 1) {
        d->off[NITRO_REG_FS_BASE] = fs_off;
        d->width[NITRO_REG_FS_BASE] = 8;
        d->off[NITRO_REG_GS_BASE] = fs_off + GS_BASE_FROM_FS_BASE;
        d->width[NITRO_REG_GS_BASE] = 8;
        d->off[NITRO_REG_CS] = fs_off + CS_SEL_FROM_FS_BASE;
        d->width[NITRO_REG_CS] = 4;
        d->off[NITRO_REG_SS] = fs_off + SS_SEL_FROM_FS_BASE;
        d->width[NITRO_REG_SS] = 4;
        /* cr3: the first copy after the segment registers (control registers follow them). */
        nc = find_value(w, wlen, wstart_off, v[NITRO_REG_CR3], cand, 8);
        for (unsigned i = 0; i < nc; i++) {
            if (cand[i] > fs_off) {
                d->off[NITRO_REG_CR3] = cand[i];
                d->width[NITRO_REG_CR3] = 8;
                break;
            }
        }
        /* The kernel's GS base (a system-call entry's KERNEL_GS_BASE MSR): the one copy after
         * the control registers (the MSRs follow them); none or several: the API reads it. */
        if (d->width[NITRO_REG_CR3] && distinctive(v[NITRO_REG_K_GS_BASE])) {
            nc = find_value(w, wlen, wstart_off, v[NITRO_REG_K_GS_BASE], cand, 8);
            int32_t kgs_off = 0;
            int after = 0;
            for (unsigned i = 0; i < nc; i++) {
                if (cand[i] > d->off[NITRO_REG_CR3]) {
                    kgs_off = cand[i];
                    after++;
                }
            }
            if (after == 1) {
                d->off[NITRO_REG_K_GS_BASE] = kgs_off;
                d->width[NITRO_REG_K_GS_BASE] = 8;
            }
        }
    }
    munmap(s.buf, SCAN_CHUNK);
    /* The pairing key needs cr3 and both TLS bases; without them the API stays cheaper than a
     * half-direct vCPU is worth. */
    if (!d->width[NITRO_REG_CR3] || !d->width[NITRO_REG_FS_BASE] || !d->width[NITRO_REG_RIP]) {
        for (int r = 0; r < NITRO_NREGS; r++) d->width[r] = 0;
        give_up(d);
        return;
    }
    d->base = (const uint8_t *)base;
    d->direct_mask = 0;
    for (int r = 0; r < NITRO_NREGS; r++) {
        if (d->width[r]) d->direct_mask |= 1ULL << r;
        d->value_mask[r] = d->width[r] == 4 ? 0xffffffffULL : ~0ULL;
    }
    d->verified = 0;
    d->state = DIRECT_VERIFYING;
}

static bool agrees(const struct direct_regs *d, int r, direct_api_read api, void *ctx) {
    uint64_t direct = direct_read(d, r);
    uint64_t via_api = api(ctx, r);
    if (d->width[r] == 4) via_api &= 0xffffffffULL;
    return direct == via_api;
}

static void switch_off(struct direct_regs *d) {
    d->state = DIRECT_OFF;
    d->direct_mask = 0;
}

void direct_verify(struct direct_regs *d, direct_api_read api, void *ctx) {
    for (int r = 0; r < NITRO_NREGS; r++) {
        if ((d->direct_mask >> r & 1) && !agrees(d, r, api, ctx)) {
            switch_off(d);
            return;
        }
    }
    if (++d->verified >= NITRO_DIRECT_VERIFY_EVENTS) {
        d->state = DIRECT_ACTIVE;
        d->checks = 0;
    }
}

bool direct_check(struct direct_regs *d, direct_api_read api, void *ctx) {
    /* rotate through the direct registers, one per check */
    uint64_t mask = d->direct_mask;
    unsigned count = (unsigned)__builtin_popcountll(mask);
    if (count == 0) return false;
    unsigned pick = (unsigned)((d->checks / NITRO_DIRECT_CHECK_EVERY) % count);
    int r = 0;
    for (; r < NITRO_NREGS; r++) {
        if ((mask >> r & 1) && pick-- == 0) break;
    }
    if (!agrees(d, r, api, ctx)) {
        switch_off(d);
        return false;
    }
    return true;
}
