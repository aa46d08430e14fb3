// SPDX-License-Identifier: MIT
// The shapes of the generated tables (syscall_table_gen.cpp, written by gen_tables.py) and
// the lookups over them. Internal to nitro_syscalls.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "nitro/syscall_table.h"

namespace nitro::detail {

struct XlatEntry {
    std::uint64_t value;  // enum values are stored two's complement (AT_FDCWD = -100)
    std::string_view name;
};

// Values LO..HI of an enum printed as NAME and NAME+n (SIGRTMIN+n).
struct XlatRange {
    std::string_view name;
    std::int64_t lo;
    std::int64_t hi;
};

enum class XlatRest : std::uint8_t { Hex, Octal };

struct XlatTableData {
    std::string_view name;
    XlatKind kind;
    // Flags: in printing order (multi-bit names first). Enum: sorted by value.
    std::span<const XlatEntry> entries;
    // Bits holding a number rather than flags (O_ACCMODE, MAP_TYPE, CSIGNAL); 0 if none.
    std::uint64_t field_mask;
    std::span<const XlatEntry> field_entries;  // sorted by value
    const XlatRange* field_range;              // range of the field's enum table, if any
    bool field_last;                           // print the field after the flags (clone)
    const XlatRange* range;
    XlatRest rest;
};

struct NameIndex {
    std::string_view name;
    std::uint32_t nr;
};

struct AbiTableData {
    std::string_view name;
    std::span<const SyscallInfo> syscalls;  // sorted by number
    std::span<const std::uint16_t> index;   // number -> position in syscalls, 0xffff if none
    std::span<const NameIndex> by_name;     // sorted by name
};

inline constexpr std::uint16_t kNoSyscall = 0xffff;

extern const XlatTableData kXlatTables[kFlagTableCount];
extern const AbiTableData kAbiTables[kAbiCount];

}  // namespace nitro::detail
