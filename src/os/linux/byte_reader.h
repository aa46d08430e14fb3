// SPDX-License-Identifier: MIT
// Bounds-checked little-endian loads from untrusted byte buffers.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

namespace nitro::linux_os {

// Kernel images nitro reads are x86-64 (little-endian) and so is every host it runs on.
static_assert(std::endian::native == std::endian::little);

// True when [off, off+len) lies inside a buffer of `size` bytes, without overflowing.
constexpr bool in_bounds(uint64_t size, uint64_t off, uint64_t len) {
    return off <= size && len <= size - off;
}

template <typename T>
std::optional<T> load_le(std::span<const uint8_t> b, uint64_t off) {
    static_assert(std::is_integral_v<T>);
    if (!in_bounds(b.size(), off, sizeof(T))) return std::nullopt;
    T v;
    std::memcpy(&v, b.data() + off, sizeof(T));
    return v;
}

// Unchecked variant for loops that validated the whole range up front.
template <typename T>
T load_le_unchecked(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// NUL-terminated string starting at off, at most max_len bytes long; nullopt if no NUL is
// found in bounds.
inline std::optional<std::string_view> load_cstring(std::span<const uint8_t> b, uint64_t off,
                                                    size_t max_len) {
    if (off >= b.size()) return std::nullopt;
    size_t avail = b.size() - off;
    size_t limit = avail < max_len + 1 ? avail : max_len + 1;
    const void* nul = std::memchr(b.data() + off, 0, limit);
    if (!nul) return std::nullopt;
    auto len = static_cast<size_t>(static_cast<const uint8_t*>(nul) - (b.data() + off));
    return std::string_view(reinterpret_cast<const char*>(b.data() + off), len);
}

}  // namespace nitro::linux_os
