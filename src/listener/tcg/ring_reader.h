// SPDX-License-Identifier: MIT
// Consumer side of one plugin ring: validates and decodes records into Events. Split from the
// listener so that unit tests can feed it hand-made (and hostile) rings.
#pragma once

#include <cstdint>
#include <optional>

#include "listener/tcg/ring_abi.h"
#include "nitro/event.h"

namespace nitro::tcg {

class RingReader {
public:
    RingReader() = default;
    RingReader(nitro_ring* ring, uint8_t* data, uint32_t ring_bytes)
        : ring_(ring), data_(data), bytes_(ring_bytes) {}

    /// The host time of the next event record, skipping wrap records; nullopt if empty.
    std::optional<uint64_t> peek_time();
    /// Decodes the next record into ev and consumes it. Returns false if the ring is empty.
    /// A malformed record (impossible size) consumes the rest of the ring and counts an error.
    bool pop(Event& ev);
    /// Number of malformed records seen.
    uint64_t errors() const { return errors_; }
    nitro_ring* ring() const { return ring_; }

private:
    const nitro_record* front();
    void consume(uint32_t size);

    nitro_ring* ring_ = nullptr;
    uint8_t* data_ = nullptr;
    uint32_t bytes_ = 0;
    uint64_t errors_ = 0;
};

/// Fills ev from a record of size bytes (captures included); false if it is malformed.
bool decode_record(const nitro_record* rec, uint32_t size, Event& ev);

}  // namespace nitro::tcg
