// SPDX-License-Identifier: MIT
// Kernel profiles users already have: a Volatility 3 symbol table (ISF JSON, as dwarf2json
// writes it, plain or .xz-compressed), a small file of explicit offsets, or a profile nitro
// itself wrote (its cache format). See docs/kernel-profile.md for the formats.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "os/linux/btf_profile.h"

namespace nitro::linux_os {

// Largest profile file accepted (after xz decompression); full kernel ISF files are ~ 100 MiB.
inline constexpr size_t kMaxProfileFileSize = size_t{1} << 30;

// From a Volatility 3 ISF: user_types (task_struct, mm_struct, list_head, ...), base_types
// (sizes), symbols (current_task or pcpu_hot, init_task, linux_banner's constant_data).
// Throws nitro::Error naming what is missing.
KernelProfile profile_from_isf(const nlohmann::json& isf);

// From nitro's explicit offsets format ({"nitro_offsets": 1, "current_task": "0x...",
// "task_struct": {"pid": 1234, ...}, ...}). Members not given are marked missing; the ones
// process tracing needs are required.
KernelProfile profile_from_offsets(const nlohmann::json& offsets);

// Reads a profile file of any of the three formats (xz-compressed or not), validates it and
// returns it. Throws nitro::Error "PATH: what is wrong".
KernelProfile load_profile_file(const std::string& path);

}  // namespace nitro::linux_os
