// SPDX-License-Identifier: MIT
// Decoded system calls as JSON: the original Nitro's keys (event, name, full_name, process)
// and nitro's additions (process.tid/ppid, args, ret, errno).
#pragma once

#include <string>

#include "nitro/event.h"
#include "nitro/syscall.h"

namespace nitro::output {

/// Appends one record for a decoded call to out (no newline): `nitro trace --format jsonl`.
void append_syscall_record(std::string& out, const Event& ev, const Syscall& sc);

}  // namespace nitro::output
