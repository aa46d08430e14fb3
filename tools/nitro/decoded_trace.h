// SPDX-License-Identifier: MIT
// nitro trace with the Linux backend: decoded system calls with their processes.
#pragma once

#include "commands.h"

namespace nitro::cli {

/// Boots the guest, traces it and writes decoded calls (text, jsonl or json); the exit code
/// of `nitro trace`.
int decoded_trace(const TraceOptions& opts);

}  // namespace nitro::cli
