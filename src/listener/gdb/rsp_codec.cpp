// SPDX-License-Identifier: MIT
#include "listener/gdb/rsp_codec.h"

#include <limits>

#include "nitro/error.h"

namespace nitro::gdb {

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr char kEscape = '}';
constexpr char kRepeat = '*';
// A repeat count n travels as the character n + 29; the printable range keeps it off the wire's
// special characters.
constexpr int kRepeatBias = 29;
constexpr int kMinRepeatChar = ' ';
constexpr int kMaxRepeatChar = '~';

bool needs_escape(char c) { return c == '#' || c == '$' || c == kEscape || c == kRepeat; }

}  // namespace

std::uint8_t checksum(std::string_view data) {
    unsigned sum = 0;
    for (char c : data) sum += static_cast<unsigned char>(c);
    return static_cast<std::uint8_t>(sum & 0xff);
}

std::string frame_packet(std::string_view payload, char start) {
    std::string out;
    out.reserve(payload.size() + 4);
    out += start;
    out += payload;
    out += '#';
    std::uint8_t cs = checksum(payload);
    out += kHex[cs >> 4];
    out += kHex[cs & 0xf];
    return out;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string hex_encode(std::span<const std::uint8_t> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
    }
    return out;
}

std::string hex_encode(std::string_view bytes) {
    return hex_encode(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::optional<std::vector<std::uint8_t>> hex_decode(std::string_view hex) {
    if (hex.size() % 2) return std::nullopt;
    std::vector<std::uint8_t> out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = hex_digit(hex[i]);
        int lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    return out;
}

std::optional<std::uint64_t> parse_hex(std::string_view hex) {
    if (hex.empty() || hex.size() > 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : hex) {
        int d = hex_digit(c);
        if (d < 0) return std::nullopt;
        v = v << 4 | static_cast<std::uint64_t>(d);
    }
    return v;
}

std::optional<int> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 9) return std::nullopt;
    int v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

std::string describe(std::string_view payload) {
    constexpr std::size_t kLen = 40;
    std::string out;
    for (char c : payload.substr(0, kLen)) {
        auto u = static_cast<unsigned char>(c);
        out += u >= 0x20 && u < 0x7f ? c : '.';
    }
    if (payload.size() > kLen) out += "...";
    return out;
}

std::string escape_binary(std::string_view data) {
    std::string out;
    out.reserve(data.size());
    for (char c : data) {
        if (needs_escape(c)) {
            out += kEscape;
            out += static_cast<char>(c ^ 0x20);
        } else {
            out += c;
        }
    }
    return out;
}

std::string unescape_binary(std::string_view data) {
    std::string out;
    out.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] != kEscape) {
            out += data[i];
            continue;
        }
        if (i + 1 == data.size()) fail("gdb: malformed binary data: escape character at the end");
        out += static_cast<char>(data[++i] ^ 0x20);
    }
    return out;
}

std::string rle_encode(std::string_view data) {
    std::string out;
    out.reserve(data.size());
    std::size_t i = 0;
    while (i < data.size()) {
        char c = data[i];
        std::size_t run = 1;
        while (i + run < data.size() && data[i + run] == c) ++run;
        out += c;
        std::size_t extra = run - 1;
        // Only the characters that frame packets are kept out of runs; shorter runs cost more
        // encoded than plain.
        if (extra >= 3 && c != '#' && c != '$' && c != kRepeat) {
            std::size_t n = std::min<std::size_t>(extra, kMaxRepeatChar - kRepeatBias);
            // Counts 6 and 7 would encode as '#' and '$', which end or start a packet.
            if (n + kRepeatBias == '#' || n + kRepeatBias == '$') n = 5;
            out += kRepeat;
            out += static_cast<char>(n + kRepeatBias);
            i += 1 + n;
        } else {
            i += 1;
        }
    }
    return out;
}

std::string rle_decode(std::string_view raw, std::size_t max_size) {
    std::string out;
    out.reserve(std::min(raw.size(), max_size));
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c != kRepeat) {
            if (out.size() >= max_size)
                fail("gdb: packet exceeds {} bytes once expanded", max_size);
            out += c;
            continue;
        }
        if (out.empty()) fail("gdb: malformed packet: repeat marker without a character before it");
        if (i + 1 == raw.size()) fail("gdb: malformed packet: repeat marker without a count");
        int count_char = static_cast<unsigned char>(raw[++i]);
        if (count_char < kMinRepeatChar || count_char > kMaxRepeatChar)
            fail("gdb: malformed packet: invalid repeat count 0x{:02x}", count_char);
        std::size_t n = static_cast<std::size_t>(count_char - kRepeatBias);
        if (out.size() + n > max_size) fail("gdb: packet exceeds {} bytes once expanded", max_size);
        out.append(n, out.back());
    }
    return out;
}

std::optional<Frame> FrameScanner::next() {
    while (pos_ < buf_.size()) {
        char c = buf_[pos_];
        if (c == '+' || c == '-') {
            ++pos_;
            return Frame{c == '+' ? Frame::Kind::Ack : Frame::Kind::Nak, {}, true};
        }
        if (c != '$' && c != '%') {
            ++pos_;  // noise between frames, ignored like GDB does
            continue;
        }
        std::size_t body = pos_ + 1;
        std::size_t limit = std::min(buf_.size(), body + max_packet_ + 1);
        std::size_t hash = buf_.find('#', body);
        if (hash == std::string::npos || hash >= limit) {
            if (buf_.size() - body > max_packet_) {
                clear();
                fail("gdb: packet exceeds {} bytes", max_packet_);
            }
            break;  // need more bytes
        }
        if (buf_.size() < hash + 3) break;  // need the checksum
        Frame f;
        f.kind = c == '$' ? Frame::Kind::Packet : Frame::Kind::Notification;
        f.payload.assign(buf_, body, hash - body);
        int hi = hex_digit(buf_[hash + 1]);
        int lo = hex_digit(buf_[hash + 2]);
        f.checksum_ok = hi >= 0 && lo >= 0 && checksum(f.payload) == (hi << 4 | lo);
        pos_ = hash + 3;
        if (pos_ == buf_.size()) {
            clear();
        } else if (pos_ > 4096) {
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        return f;
    }
    // Keep only the unfinished frame, so noise cannot grow the buffer.
    buf_.erase(0, pos_);
    pos_ = 0;
    return std::nullopt;
}

bool FrameScanner::in_frame() const {
    return pos_ < buf_.size() && (buf_[pos_] == '$' || buf_[pos_] == '%');
}

}  // namespace nitro::gdb
