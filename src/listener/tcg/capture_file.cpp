// SPDX-License-Identifier: MIT
#include "listener/tcg/capture_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "listener/tcg/ring_reader.h"
#include "nitro/error.h"

namespace nitro::tcg {

namespace {

constexpr size_t kBufferBytes = 4u << 20;
// The largest record the plugin writes: the header, all registers and NITRO_MAX_CAPTURES
// full captures.
constexpr size_t kMaxRecord =
    sizeof(nitro_record) + 8 * NITRO_NREGS +
    NITRO_MAX_CAPTURES * (sizeof(nitro_capture_hdr) + NITRO_MAX_CAPTURE_BYTES + 8);

void write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail("cannot write {}: {}", path, std::strerror(errno));
        p += w;
        n -= static_cast<size_t>(w);
    }
}

}  // namespace

CaptureWriter::CaptureWriter(const std::string& path, unsigned n_vcpus, const TimeBase& time)
    : path_(path), buf_(kBufferBytes) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot write {}: {}", path, std::strerror(errno));
    header_.magic = kCaptureMagic;
    header_.version = kCaptureVersion;
    header_.record_abi = NITRO_RECORD_ABI_VERSION;
    header_.header_size = sizeof header_;
    header_.n_vcpus = n_vcpus;
    header_.tsc0 = time.tsc0;
    header_.mono0_ns = time.mono0_ns;
    header_.real0_ns = time.real0_ns;
    header_.tsc_run0 = time.tsc_run0;
    header_.ns_per_tick = time.ns_per_tick;
    write_all(fd_, reinterpret_cast<const uint8_t*>(&header_), sizeof header_, path_);
}

CaptureWriter::~CaptureWriter() {
    if (fd_ >= 0) {
        try {
            flush();
        } catch (const Error&) {
        }
        ::close(fd_);
    }
}

void CaptureWriter::append(const nitro_record* rec) {
    size_t n = rec->size;
    if (n > buf_.size() - used_) flush();
    std::memcpy(buf_.data() + used_, rec, n);
    used_ += n;
    records_++;
}

void CaptureWriter::flush() {
    write_all(fd_, buf_.data(), used_, path_);
    used_ = 0;
}

void CaptureWriter::close(const TimeBase& time, uint64_t dropped) {
    if (fd_ < 0) return;
    flush();
    header_.tsc_run0 = time.tsc_run0;
    header_.ns_per_tick = time.ns_per_tick;
    header_.records = records_;
    header_.dropped = dropped;
    if (::pwrite(fd_, &header_, sizeof header_, 0) != static_cast<ssize_t>(sizeof header_) ||
        ::close(fd_) != 0) {
        fd_ = -1;
        fail("cannot write {}: {}", path_, std::strerror(errno));
    }
    fd_ = -1;
}

CaptureReader::CaptureReader(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot read {}: {}", path, std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof header_) {
        ::close(fd);
        fail("{} is not a nitro capture file (too short)", path);
    }
    size_ = static_cast<size_t>(st.st_size);
    void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) fail("cannot map {}: {}", path, std::strerror(errno));
    data_ = static_cast<const uint8_t*>(m);
    std::memcpy(&header_, data_, sizeof header_);
    if (header_.magic != kCaptureMagic) {
        munmap(const_cast<uint8_t*>(data_), size_);
        fail("{} is not a nitro capture file", path);
    }
    if (header_.version != kCaptureVersion || header_.record_abi < NITRO_RECORD_ABI_OLDEST ||
        header_.record_abi > NITRO_RECORD_ABI_VERSION || header_.header_size != sizeof header_) {
        munmap(const_cast<uint8_t*>(data_), size_);
        fail("{} was recorded by another nitro version (capture format {}, records {}; this nitro "
             "reads {} and {}..{})",
             path, header_.version, header_.record_abi, kCaptureVersion, NITRO_RECORD_ABI_OLDEST,
             NITRO_RECORD_ABI_VERSION);
    }
    time_.tsc0 = header_.tsc0;
    time_.mono0_ns = header_.mono0_ns;
    time_.real0_ns = header_.real0_ns;
    time_.tsc_run0 = header_.tsc_run0;
    // An absurd rate (a damaged header) would only make times wrong: keep plausible ones.
    time_.ns_per_tick =
        header_.ns_per_tick > 0.01 && header_.ns_per_tick < 100 ? header_.ns_per_tick : 0;
    pos_ = sizeof header_;
}

CaptureReader::~CaptureReader() {
    if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

bool CaptureReader::next(Event& ev) {
    while (pos_ < size_) {
        size_t left = size_ - pos_;
        if (left < sizeof(nitro_record)) {
            truncated_ = true;
            pos_ = size_;
            return false;
        }
        // Records are 8-byte aligned in the file and the mapping is page aligned.
        const auto* rec = reinterpret_cast<const nitro_record*>(data_ + pos_);
        size_t size = rec->size;
        if (size < sizeof(nitro_record) || size % 8 || size > kMaxRecord) {
            errors_++;  // cannot find the next record after a broken size: stop here
            pos_ = size_;
            return false;
        }
        if (size > left) {
            truncated_ = true;
            pos_ = size_;
            return false;
        }
        pos_ += size;
        // Each vCPU's records carry some registers; the others are its last known values.
        if (rec->kind == NITRO_REC_EVENT && rec->vcpu < regs_.size() &&
            decode_record(rec, static_cast<uint32_t>(size), ev, regs_[rec->vcpu], &time_)) {
            return true;
        }
        errors_++;
    }
    return false;
}

}  // namespace nitro::tcg
