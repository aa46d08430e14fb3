// SPDX-License-Identifier: MIT
#include "listener/tcg/ring_reader.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace nitro::tcg {

namespace {
template <typename T>
T load_acquire(const T* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
}  // namespace

RingReader::RingReader(nitro_ring* ring, uint8_t* data, uint32_t ring_bytes, const TimeBase* time)
    : ring_(ring), data_(data), bytes_(ring_bytes), time_(time) {
    tail_ = head_seen_ = tail_published_ = load_acquire(&ring_->tail);
    batch_ = std::min<uint32_t>(64u << 10, ring_bytes / 4);
}

const nitro_record* RingReader::front() {
    for (;;) {
        if (tail_ == head_seen_) {
            publish_tail();  // caught up: the producer may use the whole ring
            head_seen_ = load_acquire(&ring_->head);
            if (head_seen_ == tail_) return nullptr;
        }
        uint64_t avail = head_seen_ - tail_;
        uint32_t pos = static_cast<uint32_t>(tail_ & (bytes_ - 1));  // a power of two
        if (avail > bytes_ || bytes_ - pos < 8) {
            // The producer's counters are impossible: resynchronise rather than read garbage.
            errors_++;
            resynchronise();
            return nullptr;
        }
        const auto* rec = reinterpret_cast<const nitro_record*>(data_ + pos);
        uint32_t size = rec->size;
        if (size < 8 || size % 8 || size > bytes_ - pos || size > avail) {
            errors_++;
            resynchronise();
            return nullptr;
        }
        if (rec->kind == NITRO_REC_WRAP) {
            consume(size);
            continue;
        }
        return rec;
    }
}

void RingReader::resynchronise() {
    tail_ = head_seen_ = load_acquire(&ring_->head);
    publish_tail();
}

void RingReader::consume(uint32_t size) {
    tail_ += size;
    if (tail_ - tail_published_ >= batch_) publish_tail();
}

void RingReader::publish_tail() {
    if (tail_ == tail_published_) return;
    __atomic_store_n(&ring_->tail, tail_, __ATOMIC_RELEASE);
    tail_published_ = tail_;
    // Pairs with the producer's fence between setting producer_waiting and re-reading tail.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (load_acquire(&ring_->producer_waiting)) {
        __atomic_fetch_add(&ring_->space, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, &ring_->space, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    }
}

std::optional<uint64_t> RingReader::peek_time() {
    const nitro_record* rec = front();
    if (!rec) return std::nullopt;
    if (rec->size < sizeof(nitro_record)) return 0;  // pop() reports it
    return rec->tsc;
}

bool RingReader::pop(Event& ev) {
    for (;;) {
        const nitro_record* rec = front();
        if (!rec) return false;
        uint32_t size = rec->size;
        bool ok = rec->kind == NITRO_REC_EVENT && decode_record(rec, size, ev, regs_, time_);
        consume(size);
        if (ok) return true;
        errors_++;
    }
}

static_assert(NITRO_MAX_IOV_CAPTURE == kIovecDataEntries &&
                  NITRO_CAP_IOVEC_DATA == static_cast<int>(CaptureKind::IovecData) &&
                  NITRO_CAP_MSGHDR == static_cast<int>(CaptureKind::Msghdr) &&
                  NITRO_CAP_MMSGHDR == static_cast<int>(CaptureKind::Mmsghdr) &&
                  NITRO_CAP_DEREF == static_cast<int>(CaptureKind::Deref) &&
                  NITRO_CAP_STACK == static_cast<int>(CaptureKind::Stack) &&
                  NITRO_CAP_CONTEXT == static_cast<int>(CaptureKind::Context) &&
                  NITRO_CAP_STACK_AT == static_cast<int>(CaptureKind::StackAt),
              "the plugin's capture kinds are CaptureKind's");
static_assert(NITRO_REG_RAX == static_cast<int>(Reg::rax) && NITRO_REG_R15 == static_cast<int>(Reg::r15) &&
              NITRO_REG_RIP == static_cast<int>(Reg::rip) && NITRO_REG_CS == static_cast<int>(Reg::cs) &&
              NITRO_REG_FS_BASE == static_cast<int>(Reg::fs_base) &&
              NITRO_REG_K_GS_BASE == static_cast<int>(Reg::kernel_gs_base) &&
              NITRO_REG_CR0 == static_cast<int>(Reg::cr0) && NITRO_REG_EFER == static_cast<int>(Reg::efer) &&
              NITRO_ALL_REGS == kAllRegisters,
              "Event::fresh uses the record's register bits");

uint32_t record_registers_end(const nitro_record* rec, uint32_t size) {
    if (size < sizeof(nitro_record) || (rec->regmask & ~NITRO_ALL_REGS)) return 0;
    uint64_t end = sizeof(nitro_record) + 8ULL * nitro_popcount32(rec->regmask);
    return end <= size ? static_cast<uint32_t>(end) : 0;
}

bool decode_record(const nitro_record* rec, uint32_t size, Event& ev, RegisterCache& cache,
                   const TimeBase* time) {
    const uint32_t regs_end = record_registers_end(rec, size);
    if (!regs_end) return false;
    if (rec->type < NITRO_TYPE_SYSCALL || rec->type > NITRO_TYPE_INT80) return false;
    if (rec->direction > NITRO_DIR_EXIT) return false;
    // The registers it carries replace the vCPU's last known values.
    const auto* value = reinterpret_cast<const uint8_t*>(rec) + sizeof(nitro_record);
    for (uint32_t m = rec->regmask; m; m &= m - 1) {
        std::memcpy(&cache.r[__builtin_ctz(m)], value, 8);
        value += 8;
    }
    ev.vcpu = rec->vcpu;
    ev.type = static_cast<EventType>(rec->type);
    ev.direction = static_cast<Direction>(rec->direction);
    ev.compat = rec->flags & NITRO_REC_F_COMPAT;
    ev.unpaired = rec->flags & NITRO_REC_F_UNPAIRED;
    ev.fallback = rec->flags & NITRO_REC_F_FALLBACK;
    ev.redirected = rec->flags & NITRO_REC_F_REDIRECTED;
    ev.seq = rec->seq;
    ev.entry_seq = rec->entry_seq;
    ev.entry_vcpu = rec->entry_vcpu;
    ev.exit_insn = rec->exit_insn <= NITRO_EXIT_IRET ? static_cast<ExitInsn>(rec->exit_insn)
                                                     : ExitInsn::None;
    ev.nr = rec->nr;
    std::memcpy(ev.args.data(), rec->args, sizeof rec->args);
    const uint64_t* r = cache.r;
    ev.regs = Registers{r[NITRO_REG_RAX], r[NITRO_REG_RBX], r[NITRO_REG_RCX], r[NITRO_REG_RDX],
                        r[NITRO_REG_RSI], r[NITRO_REG_RDI], r[NITRO_REG_RBP], r[NITRO_REG_RSP],
                        r[NITRO_REG_R8],  r[NITRO_REG_R9],  r[NITRO_REG_R10], r[NITRO_REG_R11],
                        r[NITRO_REG_R12], r[NITRO_REG_R13], r[NITRO_REG_R14], r[NITRO_REG_R15],
                        r[NITRO_REG_RIP], r[NITRO_REG_RFLAGS]};
    ev.sregs = SpecialRegisters{r[NITRO_REG_CR0],     r[NITRO_REG_CR3],     r[NITRO_REG_CR4],
                                r[NITRO_REG_EFER],    r[NITRO_REG_FS_BASE], r[NITRO_REG_GS_BASE],
                                r[NITRO_REG_K_GS_BASE], r[NITRO_REG_CS],    r[NITRO_REG_SS]};
    ev.fresh = rec->regmask;
    ev.host_time_ns = time ? time->host_ns(rec->tsc) : 0;
    ev.guest_time_ns = time ? time->guest_ns(rec->tsc) : 0;
    ev.context = rec->context;

    // Captures: bounded by the record; each header and its data must fit.
    ev.captures.clear();
    ev.capture_storage.clear();
    const uint8_t* p = reinterpret_cast<const uint8_t*>(rec) + regs_end;
    const uint8_t* end = reinterpret_cast<const uint8_t*>(rec) + size;
    // The rules' captures, a redirected exit's stack and the context fields.
    constexpr unsigned kMaxCaptures = NITRO_MAX_CAPTURES + 2;
    unsigned n = rec->ncaptures > kMaxCaptures ? kMaxCaptures : rec->ncaptures;
    struct Span {
        nitro_capture_hdr h;
        size_t off;
    };
    Span spans[kMaxCaptures];
    unsigned got = 0;
    for (unsigned i = 0; i < n; i++) {
        if (end - p < static_cast<ptrdiff_t>(sizeof(nitro_capture_hdr))) return false;
        nitro_capture_hdr h;
        std::memcpy(&h, p, sizeof h);
        p += sizeof h;
        size_t padded = (static_cast<size_t>(h.len) + 7) & ~size_t{7};
        if (h.len > NITRO_MAX_CAPTURE_BYTES || static_cast<size_t>(end - p) < padded) return false;
        if (h.arg > 5 || h.kind < NITRO_CAP_CSTRING || h.kind > NITRO_CAP_STACK_AT ||
            h.status > NITRO_CAP_PARTIAL || h.field > 5) {
            return false;
        }
        spans[got++] = {h, ev.capture_storage.size()};
        ev.capture_storage.insert(ev.capture_storage.end(), p, p + h.len);
        p += padded;
    }
    for (unsigned i = 0; i < got; i++) {
        const auto& s = spans[i];
        ev.captures.push_back(Capture{s.h.arg, static_cast<CaptureKind>(s.h.kind),
                                      static_cast<CaptureStatus>(s.h.status),
                                      std::string_view(ev.capture_storage.data() + s.off, s.h.len),
                                      s.h.field});
    }
    return true;
}

}  // namespace nitro::tcg
