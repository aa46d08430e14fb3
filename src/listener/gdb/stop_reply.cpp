// SPDX-License-Identifier: MIT
#include "listener/gdb/stop_reply.h"

#include <algorithm>

#include "listener/gdb/rsp_codec.h"
#include "listener/gdb/target_description.h"
#include "nitro/error.h"

namespace nitro::gdb {

namespace {

constexpr std::size_t kMaxPairs = 1024;

// A thread or process number: hex, or -1 for "all".
std::optional<std::int64_t> parse_id(std::string_view s) {
    if (s == "-1") return -1;
    if (s.size() > 15) return std::nullopt;  // stays positive as int64
    auto v = parse_hex(s);
    if (!v) return std::nullopt;
    return static_cast<std::int64_t>(*v);
}

std::string id_to_string(std::int64_t id) { return id < 0 ? "-1" : fmt::format("{:x}", id); }

bool all_hex(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return hex_digit(c) >= 0; });
}

int parse_code(std::string_view payload) {
    if (payload.size() < 3) fail("gdb: malformed stop reply '{}'", describe(payload));
    auto v = parse_hex(payload.substr(1, 2));
    if (!v) fail("gdb: malformed stop reply '{}'", describe(payload));
    return static_cast<int>(*v);
}

}  // namespace

ThreadId ThreadId::parse(std::string_view text) {
    ThreadId t;
    std::string_view rest = text;
    if (rest.starts_with('p')) {
        rest.remove_prefix(1);
        auto dot = rest.find('.');
        auto pid = parse_id(rest.substr(0, dot));
        if (!pid) fail("gdb: malformed thread id '{}'", describe(text));
        t.pid = *pid;
        // "p<pid>" alone means all threads of the process.
        if (dot == std::string_view::npos) {
            t.tid = -1;
            return t;
        }
        rest = rest.substr(dot + 1);
    }
    auto tid = parse_id(rest);
    if (!tid) fail("gdb: malformed thread id '{}'", describe(text));
    t.tid = *tid;
    return t;
}

std::string ThreadId::to_string() const {
    if (pid) return fmt::format("p{}.{}", id_to_string(*pid), id_to_string(tid));
    return id_to_string(tid);
}

std::optional<std::uint64_t> StopReply::register_value(int regnum) const {
    for (const auto& [n, bytes] : registers)
        if (n == regnum) {
            if (bytes.size() > 8) return std::nullopt;
            return le_to_u64(bytes);
        }
    return std::nullopt;
}

bool looks_like_stop_reply(std::string_view p) {
    if (p.empty()) return false;
    switch (p[0]) {
        case 'S':
        case 'T':
        case 'W':
        case 'X':
            return p.size() >= 3 && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0;
        case 'N':
            return p.size() == 1;
        default:
            return false;
    }
}

StopReply StopReply::parse(std::string_view payload) {
    StopReply r;
    if (payload == "N") {
        r.kind = Kind::NoResumed;
        return r;
    }
    if (payload.empty()) fail("gdb: empty stop reply");
    char type = payload[0];
    switch (type) {
        case 'S':
        case 'T':
            r.kind = Kind::Signal;
            break;
        case 'W':
            r.kind = Kind::Exited;
            break;
        case 'X':
            r.kind = Kind::Terminated;
            break;
        default:
            fail("gdb: not a stop reply: '{}'", describe(payload));
    }
    r.code = parse_code(payload);
    std::string_view rest = payload.substr(3);
    if (type == 'S') {
        if (!rest.empty()) fail("gdb: malformed stop reply '{}'", describe(payload));
        return r;
    }
    if (type == 'W' || type == 'X') {
        if (rest.empty()) return r;
        if (!rest.starts_with(";process:"))
            fail("gdb: malformed exit reply '{}'", describe(payload));
        auto pid = parse_id(rest.substr(9));
        if (!pid) fail("gdb: malformed exit reply '{}'", describe(payload));
        r.process = *pid;
        return r;
    }
    // 'T': n1:r1;n2:r2;... with a ';' after every pair (the last one may lack it).
    std::size_t pairs = 0;
    while (!rest.empty()) {
        auto semi = rest.find(';');
        std::string_view pair = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        if (pair.empty()) continue;
        if (++pairs > kMaxPairs) fail("gdb: stop reply has more than {} fields", kMaxPairs);
        auto colon = pair.find(':');
        std::string_view key = pair.substr(0, colon);
        std::string_view value =
            colon == std::string_view::npos ? std::string_view() : pair.substr(colon + 1);
        if (key == "thread") {
            r.thread = ThreadId::parse(value);
        } else if (key == "core") {
            auto core = parse_hex(value);
            if (!core || *core > 0x7fffffff)
                fail("gdb: malformed core in stop reply '{}'", describe(pair));
            r.core = static_cast<int>(*core);
        } else if (key == "watch" || key == "rwatch" || key == "awatch") {
            r.reason = key;
            auto addr = parse_hex(value);
            if (!addr) fail("gdb: malformed watchpoint address in stop reply '{}'", describe(pair));
            r.reason_address = *addr;
        } else if (all_hex(key)) {
            // A key made of hex digits only is a register number.
            auto regnum = parse_hex(key);
            auto bytes = hex_decode(value);
            if (!regnum || *regnum > 65535 || !bytes)
                fail("gdb: malformed register in stop reply '{}'", describe(pair));
            r.registers.emplace_back(static_cast<int>(*regnum), std::move(*bytes));
        } else {
            // swbreak, hwbreak, library, fork, exec, ...: a reason, maybe with a value.
            r.reason = key;
        }
    }
    return r;
}

}  // namespace nitro::gdb
