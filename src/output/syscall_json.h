// SPDX-License-Identifier: MIT
// Decoded system calls as JSON: the original Nitro's keys (event, name, full_name, process)
// and nitro's additions (process.tid/ppid, args, ret, errno).
#pragma once

#include <cstddef>
#include <string>

#include "nitro/event.h"
#include "nitro/syscall.h"
#include "output/event_json.h"

namespace nitro::output {

/// The most write_syscall_record() writes for sc (without json::kSlack scratch bytes).
std::size_t syscall_record_bound(const Syscall& sc);
/// Writes the record into a buffer of at least syscall_record_bound(sc) + json::kSlack bytes;
/// returns the end of what it wrote.
char* write_syscall_record(char* p, const Event& ev, const Syscall& sc, RegisterOutput regs);
/// Appends one record for a decoded call to out (no newline): `nitro trace --format jsonl`.
/// The event object lists no registers besides cr3 and rax unless regs says so
/// (`--registers`).
void append_syscall_record(std::string& out, const Event& ev, const Syscall& sc,
                           RegisterOutput regs = RegisterOutput::None);

}  // namespace nitro::output
