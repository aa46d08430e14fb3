// SPDX-License-Identifier: MIT
#include "output/event_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <iterator>

namespace nitro::output {

namespace {

// Records are made for every event: numbers are formatted by hand (std::to_chars), because
// fmt's format_to into a std::string resizes and zero-fills the string at every call. The
// output is the same as fmt's "{}" and "{:#x}".
void put_2(char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10 % 10);
    p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

void append_iso_time(std::string& out, uint64_t unix_ns) {
    // Events come many per second: the date and time of the last second are kept.
    thread_local time_t cached_secs = -1;
    thread_local char cached[32];
    thread_local std::size_t cached_len = 0;
    time_t secs = static_cast<time_t>(unix_ns / 1000000000ULL);
    if (secs != cached_secs) {
        std::tm tm{};
        gmtime_r(&secs, &tm);
        auto r = fmt::format_to_n(cached, sizeof cached, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                  tm.tm_min, tm.tm_sec);
        cached_len = std::min(r.size, sizeof cached);
        cached_secs = secs;
    }
    out.append(cached, cached_len);
    const auto us = static_cast<unsigned>((unix_ns % 1000000000ULL) / 1000);
    char frac[7] = {'.'};
    put_2(frac + 1, us / 10000);
    put_2(frac + 3, us / 100 % 100);
    put_2(frac + 5, us % 100);
    out.append(frac, sizeof frac);
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    std::size_t run = 0;  // start of the pending run of bytes copied as they are
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: {
                // Guest bytes are arbitrary: keep JSON valid ASCII.
                static constexpr char kHex[] = "0123456789abcdef";
                const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
                out.append(esc, sizeof esc);
            }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
}

void append_event_object(std::string& out, const Event& ev) {
    // Written into a stack buffer first: fixed-size copies of the keys inline, where appends
    // to the string would call memcpy for each piece. The object is bounded (every value is a
    // number or a short name), well below the buffer's size.
    char buf[1536];
    char* p = buf;
    auto lit = [&p]<std::size_t N>(const char(&s)[N]) {
        std::memcpy(p, s, N - 1);
        p += N - 1;
    };
    auto str = [&p](std::string_view s) {
        std::memcpy(p, s.data(), s.size());
        p += s.size();
    };
    auto dec = [&p](auto v) { p = std::to_chars(p, p + 24, v).ptr; };
    auto hex = [&p](std::uint64_t v) {
        p[0] = '0';
        p[1] = 'x';
        p = std::to_chars(p + 2, p + 20, v, 16).ptr;
    };
    const Registers& r = ev.regs;
    const SpecialRegisters& s = ev.sregs;
    lit(R"({"vcpu": )");
    dec(ev.vcpu);
    lit(R"(, "type": ")");
    str(to_string(ev.type));
    lit(R"(", "direction": ")");
    str(to_string(ev.direction));
    lit(R"(", "cr3": ")");
    hex(s.cr3);
    lit(R"(", "rax": ")");
    hex(r.rax);
    lit(R"(", "time": ")");
    out.append(buf, p);
    append_iso_time(out, ev.host_time_ns);
    p = buf;
    lit(R"(", "guest_ns": )");
    dec(ev.guest_time_ns);
    lit(R"(, "seq": )");
    dec(ev.seq);
    if (ev.compat) {
        lit(R"(, "abi": "i386", "nr": )");
    } else {
        lit(R"(, "abi": "x86_64", "nr": )");
    }
    dec(static_cast<int64_t>(ev.nr));
    if (ev.direction == Direction::Exit) {
        lit(R"(, "entry_vcpu": )");
        dec(ev.entry_vcpu);
        lit(R"(, "entry_seq": )");
        dec(ev.entry_seq);
        lit(R"(, "exit": ")");
        str(to_string(ev.exit_insn));
        lit("\"");
        if (ev.unpaired) lit(R"(, "unpaired": true)");
        if (ev.fallback) lit(R"(, "paired_by_vcpu": true)");
    }
#define NITRO_HEX_FIELD(key, value) \
    lit(", \"" key "\": \"");        \
    hex(value);                     \
    lit("\"")
    NITRO_HEX_FIELD("rbx", r.rbx);
    NITRO_HEX_FIELD("rcx", r.rcx);
    NITRO_HEX_FIELD("rdx", r.rdx);
    NITRO_HEX_FIELD("rsi", r.rsi);
    NITRO_HEX_FIELD("rdi", r.rdi);
    NITRO_HEX_FIELD("rbp", r.rbp);
    NITRO_HEX_FIELD("rsp", r.rsp);
    NITRO_HEX_FIELD("r8", r.r8);
    NITRO_HEX_FIELD("r9", r.r9);
    NITRO_HEX_FIELD("r10", r.r10);
    NITRO_HEX_FIELD("r11", r.r11);
    NITRO_HEX_FIELD("r12", r.r12);
    NITRO_HEX_FIELD("r13", r.r13);
    NITRO_HEX_FIELD("r14", r.r14);
    NITRO_HEX_FIELD("r15", r.r15);
    NITRO_HEX_FIELD("rip", r.rip);
    NITRO_HEX_FIELD("rflags", r.rflags);
    NITRO_HEX_FIELD("cr0", s.cr0);
    NITRO_HEX_FIELD("cr4", s.cr4);
    NITRO_HEX_FIELD("efer", s.efer);
    NITRO_HEX_FIELD("fs_base", s.fs_base);
    NITRO_HEX_FIELD("gs_base", s.gs_base);
    NITRO_HEX_FIELD("kernel_gs_base", s.kernel_gs_base);
    NITRO_HEX_FIELD("cs", s.cs);
    NITRO_HEX_FIELD("ss", s.ss);
#undef NITRO_HEX_FIELD
    lit("}");
    out.append(buf, p);
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
