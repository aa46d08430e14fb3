// SPDX-License-Identifier: MIT
/// @file
/// The system-call ABIs of an x86-64 guest.
#pragma once

#include <cstdint>

namespace nitro {

/// Which syscall-number space a call belongs to.
enum class Abi : std::uint8_t {
    X86_64 = 0,  ///< 64-bit programs (`syscall`), numbers of syscall_64.tbl
    I386 = 1,    ///< 32-bit programs on a 64-bit kernel (IA32 emulation), syscall_32.tbl
};

}  // namespace nitro
