// SPDX-License-Identifier: MIT
// The capture file: raw events recorded as the plugin wrote them, for tracing at full speed
// and converting (or analysing) later. Layout: one header, then event records exactly as in
// the plugin's rings (ring_abi.h: nitro_record + captures, 8-byte aligned), in time order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "listener/tcg/ring_abi.h"
#include "listener/tcg/ring_reader.h"
#include "listener/tcg/time_base.h"
#include "nitro/event.h"

namespace nitro::tcg {

constexpr uint64_t kCaptureMagic = 0x5041434f5254494eULL;  // "NITROCAP"
constexpr uint32_t kCaptureVersion = 1;

struct CaptureFileHeader {
    uint64_t magic;
    uint32_t version;
    uint32_t record_abi;  ///< NITRO_RECORD_ABI_VERSION of the records
    uint32_t header_size;
    uint32_t n_vcpus;
    uint64_t tsc0, mono0_ns, real0_ns, tsc_run0;  ///< the TimeBase
    double ns_per_tick;
    uint64_t records;  ///< written when the file is closed; 0 = not closed cleanly
    uint64_t dropped;  ///< events the listener reported lost while recording
    uint8_t reserved[48];
};
static_assert(sizeof(CaptureFileHeader) == 128);

/// Appends records to a capture file through a large buffer. Throws nitro::Error.
class CaptureWriter {
public:
    CaptureWriter(const std::string& path, unsigned n_vcpus, const TimeBase& time);
    ~CaptureWriter();
    CaptureWriter(const CaptureWriter&) = delete;
    CaptureWriter& operator=(const CaptureWriter&) = delete;

    void append(const nitro_record* rec);
    /// Writes what is buffered and the final header (time base, counts); idempotent.
    void close(const TimeBase& time, uint64_t dropped);
    uint64_t records() const { return records_; }

private:
    void flush();

    std::string path_;
    int fd_ = -1;
    CaptureFileHeader header_{};
    std::vector<uint8_t> buf_;
    size_t used_ = 0;
    uint64_t records_ = 0;
};

/// Reads a capture file (mapped); every record is checked before use.
class CaptureReader {
public:
    explicit CaptureReader(const std::string& path);
    ~CaptureReader();
    CaptureReader(const CaptureReader&) = delete;
    CaptureReader& operator=(const CaptureReader&) = delete;

    const CaptureFileHeader& header() const { return header_; }
    const TimeBase& time_base() const { return time_; }
    /// Decodes the next well-formed record; false at the end. Malformed records are counted
    /// and skipped; a record cut short by the end of the file ends the reading.
    bool next(Event& ev);
    uint64_t errors() const { return errors_; }
    bool truncated() const { return truncated_; }

private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    size_t pos_ = 0;
    CaptureFileHeader header_{};
    TimeBase time_;
    std::array<RegisterCache, NITRO_MAX_VCPUS> regs_{};  // per vCPU (see decode_record)
    uint64_t errors_ = 0;
    bool truncated_ = false;
};

}  // namespace nitro::tcg
