// SPDX-License-Identifier: MIT
// Events as JSON, with the original Nitro's keys and nesting
// (event.{vcpu,type,direction,cr3,rax,time}) and nitro's additions alongside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nitro/event.h"

namespace nitro::output {

/// Which registers an event object lists besides the original's cr3 and rax.
enum class RegisterOutput {
    None,   ///< none (decoded records: the call's meaning is in name, args and ret)
    Fresh,  ///< those read at this event (Event::fresh); values carried over are left out
};

/// Appends {"vcpu":..,"type":..,...} (the value of the "event" key) to out.
void append_event_object(std::string& out, const Event& ev,
                         RegisterOutput regs = RegisterOutput::Fresh);
/// Appends {"event": {...}} — one raw event record, with its fresh registers — to out (no
/// newline).
void append_raw_event(std::string& out, const Event& ev);
/// ISO 8601 UTC with microseconds, like Python's datetime.isoformat().
void append_iso_time(std::string& out, uint64_t unix_ns);
/// Upper bounds of what write_event_object() and write_iso_time() write (without the scratch
/// bytes of json::kSlack): every value is a number or a short name.
inline constexpr std::size_t kEventObjectBound = 1536;
inline constexpr std::size_t kIsoTimeBound = 40;
/// append_event_object() and append_iso_time() into a buffer of at least the bound plus
/// json::kSlack bytes; return the end of what they wrote.
char* write_event_object(char* p, const Event& ev, RegisterOutput regs);
char* write_iso_time(char* p, uint64_t unix_ns);
/// Appends s as a JSON string (quotes, escapes; invalid UTF-8 bytes as \u00XX).
void append_json_string(std::string& out, std::string_view s);

}  // namespace nitro::output
