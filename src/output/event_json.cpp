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

namespace {

// The registers an event object may list, in their output order (after cr3 and rax).
struct RegField {
    std::string_view prefix;  // , "name": "
    Reg reg;
};
constexpr RegField kRegFields[] = {
    {R"(, "rbx": ")", Reg::rbx},       {R"(, "rcx": ")", Reg::rcx},
    {R"(, "rdx": ")", Reg::rdx},       {R"(, "rsi": ")", Reg::rsi},
    {R"(, "rdi": ")", Reg::rdi},       {R"(, "rbp": ")", Reg::rbp},
    {R"(, "rsp": ")", Reg::rsp},       {R"(, "r8": ")", Reg::r8},
    {R"(, "r9": ")", Reg::r9},         {R"(, "r10": ")", Reg::r10},
    {R"(, "r11": ")", Reg::r11},       {R"(, "r12": ")", Reg::r12},
    {R"(, "r13": ")", Reg::r13},       {R"(, "r14": ")", Reg::r14},
    {R"(, "r15": ")", Reg::r15},       {R"(, "rip": ")", Reg::rip},
    {R"(, "rflags": ")", Reg::rflags}, {R"(, "cr0": ")", Reg::cr0},
    {R"(, "cr4": ")", Reg::cr4},       {R"(, "efer": ")", Reg::efer},
    {R"(, "fs_base": ")", Reg::fs_base}, {R"(, "gs_base": ")", Reg::gs_base},
    {R"(, "kernel_gs_base": ")", Reg::kernel_gs_base},
    {R"(, "cs": ")", Reg::cs},         {R"(, "ss": ")", Reg::ss},
};

std::uint64_t reg_value(const Event& ev, Reg reg) {
    const Registers& r = ev.regs;
    const SpecialRegisters& s = ev.sregs;
    switch (reg) {
        case Reg::rax: return r.rax;
        case Reg::rbx: return r.rbx;
        case Reg::rcx: return r.rcx;
        case Reg::rdx: return r.rdx;
        case Reg::rsi: return r.rsi;
        case Reg::rdi: return r.rdi;
        case Reg::rbp: return r.rbp;
        case Reg::rsp: return r.rsp;
        case Reg::r8: return r.r8;
        case Reg::r9: return r.r9;
        case Reg::r10: return r.r10;
        case Reg::r11: return r.r11;
        case Reg::r12: return r.r12;
        case Reg::r13: return r.r13;
        case Reg::r14: return r.r14;
        case Reg::r15: return r.r15;
        case Reg::rip: return r.rip;
        case Reg::rflags: return r.rflags;
        case Reg::cs: return s.cs;
        case Reg::ss: return s.ss;
        case Reg::fs_base: return s.fs_base;
        case Reg::gs_base: return s.gs_base;
        case Reg::kernel_gs_base: return s.kernel_gs_base;
        case Reg::cr0: return s.cr0;
        case Reg::cr3: return s.cr3;
        case Reg::cr4: return s.cr4;
        case Reg::efer: return s.efer;
    }
    return 0;
}

}  // namespace

char* write_event_object(char* p, const Event& ev, RegisterOutput regs) {
    using json::put_dec;
    using json::put_lit;
    using json::put_raw;
    thread_local std::array<HexMemo, std::size(kRegFields) + 2> memo;
    p = put_lit(p, R"({"vcpu": )");
    p = put_dec(p, ev.vcpu);
    p = put_lit(p, R"(, "type": ")");
    p = put_raw(p, to_string(ev.type));
    p = put_lit(p, R"(", "direction": ")");
    p = put_raw(p, to_string(ev.direction));
    p = put_lit(p, R"(", "cr3": ")");
    p = put_hex_memo(p, ev.sregs.cr3, memo[0]);
    p = put_lit(p, R"(", "rax": ")");
    p = put_hex_memo(p, ev.regs.rax, memo[1]);
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
        if (ev.redirected) p = put_lit(p, R"(, "redirected": true)");
    }
    if (regs == RegisterOutput::Fresh) {
        for (std::size_t i = 0; i < std::size(kRegFields); ++i) {
            const RegField& f = kRegFields[i];
            if (!(ev.fresh & reg_bit(f.reg))) continue;
            p = put_raw(p, f.prefix);
            p = put_hex_memo(p, reg_value(ev, f.reg), memo[i + 2]);
            *p++ = '"';
        }
    }
    *p++ = '}';
    return p;
}

void append_event_object(std::string& out, const Event& ev, RegisterOutput regs) {
    char buf[kEventObjectBound + json::kSlack];
    out.append(buf, write_event_object(buf, ev, regs));
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
            static constexpr const char* kind[] = {"?",       "cstring",     "buf_fixed",
                                                   "buf_len_arg", "buf_ret", "str_array",
                                                   "buf_len_ptr", "iovec_data", "msghdr",
                                                   "mmsghdr",     "deref",   "stack"};
            const auto k = static_cast<std::size_t>(c.kind);
            fmt::format_to(std::back_inserter(out),
                           R"({{"arg": {}, "kind": "{}", "status": "{}", )", c.arg,
                           kind[k < std::size(kind) ? k : 0], status[static_cast<int>(c.status) & 3]);
            if (c.kind == CaptureKind::Deref) fmt::format_to(std::back_inserter(out), R"("field": {}, )", c.field);
            out += R"("data": )";
            append_json_string(out, c.data);
            out += "}";
        }
        out += "]";
    }
    out += "}";
}

}  // namespace nitro::output
