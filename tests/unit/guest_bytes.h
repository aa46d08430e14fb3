// SPDX-License-Identifier: MIT
// Guest memory contents for unit tests: little-endian integers and x86-64 kernel structures
// as a guest program lays them out.
#pragma once

#include <cstdint>
#include <string>

namespace nitro::test_bytes {

inline std::string le64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
    return s;
}
inline std::string le32(std::uint32_t v) { return le64(v).substr(0, 4); }

// struct msghdr (x86-64): name, namelen, iov, iovlen, control, controllen, flags.
inline std::string msghdr64(std::uint64_t name, std::uint32_t namelen, std::uint64_t iov,
                            std::uint64_t iovlen, std::uint64_t control, std::uint64_t controllen,
                            std::uint32_t flags) {
    return le64(name) + le32(namelen) + le32(0) + le64(iov) + le64(iovlen) + le64(control) +
           le64(controllen) + le32(flags) + le32(0);
}

}  // namespace nitro::test_bytes
