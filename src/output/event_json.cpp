// SPDX-License-Identifier: MIT
#include "output/event_json.h"

#include <fmt/format.h>

#include <ctime>
#include <iterator>

namespace nitro::output {

void append_iso_time(std::string& out, uint64_t unix_ns) {
    time_t secs = static_cast<time_t>(unix_ns / 1000000000ULL);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (unix_ns % 1000000000ULL) / 1000);
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                // Guest bytes are arbitrary: keep JSON valid ASCII.
                if (c < 0x20 || c >= 0x7f) {
                    fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

void append_event_object(std::string& out, const Event& ev) {
    auto it = std::back_inserter(out);
    fmt::format_to(it, R"({{"vcpu": {}, "type": "{}", "direction": "{}", "cr3": "{:#x}", "rax": "{:#x}", "time": ")",
                   ev.vcpu, to_string(ev.type), to_string(ev.direction), ev.sregs.cr3, ev.regs.rax);
    append_iso_time(out, ev.host_time_ns);
    const Registers& r = ev.regs;
    const SpecialRegisters& s = ev.sregs;
    fmt::format_to(it, R"(", "seq": {}, "abi": "{}", "nr": {})", ev.seq,
                   ev.compat ? "i386" : "x86_64", static_cast<int64_t>(ev.nr));
    if (ev.direction == Direction::Exit) {
        fmt::format_to(it, R"(, "entry_vcpu": {}, "entry_seq": {}, "exit": "{}")", ev.entry_vcpu,
                       ev.entry_seq, to_string(ev.exit_insn));
        if (ev.unpaired) out += R"(, "unpaired": true)";
        if (ev.fallback) out += R"(, "paired_by_vcpu": true)";
    }
    fmt::format_to(it,
                   R"(, "rbx": "{:#x}", "rcx": "{:#x}", "rdx": "{:#x}", "rsi": "{:#x}", "rdi": "{:#x}", "rbp": "{:#x}", "rsp": "{:#x}")"
                   R"(, "r8": "{:#x}", "r9": "{:#x}", "r10": "{:#x}", "r11": "{:#x}", "r12": "{:#x}", "r13": "{:#x}", "r14": "{:#x}", "r15": "{:#x}")"
                   R"(, "rip": "{:#x}", "rflags": "{:#x}")",
                   r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12,
                   r.r13, r.r14, r.r15, r.rip, r.rflags);
    fmt::format_to(it,
                   R"(, "cr0": "{:#x}", "cr4": "{:#x}", "efer": "{:#x}", "fs_base": "{:#x}", "gs_base": "{:#x}", "kernel_gs_base": "{:#x}", "cs": "{:#x}", "ss": "{:#x}"}})",
                   s.cr0, s.cr4, s.efer, s.fs_base, s.gs_base, s.kernel_gs_base, s.cs, s.ss);
}

void append_raw_event(std::string& out, const Event& ev) {
    out += R"({"event": )";
    append_event_object(out, ev);
    if (!ev.captures.empty()) {
        out += R"(, "captures": [)";
        bool first = true;
        for (const auto& c : ev.captures) {
            if (!first) out += ", ";
            first = false;
            static constexpr const char* status[] = {"ok", "fault", "truncated", "partial"};
            fmt::format_to(std::back_inserter(out), R"({{"arg": {}, "status": "{}", "data": )",
                           c.arg, status[static_cast<int>(c.status) & 3]);
            append_json_string(out, c.data);
            out += "}";
        }
        out += "]";
    }
    out += "}";
}

}  // namespace nitro::output
