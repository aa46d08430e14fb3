// SPDX-License-Identifier: MIT
// The JSON record primitives (src/output/json_writer.h) and what is kept between records (the
// register texts of the event object): same text as fmt and a plain per-byte escaper, for every
// value and every byte at every alignment; nothing stale from the record before.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "output/event_json.h"
#include "output/json_writer.h"
#include "output/syscall_json.h"

namespace nitro::output {
namespace {

std::string hex_of(std::uint64_t v) {
    char buf[40] = {};
    return std::string(buf, json::put_hex(buf, v));
}

// The escaping of docs/cli.md, one byte at a time.
std::string reference_string(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"') {
            out += "\\\"";
        } else if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c >= 0x7f) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string string_of(std::string_view s) {
    std::vector<char> buf(json::string_bound(s.size()) + json::kSlack);
    return std::string(buf.data(), json::put_string(buf.data(), s));
}

TEST(JsonWriter, HexIsFmtsHex) {
    std::vector<std::uint64_t> values = {0, 1, 9, 10, 15, 16, 255, 256, 0xffffffff, 0x100000000,
                                         ~0ULL, 0x8000000000000000ULL, 0x0123456789abcdefULL};
    for (unsigned bit = 0; bit < 64; ++bit) {
        values.push_back(1ULL << bit);
        values.push_back((1ULL << bit) - 1);
    }
    std::mt19937_64 rng(7);
    for (int i = 0; i < 10000; ++i) values.push_back(rng() >> (rng() % 64));
    for (std::uint64_t v : values) ASSERT_EQ(hex_of(v), fmt::format("{:#x}", v)) << v;
}

TEST(JsonWriter, EveryByteAtEveryPositionIsEscapedAsByTheReference) {
    for (unsigned c = 0; c < 256; ++c) {
        for (std::size_t pos = 0; pos < 20; ++pos) {
            std::string s(pos + 1 + (c % 7), 'a');
            s[pos] = static_cast<char>(c);
            ASSERT_EQ(string_of(s), reference_string(s)) << "byte " << c << " at " << pos;
        }
    }
}

TEST(JsonWriter, RandomStringsAreEscapedAsByTheReference) {
    std::mt19937 rng(3);
    for (int i = 0; i < 20000; ++i) {
        std::string s(rng() % 300, '\0');
        // Mostly printable, as decoded arguments are, with escapes in between.
        for (auto& ch : s) ch = static_cast<char>(rng() % 4 ? 0x20 + rng() % 0x5f : rng() % 256);
        ASSERT_EQ(string_of(s), reference_string(s));
    }
}

TEST(JsonWriter, LongStringsAppendedToAString) {
    std::string s(5000, '\x01');
    s += "end\"";
    std::string out = "x";
    append_json_string(out, s);
    EXPECT_EQ(out, "x" + reference_string(s));
}

Event some_event() {
    Event e;
    e.vcpu = 1;
    e.seq = 10;
    e.nr = 257;
    std::uint64_t* regs = &e.regs.rax;
    for (int i = 0; i < 18; ++i) regs[i] = 0x7ffc00000000ULL + static_cast<std::uint64_t>(i);
    std::uint64_t* sregs = &e.sregs.cr0;
    for (int i = 0; i < 9; ++i) sregs[i] = 0x1000ULL * static_cast<std::uint64_t>(i + 1);
    e.host_time_ns = 1795000000123456789ULL;
    return e;
}

TEST(JsonWriter, RegisterTextsAreNeverStale) {
    // Register texts are kept from record to record: every field must follow its value.
    Event e = some_event();
    std::string first, again;
    append_event_object(first, e);
    append_event_object(again, e);
    EXPECT_EQ(first, again);
    std::uint64_t* regs = &e.regs.rax;
    std::uint64_t* sregs = &e.sregs.cr0;
    const char* names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",
                           "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
    const char* snames[] = {"cr0", "cr3", "cr4", "efer", "fs_base", "gs_base",
                            "kernel_gs_base", "cs", "ss"};
    for (int i = 0; i < 27; ++i) {
        std::uint64_t& field = i < 18 ? regs[i] : sregs[i - 18];
        const char* name = i < 18 ? names[i] : snames[i - 18];
        for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{0xabc}, ~std::uint64_t{0}}) {
            field = v;
            std::string out;
            append_event_object(out, e);
            EXPECT_NE(out.find(fmt::format("\"{}\": \"{:#x}\"", name, v)), std::string::npos)
                << name << " = " << v << ": " << out;
        }
    }
}

TEST(JsonWriter, OnlyRegistersReadAtTheEventAreListed) {
    Event e = some_event();
    e.fresh = reg_bit(Reg::rdi) | reg_bit(Reg::rip) | reg_bit(Reg::cr3) | reg_bit(Reg::rax);
    std::string out;
    append_event_object(out, e);
    EXPECT_NE(out.find("\"rdi\": "), std::string::npos) << out;
    EXPECT_NE(out.find("\"rip\": "), std::string::npos) << out;
    EXPECT_EQ(out.find("\"rbx\": "), std::string::npos) << out;
    EXPECT_EQ(out.find("\"cr0\": "), std::string::npos) << out;
    // cr3 and rax, the original Nitro's keys, are always there; "None" lists nothing else.
    out.clear();
    append_event_object(out, e, RegisterOutput::None);
    EXPECT_NE(out.find("\"cr3\": "), std::string::npos) << out;
    EXPECT_NE(out.find("\"rax\": "), std::string::npos) << out;
    EXPECT_EQ(out.find("\"rdi\": "), std::string::npos) << out;
}

// Raw events list what the listener captured, each with its argument, kind and status.
TEST(JsonWriter, RawEventsListTheirCaptures) {
    Event e = some_event();
    e.capture_storage = {'/', 't', 'm', 'p', 1, 2};
    e.captures.push_back({1, CaptureKind::CString, CaptureStatus::Ok, std::string_view(e.capture_storage.data(), 4)});
    e.captures.push_back({1, CaptureKind::IovecData, CaptureStatus::Truncated,
                          std::string_view(e.capture_storage.data() + 4, 2)});
    e.captures.push_back({0, CaptureKind::Deref, CaptureStatus::Fault, {}, 3});  // with its field
    std::string out;
    append_raw_event(out, e);
    EXPECT_NE(out.find(R"("captures": [{"arg": 1, "kind": "cstring", "status": "ok", "data": "/tmp"}, )"
                       R"({"arg": 1, "kind": "iovec_data", "status": "truncated", "data": "\u0001\u0002"}, )"
                       R"({"arg": 0, "kind": "deref", "status": "fault", "field": 3, "data": ""}])"),
              std::string::npos)
        << out;
}

TEST(JsonWriter, RecordsStayWithinTheirBound) {
    Event e = some_event();
    e.direction = Direction::Exit;
    e.unpaired = e.fallback = true;
    Syscall sc;
    sc.name = std::string(40, '\x01');
    sc.full_name = std::string(80, '"');
    sc.process.valid = true;
    sc.process.name = std::string(16, '\x7f');
    sc.process.pid = sc.process.tid = sc.process.ppid = INT64_MIN;
    for (int i = 0; i < 6; ++i) sc.args.push_back({std::string(10, '\t'), ~0ULL, std::string(4096, '\x02')});
    sc.ret = INT64_MIN;
    sc.errno_name = std::string(20, '\x03');
    sc.ret_detail = std::string(300, '\x04');
    std::vector<char> buf(syscall_record_bound(sc) + json::kSlack);
    char* end = write_syscall_record(buf.data(), e, sc, RegisterOutput::Fresh);
    EXPECT_LE(static_cast<std::size_t>(end - buf.data()), syscall_record_bound(sc));
    std::string via_append;
    append_syscall_record(via_append, e, sc, RegisterOutput::Fresh);
    EXPECT_EQ(via_append, std::string(buf.data(), end));
    EXPECT_NE(via_append.find(R"(, "ret_detail": "\u0004)"), std::string::npos);
    // Most calls have no detail: no key.
    sc.ret_detail.clear();
    via_append.clear();
    append_syscall_record(via_append, e, sc, RegisterOutput::Fresh);
    EXPECT_EQ(via_append.find("ret_detail"), std::string::npos);
}

}  // namespace
}  // namespace nitro::output
