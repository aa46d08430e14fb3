// SPDX-License-Identifier: MIT
#include "decode/strace_text.h"

#include <fmt/format.h>

namespace nitro::decode {

std::string format_who(const Process& p) {
    if (!p.valid) return "[pid ?] ? ";
    std::string name;
    for (unsigned char c : p.name) name += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    return fmt::format("[pid {}] {} ", p.tid, name);
}

std::string format_call_open(const Syscall& sc) {
    std::string out = sc.name + "(";
    for (std::size_t i = 0; i < sc.args.size(); ++i) {
        if (i) out += ", ";
        out += sc.args[i].text;
    }
    return out;
}

void StraceText::flush(std::string& out) {
    if (!held_) return;
    out += held_->line + " <unfinished ...>\n";
    held_.reset();
}

void StraceText::feed(const Event& ev, const Syscall& sc, std::string& out) {
    if (ev.direction == Direction::Enter) {
        flush(out);
        std::string who = format_who(sc.process);
        std::string line = who + format_call_open(sc);
        if (!sc.returns) {
            // exit, exit_group: there will be no exit event to wait for.
            out += line + ") = ?\n";
            return;
        }
        held_ = Held{{ev.vcpu, ev.seq}, std::move(who), std::move(line)};
        return;
    }
    const std::pair<unsigned, std::uint64_t> key{ev.entry_vcpu, ev.entry_seq};
    if (held_ && !ev.unpaired && held_->key == key) {
        // The exit's arguments include the buffers the call filled in.
        out += held_->who + format_call_open(sc) + ") = " + sc.ret_text + "\n";
        held_.reset();
        return;
    }
    flush(out);
    out += format_who(sc.process) + "<... " + sc.name + " resumed>) = " + sc.ret_text + "\n";
}

}  // namespace nitro::decode
