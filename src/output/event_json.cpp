// SPDX-License-Identifier: MIT
#include "output/event_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <iterator>

#include "output/json_writer.h"

namespace nitro::output {

namespace {

void put_2(char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10 % 10);
    p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

char* write_iso_time(char* p, uint64_t unix_ns) {
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
    std::memcpy(p, cached, cached_len);
    p += cached_len;
    const auto us = static_cast<unsigned>((unix_ns % 1000000000ULL) / 1000);
    p[0] = '.';
    put_2(p + 1, us / 10000);
    put_2(p + 3, us / 100 % 100);
    put_2(p + 5, us % 100);
    return p + 7;
}

void append_iso_time(std::string& out, uint64_t unix_ns) {
    char buf[kIsoTimeBound + json::kSlack];
    out.append(buf, write_iso_time(buf, unix_ns));
}

void append_json_string(std::string& out, std::string_view s) {
    // Short strings through a stack buffer; long ones straight into out.
    char buf[512];
    if (json::string_bound(s.size()) + json::kSlack <= sizeof buf) {
        out.append(buf, json::put_string(buf, s));
        return;
    }
    const std::size_t old = out.size();
    out.resize(old + json::string_bound(s.size()) + json::kSlack);
    char* end = json::put_string(out.data() + old, s);
    out.resize(static_cast<std::size_t>(end - out.data()));
}

namespace {

// The last digits of one register field: most registers hold the same value from event to
// event (control registers, selectors, the per-CPU and TLS bases, a process's CR3), and copying
// the digits is cheaper than making them.
struct HexMemo {
    std::uint64_t value = 0;
    json::HexDigits digits{0, 0};  // count 0: nothing kept yet
};

char* put_hex_memo(char* p, std::uint64_t v, HexMemo& m) {
    if (m.digits.count == 0 || m.value != v) {
        m.value = v;
        m.digits = json::hex_digits(v);
    }
    return json::put_hex(p, m.digits);
}

}  // namespace

char* write_event_object(char* p, const Event& ev) {
    using json::put_dec;
    thread_local std::array<HexMemo, 27> memo;
    HexMemo* m = memo.data();
    auto put_hex = [&m](char* q, std::uint64_t v) { return put_hex_memo(q, v, *m++); };
    using json::put_lit;
    using json::put_raw;
    const Registers& r = ev.regs;
    const SpecialRegisters& s = ev.sregs;
    p = put_lit(p, R"({"vcpu": )");
    p = put_dec(p, ev.vcpu);
    p = put_lit(p, R"(, "type": ")");
    p = put_raw(p, to_string(ev.type));
    p = put_lit(p, R"(", "direction": ")");
    p = put_raw(p, to_string(ev.direction));
    p = put_lit(p, R"(", "cr3": ")");
    p = put_hex(p, s.cr3);
    p = put_lit(p, R"(", "rax": ")");
    p = put_hex(p, r.rax);
    p = put_lit(p, R"(", "time": ")");
    p = write_iso_time(p, ev.host_time_ns);
    p = put_lit(p, R"(", "guest_ns": )");
    p = put_dec(p, ev.guest_time_ns);
    p = put_lit(p, R"(, "seq": )");
    p = put_dec(p, ev.seq);
    if (ev.compat) {
        p = put_lit(p, R"(, "abi": "i386", "nr": )");
    } else {
        p = put_lit(p, R"(, "abi": "x86_64", "nr": )");
    }
    p = put_dec(p, static_cast<int64_t>(ev.nr));
    if (ev.direction == Direction::Exit) {
        p = put_lit(p, R"(, "entry_vcpu": )");
        p = put_dec(p, ev.entry_vcpu);
        p = put_lit(p, R"(, "entry_seq": )");
        p = put_dec(p, ev.entry_seq);
        p = put_lit(p, R"(, "exit": ")");
        p = put_raw(p, to_string(ev.exit_insn));
        *p++ = '"';
        if (ev.unpaired) p = put_lit(p, R"(, "unpaired": true)");
        if (ev.fallback) p = put_lit(p, R"(, "paired_by_vcpu": true)");
    }
#define NITRO_HEX_FIELD(key, value)          \
    p = put_lit(p, ", \"" key "\": \""); \
    p = put_hex(p, value);                   \
    *p++ = '"'
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
    *p++ = '}';
    return p;
}

void append_event_object(std::string& out, const Event& ev) {
    char buf[kEventObjectBound + json::kSlack];
    out.append(buf, write_event_object(buf, ev));
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
