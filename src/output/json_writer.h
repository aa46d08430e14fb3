// SPDX-License-Identifier: MIT
// The primitives of nitro's JSON records, written through a raw pointer into a buffer the caller
// has sized with the *_bound() functions: one record is made per event (millions per second),
// and appends to a std::string check its capacity and call memcpy for every piece.
//
// Every put_*() returns the position after what it wrote and may write scratch bytes up to
// kSlack bytes beyond it (whole-word stores): buffers get kSlack bytes more than the bound.
#pragma once

#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nitro::output::json {

/// Bytes a put_*() may store beyond the end of what it wrote.
inline constexpr std::size_t kSlack = 16;

/// Worst case of put_string(s): every byte as \u00XX, plus the quotes.
constexpr std::size_t string_bound(std::size_t len) { return 6 * len + 2; }
/// Worst case of put_dec() and put_hex().
inline constexpr std::size_t kNumberBound = 20;

/// A key or other literal of known length (a fixed-size copy the compiler inlines).
template <std::size_t N>
inline char* put_lit(char* p, const char (&s)[N]) {
    std::memcpy(p, s, N - 1);
    return p + N - 1;
}

inline char* put_raw(char* p, std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}

template <typename Int>
inline char* put_dec(char* p, Int v) {
    return std::to_chars(p, p + kNumberBound + 4, v).ptr;
}

namespace detail {
// The 8 hex digits of x, the most significant first in memory: each nibble spread to a byte,
// then turned into its ASCII digit.
inline std::uint64_t hex8(std::uint32_t x) {
    std::uint64_t n = x;  // nibble k (from the least significant) to byte k
    n = (n | (n << 16)) & 0x0000FFFF0000FFFFULL;
    n = (n | (n << 8)) & 0x00FF00FF00FF00FFULL;
    n = (n | (n << 4)) & 0x0F0F0F0F0F0F0F0FULL;
    // 0..9 to '0'..'9', 10..15 to 'a'..'f' (a byte > 9 carries into its bit 4 with +6).
    const std::uint64_t letters = ((n + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
    n += 0x3030303030303030ULL + letters * ('a' - '0' - 10);
    return __builtin_bswap64(n);
}
}  // namespace detail

/// The hex digits of v without leading zeros, as put_hex() stores them after "0x": the first
/// digit in the lowest byte, zeros after the last one.
struct HexDigits {
    unsigned __int128 text;
    unsigned count;
};

inline HexDigits hex_digits(std::uint64_t v) {
    const unsigned count = v ? (static_cast<unsigned>(std::bit_width(v)) + 3) / 4 : 1;
#if defined(__SSE2__)
    // The bytes most significant first, each split into its two nibbles, each nibble to its
    // ASCII digit ('0' + n, plus 39 more for 'a'..'f').
    const __m128i bytes = _mm_cvtsi64_si128(static_cast<long long>(__builtin_bswap64(v)));
    const __m128i low4 = _mm_set1_epi8(0x0f);
    const __m128i nibbles = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4),
                                              _mm_and_si128(bytes, low4));
    const __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)),
                                          _mm_set1_epi8('a' - '0' - 10));
    const __m128i ascii = _mm_add_epi8(nibbles, _mm_add_epi8(letters, _mm_set1_epi8('0')));
    const auto lo = static_cast<std::uint64_t>(_mm_cvtsi128_si64(ascii));
    const auto hi = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(ascii, ascii)));
#else
    std::uint64_t lo = detail::hex8(static_cast<std::uint32_t>(v >> 32));
    std::uint64_t hi = detail::hex8(static_cast<std::uint32_t>(v));
#endif
    // The leading zeros are shifted out in registers: a store and an unaligned reload would
    // stall store forwarding.
    return {(static_cast<unsigned __int128>(hi) << 64 | lo) >> (8 * (16 - count)), count};
}

/// Stores "0x" and the digits (16 bytes, zeros after the digits: within kSlack).
inline char* put_hex(char* p, const HexDigits& d) {
    p[0] = '0';
    p[1] = 'x';
    std::memcpy(p + 2, &d.text, 16);
    return p + 2 + d.count;
}

/// fmt's "{:#x}": 0x and the hex digits without leading zeros ("0x0" for 0).
inline char* put_hex(char* p, std::uint64_t v) { return put_hex(p, hex_digits(v)); }

namespace detail {
// The bytes of w that need escaping in a JSON string (below 0x20, 0x7f and above, '"', '\\'),
// each flagged by its top bit. The lowest flag is exact; flags above it may be spurious (borrows).
inline std::uint64_t escape_mask(std::uint64_t w) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    auto zero_bytes = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    return ((w - 0x20 * kOnes) & ~w & kHigh) | (w & kHigh) | zero_bytes(w ^ (0x7f * kOnes)) |
           zero_bytes(w ^ ('"' * kOnes)) | zero_bytes(w ^ ('\\' * kOnes));
}

// The bytes a JSON string holds as they are.
inline constexpr auto kPlain = [] {
    std::array<bool, 256> t{};
    for (unsigned c = 0x20; c < 0x7f; ++c) t[c] = c != '"' && c != '\\';
    return t;
}();

inline char* put_escaped(char* p, unsigned char c) {
    *p++ = '\\';
    switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default: {
            static constexpr char kHex[] = "0123456789abcdef";
            p[0] = 'u';
            p[1] = '0';
            p[2] = '0';
            p[3] = kHex[c >> 4];
            p[4] = kHex[c & 15];
            p += 5;
        }
    }
    return p;
}
}  // namespace detail

/// s as a JSON string: quotes; \" \\ \n \r \t; other bytes below 0x20 and from 0x7f as \u00XX,
/// so that any guest bytes give valid ASCII JSON. Eight bytes at a time: each word is stored
/// whole, and only the bytes before the first one that needs escaping are kept.
inline char* put_string(char* p, std::string_view s) {
    *p++ = '"';
    const char* in = s.data();
    const char* end = in + s.size();
    while (end - in >= 8) {
        std::uint64_t w;
        std::memcpy(&w, in, 8);
        std::memcpy(p, &w, 8);
        const std::uint64_t m = detail::escape_mask(w);
        if (m == 0) {
            p += 8;
            in += 8;
            continue;
        }
        const auto k = static_cast<std::size_t>(std::countr_zero(m) >> 3);
        p = detail::put_escaped(p + k, static_cast<unsigned char>(in[k]));
        in += k + 1;
    }
    for (; in < end; ++in) {
        const auto c = static_cast<unsigned char>(*in);
        *p = static_cast<char>(c);  // kept when the byte is plain
        if (detail::kPlain[c]) {
            ++p;
        } else {
            p = detail::put_escaped(p, c);
        }
    }
    *p++ = '"';
    return p;
}

}  // namespace nitro::output::json
