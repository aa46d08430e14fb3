/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory contract between nitro's QEMU plugin (producer) and nitro (consumer).
 * Plain C so that both sides include it. One file, mapped by both processes:
 *
 *   [nitro_ctl][ring vCPU 0][ring vCPU 1]...
 *
 * Each ring is single-producer (the vCPU thread) / single-consumer (nitro). Records are
 * 8-byte aligned and never straddle the end of the data area (a WRAP record fills the gap).
 * Wake-ups use futexes on 32-bit words of the shared mapping, so neither side spins.
 * Every field the consumer writes is re-validated by the plugin before use and vice versa:
 * the consumer treats record contents as untrusted (they come from the guest).
 */
#ifndef NITRO_RING_ABI_H
#define NITRO_RING_ABI_H

#include <stdint.h>

#define NITRO_ABI_MAGIC 0x31474e49524f5254ULL /* "TRORING1" */
#define NITRO_ABI_VERSION 14u        /* this header as a whole (the control block) */
#define NITRO_RECORD_ABI_VERSION 11u /* the event records alone (capture files keep them) */
/* Record ABI 7 added the capture kinds NITRO_CAP_IOVEC_DATA, NITRO_CAP_MSGHDR and
 * NITRO_CAP_MMSGHDR, ABI 8 NITRO_CAP_DEREF, ABI 9 NITRO_CAP_STACK and NITRO_REC_F_REDIRECTED,
 * ABI 10 NITRO_CAP_CONTEXT, ABI 11 NITRO_CAP_STACK_AT; records of ABI 6 to 10 are ABI 11
 * records without them, and readers of 11 read them. */
#define NITRO_RECORD_ABI_OLDEST 6u
#define NITRO_MAX_VCPUS 64u
#define NITRO_MAX_NR 1024u /* syscall numbers traced per ABI: 0..1023 */
#define NITRO_MAX_CR3 16u
#define NITRO_MAX_CAPTURES 4u
#define NITRO_MAX_CAPTURE_BYTES 65536u
#define NITRO_DEFAULT_RING_BYTES (16u << 20)

/* Register slots in an event record, in this order. */
enum nitro_reg {
    NITRO_REG_RAX, NITRO_REG_RBX, NITRO_REG_RCX, NITRO_REG_RDX,
    NITRO_REG_RSI, NITRO_REG_RDI, NITRO_REG_RBP, NITRO_REG_RSP,
    NITRO_REG_R8, NITRO_REG_R9, NITRO_REG_R10, NITRO_REG_R11,
    NITRO_REG_R12, NITRO_REG_R13, NITRO_REG_R14, NITRO_REG_R15,
    NITRO_REG_RIP, NITRO_REG_RFLAGS, NITRO_REG_CS, NITRO_REG_SS,
    NITRO_REG_FS_BASE, NITRO_REG_GS_BASE, NITRO_REG_K_GS_BASE,
    NITRO_REG_CR0, NITRO_REG_CR3, NITRO_REG_CR4, NITRO_REG_EFER,
    NITRO_NREGS
};

/* Event types: the instruction that entered or left the kernel. */
enum nitro_event_type {
    NITRO_TYPE_SYSCALL = 1,  /* syscall (64-bit, or 32-bit compat on AMD-style CPUs) */
    NITRO_TYPE_SYSENTER = 2, /* sysenter (32-bit) */
    NITRO_TYPE_INT80 = 3,    /* int 0x80 (32-bit ABI) */
};
/* Exit mechanisms (record field exit_insn). */
enum nitro_exit_insn { NITRO_EXIT_SYSRET = 1, NITRO_EXIT_SYSEXIT = 2, NITRO_EXIT_IRET = 3 };

enum nitro_direction { NITRO_DIR_ENTER = 0, NITRO_DIR_EXIT = 1 };

/* Record flags. */
#define NITRO_REC_F_COMPAT 0x1u   /* 32-bit ABI (i386 numbers) */
#define NITRO_REC_F_UNPAIRED 0x2u /* exit without a known entry (e.g. a fork child's return) */
#define NITRO_REC_F_FALLBACK 0x4u /* paired by the per-vCPU fallback (thread key changed) */
/* exit that does not return to the instruction after its entry's (syscall, int 0x80): the
 * kernel sends the thread elsewhere (a signal handler, a new program, a restored context);
 * the record then holds a NITRO_CAP_STACK capture */
#define NITRO_REC_F_REDIRECTED 0x8u

enum nitro_rec_kind { NITRO_REC_EVENT = 1, NITRO_REC_WRAP = 2 };
#define NITRO_SLEEP_AWAKE 0u
#define NITRO_SLEEP_DEEP 1u
#define NITRO_SLEEP_DOZE 2u

/* Capture kinds: what the plugin copies from guest memory at event time (async mode). */
enum nitro_capture_kind {
    NITRO_CAP_NONE = 0,
    NITRO_CAP_CSTRING = 1,    /* NUL-terminated string at arg, up to max bytes */
    NITRO_CAP_BUF_FIXED = 2,  /* max bytes at arg */
    NITRO_CAP_BUF_LEN_ARG = 3,/* min(arg[len_arg], max) bytes at arg */
    NITRO_CAP_BUF_RET = 4,    /* exit only: min(return value, max) bytes at arg */
    NITRO_CAP_STR_ARRAY = 5,  /* NULL-terminated pointer array of strings (argv); NUL-separated */
    NITRO_CAP_BUF_LEN_PTR = 6,/* min(*(uint32_t *)arg[len_arg], max) bytes at arg (socklen_t *) */
    /* The buffers of the iovec array at arg with arg[len_arg] entries (struct iovec: 16 bytes,
     * 32-bit programs 8): for each of the first NITRO_MAX_IOV_CAPTURE entries a
     * nitro_iov_capture and up to max bytes of its buffer, padded to 8; at exits no more than
     * the return value in all (readv fills the buffers in order). TRUNCATED: more entries. */
    NITRO_CAP_IOVEC_DATA = 7,
    /* The struct msghdr at arg and what it points to, as sections (a nitro_iov_capture and
     * its bytes, padded to 8): the structure (56 bytes; 28 for 32-bit programs), up to
     * NITRO_MSG_NAME_CAPTURE bytes at msg_name, the iovec array (its first
     * NITRO_MAX_IOV_CAPTURE entries), then the buffers as NITRO_CAP_IOVEC_DATA (max bytes
     * each; at exits no more than the return value in all), then (record ABI 8, when every
     * buffer's section is there) up to NITRO_MSG_CONTROL_CAPTURE bytes of msg_control. */
    NITRO_CAP_MSGHDR = 8,
    /* The first NITRO_MAX_MMSG_CAPTURE messages of the struct mmsghdr array at arg with
     * arg[len_arg] of them (at exits no more than the return value): each as NITRO_CAP_MSGHDR,
     * its structure section the whole mmsghdr (64 bytes; 32), its buffers bounded by msg_len. */
    NITRO_CAP_MMSGHDR = 9,
    /* max bytes at the address stored in the 64-bit field number len_arg (0..5) of the
     * structure at arg (clone3's struct clone_args: where the kernel wrote the new task's
     * TID, field 3, or its pidfd, field 1). The capture header's field byte holds len_arg. */
    NITRO_CAP_DEREF = 10,
    /* not a rule: added by the plugin to a NITRO_REC_F_REDIRECTED exit. 8 bytes, the address
     * the call would have returned to (after its entry instruction), then up to
     * NITRO_STACK_CAPTURE bytes at the user stack pointer of the return (where the kernel
     * puts a signal frame). arg 0. */
    NITRO_CAP_STACK = 11,
    /* not a rule: added by the plugin, when the consumer asked for context fields
     * (ctl->context_fields), to the events where they may have changed (see
     * ctl->context_refresh_nr64): the bytes of each field of the object the context word
     * points to, in the order asked, concatenated. arg 0; the header's field byte holds the
     * number of fields. */
    NITRO_CAP_CONTEXT = 12,
    /* up to max bytes at the event's stack pointer + 8 x len_arg (0..255), shown with
     * argument arg (rt_sigreturn's signal frame) */
    NITRO_CAP_STACK_AT = 13,
};
#define NITRO_MAX_CONTEXT_FIELDS 4u
#define NITRO_MAX_CONTEXT_FIELD_BYTES 32u
#define NITRO_MAX_CONTEXT_BYTES 64u /* all fields together */
#define NITRO_CONTEXT_FIELDS_REFRESH 256u
#define NITRO_STACK_CAPTURE 256u
#define NITRO_MAX_MMSG_CAPTURE 8u
#define NITRO_MSG_NAME_CAPTURE 128u
#define NITRO_MSG_CONTROL_CAPTURE 512u
#define NITRO_MAX_IOV_CAPTURE 16u
struct nitro_iov_capture {
    uint32_t len;   /* bytes of the buffer that follow */
    uint8_t status; /* enum nitro_capture_status of this buffer */
    uint8_t pad[3];
};
enum nitro_capture_status {
    NITRO_CAP_OK = 0,
    NITRO_CAP_FAULT = 1,     /* nothing readable at the address */
    NITRO_CAP_TRUNCATED = 2, /* stopped at the size bound */
    NITRO_CAP_PARTIAL = 3,   /* an unreadable page part-way */
};

struct nitro_capture_rule {
    uint8_t arg;     /* 0..5 */
    uint8_t kind;    /* enum nitro_capture_kind */
    uint8_t len_arg; /* the length argument (BUF_LEN_ARG, ...), DEREF's field (0..5), or
                        STACK_AT's offset in 8-byte words */
    uint8_t pad;
    uint32_t max;    /* byte bound, <= NITRO_MAX_CAPTURE_BYTES */
};

struct nitro_capture_set {
    uint32_t count; /* <= NITRO_MAX_CAPTURES */
    uint32_t pad;
    struct nitro_capture_rule rule[NITRO_MAX_CAPTURES];
};

/* Header of one captured buffer inside a record; data follows, padded to 8 bytes. */
struct nitro_capture_hdr {
    uint8_t arg;
    uint8_t kind;
    uint8_t status;
    uint8_t field; /* NITRO_CAP_DEREF: the rule's field; 0 otherwise */
    uint32_t len;
};

/* One event. Only the registers in regmask follow the fixed part (in nitro_reg order): the
 * plugin sends those that define the call at every event and all of them every 256th event
 * of a vCPU, at its first event after a configuration change, and always when the consumer
 * asks for all registers (ctl->all_registers). A register not sent has the value it had in
 * the vCPU's last record that carried it; the consumer keeps those values per vCPU. Records
 * stay small (about 250 bytes for an entry, 190 for an exit): they cross from the vCPU's
 * core to the consumer's, and their bytes are most of the cost of an event. */
struct nitro_record {
    uint32_t size; /* whole record incl. registers and captures, multiple of 8 */
    uint16_t kind; /* enum nitro_rec_kind */
    uint8_t type;  /* enum nitro_event_type (of the entry, also on exits) */
    uint8_t direction;
    uint32_t vcpu;
    uint32_t flags;
    uint64_t seq;        /* per-vCPU sequence number, from 1 */
    uint64_t entry_seq;  /* exits: the paired entry's seq (0 if unpaired) */
    uint32_t entry_vcpu; /* exits: vCPU of the paired entry */
    uint8_t exit_insn;   /* exits: enum nitro_exit_insn */
    uint8_t ncaptures;
    uint16_t pad;
    uint64_t tsc;     /* host TSC at the event (converted with the ctl's time base) */
    uint64_t context; /* the word at kernel_gs_base + ctl->context_offset (0 = none/unreadable) */
    uint64_t nr;      /* syscall number (exits: of the paired entry) */
    uint64_t args[6]; /* arguments by ABI (exits: of the paired entry) */
    uint32_t regmask; /* bit per nitro_reg present in regs[] */
    uint32_t pad2;
    /* followed by popcount(regmask) x uint64_t register values in nitro_reg order, then
     * ncaptures x (nitro_capture_hdr + data) */
};
#define NITRO_ALL_REGS ((1u << NITRO_NREGS) - 1u)
/* The number of registers a regmask names (a record's register count). Without -mpopcnt
 * (Debian's x86-64 baseline) __builtin_popcount is a library call. */
static inline uint32_t nitro_popcount32(uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
}
enum nitro_mode { NITRO_MODE_ASYNC = 0, NITRO_MODE_ASYNC_DROP = 1, NITRO_MODE_SYNC = 2 };

struct nitro_ring {
    /* producer-owned line: written by the vCPU at every event, read by the consumer about once
     * per batch of records */
    uint64_t head; /* bytes written (monotonic) */
    uint64_t produced;
    uint64_t dropped; /* events lost in drop mode (or while the consumer was gone) */
    uint64_t callbacks;   /* instrumented instructions executed while tracing */
    uint64_t busy_cycles; /* host TSC cycles spent in those callbacks (the plugin's own cost;
                             estimated from every 15th callback, without samples
                             long enough to have timed a preemption) */
    uint64_t memory_reads; /* reads of guest memory (captures, frames, context) by callbacks */
    uint64_t walked_reads; /* of them, through the plugin's own page walk in the RAM file */
    uint64_t full_waits;   /* times the vCPU found the ring full and waited for the consumer
                              (lossless modes): the consumer did not keep up */
    /* consumer-owned line: written by the consumer, read by the vCPU only when the ring looks
     * full (and in sync mode) */
    uint64_t tail;    /* bytes consumed (monotonic); published in batches */
    uint32_t space;   /* futex: bumped by the consumer after freeing space */
    uint32_t ack;     /* futex: low 32 bits of the last seq the consumer processed (sync) */
    uint64_t ack_seq; /* full seq acknowledged */
    uint32_t producer_waiting; /* set by a vCPU waiting for space (rare; read by the consumer
                                  whenever it publishes its tail) */
    uint32_t pad1;
    uint8_t pad_c[64 - 32];
    /* data follows at offset 128, ring_bytes long */
};
struct nitro_ctl {
    /* written once by the plugin */
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint32_t n_vcpus;
    uint32_t ring_bytes;
    uint64_t ring_offset;
    uint64_t ring_stride;
    uint64_t total_size;
    uint32_t plugin_pid;
    int32_t qemu_api_version;
    uint32_t plugin_state; /* 1 running, 2 QEMU exiting */
    uint32_t doorbell;     /* futex: bumped by producers when the consumer sleeps */
    uint32_t consumer_sleeping; /* 0 awake, 1 asleep (wake on any event), 2 dozing (polls every
                                   few ms; wake only when a ring fills up or in sync mode) */
    uint32_t all_registers;     /* 1: read every register at every event; 0: the registers that
                                   define the call, special registers refreshed per vCPU */
    uint64_t registers_found; /* bit per nitro_reg the plugin can read */
    uint64_t direct_vcpus;     /* bit per vCPU reading its register file in place */
    uint64_t direct_off_vcpus; /* bit per vCPU where that was not possible (API reads) */
    /* 1 when every block of translated code carries the plugin's instrumentation (events can
     * flow); 0 when the plugin is passive: nobody traces and QEMU translates as without it */
    uint32_t instrumented;
    uint32_t code_flushes; /* switches between the two, each a flush of the translated code */
    uint32_t ram_file_mapped;    /* the plugin maps ctl->ram_file (context words read there) */
    uint32_t context_mismatches; /* direct context reads that disagreed with a page walk */
    /* vCPUs' reads of guest memory through their own page walk in the RAM file that disagreed
     * with QEMU's (each turns that vCPU's walks off) */
    uint32_t ram_walk_mismatches;
    uint32_t pad_walk;
    /* Time base: host TSC, CLOCK_MONOTONIC and CLOCK_REALTIME sampled together at plugin
     * start; the consumer derives the TSC rate from them and a later sample of its own. */
    uint64_t tsc_at_start;
    uint64_t mono_ns_at_start;
    uint64_t realtime_ns_at_start;
    /* Host TSC when the vCPUs first ran (the first translation): QEMU's TCG guest clock and
     * guest TSC advance with the host TSC from there (while the VM is not paused). */
    uint64_t tsc_at_first_run;
    /* written by the consumer */
    uint32_t attached;
    uint32_t consumer_pid;
    uint64_t consumer_heartbeat_ns; /* CLOCK_MONOTONIC; stale > 500 ms = consumer gone */
    uint32_t traps;
    uint32_t mode;
    uint32_t filter_nr_enabled;
    uint32_t filter_cr3_count;
    uint64_t filter_cr3[NITRO_MAX_CR3];
    uint64_t filter_nr64[NITRO_MAX_NR / 64];
    uint64_t filter_nr32[NITRO_MAX_NR / 64];
    /* calls that may change the caller's thread key (execve: new address space; arch_prctl,
     * set_thread_area: new TLS base); their return is paired by vCPU when the key misses */
    uint64_t rekey_nr64[NITRO_MAX_NR / 64];
    uint64_t rekey_nr32[NITRO_MAX_NR / 64];
    /* calls that create a task (fork, vfork, clone): a return of 0 is the new task's, which
     * may share the caller's thread key (vfork, CLONE_VM without CLONE_SETTLS) and must not
     * take the caller's pending entry */
    uint64_t fork_nr64[NITRO_MAX_NR / 64];
    uint64_t fork_nr32[NITRO_MAX_NR / 64];
    /* calls that never return (exit, exit_group): not kept for pairing */
    uint64_t noreturn_nr64[NITRO_MAX_NR / 64];
    uint64_t noreturn_nr32[NITRO_MAX_NR / 64];
    uint32_t compat_cs[4]; /* CS selectors of 32-bit user code (Linux: 0x23); 0 = unused */
    uint32_t capture_enabled;
    uint32_t config_generation;
    /* At every event, read the 64-bit word at the kernel's GS base + context_offset (the
     * current task or thread of most x86-64 kernels) into the record's context field. */
    uint32_t context_enabled;
    uint32_t pad_context;
    uint64_t context_offset;
    /* Where each vCPU's context word is in guest RAM, when the consumer knows it: the plugin
     * then reads it from the RAM file (QEMU's memory backend, which this QEMU maps) instead of
     * through a page walk at every event. Valid while the vCPU's kernel GS base equals
     * context_kgs[vcpu]; the consumer clears context_kgs, stores the offset, then sets it. */
    char ram_file[256];            /* NUL-terminated path; checked against QEMU's mappings */
    uint32_t ram_file_generation;  /* bumped after ram_file changes */
    uint32_t pad_ram;
    uint64_t context_kgs[NITRO_MAX_VCPUS];
    uint64_t context_file_off[NITRO_MAX_VCPUS];
    /* Byte ranges of the object the context word points to (Linux: the task's pid and tgid,
     * name and parent), copied into each event as a NITRO_CAP_CONTEXT capture, so that a
     * consumer that handles the event late sees them as they were at the event. The plugin
     * reads them from the RAM file when context_linear_base is set (guest physical = word +
     * offset - context_linear_base: Linux's direct map; physical to file offset by the PC
     * layout, ram_below_4g bytes at 0 and the rest from 4 GiB), else through QEMU.
     * The consumer sets the count to 0, writes the rest, then sets the count. */
    uint32_t context_fields_count;
    uint32_t pad_fields;
    struct nitro_context_field {
        uint32_t offset;
        uint32_t len;
    } context_fields[NITRO_MAX_CONTEXT_FIELDS];
    uint64_t context_linear_base; /* 0: not known */
    /* The RAM file's PC layout: bytes of RAM below 4 GiB (0: not known). With it the plugin
     * also reads guest memory in the RAM file through the guest's page tables (argument
     * captures), rather than through QEMU. */
    uint64_t ram_below_4g;
    /* The fields are copied at an event whose context word differs from the vCPU's last
     * copied one (a task switch), at the returns of these calls (Linux: exec, prctl, writes
     * that may rename a task through /proc), at a return without an entry (a new task's
     * first), and at every NITRO_CONTEXT_FIELDS_REFRESH-th event of a vCPU. */
    uint64_t context_refresh_nr64[NITRO_MAX_NR / 64];
    uint64_t context_refresh_nr32[NITRO_MAX_NR / 64];
    struct nitro_capture_set capture[2][NITRO_MAX_NR][2]; /* [abi 0=64,1=32][nr][direction] */
    /* The plugin: the last config_generation its watcher has acted on (the translation
     * callback registered when tracing is wanted). nitro waits for it after attaching and
     * after turning traps on, so that a VM it resumes next is instrumented from the start. */
    uint32_t config_seen;
    uint32_t pad_seen;
};

#endif
