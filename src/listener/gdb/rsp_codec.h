// SPDX-License-Identifier: MIT
// Encoding rules of the GDB remote serial protocol: checksums, hex, binary escapes, run-length
// encoding, and an incremental scanner that cuts a byte stream into frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nitro::gdb {

// The peer is untrusted: no frame and no decoded payload may exceed this unless configured.
inline constexpr std::size_t kDefaultMaxPacket = std::size_t{1} << 20;

/// Modulo-256 sum of the bytes between '$' and '#'.
std::uint8_t checksum(std::string_view data);

/// "$payload#cs" (or "%payload#cs" for a notification). The payload must already be escaped.
std::string frame_packet(std::string_view payload, char start = '$');

/// Value of one hex digit, or -1.
int hex_digit(char c);
std::string hex_encode(std::span<const std::uint8_t> bytes);
std::string hex_encode(std::string_view bytes);
/// Pairs of hex digits to bytes; nullopt on odd length or a non-hex character.
std::optional<std::vector<std::uint8_t>> hex_decode(std::string_view hex);
/// A hex number of at most 16 digits; nullopt when empty, non-hex or too long.
std::optional<std::uint64_t> parse_hex(std::string_view hex);
/// A decimal number that fits in an int; nullopt otherwise.
std::optional<int> parse_decimal(std::string_view text);

/// A payload shortened and made printable, for messages (peer data may be anything).
std::string describe(std::string_view payload);

/// Escapes '#', '$', '}' and '*' as '}' followed by the byte xor 0x20 (binary packets).
std::string escape_binary(std::string_view data);
/// Reverses escape_binary; throws nitro::Error on a dangling '}'.
std::string unescape_binary(std::string_view data);

/// Run-length encodes runs of four or more identical characters ("x*<n+29>"). Stubs may send
/// this; we never do, but tests use it to play a stub.
std::string rle_encode(std::string_view data);
/// Expands run-length encoding; throws nitro::Error when malformed or larger than max_size.
std::string rle_decode(std::string_view raw, std::size_t max_size = kDefaultMaxPacket);

/// One unit of the byte stream between the two ends.
struct Frame {
    enum class Kind { Ack, Nak, Packet, Notification };
    Kind kind = Kind::Ack;
    std::string payload;      // raw bytes between the start character and '#'
    bool checksum_ok = true;  // false when the checksum differs or is not hex
};

/// Cuts a byte stream into frames. Bytes outside frames (other than '+'/'-') are dropped, as GDB
/// does; a frame longer than max_packet is an error rather than an unbounded buffer.
class FrameScanner {
  public:
    explicit FrameScanner(std::size_t max_packet = kDefaultMaxPacket) : max_packet_(max_packet) {}

    void feed(std::string_view bytes) { buf_.append(bytes); }
    /// The next complete frame, or nullopt when more bytes are needed. Throws nitro::Error when a
    /// frame grows past max_packet.
    std::optional<Frame> next();
    /// True when part of a frame is buffered (a close now would cut a packet).
    bool in_frame() const;
    std::size_t buffered() const { return buf_.size() - pos_; }
    void clear() {
        buf_.clear();
        pos_ = 0;
    }

  private:
    std::string buf_;
    std::size_t pos_ = 0;  // consumed prefix of buf_, compacted lazily
    std::size_t max_packet_;
};

}  // namespace nitro::gdb
