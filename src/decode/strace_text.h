// SPDX-License-Identifier: MIT
// strace -f style text: one line per completed call, with "<unfinished ...>" and
// "<... name resumed>" when other events come between a call's entry and its exit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "nitro/event.h"
#include "nitro/syscall.h"
#include "nitro/syscall_table.h"

namespace nitro::decode {

/// "[pid 231] cat " (the thread id, as strace -f shows it), "[pid ?] ? " when unreadable.
/// Control characters in the name are replaced, so a guest cannot forge lines.
std::string format_who(const Process& p);
/// "openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY" (no closing parenthesis).
std::string format_call_open(const Syscall& sc);
/// The entry half of an unfinished call: "read(3, " (up to the arguments the exit fills in).
std::string format_call_head(const Syscall& sc);
/// The rest, printed after "<... read resumed>": "\"data\", 4096" (may be empty).
std::string format_call_tail(const Syscall& sc);

class StraceText {
  public:
    /// Feeds one decoded event; appends the lines it completes (each ending in '\n') to out.
    void feed(const Event& ev, const Syscall& sc, std::string& out);
    /// Prints a held entry as unfinished (at the end of the trace).
    void flush(std::string& out);

  private:
    struct Held {
        std::pair<unsigned, std::uint64_t> key;
        std::string who;   // "[pid N] comm "
        std::string line;  // who + call up to the arguments' end
    };
    // At most one entry waits for its exit: the last event seen. Anything else in between
    // makes it "unfinished", as strace -f prints it.
    std::optional<Held> held_;
};

}  // namespace nitro::decode
