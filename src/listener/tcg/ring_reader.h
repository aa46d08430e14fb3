// SPDX-License-Identifier: MIT
// Consumer side of one plugin ring: validates and decodes records into Events. Split from the
// listener so that unit tests can feed it hand-made (and hostile) rings.
#pragma once

#include <cstdint>
#include <optional>

#include "listener/tcg/ring_abi.h"
#include "listener/tcg/time_base.h"
#include "nitro/event.h"

namespace nitro::tcg {

/// The registers of one vCPU as its records last carried them. A record carries the registers
/// that define its call (and all of them now and then; see nitro_record in ring_abi.h); the
/// others of its Event come from here.
struct RegisterCache {
    uint64_t r[NITRO_NREGS] = {};
};

class RingReader {
public:
    RingReader() = default;
    /// ring_bytes: a power of two (the listener checks the plugin's). Starts at the ring's
    /// published tail.
    RingReader(nitro_ring* ring, uint8_t* data, uint32_t ring_bytes,
               const TimeBase* time = nullptr);
    /// The host TSC of the next event record, skipping wrap records; nullopt if empty.
    std::optional<uint64_t> peek_time();
    /// Decodes the next record into ev and consumes it. Returns false if the ring is empty.
    /// A malformed record (impossible size) consumes the rest of the ring and counts an error.
    bool pop(Event& ev);
    /// The next record in place, wrap records skipped (structurally valid size; nullptr if
    /// empty). Consume it with skip_front().
    const nitro_record* front_record() { return front(); }
    /// Consumes the front record of size bytes; counts an error if it was malformed.
    void skip_front(uint32_t size, bool malformed) {
        consume(size);
        if (malformed) errors_++;
    }
    /// True when no record is left (the producer's head is re-read; the tail is published).
    bool empty() { return front() == nullptr; }
    /// Number of malformed records seen.
    uint64_t errors() const { return errors_; }
    nitro_ring* ring() const { return ring_; }

private:
    const nitro_record* front();
    void consume(uint32_t size);
    void publish_tail();
    void resynchronise();

    nitro_ring* ring_ = nullptr;
    uint8_t* data_ = nullptr;
    uint32_t bytes_ = 0;
    const TimeBase* time_ = nullptr;
    uint64_t errors_ = 0;
    RegisterCache regs_;
    // The producer's head is read only when the records seen so far are used up, and the
    // tail is published in batches (and whenever the reader has caught up): each access to
    // a line the other side writes moves it between cores and stalls the vCPU's stores.
    uint64_t tail_ = 0;            // consumed
    uint64_t head_seen_ = 0;       // the head as last read
    uint64_t tail_published_ = 0;  // the tail as the producer sees it
    uint32_t batch_ = 0;           // publish the tail after this many bytes
};

/// Fills ev from a record of size bytes (registers and captures included); false if it is
/// malformed. Registers the record does not carry come from cache, which takes those it does
/// (one cache per vCPU). Times are converted with time (left 0 without one).
bool decode_record(const nitro_record* rec, uint32_t size, Event& ev, RegisterCache& cache,
                   const TimeBase* time = nullptr);
/// The size a record's fixed part and registers take (its captures follow); 0 if the record
/// is too short for them or names registers that do not exist.
uint32_t record_registers_end(const nitro_record* rec, uint32_t size);

}  // namespace nitro::tcg
