/* SPDX-License-Identifier: MIT */
/*
 * nitro's QEMU TCG plugin: the thin producer side of nitro's TCG listener.
 *
 * At translation time it instruments only the instructions that enter the kernel for a
 * system call (syscall, sysenter, int 0x80) and that return to user mode (sysret, sysexit,
 * iret). At execution it pairs each return with the entry of the same guest thread, applies
 * the consumer's filters, copies registers (and the bounded argument bytes the consumer asked
 * for) into a per-vCPU shared-memory ring, and, in synchronous mode, waits for the consumer.
 * It knows nothing about operating systems beyond the x86 system-call conventions it is
 * configured with. See src/listener/tcg/ring_abi.h for the shared layout and docs/listener.md.
 *
 * Plugin arguments: ctl=PATH (control file; default /dev/shm/nitro-qemu-PID), ring=BYTES
 * (per-vCPU ring size), direct=on|off (read the register file in place, see direct_regs.h;
 * default on), callbacks=empty (for nitro-bench's floor mode: the same instructions
 * instrumented, callbacks that only count themselves and return: what QEMU's instrumentation
 * costs the guest by itself).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef NITRO_SYSTEM_QEMU_PLUGIN_H
#include <qemu-plugin.h>
#else
#include "nitro_qemu_plugin_api.h"
#endif

#include "direct_regs.h"
#include "listener/tcg/ring_abi.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 4;

/* Plugin API versions this plugin was written against: 4 (QEMU 9.2, 10.x). */
#define API_NEEDED 4

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static const char *const reg_names[NITRO_NREGS] = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",  "r9",
    "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss",
    "fs_base", "gs_base", "k_gs_base", "cr0", "cr3", "cr4", "efer",
};

/* Guest-thread identity at kernel entry and at the return to user mode: the address space
 * (cr3 without PCID and without the KPTI user/kernel bit) and the user TLS bases. At a
 * syscall instruction and right before sysret/iret (after swapgs) the same values hold. */
#define CR3_KEY_MASK (~0x1fffULL & ~(1ULL << 63))

struct pending {
    uint64_t cr3, fs, gs; /* key */
    uint64_t seq;
    uint64_t next_rip; /* where the call returns to (after a syscall or int 0x80); 0: unknown */
    uint64_t nr;
    uint64_t args[6];
    uint32_t stamp; /* insertion counter, for eviction; compared with older() across its wrap */
    uint32_t vcpu;
    uint8_t type;
    uint8_t compat;
    uint8_t traced;
    uint8_t used;
    uint8_t rekey; /* a call that may change the thread key (see ctl->rekey_nr*) */
    uint8_t fork;  /* a call that creates a task (see ctl->fork_nr*) */
};

/* Entries are copied three times per call (into the table, the vCPU's last, out at the
 * return): 120 bytes instead of 112 measured 5-7 ns slower per callback in
 * nitro-plugin-bench. */
_Static_assert(sizeof(struct pending) == 112, "struct pending grew: measure nitro-plugin-bench");

#define PENDING_BUCKETS 2048
#define PENDING_WAYS 4
static struct pending pending_tab[PENDING_BUCKETS][PENDING_WAYS];
/* Beside each entry (not in it: see the size above): the context word at its entry (the
 * current task, when the consumer asked for one; else 0) of task-creating and key-changing
 * calls. A vfork child shares its waiting parent's thread key, and a return that pairs by
 * vCPU or as an exec's may belong to any task: this tells the calls' own returns from others'. */
static uint64_t pending_task_tab[PENDING_BUCKETS][PENDING_WAYS];
static uint64_t *pending_task_of(const struct pending *e) {
    return &(&pending_task_tab[0][0])[e - &pending_tab[0][0]];
}
/* Whether an entry made by task at_entry may be ended by a return in task now (0: unknown). */
static bool same_task(uint64_t at_entry, uint64_t now) { return !at_entry || !now || at_entry == now; }
static atomic_flag pending_lock = ATOMIC_FLAG_INIT;
static uint32_t pending_stamp;
/* Whether stamp a was given before b (serial-number order: right across the counter's wrap
 * while fewer than 2^31 insertions separate them; the table holds 8192 entries). */
static bool older(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static uint32_t rekey_pending; /* used entries with rekey set; read without the lock as a hint */

struct vcpu {
    struct qemu_plugin_register *reg[NITRO_NREGS];
    GByteArray *buf;
    struct nitro_ring *ring;
    uint8_t *data;
    uint64_t seq;
    /* fallback pairing for a return whose thread key changed (execve, arch_prctl) */
    struct pending last;
    bool last_valid;
    uint32_t returns_since_entry;
    uint64_t since_refresh;  /* traced events, for the all-register refresh */
    uint32_t sent_all_gen;   /* ctl->config_generation at the last all-register record */
    uint64_t rec_start;      /* ring position (absolute) of the record being written */
    uint64_t head;      /* the ring's head, kept here: the ring's copy is for the consumer */
    uint64_t tail_seen; /* the ring's tail as last read (see ring_reserve) */
    uint64_t prefetched; /* ring bytes (absolute, like head) asked for ahead of head */
    struct direct_regs direct; /* register file read in place once found (direct_regs.h) */
    uint64_t events;
    uint64_t context_reads;   /* context words read from the RAM file */
    bool context_direct_off;  /* one of them disagreed with QEMU's read: not any more */
    uintptr_t site;           /* the current callback's instruction (insn_site) */
    uint64_t fields_reads;    /* context fields read from the RAM file */
    bool fields_direct_off;   /* context fields from the RAM file disagreed with QEMU: not any more */
    uint64_t ctx_last_word;   /* the context word whose fields were copied last */
    uint32_t ctx_since;       /* events since */
    uint32_t ctx_gen;         /* ctl->config_generation then */
    uint32_t ctx_len;         /* bytes of context fields read for the current event */
    bool ctx_failed;          /* they were wanted and could not be read */
    uint32_t ctx_first_len;   /* the first field of the last copy */
    uint8_t ctx_first[NITRO_MAX_CONTEXT_FIELD_BYTES];
    uint8_t ctx_fields;       /* how many fields they are */
    uint8_t ctx_bytes[NITRO_MAX_CONTEXT_BYTES];
    /* guest memory read from the RAM file (ram_read) */
    uint64_t walk_cr3;       /* the current callback's address space; 0: QEMU reads */
    uint64_t walk_va_page;   /* the page translated last in this callback (1: none) */
    uint64_t walk_phys_page; /* and where it is */
    uint32_t walk_mode_age;  /* reads since the paging mode was looked at */
    uint8_t walk_levels;     /* 4 or 5 (long-mode paging), 0 (no walks) */
    bool walk_off;           /* a read disagreed with QEMU's: QEMU reads from now on */
    uint64_t walk_reads;     /* reads from the RAM file, for the periodic check */
};

static struct nitro_ctl *ctl;
static size_t ctl_size;
static char ctl_path[PATH_MAX];
static struct vcpu *vcpus;
static unsigned n_vcpus;
static uint32_t ring_bytes = NITRO_DEFAULT_RING_BYTES; /* a power of two: positions are masked */
static struct qemu_plugin_scoreboard *active_sb;
static qemu_plugin_u64 active;
static pthread_t watcher;
static volatile int watcher_stop;
static uint64_t registers_found;
/* vCPUs whose init callback ran; the scoreboard only has entries for those. */
static unsigned initialized_vcpus;
static qemu_plugin_id_t plugin_id;
/* Passive until someone traces. QEMU makes every guest load and store of a block it translates
 * while a translation callback is registered also store the accessed value for memory
 * callbacks (about 5-15 % on memory-heavy guest code, even with no callback at all). So the
 * translation callback is dropped after the VM's first block when nobody traces yet
 * (first_translation), registered again when tracing is first wanted, and the translated code
 * is flushed then (qemu_plugin_reset, which must be asked for from a vCPU thread: at a vCPU's
 * resume from idle or at its next translation). A consumer attached before the VM first runs
 * gets every block instrumented from the start, without a flush. `instrumented` is 1 once every block
 * in the cache was translated with the callback; events flow only then (update_active).
 *
 * There is no way back to passive: QEMU 10.0 leaves its translator's current-instruction
 * pointer set after a translation that faults part-way (an instruction fetch crossing into an
 * unmapped page), and resets it only when a translation callback is registered; removing the
 * callback in that state makes the next translation emit memory-callback ops that nothing
 * removes, and QEMU crashes in code generation (seen here in 6 of about 26 test runs). */
static uint32_t want_instrument; /* the watcher's view: someone traces (and never stops) */
static uint32_t instrumented;
static uint32_t reset_queued;
/* Guest RAM as QEMU's memory-backend file, mapped read-only when the consumer names it: the
 * per-event context word is read there (see read_context). */
static const uint8_t *ram_view;
static uint64_t ram_view_len;
static uint32_t ram_view_gen;

/* Default argument sources (the x86 Linux system-call ABIs): register index, or
 * 0x80|k = 32-bit word k at the user stack pointer. */
#define ARG_STACK32(k) (0x80 | (k))
static const uint8_t argsrc[4][6] = {
    [0] = {NITRO_REG_RDI, NITRO_REG_RSI, NITRO_REG_RDX, NITRO_REG_R10, NITRO_REG_R8, NITRO_REG_R9},
    /* 32-bit syscall (compat): ecx is clobbered, the vDSO passes arg 2 in ebp, arg 6 on stack */
    [1] = {NITRO_REG_RBX, NITRO_REG_RBP, NITRO_REG_RDX, NITRO_REG_RSI, NITRO_REG_RDI,
           ARG_STACK32(0)},
    /* sysenter: arg 6 (ebp) was pushed by the vDSO */
    [2] = {NITRO_REG_RBX, NITRO_REG_RCX, NITRO_REG_RDX, NITRO_REG_RSI, NITRO_REG_RDI,
           ARG_STACK32(0)},
    [3] = {NITRO_REG_RBX, NITRO_REG_RCX, NITRO_REG_RDX, NITRO_REG_RSI, NITRO_REG_RDI,
           NITRO_REG_RBP},
};

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static void futex_wake_all(uint32_t *addr) { futex(addr, FUTEX_WAKE, INT_MAX, NULL); }

static void futex_wait_ms(uint32_t *addr, uint32_t expected, long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    futex(addr, FUTEX_WAIT, expected, &ts);
}

static uint64_t now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t tsc(void) { return __builtin_ia32_rdtsc(); }

/* The consumer is alive when it is attached and its heartbeat is fresh. */
static bool consumer_alive(void) {
    if (!LOAD(&ctl->attached)) return false;
    uint64_t hb = LOAD(&ctl->consumer_heartbeat_ns);
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    if (now > hb && now - hb > 500000000ULL) return false;
    uint32_t pid = LOAD(&ctl->consumer_pid);
    if (pid && kill((pid_t)pid, 0) != 0 && errno == ESRCH) return false;
    return true;
}

static void detach_dead_consumer(void) {
    if (LOAD(&ctl->attached) && !consumer_alive()) {
        STORE(&ctl->attached, 0);
        unsigned n = LOAD(&initialized_vcpus);
        for (unsigned i = 0; i < n; i++) qemu_plugin_u64_set(active, i, 0);
    }
}

static bool tracing_wanted(void) {
    return LOAD(&ctl->attached) && LOAD(&ctl->traps) && consumer_alive();
}

static void update_active(void) {
    uint64_t on = tracing_wanted() && LOAD(&instrumented);
    unsigned n = LOAD(&initialized_vcpus);
    for (unsigned i = 0; i < n; i++) qemu_plugin_u64_set(active, i, on);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

/* Whether this QEMU maps path (its memory backend): the consumer may only name that file. */
static bool qemu_maps(const char *path) {
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return false;
    char line[PATH_MAX + 128];
    bool found = false;
    size_t n = strlen(path);
    while (!found && fgets(line, sizeof line, f)) {
        char *slash = strchr(line, '/');
        if (!slash) continue;
        size_t m = strcspn(slash, "\n");
        found = m == n && memcmp(slash, path, n) == 0;
    }
    fclose(f);
    return found;
}

/* Maps the RAM file the consumer named (once per change of ctl->ram_file). A mapping is never
 * unmapped while QEMU runs: a vCPU may be reading through it. */
static void map_ram_file(void) {
    uint32_t gen = LOAD(&ctl->ram_file_generation);
    if (gen == ram_view_gen) return;
    ram_view_gen = gen;
    char path[sizeof ctl->ram_file];
    memcpy(path, ctl->ram_file, sizeof path);
    path[sizeof path - 1] = 0;
    if (!path[0] || !qemu_maps(path)) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size >= 8) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            __atomic_store_n(&ram_view_len, (uint64_t)st.st_size, __ATOMIC_RELAXED);
            STORE(&ram_view, (const uint8_t *)m);
            STORE(&ctl->ram_file_mapped, 1);
        }
    }
    close(fd);
}

/* Watches the control block: applies set_traps/attach within milliseconds and detaches a
 * consumer that died, so that no vCPU ever waits for it. */
static void *watch(void *arg) {
    (void)arg;
    uint32_t gen = LOAD(&ctl->config_generation);
    while (!watcher_stop) {
        futex_wait_ms(&ctl->config_generation, gen, 100);
        gen = LOAD(&ctl->config_generation);
        detach_dead_consumer();
        map_ram_file();
        bool want = tracing_wanted();
        if (want && !LOAD(&instrumented) && !LOAD(&want_instrument)) {
            /* Registered now, so that the next translation asks for the flush (see
             * maybe_switch_instrumentation); QEMU has queued the change for every vCPU when
             * this returns, which on_resume relies on at the VM's first run. */
            qemu_plugin_register_vcpu_tb_trans_cb(plugin_id, on_translate);
            STORE(&want_instrument, 1);
        }
        update_active();
        STORE(&ctl->config_seen, gen);
    }
    return NULL;
}

static bool direct_enabled = true; /* plugin argument direct=on|off */

static uint64_t read_reg_api(struct vcpu *v, int r) {
    if (!v->reg[r]) return 0;
    v->buf->len = 0; /* GByteArray's public length; cheaper than g_byte_array_set_size */
    int n = qemu_plugin_read_register(v->reg[r], v->buf);
    uint64_t val = 0;
    if (n > 0) memcpy(&val, v->buf->data, n < 8 ? (size_t)n : 8);
    return val;
}

static uint64_t api_read(void *ctx, int r) { return read_reg_api(ctx, r); }

/* Drives the search for the vCPU's register file and its checks (direct_regs.h). */
static void direct_tick(struct vcpu *v, unsigned vcpu_index, bool user_entry) {
    struct direct_regs *d = &v->direct;
    int before = d->state;
    switch (d->state) {
        case DIRECT_ACTIVE:
            if (++d->checks % NITRO_DIRECT_CHECK_EVERY == 0) direct_check(d, api_read, v);
            break;
        case DIRECT_VERIFYING: direct_verify(d, api_read, v); break;
        case DIRECT_UNTRIED:
            /* after some events (the thread has its TLS base), then every 4096 events; at the
             * next call when the last try met a thread without TLS yet */
            if (user_entry && direct_enabled &&
                (++v->events % 4096 == 64 || (d->retry_soon && v->events > 64))) {
                direct_discover(d, api_read, v);
            }
            break;
        default: break;
    }
    if (d->state != before) {
        uint64_t bit = 1ULL << (vcpu_index % 64);
        if (d->state == DIRECT_ACTIVE) __atomic_fetch_or(&ctl->direct_vcpus, bit, __ATOMIC_RELAXED);
        if (d->state == DIRECT_OFF) {
            __atomic_fetch_and(&ctl->direct_vcpus, ~bit, __ATOMIC_RELAXED);
            __atomic_fetch_or(&ctl->direct_off_vcpus, bit, __ATOMIC_RELAXED);
        }
    }
}

/* Guest memory at a virtual address of the current address space through QEMU: its debug
 * page walk, a memory-region lookup per page-table level and per page read. */
static bool read_mem_qemu(struct vcpu *v, uint64_t addr, void *out, size_t len) {
    v->buf->len = 0;
    if (!qemu_plugin_read_memory_vaddr(addr, v->buf, len) || v->buf->len < len) return false;
    memcpy(out, v->buf->data, len);
    return true;
}

/* The RAM file offset of guest-physical [phys, phys + len) under the PC layout the consumer
 * gave (ctl->ram_below_4g bytes at 0, the rest from 4 GiB); false outside RAM. */
static bool ram_file_offset(uint64_t phys, uint32_t len, uint64_t *off) {
    const uint64_t below = LOAD_RELAXED(&ctl->ram_below_4g);
    const uint64_t size = __atomic_load_n(&ram_view_len, __ATOMIC_RELAXED);
    if (below > size) return false;
    if (phys < below) {
        if (len > below - phys) return false;
        *off = phys;
        return true;
    }
    const uint64_t high = 1ULL << 32;
    if (phys < high || phys - high > size - below || len > size - below - (phys - high)) return false;
    *off = below + (phys - high);
    return true;
}

/* Guest memory from the RAM file, through the guest's own page tables.
 *
 * QEMU's read (read_mem_qemu) costs about as much as the rest of a callback for each read of an
 * argument's bytes. With the RAM file mapped (the consumer names it and its PC layout), the
 * plugin walks the page tables of the event's cr3 there itself: four or five loads (long-mode
 * paging, 2 MiB and 1 GiB pages), the translation of the last page kept for the rest of the
 * callback. A table or page outside RAM, a non-present entry, a non-canonical address or a mode
 * other than long-mode paging is left to QEMU, which reports faults. Every WALK_CHECK_EVERY-th
 * read is compared with QEMU's; a difference (or bytes QEMU could not read: reserved bits set
 * in an entry, which this walk does not check) turns the walks off for the vCPU. The guest owns
 * its page tables: a hostile one can only make the walk fail or differ, never leave RAM. */
#define WALK_CHECK_EVERY 1024u
#define WALK_MODE_EVERY 256u /* reads between looks at CR0, CR4 and EFER */
#define PTE_PRESENT 1ULL
#define PTE_LARGE (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL

/* At each callback: the address space of the event; no translation kept from the last. */
static void walk_begin(struct vcpu *v, uint64_t cr3) {
    v->walk_cr3 = cr3;
    v->walk_va_page = 1; /* never a page address */
}

static void walk_read_mode(struct vcpu *v) {
    const uint64_t cr0 = read_reg_api(v, NITRO_REG_CR0), cr4 = read_reg_api(v, NITRO_REG_CR4);
    const uint64_t efer = read_reg_api(v, NITRO_REG_EFER);
    const bool long_paging = (cr0 >> 31 & 1) && (efer >> 10 & 1); /* PG and LMA */
    v->walk_levels = !long_paging ? 0 : (cr4 >> 12 & 1) ? 5 : 4;  /* LA57 */
}

/* The guest-physical address of the page holding va (4 KiB granular), or false. */
static bool walk_page(const struct vcpu *v, const uint8_t *ram, uint64_t va, uint64_t *phys) {
    const unsigned levels = v->walk_levels;
    const unsigned bits = 12 + 9 * levels;
    if ((uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits)) != va) return false; /* canonical */
    uint64_t table = v->walk_cr3 & PTE_ADDR;
    for (unsigned level = levels; level >= 1; level--) {
        const unsigned shift = 12 + 9 * (level - 1);
        uint64_t off;
        if (!ram_file_offset(table + ((va >> shift) & 511) * 8, 8, &off)) return false;
        const uint64_t e = __atomic_load_n((const uint64_t *)(ram + off), __ATOMIC_RELAXED);
        if (!(e & PTE_PRESENT)) return false;
        if (level == 1 || ((level == 2 || level == 3) && (e & PTE_LARGE))) {
            const uint64_t in_page = (1ULL << shift) - 1;
            *phys = ((e & PTE_ADDR & ~in_page) | (va & in_page)) & ~0xfffULL;
            return true;
        }
        table = e & PTE_ADDR;
    }
    return false;
}

static bool ram_read(struct vcpu *v, uint64_t addr, void *out, size_t len) {
    const uint8_t *ram = LOAD(&ram_view);
    if (!ram || v->walk_off || !v->walk_cr3 || !LOAD_RELAXED(&ctl->ram_below_4g)) return false;
    if (len == 0) return true;
    if (v->walk_mode_age++ % WALK_MODE_EVERY == 0) walk_read_mode(v);
    if (!v->walk_levels) return false;
    for (size_t done = 0; done < len;) {
        const uint64_t a = addr + done;
        if (a < addr) return false; /* wrapped */
        const uint64_t page = a & ~0xfffULL;
        size_t chunk = 4096 - (size_t)(a & 0xfff);
        if (chunk > len - done) chunk = len - done;
        if (page != v->walk_va_page) {
            if (!walk_page(v, ram, page, &v->walk_phys_page)) return false;
            v->walk_va_page = page;
        }
        uint64_t off;
        if (!ram_file_offset(v->walk_phys_page + (a & 0xfff), (uint32_t)chunk, &off)) return false;
        memcpy((uint8_t *)out + done, ram + off, chunk);
        done += chunk;
    }
    if (++v->walk_reads % WALK_CHECK_EVERY == 1) {
        uint8_t walked[64];
        const size_t n = len < sizeof walked ? len : sizeof walked;
        if (!read_mem_qemu(v, addr, walked, n) || memcmp(walked, out, n) != 0) {
            v->walk_off = true;
            __atomic_fetch_add(&ctl->ram_walk_mismatches, 1, __ATOMIC_RELAXED);
            return false;
        }
    }
    return true;
}

/* Guest memory at a virtual address of the event's address space: from the RAM file when the
 * walk there succeeds, else through QEMU. */
static bool read_mem(struct vcpu *v, uint64_t addr, void *out, size_t len) {
    struct nitro_ring *ring = v->ring;
    ring->memory_reads++;
    if (ram_read(v, addr, out, len)) {
        ring->walked_reads++;
        return true;
    }
    return read_mem_qemu(v, addr, out, len);
}

static bool is_compat_cs(uint64_t cs) {
    for (int i = 0; i < 4; i++) {
        uint32_t c = LOAD_RELAXED(&ctl->compat_cs[i]);
        if (c && c == (uint32_t)cs) return true;
    }
    return false;
}

static bool bit_set(const uint64_t *bitmap, uint64_t nr) {
    return nr < NITRO_MAX_NR && ((LOAD_RELAXED(&bitmap[nr / 64]) >> (nr % 64)) & 1);
}

static bool nr_traced(bool compat, uint64_t nr) {
    if (!LOAD_RELAXED(&ctl->filter_nr_enabled)) return true;
    return bit_set(compat ? ctl->filter_nr32 : ctl->filter_nr64, nr);
}

static bool cr3_traced(uint64_t cr3) {
    uint32_t n = LOAD_RELAXED(&ctl->filter_cr3_count);
    if (n == 0) return true;
    if (n > NITRO_MAX_CR3) n = NITRO_MAX_CR3;
    for (uint32_t i = 0; i < n; i++) {
        if ((LOAD_RELAXED(&ctl->filter_cr3[i]) & CR3_KEY_MASK) == (cr3 & CR3_KEY_MASK)) return true;
    }
    return false;
}

/* The pending table is shared by the vCPU threads (a call may return on another vCPU than
 * the one it entered on). With one vCPU there is one thread, and no lock: a locked instruction
 * waits for every store before it, the event record's included. */
static void lock_pending(void) {
    if (n_vcpus == 1) return;
    while (atomic_flag_test_and_set_explicit(&pending_lock, memory_order_acquire)) {
    }
}
static void unlock_pending(void) {
    if (n_vcpus == 1) return;
    atomic_flag_clear_explicit(&pending_lock, memory_order_release);
}

static unsigned bucket_of(uint64_t cr3, uint64_t fs, uint64_t gs) {
    uint64_t h = (cr3 >> 12) * 0x9e3779b97f4a7c15ULL ^ fs * 0xc2b2ae3d27d4eb4fULL ^ gs;
    return (unsigned)((h ^ (h >> 29)) % PENDING_BUCKETS);
}

static void pending_put(const struct pending *p, uint64_t task) {
    unsigned b = bucket_of(p->cr3, p->fs, p->gs);
    lock_pending();
    struct pending *slot = NULL, *free_slot = NULL, *oldest = &pending_tab[b][0];
    for (int w = 0; w < PENDING_WAYS; w++) {
        struct pending *e = &pending_tab[b][w];
        if (e->used && e->cr3 == p->cr3 && e->fs == p->fs && e->gs == p->gs && !e->fork &&
            same_task(*pending_task_of(e), task)) {
            slot = e; /* the thread's previous call never returned (execve): replace */
            break;
        }
        /* A task-creating call under the same key stays: vfork's caller waits while its
         * child, which shares the key, makes calls of its own. So does another task's call
         * when the current task is known: the vfork child's execve, not returned yet when its
         * parent, released by the exec, makes its next call. */
        if (!e->used && !free_slot) free_slot = e;
        if (older(e->stamp, oldest->stamp)) oldest = e;
    }
    if (!slot) slot = free_slot ? free_slot : oldest;
    if (slot->used && slot->rekey) rekey_pending--;
    if (p->rekey) rekey_pending++;
    *slot = *p;
    slot->stamp = ++pending_stamp;
    slot->used = 1;
    *pending_task_of(slot) = task;
    unlock_pending();
}

/* How many pending entries the thread key has, up to 2 (read without the lock: a hint,
 * re-checked by pending_take). */
static int pending_count(uint64_t cr3, uint64_t fs, uint64_t gs) {
    unsigned b = bucket_of(cr3, fs, gs);
    int n = 0;
    for (int w = 0; w < PENDING_WAYS && n < 2; w++) {
        const struct pending *e = &pending_tab[b][w];
        if (LOAD_RELAXED(&e->used) && LOAD_RELAXED(&e->cr3) == cr3 && LOAD_RELAXED(&e->fs) == fs &&
            LOAD_RELAXED(&e->gs) == gs) {
            n++;
        }
    }
    return n;
}
static bool pending_has(uint64_t cr3, uint64_t fs, uint64_t gs) { return pending_count(cr3, fs, gs) > 0; }

/* Removes and returns the pending entry of the thread, the newest if there are several (a
 * vfork child's call beside its waiting parent's): the newest of the returning task's when
 * it is known (want_task), else the newest of all; false if the key has none. */
static bool pending_take(uint64_t cr3, uint64_t fs, uint64_t gs, uint64_t want_task,
                         struct pending *out, uint64_t *task) {
    unsigned b = bucket_of(cr3, fs, gs);
    struct pending *best = NULL, *best_of_task = NULL;
    lock_pending();
    for (int w = 0; w < PENDING_WAYS; w++) {
        struct pending *e = &pending_tab[b][w];
        if (!e->used || e->cr3 != cr3 || e->fs != fs || e->gs != gs) continue;
        if (!best || older(best->stamp, e->stamp)) best = e;
        if (want_task && *pending_task_of(e) == want_task &&
            (!best_of_task || older(best_of_task->stamp, e->stamp))) {
            best_of_task = e;
        }
    }
    if (best_of_task) best = best_of_task;
    if (best) {
        *out = *best;
        *task = *pending_task_of(best);
        best->used = 0;
        if (best->rekey) rekey_pending--;
    }
    unlock_pending();
    return best != NULL;
}

/* Removes a specific pending entry (by its vcpu and seq) wherever its key now is. */
static bool pending_take_exact(const struct pending *want, struct pending *out, uint64_t task) {
    unsigned b = bucket_of(want->cr3, want->fs, want->gs);
    bool found = false;
    lock_pending();
    for (int w = 0; w < PENDING_WAYS; w++) {
        struct pending *e = &pending_tab[b][w];
        if (e->used && e->seq == want->seq && e->vcpu == want->vcpu && e->cr3 == want->cr3 &&
            same_task(*pending_task_of(e), task)) {
            *out = *e;
            e->used = 0;
            if (e->rekey) rekey_pending--;
            found = true;
            break;
        }
    }
    unlock_pending();
    return found;
}

/* Removes and returns the pending identity-changing call (execve...) that a return whose key
 * matches no pending entry most likely ends: one in the same address space (arch_prctl) or,
 * for a fresh image (TLS bases still zero after execve), preferably one that entered on this
 * vCPU, else the oldest. Rare (once per execve), so a scan of the table is fine. */
static bool pending_take_rekey(uint64_t cr3, bool fresh, unsigned vcpu, struct pending *out,
                               uint64_t task) {
    struct pending *best = NULL;
    int best_rank = 0;
    lock_pending();
    for (unsigned b = 0; b < PENDING_BUCKETS; b++) {
        for (int w = 0; w < PENDING_WAYS; w++) {
            struct pending *e = &pending_tab[b][w];
            if (!e->used || !e->rekey || !same_task(*pending_task_of(e), task)) continue;
            int rank = e->cr3 == cr3 ? 3 : !fresh ? 0 : e->vcpu == vcpu ? 2 : 1;
            if (rank > best_rank || (rank == best_rank && rank && older(e->stamp, best->stamp))) {
                best = e;
                best_rank = rank;
            }
        }
    }
    if (best) {
        *out = *best;
        best->used = 0;
        rekey_pending--;
    }
    unlock_pending();
    return best != NULL;
}

static uint32_t round8(uint32_t n) { return (n + 7u) & ~7u; }

/* Copies a NUL-terminated string, never crossing into an unreadable page in one read. */
static uint32_t capture_cstring(struct vcpu *v, uint64_t addr, uint8_t *out, uint32_t max,
                                uint8_t *status) {
    uint32_t len = 0;
    while (len < max) {
        uint64_t a = addr + len;
        uint32_t chunk = 64 - (uint32_t)(a & 63); /* stays inside one page */
        if (chunk > max - len) chunk = max - len;
        if (!read_mem(v, a, out + len, chunk)) {
            *status = len ? NITRO_CAP_PARTIAL : NITRO_CAP_FAULT;
            return len;
        }
        void *nul = memchr(out + len, 0, chunk);
        if (nul) {
            *status = NITRO_CAP_OK;
            return (uint32_t)((uint8_t *)nul - out);
        }
        len += chunk;
    }
    *status = NITRO_CAP_TRUNCATED;
    return len;
}

static uint32_t capture_buffer(struct vcpu *v, uint64_t addr, uint8_t *out, uint64_t want,
                               uint32_t max, uint8_t *status) {
    uint32_t n = want > max ? max : (uint32_t)want;
    uint32_t len = 0;
    while (len < n) {
        uint64_t a = addr + len;
        uint32_t chunk = 4096 - (uint32_t)(a & 4095);
        if (chunk > n - len) chunk = n - len;
        if (!read_mem(v, a, out + len, chunk)) {
            *status = len ? NITRO_CAP_PARTIAL : NITRO_CAP_FAULT;
            return len;
        }
        len += chunk;
    }
    *status = want > max ? NITRO_CAP_TRUNCATED : NITRO_CAP_OK;
    return len;
}

static uint32_t capture_str_array(struct vcpu *v, uint64_t addr, bool compat, uint8_t *out,
                                  uint32_t max, uint8_t *status) {
    uint32_t len = 0;
    size_t psize = compat ? 4 : 8;
    *status = NITRO_CAP_OK;
    for (int i = 0; i < 256; i++) {
        uint64_t p = 0;
        if (!read_mem(v, addr + (uint64_t)i * psize, &p, psize)) {
            *status = i ? NITRO_CAP_PARTIAL : NITRO_CAP_FAULT;
            return len;
        }
        if (p == 0) return len;
        if (len >= max) {
            *status = NITRO_CAP_TRUNCATED;
            return len;
        }
        uint8_t st;
        uint32_t n = capture_cstring(v, p, out + len, max - len, &st);
        len += n;
        if (st != NITRO_CAP_OK) {
            *status = st == NITRO_CAP_FAULT ? NITRO_CAP_PARTIAL : st;
            return len;
        }
        out[len++] = 0; /* separator; max - len >= 1 here since n < max - len */
    }
    *status = NITRO_CAP_TRUNCATED;
    return len;
}

/* Appends one section (a nitro_iov_capture, then up to want bytes at addr, at most what room
 * leaves, padded to 8) at out + *used; false when not even its header fits. addr 0: nothing
 * read (a fault if want > 0). */
static bool capture_section(struct vcpu *v, uint64_t addr, uint64_t want, uint32_t max, uint8_t *out,
                            uint32_t *used, uint32_t room) {
    if (room - *used < sizeof(struct nitro_iov_capture) + 8) return false;
    struct nitro_iov_capture *h = (struct nitro_iov_capture *)(out + *used);
    uint32_t cap = room - *used - (uint32_t)sizeof *h;
    if (cap > max) cap = max;
    uint8_t st = NITRO_CAP_OK;
    uint32_t n = 0;
    if (addr) n = capture_buffer(v, addr, out + *used + sizeof *h, want, cap, &st);
    else if (want) st = NITRO_CAP_FAULT;
    h->len = n;
    h->status = st;
    memset(h->pad, 0, sizeof h->pad);
    *used += (uint32_t)sizeof *h + round8(n);
    return true;
}

/* The same for n bytes already read (cut to the room left, then TRUNCATED). */
static bool put_section(const void *bytes, uint32_t n, uint8_t *out, uint32_t *used, uint32_t room) {
    if (room - *used < sizeof(struct nitro_iov_capture) + 8) return false;
    struct nitro_iov_capture *h = (struct nitro_iov_capture *)(out + *used);
    uint32_t cap = room - *used - (uint32_t)sizeof *h;
    h->len = n > cap ? cap : n;
    h->status = n > cap ? NITRO_CAP_TRUNCATED : NITRO_CAP_OK;
    memset(h->pad, 0, sizeof h->pad);
    memcpy(h + 1, bytes, h->len);
    *used += (uint32_t)sizeof *h + round8(h->len);
    return true;
}

/* The buffers an iovec array points to (NITRO_CAP_IOVEC_DATA): per entry a section of up to
 * max bytes, all within room bytes (a multiple of 8); total < 0: no limit, else the bytes the
 * call transferred. Returns the bytes written to out. */
static uint32_t capture_iovec_data(struct vcpu *v, uint64_t addr, uint64_t count, bool compat,
                                   int64_t total, uint8_t *out, uint32_t max, uint32_t room,
                                   uint8_t *status, uint32_t *sections) {
    const uint64_t esize = compat ? 8 : 16;
    uint32_t used = 0;
    *status = NITRO_CAP_OK;
    *sections = 0;
    if (count > NITRO_MAX_IOV_CAPTURE) {
        count = NITRO_MAX_IOV_CAPTURE;
        *status = NITRO_CAP_TRUNCATED;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t e[2] = {0, 0};
        if (!read_mem(v, addr + i * esize, e, esize)) {
            *status = i ? NITRO_CAP_PARTIAL : NITRO_CAP_FAULT;
            return used;
        }
        uint64_t base = compat ? (e[0] & 0xffffffffULL) : e[0];
        uint64_t len = compat ? (e[0] >> 32) : e[1];
        if (total >= 0) {
            if (len > (uint64_t)total) len = (uint64_t)total;
            total -= (int64_t)len;
        }
        if (!capture_section(v, base, len, max, out, &used, room)) {
            *status = NITRO_CAP_TRUNCATED;
            return used;
        }
        ++*sections;
    }
    return used;
}

/* A struct msghdr and what it points to (NITRO_CAP_MSGHDR), within room bytes. in_array: a
 * struct mmsghdr (64 bytes, 32 for 32-bit programs, the structure section), whose msg_len
 * bounds the buffers instead of total. */
static uint32_t capture_msghdr(struct vcpu *v, uint64_t addr, bool compat, bool in_array,
                               int64_t total, uint8_t *out, uint32_t max, uint32_t room,
                               uint8_t *status) {
    uint64_t m[8] = {0};
    const uint32_t msize = (compat ? 28 : 56) + (in_array ? (compat ? 4 : 8) : 0);
    uint32_t used = 0;
    if (!read_mem(v, addr, m, msize)) {
        *status = NITRO_CAP_FAULT;
        return 0;
    }
    uint64_t name, namelen, iov, iovlen, control, controllen;
    if (compat) {
        const uint32_t *w = (const uint32_t *)m;
        name = w[0], namelen = w[1], iov = w[2], iovlen = w[3], control = w[4], controllen = w[5];
        if (in_array) total = w[7];
    } else {
        name = m[0], namelen = (uint32_t)m[1], iov = m[2], iovlen = m[3], control = m[4];
        controllen = m[5];
        if (in_array) total = (uint32_t)m[7];
    }
    const uint64_t esize = compat ? 8 : 16;
    const uint64_t entries = iovlen > NITRO_MAX_IOV_CAPTURE ? NITRO_MAX_IOV_CAPTURE : iovlen;
    *status = NITRO_CAP_TRUNCATED;
    if (!put_section(m, msize, out, &used, room) ||
        !capture_section(v, name, namelen > NITRO_MSG_NAME_CAPTURE ? NITRO_MSG_NAME_CAPTURE : namelen,
                         NITRO_MSG_NAME_CAPTURE, out, &used, room) ||
        !capture_section(v, iov, entries * esize, NITRO_MAX_IOV_CAPTURE * 16, out, &used, room)) {
        return used;
    }
    uint8_t st;
    uint32_t buffers;
    used += capture_iovec_data(v, iov, iovlen, compat, total, out + used, max, room - used, &st,
                               &buffers);
    *status = st == NITRO_CAP_FAULT ? NITRO_CAP_PARTIAL : st;
    /* Control messages last, and only after every buffer's section: a reader tells them apart
     * by the count. Not in mmsghdr arrays (the next message follows). */
    if (!in_array && buffers == entries) {
        uint64_t want = control ? controllen : 0;
        if (want > NITRO_MSG_CONTROL_CAPTURE) want = NITRO_MSG_CONTROL_CAPTURE;
        if (!capture_section(v, control, want, NITRO_MSG_CONTROL_CAPTURE, out, &used, room)) {
            *status = NITRO_CAP_TRUNCATED;
        }
    }
    return used;
}

/* The first messages of a struct mmsghdr array (NITRO_CAP_MMSGHDR), within room bytes. */
static uint32_t capture_mmsghdr(struct vcpu *v, uint64_t addr, uint64_t count, bool compat,
                                uint8_t *out, uint32_t max, uint32_t room, uint8_t *status) {
    const uint32_t size = compat ? 32 : 64;
    uint32_t used = 0;
    *status = count > NITRO_MAX_MMSG_CAPTURE ? NITRO_CAP_TRUNCATED : NITRO_CAP_OK;
    if (count > NITRO_MAX_MMSG_CAPTURE) count = NITRO_MAX_MMSG_CAPTURE;
    for (uint64_t i = 0; i < count; i++) {
        uint8_t st;
        used += capture_msghdr(v, addr + i * size, compat, true, 0, out + used, max, room - used, &st);
        if (st == NITRO_CAP_FAULT || (st == NITRO_CAP_TRUNCATED && room - used < 64)) {
            *status = i ? NITRO_CAP_PARTIAL : st;
            return used;
        }
    }
    return used;
}

/* Upper bound of the data bytes one capture rule may take. */
static uint32_t rule_bound(const struct nitro_capture_rule *r) {
    uint32_t max = r->max > NITRO_MAX_CAPTURE_BYTES ? NITRO_MAX_CAPTURE_BYTES : r->max;
    if (r->kind != NITRO_CAP_IOVEC_DATA && r->kind != NITRO_CAP_MSGHDR && r->kind != NITRO_CAP_MMSGHDR) {
        return max;
    }
    const uint64_t section = sizeof(struct nitro_iov_capture);
    uint64_t all = (uint64_t)NITRO_MAX_IOV_CAPTURE * (section + round8(max));
    if (r->kind != NITRO_CAP_IOVEC_DATA) {
        all += section + 64 + section + NITRO_MSG_NAME_CAPTURE + section + NITRO_MAX_IOV_CAPTURE * 16;
    }
    if (r->kind == NITRO_CAP_MSGHDR) all += section + NITRO_MSG_CONTROL_CAPTURE;
    if (r->kind == NITRO_CAP_MMSGHDR) all *= NITRO_MAX_MMSG_CAPTURE;
    return all > NITRO_MAX_CAPTURE_BYTES ? NITRO_MAX_CAPTURE_BYTES : (uint32_t)all;
}

/* Upper bound of the bytes the captures of (abi, nr, direction) may take. */
static uint32_t capture_bound(bool compat, uint64_t nr, int direction) {
    if (!LOAD_RELAXED(&ctl->capture_enabled) || nr >= NITRO_MAX_NR) return 0;
    const struct nitro_capture_set *set = &ctl->capture[compat][nr][direction];
    uint32_t count = LOAD_RELAXED(&set->count);
    if (count > NITRO_MAX_CAPTURES) count = NITRO_MAX_CAPTURES;
    uint32_t bound = 0;
    for (uint32_t i = 0; i < count; i++) {
        bound += (uint32_t)sizeof(struct nitro_capture_hdr) + round8(rule_bound(&set->rule[i])) + 8;
    }
    return bound;
}

/* Appends the captures the consumer asked for at this event (rec's header is written; ret is
 * the raw return register at exits) into out, at most room bytes; returns bytes written. A
 * capture that does not fit whole is truncated to the room left. */
static uint32_t add_captures(struct vcpu *v, struct nitro_record *rec, uint64_t ret_reg,
                             uint64_t rsp, uint8_t *out, uint32_t room) {
    if (!LOAD_RELAXED(&ctl->capture_enabled) || rec->nr >= NITRO_MAX_NR) return 0;
    bool compat = rec->flags & NITRO_REC_F_COMPAT;
    const struct nitro_capture_set *set = &ctl->capture[compat][rec->nr][rec->direction];
    uint32_t count = LOAD_RELAXED(&set->count);
    if (count > NITRO_MAX_CAPTURES) count = NITRO_MAX_CAPTURES;
    uint32_t used = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct nitro_capture_rule r = set->rule[i];
        if (r.arg > 5 || (r.len_arg > 5 && r.kind != NITRO_CAP_STACK_AT)) continue;
        const uint32_t entry_max = r.max > NITRO_MAX_CAPTURE_BYTES ? NITRO_MAX_CAPTURE_BYTES : r.max;
        uint32_t max = rule_bound(&r);
        uint32_t overhead = (uint32_t)sizeof(struct nitro_capture_hdr) + 8;
        if (room - used < overhead + 8) break;
        if (max > room - used - overhead) max = (room - used - overhead) & ~7u;
        struct nitro_capture_hdr *h = (struct nitro_capture_hdr *)(out + used);
        uint8_t *data = out + used + sizeof *h;
        uint64_t addr = r.kind == NITRO_CAP_STACK_AT ? rsp + 8u * r.len_arg : rec->args[r.arg];
        if (compat) addr &= 0xffffffffULL;
        uint8_t st = NITRO_CAP_OK;
        uint32_t len = 0;
        int64_t ret = (int64_t)ret_reg;
        if (compat) ret = (int32_t)ret;
        switch (r.kind) {
            case NITRO_CAP_CSTRING: len = capture_cstring(v, addr, data, max, &st); break;
            case NITRO_CAP_BUF_FIXED:
            case NITRO_CAP_STACK_AT: len = capture_buffer(v, addr, data, max, max, &st); break;
            case NITRO_CAP_BUF_LEN_ARG: {
                uint64_t want = rec->args[r.len_arg];
                if (compat) want &= 0xffffffffULL;
                len = capture_buffer(v, addr, data, want, max, &st);
                break;
            }
            case NITRO_CAP_BUF_RET:
                if (rec->direction != NITRO_DIR_EXIT || ret <= 0) continue;
                len = capture_buffer(v, addr, data, (uint64_t)ret, max, &st);
                break;
            case NITRO_CAP_STR_ARRAY: len = capture_str_array(v, addr, compat, data, max, &st); break;
            case NITRO_CAP_BUF_LEN_PTR: {
                uint32_t want = 0;
                uint64_t lp = rec->args[r.len_arg];
                if (compat) lp &= 0xffffffffULL;
                if (!lp || !read_mem(v, lp, &want, 4)) continue;
                len = capture_buffer(v, addr, data, want, max, &st);
                break;
            }
            case NITRO_CAP_IOVEC_DATA: {
                uint64_t count = rec->args[r.len_arg];
                if (compat) count &= 0xffffffffULL;
                bool exit = rec->direction == NITRO_DIR_EXIT;
                if (exit && ret <= 0) continue;
                uint32_t sections;
                len = capture_iovec_data(v, addr, count, compat, exit ? ret : -1, data, entry_max,
                                         max, &st, &sections);
                break;
            }
            case NITRO_CAP_MSGHDR: {
                bool exit = rec->direction == NITRO_DIR_EXIT;
                if (exit && ret <= 0) continue;
                len = capture_msghdr(v, addr, compat, false, exit ? ret : -1, data, entry_max, max,
                                     &st);
                break;
            }
            case NITRO_CAP_MMSGHDR: {
                uint64_t count = rec->args[r.len_arg];
                if (compat) count &= 0xffffffffULL;
                if (rec->direction == NITRO_DIR_EXIT) {
                    if (ret <= 0) continue;
                    if ((uint64_t)ret < count) count = (uint64_t)ret;
                }
                len = capture_mmsghdr(v, addr, count, compat, data, entry_max, max, &st);
                break;
            }
            case NITRO_CAP_DEREF: {
                uint64_t where = 0;
                if (!addr || !read_mem(v, addr + 8u * r.len_arg, &where, 8) || !where) {
                    st = NITRO_CAP_FAULT;
                    break;
                }
                len = capture_buffer(v, where, data, max, max, &st);
                break;
            }
            default: continue;
        }
        if (addr == 0) {
            st = NITRO_CAP_FAULT;
            len = 0;
        }
        h->arg = r.arg;
        h->kind = r.kind;
        h->status = st;
        h->field = r.kind == NITRO_CAP_DEREF ? r.len_arg : 0;
        h->len = len;
        used += (uint32_t)sizeof *h + round8(len);
        rec->ncaptures++;
    }
    return used;
}

/* A redirected exit's NITRO_CAP_STACK capture at out: where the call would have returned, then
 * the top of the user stack. */
#define STACK_CAPTURE_ROOM ((uint32_t)sizeof(struct nitro_capture_hdr) + 8 + NITRO_STACK_CAPTURE)
__attribute__((noinline, cold)) static uint32_t add_stack_capture(struct vcpu *v,
                                                                  struct nitro_record *rec,
                                                                  uint64_t next_rip, uint64_t rsp,
                                                                  uint8_t *out) {
    struct nitro_capture_hdr *h = (struct nitro_capture_hdr *)out;
    uint8_t *data = out + sizeof *h;
    memcpy(data, &next_rip, 8);
    uint8_t st = NITRO_CAP_OK;
    if (rec->flags & NITRO_REC_F_COMPAT) rsp &= 0xffffffffULL;
    uint32_t len = 8 + capture_buffer(v, rsp, data + 8, NITRO_STACK_CAPTURE, NITRO_STACK_CAPTURE, &st);
    if (st == NITRO_CAP_TRUNCATED) st = NITRO_CAP_OK;
    h->arg = 0;
    h->kind = NITRO_CAP_STACK;
    h->status = st;
    h->field = 0;
    h->len = len;
    rec->ncaptures++;
    return (uint32_t)sizeof *h + round8(len);
}

/* The event's context fields (read_context_fields) as a NITRO_CAP_CONTEXT capture at out, or
 * an empty one with status FAULT when they could not be copied. */
static uint32_t add_context_capture(struct vcpu *v, struct nitro_record *rec, uint8_t *out) {
    struct nitro_capture_hdr *h = (struct nitro_capture_hdr *)out;
    memcpy(out + sizeof *h, v->ctx_bytes, v->ctx_len);
    h->arg = 0;
    h->kind = NITRO_CAP_CONTEXT;
    h->status = v->ctx_failed ? NITRO_CAP_FAULT : NITRO_CAP_OK;
    h->field = v->ctx_failed ? 0 : v->ctx_fields;
    h->len = v->ctx_len;
    rec->ncaptures++;
    return (uint32_t)sizeof *h + round8(v->ctx_len);
}

/* Waits (bounded, consumer-liveness checked) until the ring has room for size bytes. The
 * consumer's tail is read only when the value seen last leaves too little room: the tail's
 * cache line is written by the consumer's core, and reading it at every event would move
 * it across cores at every event. */
static bool ring_reserve(struct vcpu *v, uint32_t size) {
    uint64_t head = v->head;
    uint64_t pos = head & (ring_bytes - 1);
    uint64_t need = size + ((pos + size > ring_bytes) ? ring_bytes - pos : 0);
    if (head - v->tail_seen + need <= ring_bytes) return true;
    struct nitro_ring *ring = v->ring;
    for (;;) {
        uint64_t tail = LOAD(&ring->tail);
        v->tail_seen = tail;
        if (head - tail + need <= ring_bytes) return true;
        if (LOAD_RELAXED(&ctl->mode) == NITRO_MODE_ASYNC_DROP) return false;
        ring->full_waits++; /* one producer: a plain increment */
        uint32_t space = LOAD(&ring->space);
        STORE(&ring->producer_waiting, 1);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (LOAD(&ring->tail) != tail) continue;
        futex_wait_ms(&ring->space, space, 100);
        STORE(&ring->producer_waiting, 0);
        if (!consumer_alive()) {
            detach_dead_consumer();
            return false;
        }
    }
}

/* A futex wake is a host system call, as costly as a guest system call under TCG: wake the
 * consumer only when it sleeps deeply, when the ring is a quarter full, or in sync mode. A
 * dozing consumer polls the rings every few milliseconds by itself.
 *
 * Only sync mode orders the head store before the load of the sleeping flag (a full fence,
 * which waits for the record's stores to reach the cache and costs more than the rest of the
 * event). In the asynchronous modes a wake-up lost to that race is found again by the next
 * event's check; only the last event before the guest falls quiet may wait for the consumer's
 * bounded sleep to end (2 ms dozing, 100 ms asleep). */
static void wake_consumer(struct nitro_ring *ring, uint64_t head) {
    bool sync = LOAD_RELAXED(&ctl->mode) == NITRO_MODE_SYNC;
    if (sync) __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint32_t sleeping = LOAD(&ctl->consumer_sleeping);
    if (sleeping == NITRO_SLEEP_AWAKE) return;
    if (sleeping == NITRO_SLEEP_DOZE && !sync && head - LOAD(&ring->tail) < ring_bytes / 4) {
        return;
    }
    __atomic_fetch_add(&ctl->doorbell, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&ctl->doorbell);
}

/* The ring's free space was last touched by the consumer's core. Writing a record there
 * stalls the vCPU on one cross-core cache-line transfer per 64 bytes; asking for the lines
 * of the next records now (prefetch for writing) lets them arrive while the guest runs. */
#define PREFETCH_AHEAD 4096
static void prefetch_ahead(struct vcpu *v, uint64_t head) {
    if (v->prefetched < head) v->prefetched = head & ~63ULL;
    uint64_t tail = v->tail_seen;
    while (v->prefetched < head + PREFETCH_AHEAD && v->prefetched < tail + ring_bytes) {
        __builtin_prefetch(v->data + (v->prefetched & (ring_bytes - 1)), 1, 3);
        v->prefetched += 64;
    }
}

/* Reserves room for a record of up to bound bytes at the ring's head, to be written in place
 * (a WRAP record fills the end of the data area when it does not fit). NULL when there is no
 * room: drop mode with a full ring (counted) or a consumer that has gone. */
static struct nitro_record *record_begin(struct vcpu *v, uint32_t bound) {
    struct nitro_ring *ring = v->ring;
    if (!ring_reserve(v, bound)) {
        __atomic_fetch_add(&ring->dropped, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    uint64_t head = v->head;
    uint64_t pos = head & (ring_bytes - 1);
    if (pos + bound > ring_bytes) {
        struct nitro_record *wrap = (struct nitro_record *)(v->data + pos);
        wrap->size = (uint32_t)(ring_bytes - pos);
        wrap->kind = NITRO_REC_WRAP;
        head += ring_bytes - pos;
        pos = 0;
    }
    v->rec_start = head;
    return (struct nitro_record *)(v->data + pos);
}

/* Publishes the record begun with record_begin, of size bytes (at most the bound), and in
 * sync mode waits until the consumer has handled it. */
static void record_commit(struct vcpu *v, struct nitro_record *rec, uint32_t size) {
    struct nitro_ring *ring = v->ring;
    uint64_t seq = rec->seq;
    rec->size = size;
    v->head = v->rec_start + size;
    STORE(&ring->head, v->head);
    prefetch_ahead(v, v->head);
    /* One producer: a plain store (an atomic add would be a locked instruction). */
    __atomic_store_n(&ring->produced, ring->produced + 1, __ATOMIC_RELAXED);
    wake_consumer(ring, v->head);

    if (LOAD_RELAXED(&ctl->mode) == NITRO_MODE_SYNC) {
        /* The original Nitro's semantics: the vCPU waits until the consumer has handled the
         * event; it resumes within a second if the consumer dies or detaches. */
        while (LOAD(&ring->ack_seq) < seq) {
            uint32_t a = LOAD(&ring->ack);
            if (LOAD(&ring->ack_seq) >= seq) break;
            futex_wait_ms(&ring->ack, a, 100);
            if (!consumer_alive()) {
                detach_dead_consumer();
                break;
            }
        }
    }
}

/* The registers of an event: r[r] is valid for bit r of loaded; mask names those the record
 * sends. */
struct regset {
    uint64_t r[NITRO_NREGS];
    uint32_t mask;
    uint32_t loaded;
};

#define R(x) (1u << NITRO_REG_##x)
/* Registers that define a call and change from call to call; the rest (rflags, cr0, cr4, efer,
 * the kernel's gs base, ss, and the callee-saved registers) are sent every SPECIAL_REFRESH
 * events per vCPU, at the first event after a configuration change (a consumer attaching), or
 * always when the consumer asks for all registers. rflags is not in the lean sets: QEMU
 * computes it on demand (about 30 ns), and the exit's r11 holds the flags sysret restores. */
static const uint32_t lean_enter64 = R(RAX) | R(RDI) | R(RSI) | R(RDX) | R(R10) | R(R8) | R(R9) |
                                     R(RSP) | R(RIP) | R(RCX) | R(R11);
static const uint32_t lean_enter32 = R(RAX) | R(RBX) | R(RCX) | R(RDX) | R(RSI) | R(RDI) |
                                     R(RBP) | R(RSP) | R(RIP);
static const uint32_t lean_exit = R(RAX) | R(RSP) | R(RIP) | R(RCX) | R(R11);
#define SPECIAL_REFRESH 256

/* The general registers, in hardware order at the start of a direct register file. */
#define GPRS 0xffffu /* NITRO_REG_RAX..NITRO_REG_R15 */
static void copy_gprs(const struct direct_regs *d, uint64_t *r) {
    const volatile uint64_t *g = (const volatile uint64_t *)d->base;
    r[NITRO_REG_RAX] = g[0];
    r[NITRO_REG_RCX] = g[1];
    r[NITRO_REG_RDX] = g[2];
    r[NITRO_REG_RBX] = g[3];
    r[NITRO_REG_RSP] = g[4];
    r[NITRO_REG_RBP] = g[5];
    r[NITRO_REG_RSI] = g[6];
    r[NITRO_REG_RDI] = g[7];
    for (int k = 8; k < 16; k++) r[NITRO_REG_R8 + k - 8] = g[k];
}

/* Adds want to the registers the record sends, reading those not read yet. Read in place, the
 * general registers come all at once: 16 loads from two cache lines cost less than picking. */
static void read_regs(struct vcpu *v, struct regset *s, uint32_t want) {
    want &= NITRO_ALL_REGS;
    s->mask |= want;
    want &= ~s->loaded;
    s->loaded |= want;
    if (v->direct.state == DIRECT_ACTIVE) {
        uint32_t d = want & (uint32_t)v->direct.direct_mask;
        want &= ~d;
        if (d & GPRS && ((uint32_t)v->direct.direct_mask & GPRS) == GPRS) {
            copy_gprs(&v->direct, s->r);
            s->loaded |= GPRS;
            d &= ~GPRS;
        }
        while (d) {
            int r = __builtin_ctz(d);
            d &= d - 1;
            s->r[r] = direct_read(&v->direct, r);
        }
    }
    while (want) {
        int r = __builtin_ctz(want);
        want &= want - 1;
        s->r[r] = read_reg_api(v, r);
    }
}

/* The registers a traced event sends: the lean set, or all of them (see lean_enter64). */
static uint32_t send_mask(struct vcpu *v, uint32_t lean) {
    uint32_t gen = LOAD_RELAXED(&ctl->config_generation);
    bool all = LOAD_RELAXED(&ctl->all_registers) || v->since_refresh++ % SPECIAL_REFRESH == 0 ||
               gen != v->sent_all_gen;
    if (!all) return lean;
    v->sent_all_gen = gen;
    return NITRO_ALL_REGS;
}
#undef R

/* The consumer's per-event context word (e.g. the current task): the kernel's GS base is in
 * KERNEL_GS_BASE both at user-mode entries and at the returns (after swapgs). */
#define CONTEXT_CHECK_EVERY 4096
static uint64_t read_context_word(struct vcpu *v, unsigned vcpu_index, struct regset *s) {
    read_regs(v, s, 1u << NITRO_REG_K_GS_BASE);
    uint64_t base = s->r[NITRO_REG_K_GS_BASE];
    if (!base) return 0;
    const uint64_t where = base + LOAD_RELAXED(&ctl->context_offset);
    uint64_t word = 0;
    const uint8_t *ram = LOAD(&ram_view);
    if (ram && !v->context_direct_off && LOAD(&ctl->context_kgs[vcpu_index]) == base) {
        /* Where the consumer found the word for this GS base, in the RAM file: one load
         * instead of a four-level walk through QEMU's debug accessors. */
        uint64_t off = LOAD(&ctl->context_file_off[vcpu_index]);
        if (LOAD(&ctl->context_kgs[vcpu_index]) == base && off % 8 == 0 &&
            off <= __atomic_load_n(&ram_view_len, __ATOMIC_RELAXED) - 8) {
            word = __atomic_load_n((const uint64_t *)(ram + off), __ATOMIC_RELAXED);
            if (++v->context_reads % CONTEXT_CHECK_EVERY != 1) return word;
            /* now and then, the same word through QEMU: a wrong location turns this off */
            uint64_t walked = 0;
            if (read_mem_qemu(v, where, &walked, 8) && walked == word) return word;
            v->context_direct_off = true;
            __atomic_fetch_add(&ctl->context_mismatches, 1, __ATOMIC_RELAXED);
            word = 0;
        }
    }
    if (read_mem(v, where, &word, 8)) return word;
    return 0;
}

/* The event's context word, read at the first need of a callback: to pair a return by task,
 * and for the record (0 when the consumer asked for none). A return that pairs by its thread
 * key alone and is not traced never needs it. */
struct lazy_task {
    bool read;
    uint64_t word;
};
static uint64_t task_now(struct vcpu *v, unsigned vcpu_index, struct regset *s, struct lazy_task *t) {
    if (!t->read) {
        t->read = true;
        t->word = LOAD_RELAXED(&ctl->context_enabled) ? read_context_word(v, vcpu_index, s) : 0;
    }
    return t->word;
}

/* Context fields are a few bytes of a variable length (at most 32): copied and compared 8 bytes
 * at a time, inline. A libc memcmp call for the per-event check of the first field was 7 % of
 * the plugin's time in nitro-plugin-bench (BM_PluginTracedCallWithContext). */
static inline void copy_field(uint8_t *out, const uint8_t *in, uint32_t n) {
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        memcpy(out + i, &w, 8);
    }
    for (; i < n; i++) out[i] = in[i];
}
static inline bool same_field(const uint8_t *a, const uint8_t *b, uint32_t n) {
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return false;
    }
    for (; i < n; i++) {
        if (a[i] != b[i]) return false;
    }
    return true;
}

/* Whether the vCPU reads context fields from the RAM file (the consumer gave the linear map
 * and no RAM read has disagreed with QEMU's). */
static bool context_fields_direct(const struct vcpu *v) {
    return LOAD(&ram_view) && LOAD_RELAXED(&ctl->context_linear_base) && !v->fields_direct_off;
}

/* Context field i of the object at word into out (room bytes), from the RAM file through the
 * consumer's linear map when direct, else through QEMU; with check, the RAM bytes are compared
 * with QEMU's, and a difference turns the RAM reads off for the vCPU. False when unreadable or
 * when the field is out of bounds. */
static bool read_context_field(struct vcpu *v, uint64_t word, uint32_t i, bool direct, bool check,
                               uint8_t *out, uint32_t room, uint32_t *len) {
    const uint32_t off = LOAD_RELAXED(&ctl->context_fields[i].offset);
    const uint32_t n = LOAD_RELAXED(&ctl->context_fields[i].len);
    const uint64_t va = word + off;
    if (n == 0 || n > NITRO_MAX_CONTEXT_FIELD_BYTES || n > room || va < word) return false;
    *len = n;
    if (!direct) return read_mem(v, va, out, n);
    const uint8_t *ram = LOAD(&ram_view);
    const uint64_t base = LOAD_RELAXED(&ctl->context_linear_base);
    uint64_t file_off;
    if (!ram || va < base || !ram_file_offset(va - base, n, &file_off)) return false;
    copy_field(out, ram + file_off, n);
    uint8_t walked[NITRO_MAX_CONTEXT_FIELD_BYTES];
    if (check && read_mem_qemu(v, va, walked, n) && memcmp(walked, out, n) != 0) {
        v->fields_direct_off = true;
        __atomic_fetch_add(&ctl->context_mismatches, 1, __ATOMIC_RELAXED);
        memcpy(out, walked, n);
    }
    return true;
}

/* All the context fields (ctl->context_fields) of the object at word into v->ctx_bytes, the
 * first one also into v->ctx_first. Every CONTEXT_CHECK_EVERY-th copy from the RAM file is
 * checked against QEMU. v->ctx_len stays 0 when any field is unreadable or the list is bad. */
static void read_context_fields(struct vcpu *v, uint64_t word) {
    uint32_t n = LOAD(&ctl->context_fields_count);
    if (n == 0 || n > NITRO_MAX_CONTEXT_FIELDS) return;
    const bool direct = context_fields_direct(v);
    const bool check = direct && ++v->fields_reads % CONTEXT_CHECK_EVERY == 1;
    uint32_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = 0;
        if (!read_context_field(v, word, i, direct, check, v->ctx_bytes + used,
                                NITRO_MAX_CONTEXT_BYTES - used, &len)) {
            return;
        }
        if (i == 0) {
            memcpy(v->ctx_first, v->ctx_bytes, len);
            v->ctx_first_len = len;
        }
        used += len;
    }
    v->ctx_len = used;
    v->ctx_fields = (uint8_t)n;
}

/* The context word of the event (0: none) and, into v, its context fields where they may
 * have changed since the vCPU's last copy (see ctl->context_refresh_nr64): at a task switch,
 * when refresh says so (the return of a call that may rename the task, or of a new task),
 * when the first field (Linux: pid and tgid) differs from the last copy's (a task that took
 * over the memory of one that exited), and now and then. Copying them all at every event cost
 * about 15 ns per event; the first field alone is one load from the RAM file. Without the
 * RAM file they are copied at every event. A copy that fails is marked (status FAULT): the
 * consumer must not keep using an older one. */
static uint64_t read_context(struct vcpu *v, uint64_t word, bool refresh) {
    v->ctx_len = 0;
    v->ctx_failed = false;
    if (word == 0 || LOAD_RELAXED(&ctl->context_fields_count) == 0) return word;
    const uint32_t gen = LOAD_RELAXED(&ctl->config_generation);
    if (gen != v->ctx_gen) { /* perhaps other fields now */
        v->ctx_gen = gen;
        v->ctx_last_word = 0;
    }
    const bool direct = context_fields_direct(v);
    bool copy = !direct || word != v->ctx_last_word || refresh ||
                ++v->ctx_since >= NITRO_CONTEXT_FIELDS_REFRESH;
    if (!copy) {
        uint8_t first[NITRO_MAX_CONTEXT_FIELD_BYTES];
        uint32_t len = 0;
        copy = !read_context_field(v, word, 0, true, false, first, sizeof first, &len) ||
               len != v->ctx_first_len || !same_field(first, v->ctx_first, len);
    }
    if (!copy) return word;
    read_context_fields(v, word);
    if (v->ctx_len) {
        v->ctx_last_word = word;
        v->ctx_since = 0;
    } else {
        v->ctx_last_word = 0;
        v->ctx_failed = true;
    }
    return word;
}

static void read_args(struct vcpu *v, const struct regset *s, int conv, uint64_t args[6]) {
    for (int i = 0; i < 6; i++) {
        uint8_t src = argsrc[conv][i];
        if (src & 0x80) {
            uint32_t w = 0;
            uint64_t sp = s->r[NITRO_REG_RSP] & 0xffffffffULL;
            read_mem(v, sp + 4u * (src & 0x3f), &w, 4);
            args[i] = w;
        } else {
            args[i] = s->r[src];
            if (conv) args[i] &= 0xffffffffULL;
        }
    }
}

/* What an event record says besides its registers and captures. */
struct rec_fields {
    uint8_t type, direction, exit_insn;
    uint32_t vcpu, flags, entry_vcpu;
    uint64_t seq, entry_seq, nr, tsc;
    const uint64_t *args;
    uint64_t next_rip; /* redirected exits: where the call would have returned */
    uint64_t user_rsp; /* exits: the user stack pointer of the return */
};

/* Writes an event record in place: the fixed part, the registers of s, then captures. */
static void emit(struct vcpu *v, const struct regset *s, const struct rec_fields *f,
                 uint64_t context) {
    uint32_t nregs = nitro_popcount32(s->mask);
    bool compat = f->flags & NITRO_REC_F_COMPAT;
    uint32_t caps = (f->flags & NITRO_REC_F_UNPAIRED) ? 0 : capture_bound(compat, f->nr, f->direction);
    if (caps > ring_bytes / 4) caps = ring_bytes / 4;
    const bool redirected = f->flags & NITRO_REC_F_REDIRECTED;
    const uint32_t stack_room = redirected ? STACK_CAPTURE_ROOM : 0;
    const uint32_t context_room =
        v->ctx_len || v->ctx_failed ? (uint32_t)sizeof(struct nitro_capture_hdr) + round8(v->ctx_len) : 0;
    caps += stack_room + context_room;
    uint32_t fixed = (uint32_t)sizeof(struct nitro_record) + nregs * 8;
    /* Records are packed (8-byte aligned). Cache-line aligned records were measured slower:
     * each would start in a line the vCPU's core does not hold yet. */
    struct nitro_record *rec = record_begin(v, fixed + caps);
    if (!rec) return;
    rec->kind = NITRO_REC_EVENT;
    rec->type = f->type;
    rec->direction = f->direction;
    rec->vcpu = f->vcpu;
    rec->flags = f->flags;
    rec->seq = f->seq;
    rec->entry_seq = f->entry_seq;
    rec->entry_vcpu = f->entry_vcpu;
    rec->exit_insn = f->exit_insn;
    rec->ncaptures = 0;
    rec->pad = 0;
    rec->tsc = f->tsc;
    rec->context = context;
    rec->nr = f->nr;
    memcpy(rec->args, f->args, sizeof rec->args);
    rec->regmask = s->mask;
    rec->pad2 = 0;
    uint64_t *out = (uint64_t *)(rec + 1);
    for (uint32_t m = s->mask; m; m &= m - 1) *out++ = s->r[__builtin_ctz(m)];
    const uint32_t rules_room = caps - stack_room - context_room;
    uint32_t extra = rules_room ? add_captures(v, rec, s->r[NITRO_REG_RAX], s->r[NITRO_REG_RSP],
                                               (uint8_t *)out, rules_room)
                                : 0;
    if (redirected) extra += add_stack_capture(v, rec, f->next_rip, f->user_rsp, (uint8_t *)out + extra);
    if (context_room) extra += add_context_capture(v, rec, (uint8_t *)out + extra);
    record_commit(v, rec, fixed + extra);
}

/* The plugin's own cost, for nitro's statistics: cycles from callback start to return, timed
 * at every ACCOUNT_SAMPLE-th callback (a TSC read costs as much as a tenth of a callback). The
 * period is odd: entries and returns alternate, and an even period would time only one kind. */
#define ACCOUNT_SAMPLE 15
/* A sample this long (about 20 us) timed the host preempting the vCPU thread, not the callback:
 * one such sample in a run would outweigh the rest. */
#define ACCOUNT_OUTLIER 50000
static inline void account(struct vcpu *v, uint64_t start) {
    struct nitro_ring *ring = v->ring;
    if (ring->callbacks++ % ACCOUNT_SAMPLE != 0) return;
    uint64_t cycles = tsc() - start;
    if (cycles < ACCOUNT_OUTLIER) ring->busy_cycles += cycles * ACCOUNT_SAMPLE;
}

static void on_entry_traced(struct vcpu *v, unsigned vcpu_index, uint8_t type, uint64_t now);
static void on_exit_traced(struct vcpu *v, unsigned vcpu_index, uint8_t insn, uint64_t now);

/* A callback's udata: where the instruction is in its translated block, its length and kind.
 * Not its address: QEMU shares a block between mappings of the same physical page at other
 * virtual addresses (position-independent translations, CF_PCREL: the vDSO, shared libraries
 * under ASLR), so the address it had when translated is not the one it has at run time. What
 * the block's code keeps up to date is the register file's rip: the address, at run time, of
 * the block's start or of a later instruction before this one that needed it. The block moved
 * by whole pages, so that address, the page offset of the block's start at translation and
 * the instruction's offset in the block (less than a page: blocks of syscall instructions are
 * short) give the instruction's address now.
 * Bits: 0-3 kind, 4-7 length, 8-19 page offset of the block's start, 20-: offset in the block
 * (SITE_FAR: a page or more; then rip is taken as it is). */
#define SITE_FAR 4096u
static void *insn_site(uint64_t tb_vaddr, uint64_t vaddr, size_t len, uintptr_t kind) {
    uint64_t off = vaddr - tb_vaddr;
    if (off > SITE_FAR) off = SITE_FAR;
    return (void *)(uintptr_t)(off << 20 | (tb_vaddr & 0xfff) << 8 | (uint64_t)len << 4 | kind);
}
static inline uint8_t site_kind(uintptr_t site) { return (uint8_t)(site & 15); }
static inline uint8_t site_size(uintptr_t site) { return (uint8_t)((site >> 4) & 15); }
/* The instruction's address now, from the register file's rip (see insn_site). */
static inline uint64_t site_pc(uintptr_t site, uint64_t rip) {
    const uint64_t off = site >> 20;
    if (off >= SITE_FAR) return rip;
    const uint64_t into_block = (rip - ((site >> 8) & 0xfff)) & 0xfff; /* rip less the block's start */
    return rip - into_block + off;
}

static void on_entry(unsigned vcpu_index, void *udata) {
    if (vcpu_index >= n_vcpus) return;
    uint64_t start = tsc();
    struct vcpu *v = &vcpus[vcpu_index];
    v->site = (uintptr_t)udata;
    on_entry_traced(v, vcpu_index, site_kind(v->site), start);
    account(v, start);
}

static void on_exit_insn(unsigned vcpu_index, void *udata) {
    if (vcpu_index >= n_vcpus) return;
    uint64_t start = tsc();
    struct vcpu *v = &vcpus[vcpu_index];
    v->site = (uintptr_t)udata;
    on_exit_traced(v, vcpu_index, site_kind(v->site), start);
    account(v, start);
}

#define KEY_REGS (1u << NITRO_REG_CR3 | 1u << NITRO_REG_FS_BASE | 1u << NITRO_REG_GS_BASE)

static void on_entry_traced(struct vcpu *v, unsigned vcpu_index, uint8_t type, uint64_t now) {
    direct_tick(v, vcpu_index, type == NITRO_TYPE_SYSCALL);
    struct regset s;
    s.mask = s.loaded = 0;
    read_regs(v, &s, KEY_REGS | 1u << NITRO_REG_RAX | 1u << NITRO_REG_CS | 1u << NITRO_REG_RIP);
    walk_begin(v, s.r[NITRO_REG_CR3]);
    const uint64_t pc = site_pc(v->site, s.r[NITRO_REG_RIP]);
    bool compat = type != NITRO_TYPE_SYSCALL || is_compat_cs(s.r[NITRO_REG_CS]);
    uint64_t nr = compat ? (s.r[NITRO_REG_RAX] & 0xffffffffULL) : s.r[NITRO_REG_RAX];
    bool traced = nr_traced(compat, nr) && cr3_traced(s.r[NITRO_REG_CR3]);

    struct pending p = {0};
    p.cr3 = s.r[NITRO_REG_CR3] & CR3_KEY_MASK;
    p.fs = s.r[NITRO_REG_FS_BASE];
    p.gs = s.r[NITRO_REG_GS_BASE];
    p.seq = ++v->seq;
    p.nr = nr;
    p.vcpu = vcpu_index;
    p.type = type;
    p.compat = compat;
    p.traced = traced;
    p.rekey = bit_set(compat ? ctl->rekey_nr32 : ctl->rekey_nr64, nr);
    p.fork = bit_set(compat ? ctl->fork_nr32 : ctl->fork_nr64, nr);
    if (traced) {
        read_regs(v, &s, send_mask(v, compat ? lean_enter32 : lean_enter64));
        int conv = !compat ? 0 : type == NITRO_TYPE_SYSCALL ? 1 : type == NITRO_TYPE_SYSENTER ? 2 : 3;
        read_args(v, &s, conv, p.args);
        s.r[NITRO_REG_RIP] = pc;
        /* A 64-bit syscall and int 0x80 return right after themselves. Linux returns from a
         * 32-bit program's sysenter or syscall (its vDSO's fast paths) to a landing point
         * right after the `int $0x80` that follows them in the vDSO (so that a restarted call
         * goes through int 0x80); one made elsewhere would have every return flagged
         * redirected (and its stack copied for nothing). */
        const bool fast32 = compat && type != NITRO_TYPE_INT80;
        p.next_rip = pc + site_size(v->site) + (fast32 ? 2 : 0);
    }
    /* The current task, when the consumer asked for it: for the record, to pair the return of
     * a task-creating call (see on_exit_traced), and beside another task's call pending under
     * the same key (a vfork child's execve when its parent makes its next call), which this
     * entry must not replace (pending_put). */
    const uint64_t task = LOAD_RELAXED(&ctl->context_enabled) &&
                                  (traced || p.fork || p.rekey || pending_has(p.cr3, p.fs, p.gs))
                              ? read_context_word(v, vcpu_index, &s)
                              : 0;
    /* Calls that never return (exit, exit_group) leave nothing to pair. */
    if (!bit_set(compat ? ctl->noreturn_nr32 : ctl->noreturn_nr64, nr)) pending_put(&p, task);
    v->last = p;
    v->last_valid = true;
    v->returns_since_entry = 0;
    if (!traced) return;

    struct rec_fields f = {.type = type,
                           .direction = NITRO_DIR_ENTER,
                           .vcpu = vcpu_index,
                           .flags = compat ? NITRO_REC_F_COMPAT : 0,
                           .seq = p.seq,
                           .nr = nr,
                           .tsc = now,
                           .args = p.args};
    emit(v, &s, &f, read_context(v, task, false));
}

static void on_exit_traced(struct vcpu *v, unsigned vcpu_index, uint8_t insn, uint64_t now) {
    direct_tick(v, vcpu_index, false);
    struct regset s;
    s.mask = s.loaded = 0;
    read_regs(v, &s, KEY_REGS | 1u << NITRO_REG_RIP);
    walk_begin(v, s.r[NITRO_REG_CR3]);
    const uint64_t pc = site_pc(v->site, s.r[NITRO_REG_RIP]);
    uint64_t cr3 = s.r[NITRO_REG_CR3] & CR3_KEY_MASK;
    uint64_t fs = s.r[NITRO_REG_FS_BASE], gs = s.r[NITRO_REG_GS_BASE];
    uint64_t frame[4]; /* an iret's: rip, cs, rflags, rsp of the return */
    if (insn == NITRO_EXIT_IRET) {
        /* Most irets end interrupts (many in the kernel, e.g. an idle vCPU's): unless the
         * thread key has a pending call, or a fresh image may end an execve, there is nothing
         * to pair, and the frame need not be read. */
        bool fresh = fs == 0 && gs == 0;
        if (!pending_has(cr3, fs, gs) && !(fresh && LOAD_RELAXED(&rekey_pending))) return;
        /* Only an iret to user mode (RPL 3 in the CS of the frame) can end a system call. */
        read_regs(v, &s, 1u << NITRO_REG_RSP);
        if (!read_mem(v, s.r[NITRO_REG_RSP], frame, sizeof frame) || (frame[1] & 3) != 3) return;
    }
    struct pending p;
    uint64_t entry_task = 0;
    struct lazy_task task = {false, 0};
    /* Several calls pending under the key (a vfork child's beside its waiting parent's): the
     * returning task's, when the consumer asked for the current task. The child's execve
     * releases the parent, whose vfork often returns before the execve does. */
    const uint64_t want_task = LOAD_RELAXED(&ctl->context_enabled) && pending_count(cr3, fs, gs) > 1
                                   ? task_now(v, vcpu_index, &s, &task)
                                   : 0;
    bool found = pending_take(cr3, fs, gs, want_task, &p, &entry_task);
    if (found && p.fork) {
        /* A return under a task-creating call's key in another task (the context word tells
         * when the consumer asked for it), or the new task's first return (0): the vfork child,
         * which shares its waiting creator's key, returning to user mode from a call of its
         * own or from an interrupt (the vfork's return value in rax). The creator's call is
         * still running: leave its entry pending. */
        read_regs(v, &s, 1u << NITRO_REG_RAX);
        uint64_t ret = s.r[NITRO_REG_RAX];
        const bool other_task = entry_task && !same_task(entry_task, task_now(v, vcpu_index, &s, &task));
        if (other_task || (p.compat ? (uint32_t)ret : ret) == 0) {
            pending_put(&p, entry_task);
            found = false;
            if (insn == NITRO_EXIT_IRET) return; /* as any return without an entry */
        }
    }
    uint32_t flags = 0;
    if (!found) {
        /* The return's thread key matches no pending entry: the call may have changed it.
         * 1. arch_prctl/set_thread_area: the vCPU's last entry, same address space, first
         *    return to user mode since (not an iret, which may end another thread's interrupt).
         * 2. execve: a new address space with TLS bases still zero, or any pending
         *    identity-changing call in the same address space. */
        if (v->last_valid && v->returns_since_entry == 0 && v->last.cr3 == cr3 &&
            insn != NITRO_EXIT_IRET) {
            found = pending_take_exact(&v->last, &p, task_now(v, vcpu_index, &s, &task));
        }
        bool fresh = fs == 0 && gs == 0;
        if (!found && (fresh || insn != NITRO_EXIT_IRET) && LOAD_RELAXED(&rekey_pending)) {
            found = pending_take_rekey(cr3, fresh, vcpu_index, &p, task_now(v, vcpu_index, &s, &task));
        }
        if (found) flags |= NITRO_REC_F_FALLBACK;
    }
    v->returns_since_entry++;
    if (!found) {
        /* No entry: an interrupt or exception return (iret), or a call that entered before
         * tracing began or in a fork child; only sysret/sysexit are certainly syscall returns.*/
        if (insn == NITRO_EXIT_IRET) return;
        flags |= NITRO_REC_F_UNPAIRED;
        memset(&p, 0, sizeof p);
        p.traced = cr3_traced(s.r[NITRO_REG_CR3]) && !LOAD_RELAXED(&ctl->filter_nr_enabled);
        p.type = insn == NITRO_EXIT_SYSEXIT ? NITRO_TYPE_SYSENTER : NITRO_TYPE_SYSCALL;
        p.nr = UINT64_MAX;
    }
    if (!p.traced) return;

    read_regs(v, &s, send_mask(v, lean_exit));
    s.r[NITRO_REG_RIP] = pc;
    /* Where the thread goes back to user mode: sysret to RCX with the stack it has, iret to its
     * frame's. */
    uint64_t user_rsp = 0;
    if (p.next_rip && insn != NITRO_EXIT_SYSEXIT) {
        uint64_t user_rip = insn == NITRO_EXIT_SYSRET ? s.r[NITRO_REG_RCX] : frame[0];
        user_rsp = insn == NITRO_EXIT_SYSRET ? s.r[NITRO_REG_RSP] : frame[3];
        if (user_rip != p.next_rip) flags |= NITRO_REC_F_REDIRECTED;
    }
    struct rec_fields f = {.type = p.type,
                           .direction = NITRO_DIR_EXIT,
                           .exit_insn = insn,
                           .vcpu = vcpu_index,
                           .flags = flags | (p.compat ? NITRO_REC_F_COMPAT : 0),
                           .entry_vcpu = p.vcpu,
                           .seq = ++v->seq,
                           .entry_seq = p.seq,
                           .nr = p.nr,
                           .tsc = now,
                           .args = p.args,
                           .next_rip = p.next_rip,
                           .user_rsp = user_rsp};
    const bool refresh = (flags & NITRO_REC_F_UNPAIRED) ||
                         bit_set(p.compat ? ctl->context_refresh_nr32 : ctl->context_refresh_nr64, p.nr);
    emit(v, &s, &f, read_context(v, task_now(v, vcpu_index, &s, &task), refresh));
}

/* Strips legacy and REX prefixes; returns the opcode offset or -1. */
static int opcode_offset(const uint8_t *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = b[i];
        bool legacy = c == 0x66 || c == 0x67 || c == 0xf2 || c == 0xf3 || c == 0xf0 ||
                      c == 0x2e || c == 0x36 || c == 0x3e || c == 0x26 || c == 0x64 || c == 0x65;
        bool rex = (c & 0xf0) == 0x40 && i + 1 < n;
        if (!legacy && !rex) return (int)i;
        i++;
    }
    return -1;
}

static void maybe_switch_instrumentation(void);
static void note_first_run(void);
static bool first_translation(void);

/* callbacks=empty: what any plugin that instruments these instructions costs the guest. */
static bool empty_callbacks;
static void on_insn_empty(unsigned vcpu_index, void *udata) {
    (void)udata;
    if (vcpu_index < n_vcpus) vcpus[vcpu_index].ring->callbacks++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    note_first_run();
    if (!first_translation()) maybe_switch_instrumentation();
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint8_t b[16];
        size_t len = qemu_plugin_insn_data(insn, b, sizeof b);
        int o = opcode_offset(b, len);
        if (o < 0) continue;
        const uint8_t *op = b + o;
        size_t rem = len - (size_t)o;
        uintptr_t entry = 0, exit = 0;
        if (rem == 2 && op[0] == 0x0f && op[1] == 0x05) entry = NITRO_TYPE_SYSCALL;
        else if (rem == 2 && op[0] == 0x0f && op[1] == 0x34) entry = NITRO_TYPE_SYSENTER;
        else if (rem == 2 && op[0] == 0xcd && op[1] == 0x80) entry = NITRO_TYPE_INT80;
        else if (rem == 2 && op[0] == 0x0f && op[1] == 0x07) exit = NITRO_EXIT_SYSRET;
        else if (rem == 2 && op[0] == 0x0f && op[1] == 0x35) exit = NITRO_EXIT_SYSEXIT;
        else if (rem == 1 && op[0] == 0xcf) exit = NITRO_EXIT_IRET;
        void *site = insn_site(qemu_plugin_tb_vaddr(tb), qemu_plugin_insn_vaddr(insn), len,
                               entry ? entry : exit);
        if (entry) {
            qemu_plugin_register_vcpu_insn_exec_cond_cb(
                insn, empty_callbacks ? on_insn_empty : on_entry, QEMU_PLUGIN_CB_R_REGS,
                QEMU_PLUGIN_COND_NE, active, 0, site);
        } else if (exit) {
            qemu_plugin_register_vcpu_insn_exec_cond_cb(
                insn, empty_callbacks ? on_insn_empty : on_exit_insn, QEMU_PLUGIN_CB_R_REGS,
                QEMU_PLUGIN_COND_NE, active, 0, site);
        }
    }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index);
static void on_exit_qemu(qemu_plugin_id_t id, void *p);
static void on_resume(qemu_plugin_id_t id, unsigned int vcpu_index);

/* The plugin's callbacks; the translation callback only once it instruments (see
 * want_instrument). */
static void register_callbacks(qemu_plugin_id_t id, bool translate) {
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_resume_cb(id, on_resume);
    qemu_plugin_register_atexit_cb(id, on_exit_qemu, NULL);
    if (translate) qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
}

/* Every block in the translation cache carries the instrumentation from now on: events flow. */
static void set_instrumented(void) {
    STORE(&instrumented, 1);
    STORE(&ctl->instrumented, 1);
    update_active();
}

/* Runs after qemu_plugin_reset has flushed the translated code and removed every callback,
 * with all vCPUs stopped: registers them again with the translation callback, so that every
 * block translated from now on is instrumented. */
static void reinstall(qemu_plugin_id_t id) {
    register_callbacks(id, true);
    __atomic_fetch_add(&ctl->code_flushes, 1, __ATOMIC_RELAXED);
    set_instrumented();
}

/* On a vCPU thread: asks for the switch to instrumented when tracing is wanted first. */
static void maybe_switch_instrumentation(void) {
    if (!LOAD_RELAXED(&want_instrument) || LOAD_RELAXED(&instrumented)) return;
    if (LOAD_RELAXED(&reset_queued) || __atomic_exchange_n(&reset_queued, 1, __ATOMIC_ACQ_REL)) return;
    qemu_plugin_reset(plugin_id, reinstall);
}

static void note_first_run(void) {
    if (!LOAD_RELAXED(&ctl->tsc_at_first_run)) {
        uint64_t zero = 0;
        __atomic_compare_exchange_n(&ctl->tsc_at_first_run, &zero, tsc(), false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
    }
}

static uint32_t first_translation_seen;

/* A vCPU leaves idle (also when the VM starts or continues, and while it is paused, to run work
 * QEMU queued for it): a safe point for the switch, once the VM has run (before that,
 * first_translation decides, without a flush). */
static void on_resume(qemu_plugin_id_t id, unsigned int vcpu_index) {
    (void)id;
    (void)vcpu_index;
    note_first_run();
    if (LOAD(&first_translation_seen)) maybe_switch_instrumentation();
}

/* After the VM's first translation, when nobody traced yet: passive from now on (the one block
 * translated so far is flushed with the rest). A consumer that asked meanwhile gets the
 * translation callback back at once. */
static void go_passive(qemu_plugin_id_t id) {
    bool want = LOAD(&want_instrument);
    register_callbacks(id, want);
    if (want) {
        set_instrumented();
        return;
    }
    STORE(&reset_queued, 0); /* the switch to instrumented may be asked for again */
    update_active();
}

/* The VM's first translation: the plugin is loaded with QEMU and registers its translation
 * callback at once, so this is the first block any vCPU runs (the reset vector). If a consumer
 * already wants tracing (nitro boots its guests paused and attaches first), everything is
 * instrumented from the first instruction, with no flush; otherwise the plugin turns passive.
 * Now is the safe moment for that flush: it is exclusive work, and QEMU 10.0 deadlocks when
 * a vCPU does exclusive work while another waits in a synchronous run_on_cpu from a device
 * write (seen when a flush was asked for during the firmware: one vCPU in start_exclusive,
 * the other in do_run_on_cpu under a port write); at the first block nothing else runs. */
static bool first_translation(void) {
    if (LOAD_RELAXED(&first_translation_seen) ||
        __atomic_exchange_n(&first_translation_seen, 1, __ATOMIC_ACQ_REL)) {
        return false;
    }
    if (LOAD(&want_instrument)) {
        set_instrumented();
    } else {
        STORE(&reset_queued, 1);
        qemu_plugin_reset(plugin_id, go_passive);
    }
    return true;
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index) {
    (void)id;
    if (vcpu_index >= n_vcpus) {
        fprintf(stderr, "nitro plugin: vCPU %u beyond the %u announced; not traced\n", vcpu_index,
                n_vcpus);
        return;
    }
    struct vcpu *v = &vcpus[vcpu_index];
    GArray *regs = qemu_plugin_get_registers();
    uint64_t found = 0;
    for (guint i = 0; i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        for (int r = 0; r < NITRO_NREGS; r++) {
            if (strcmp(d->name, reg_names[r]) == 0) {
                v->reg[r] = d->handle;
                found |= 1ULL << r;
            }
        }
    }
    g_array_free(regs, TRUE);
    v->buf = g_byte_array_sized_new(4096);
    v->ring = (struct nitro_ring *)((uint8_t *)ctl + ctl->ring_offset +
                                    (uint64_t)vcpu_index * ctl->ring_stride);
    v->data = (uint8_t *)v->ring + sizeof(struct nitro_ring);
    if (vcpu_index == 0) {
        registers_found = found;
        STORE(&ctl->registers_found, found);
    }
    /* vCPUs initialise in index order; count this one before setting its flag. */
    if (vcpu_index + 1 > LOAD(&initialized_vcpus)) STORE(&initialized_vcpus, vcpu_index + 1);
    update_active();
}

static void on_exit_qemu(qemu_plugin_id_t id, void *p) {
    (void)id;
    (void)p;
    watcher_stop = 1;
    STORE(&ctl->plugin_state, 2);
    __atomic_fetch_add(&ctl->doorbell, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&ctl->doorbell);
    __atomic_fetch_add(&ctl->config_generation, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&ctl->config_generation);
    pthread_join(watcher, NULL);
    unlink(ctl_path);
}

static int setup_ctl(void) {
    uint64_t stride = sizeof(struct nitro_ring) + ring_bytes;
    stride = (stride + 4095) & ~4095ULL;
    uint64_t ring_offset = (sizeof(struct nitro_ctl) + 4095) & ~4095ULL;
    ctl_size = ring_offset + stride * n_vcpus;
    unlink(ctl_path); /* a stale file from a QEMU that died */
    int fd = open(ctl_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "nitro plugin: cannot create %s: %s\n", ctl_path, strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)ctl_size) != 0) {
        fprintf(stderr, "nitro plugin: cannot size %s: %s\n", ctl_path, strerror(errno));
        close(fd);
        return -1;
    }
    /* MAP_POPULATE: the rings' pages are allocated now, not by page faults of the vCPUs in
     * their first lap (a fault and a page clear per 4 KiB, while the guest runs). */
    void *m = mmap(NULL, ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        fprintf(stderr, "nitro plugin: cannot map %s: %s\n", ctl_path, strerror(errno));
        return -1;
    }
    ctl = m;
    ctl->version = NITRO_ABI_VERSION;
    ctl->header_size = sizeof(struct nitro_ctl);
    ctl->n_vcpus = n_vcpus;
    ctl->ring_bytes = ring_bytes;
    ctl->ring_offset = ring_offset;
    ctl->ring_stride = stride;
    ctl->total_size = ctl_size;
    ctl->plugin_pid = (uint32_t)getpid();
    ctl->plugin_state = 1;
    ctl->traps = 1;
    ctl->tsc_at_start = tsc();
    ctl->mono_ns_at_start = now_ns(CLOCK_MONOTONIC);
    ctl->realtime_ns_at_start = now_ns(CLOCK_REALTIME);
    ctl->compat_cs[0] = 0x23; /* Linux __USER32_CS; the consumer may change it */
    STORE(&ctl->magic, NITRO_ABI_MAGIC); /* last: the file is ready */
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv) {
    if (info->version.cur < API_NEEDED || info->version.min > API_NEEDED) {
        fprintf(stderr,
                "nitro plugin: QEMU plugin API %d..%d does not include version %d; nitro needs "
                "QEMU 10 or newer\n",
                info->version.min, info->version.cur, API_NEEDED);
        return -1;
    }
    if (strcmp(info->target_name, "x86_64") != 0 || !info->system_emulation) {
        fprintf(stderr, "nitro plugin: needs qemu-system-x86_64 (got %s%s)\n", info->target_name,
                info->system_emulation ? "" : ", user mode");
        return -1;
    }
    snprintf(ctl_path, sizeof ctl_path, "/dev/shm/nitro-qemu-%d", (int)getpid());
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "ctl=", 4) == 0) {
            if (strlen(a + 4) >= sizeof ctl_path || a[4] == 0) {
                fprintf(stderr, "nitro plugin: bad ctl path\n");
                return -1;
            }
            snprintf(ctl_path, sizeof ctl_path, "%s", a + 4);
        } else if (strncmp(a, "ring=", 5) == 0) {
            char *end;
            unsigned long v = strtoul(a + 5, &end, 0);
            if (*end || v < 65536 || v > (1UL << 30) || (v & (v - 1))) {
                fprintf(stderr, "nitro plugin: ring= must be a power of two, 64 KiB..1 GiB\n");
                return -1;
            }
            ring_bytes = (uint32_t)v;
        } else if (strcmp(a, "direct=on") == 0 || strcmp(a, "direct=off") == 0) {
            direct_enabled = a[8] == 'n';
        } else if (strcmp(a, "callbacks=empty") == 0) {
            empty_callbacks = true;
        } else {
            fprintf(stderr,
                    "nitro plugin: unknown argument '%s' (expected ctl=PATH, ring=BYTES, "
                    "direct=on|off, callbacks=empty)\n",
                    a);
            return -1;
        }
    }
    n_vcpus = (unsigned)info->system.max_vcpus;
    if (n_vcpus == 0 || n_vcpus > NITRO_MAX_VCPUS) {
        fprintf(stderr, "nitro plugin: %u vCPUs; nitro supports 1..%u\n", n_vcpus,
                NITRO_MAX_VCPUS);
        return -1;
    }
    vcpus = calloc(n_vcpus, sizeof *vcpus);
    if (!vcpus || setup_ctl() != 0) return -1;
    ctl->qemu_api_version = info->version.cur;
    active_sb = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    active.score = active_sb;
    active.offset = 0;
    plugin_id = id;
    register_callbacks(id, true); /* until the first translation, see first_translation */
    if (pthread_create(&watcher, NULL, watch, NULL) != 0) return -1;
    return 0;
}
