// SPDX-License-Identifier: MIT
#include "decode/strace_text.h"

#include <fmt/format.h>

#include "decode/decode.h"

namespace nitro::decode {

std::string format_who(const Process& p) {
    if (!p.valid) return "[pid ?] ? ";
    std::string name;
    for (unsigned char c : p.name) name += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    return fmt::format("[pid {}] {} ", p.tid, name);
}

namespace {

// The call's table entry, when the Syscall was decoded from one.
const SyscallInfo* info_of(const Syscall& sc) {
    if (!sc.known) return nullptr;
    const SyscallInfo* info = lookup_syscall(sc.abi, sc.nr);
    return info && info->name == sc.name ? info : nullptr;
}

// Arguments [from, to) of sc in strace's order, ", "-separated; empty texts are not printed.
std::string join_args(const Syscall& sc, std::size_t from, std::size_t to) {
    const SyscallInfo* info = info_of(sc);
    std::vector<std::size_t> order;
    if (info) {
        order = text_order(*info, sc.args.size());
    } else {
        for (std::size_t i = 0; i < sc.args.size(); ++i) order.push_back(i);
    }
    std::string out;
    bool first = true;
    for (std::size_t i : order) {
        if (i < from || i >= to || i >= sc.args.size() || sc.args[i].text.empty()) continue;
        if (!first) out += ", ";
        first = false;
        out += sc.args[i].text;
    }
    return out;
}

// Where the entry half of an unfinished call ends: before the first argument the exit fills in.
std::size_t split_point(const Syscall& sc) {
    const SyscallInfo* info = info_of(sc);
    if (!info) return sc.args.size();
    std::array<std::uint64_t, 6> values{};
    for (std::size_t i = 0; i < values.size() && i < sc.args.size(); ++i) values[i] = sc.args[i].value;
    return std::min(first_exit_arg(*info, values), sc.args.size());
}

}  // namespace

std::string format_call_open(const Syscall& sc) {
    return sc.name + "(" + join_args(sc, 0, sc.args.size());
}

std::string format_call_head(const Syscall& sc) {
    const std::size_t k = split_point(sc);
    std::string head = join_args(sc, 0, k);
    // "read(3, " as strace prints it: the separator before the arguments still to come.
    if (k < sc.args.size() && !head.empty()) head += ", ";
    return sc.name + "(" + head;
}

std::string format_call_tail(const Syscall& sc) {
    return join_args(sc, split_point(sc), sc.args.size());
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
        if (!sc.returns) {
            // exit, exit_group: there will be no exit event to wait for.
            out += who + format_call_open(sc) + ") = ?\n";
            return;
        }
        // Held as strace prints an unfinished call: up to the arguments the exit fills in.
        std::string line = who + format_call_head(sc);
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
    // The resumed half carries the arguments decoded at the exit, as strace's does.
    out += format_who(sc.process) + "<... " + sc.name + " resumed>" + format_call_tail(sc) +
           ") = " + sc.ret_text + "\n";
}

}  // namespace nitro::decode
