// SPDX-License-Identifier: MIT
// The fast JSON formatting of events and decoded calls (src/output) must write exactly what
// the fmt-based first version wrote: `nitro trace --format jsonl` output does not change. The
// reference functions below are that first version (plus "guest_ns" and the choice of
// registers, added since): a change of the format is made in both.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <ctime>
#include <iterator>
#include <random>

#include "output/event_json.h"
#include "output/syscall_json.h"

namespace nitro {
namespace {

namespace ref {

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
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

// regs: list the registers read at the event (Event::fresh), else only cr3 and rax.
void append_event_object(std::string& out, const Event& ev, bool regs) {
    auto it = std::back_inserter(out);
    fmt::format_to(
        it,
        R"({{"vcpu": {}, "type": "{}", "direction": "{}", "cr3": "{:#x}", "rax": "{:#x}", "time": ")",
        ev.vcpu, to_string(ev.type), to_string(ev.direction), ev.sregs.cr3, ev.regs.rax);
    append_iso_time(out, ev.host_time_ns);
    const Registers& r = ev.regs;
    const SpecialRegisters& s = ev.sregs;
    fmt::format_to(it, R"(", "guest_ns": {}, "seq": {}, "abi": "{}", "nr": {})",
                   ev.guest_time_ns, ev.seq, ev.compat ? "i386" : "x86_64",
                   static_cast<int64_t>(ev.nr));
    if (ev.direction == Direction::Exit) {
        fmt::format_to(it, R"(, "entry_vcpu": {}, "entry_seq": {}, "exit": "{}")", ev.entry_vcpu,
                       ev.entry_seq, to_string(ev.exit_insn));
        if (ev.unpaired) out += R"(, "unpaired": true)";
        if (ev.fallback) out += R"(, "paired_by_vcpu": true)";
    }
    if (regs) {
        const std::pair<const char*, Reg> order[] = {
            {"rbx", Reg::rbx}, {"rcx", Reg::rcx}, {"rdx", Reg::rdx}, {"rsi", Reg::rsi},
            {"rdi", Reg::rdi}, {"rbp", Reg::rbp}, {"rsp", Reg::rsp}, {"r8", Reg::r8},
            {"r9", Reg::r9}, {"r10", Reg::r10}, {"r11", Reg::r11}, {"r12", Reg::r12},
            {"r13", Reg::r13}, {"r14", Reg::r14}, {"r15", Reg::r15}, {"rip", Reg::rip},
            {"rflags", Reg::rflags}, {"cr0", Reg::cr0}, {"cr4", Reg::cr4}, {"efer", Reg::efer},
            {"fs_base", Reg::fs_base}, {"gs_base", Reg::gs_base},
            {"kernel_gs_base", Reg::kernel_gs_base}, {"cs", Reg::cs}, {"ss", Reg::ss}};
        const std::uint64_t values[] = {r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp,
                                        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14,
                                        r.r15, r.rip, r.rflags, s.cr0, s.cr4, s.efer,
                                        s.fs_base, s.gs_base, s.kernel_gs_base, s.cs, s.ss};
        for (std::size_t i = 0; i < std::size(order); ++i) {
            if (ev.fresh & reg_bit(order[i].second)) {
                fmt::format_to(it, R"(, "{}": "{:#x}")", order[i].first, values[i]);
            }
        }
    }
    out += "}";
}

// tools/nitro/decoded_trace.cpp's append_json_record.
void append_json_record(std::string& out, const Event& ev, const Syscall& sc, bool regs) {
    out += R"({"event": )";
    append_event_object(out, ev, regs);
    out += R"(, "name": )";
    append_json_string(out, sc.name);
    out += R"(, "full_name": )";
    append_json_string(out, sc.full_name);
    out += R"(, "process": )";
    if (sc.process.valid) {
        out += R"({"name": )";
        append_json_string(out, sc.process.name);
        fmt::format_to(std::back_inserter(out), R"(, "pid": {}, "tid": {}, "ppid": {}, "exe": )",
                       sc.process.pid, sc.process.tid, sc.process.ppid);
        append_json_string(out, sc.process.exe);
        out += "}";
    } else {
        out += "null";
    }
    out += R"(, "args": [)";
    for (std::size_t i = 0; i < sc.args.size(); ++i) {
        if (i) out += ", ";
        out += R"({"name": )";
        append_json_string(out, sc.args[i].name);
        fmt::format_to(std::back_inserter(out), R"(, "value": "{:#x}", "text": )",
                       sc.args[i].value);
        append_json_string(out, sc.args[i].text);
        out += "}";
    }
    out += "]";
    if (sc.ret) {
        fmt::format_to(std::back_inserter(out), R"(, "ret": {}, "errno": )", *sc.ret);
        if (sc.errno_name.empty()) {
            out += "null";
        } else {
            append_json_string(out, sc.errno_name);
        }
    }
    out += "}";
}

}  // namespace ref

class Random {
  public:
    explicit Random(unsigned seed) : g_(seed) {}
    std::uint64_t u64() {
        // Small, large and boundary values alike.
        switch (g_() % 4) {
            case 0:
                return g_() % 16;
            case 1:
                return ~std::uint64_t{0} - g_() % 3;
            default:
                return (static_cast<std::uint64_t>(g_()) << 32) ^ g_();
        }
    }
    std::string bytes(std::size_t max) {
        std::string s(g_() % (max + 1), '\0');
        for (auto& c : s) c = static_cast<char>(g_() % 256);
        return s;
    }

  private:
    std::mt19937 g_;
};

Event random_event(Random& r) {
    Event e;
    e.vcpu = static_cast<unsigned>(r.u64() % 300);
    e.type = static_cast<EventType>(1 + r.u64() % 3);
    e.direction = r.u64() % 2 ? Direction::Exit : Direction::Enter;
    e.compat = r.u64() % 2;
    e.seq = r.u64();
    e.entry_vcpu = static_cast<unsigned>(r.u64());
    e.entry_seq = r.u64();
    e.exit_insn = static_cast<ExitInsn>(r.u64() % 4);
    e.unpaired = r.u64() % 2;
    e.fallback = r.u64() % 2;
    e.nr = r.u64();
    e.guest_time_ns = r.u64();
    // All registers read at the event (gdb listener, --registers), or some (lean TCG events).
    e.fresh = r.u64() % 3 == 0 ? kAllRegisters : static_cast<std::uint32_t>(r.u64()) & kAllRegisters;
    std::uint64_t* regs = &e.regs.rax;
    for (int i = 0; i < 18; ++i) regs[i] = r.u64();
    std::uint64_t* sregs = &e.sregs.cr0;
    for (int i = 0; i < 9; ++i) sregs[i] = r.u64();
    // Realistic times, the epoch, and far-future ones.
    e.host_time_ns = r.u64() % 3 == 0 ? r.u64() % 4102444800000000000ULL
                                      : 1700000000000000000ULL + r.u64() % 100000000000ULL;
    return e;
}

TEST(JsonFormat, EventObjectIsUnchanged) {
    Random r(1);
    for (int i = 0; i < 20000; ++i) {
        Event e = random_event(r);
        std::string fast, slow;
        output::append_event_object(fast, e);
        ref::append_event_object(slow, e, true);
        ASSERT_EQ(fast, slow);
        fast.clear();
        slow.clear();
        output::append_event_object(fast, e, output::RegisterOutput::None);
        ref::append_event_object(slow, e, false);
        ASSERT_EQ(fast, slow);
    }
}

TEST(JsonFormat, JsonStringsAreUnchanged) {
    Random r(2);
    for (int i = 0; i < 20000; ++i) {
        std::string s = r.bytes(64), fast, slow;
        output::append_json_string(fast, s);
        ref::append_json_string(slow, s);
        ASSERT_EQ(fast, slow);
    }
}

TEST(JsonFormat, SyscallRecordIsTheTraceCommandsRecord) {
    Random r(3);
    for (int i = 0; i < 5000; ++i) {
        Event e = random_event(r);
        Syscall sc;
        sc.name = r.bytes(12);
        sc.full_name = r.bytes(20);
        sc.process.valid = r.u64() % 4 != 0;
        sc.process.name = r.bytes(16);
        sc.process.pid = static_cast<std::int64_t>(r.u64());
        sc.process.tid = static_cast<std::int64_t>(r.u64());
        sc.process.ppid = static_cast<std::int64_t>(r.u64());
        sc.process.exe = r.bytes(40);  // random bytes: escapes, and the bound of the record
        const std::size_t nargs = r.u64() % 7;
        for (std::size_t a = 0; a < nargs; ++a)
            sc.args.push_back({r.bytes(8), r.u64(), r.bytes(40)});
        if (r.u64() % 2) sc.ret = static_cast<std::int64_t>(r.u64());
        if (r.u64() % 2) sc.errno_name = r.bytes(8);
        std::string fast, slow;
        output::append_syscall_record(fast, e, sc);
        ref::append_json_record(slow, e, sc, false);
        ASSERT_EQ(fast, slow);
        fast.clear();
        slow.clear();
        output::append_syscall_record(fast, e, sc, output::RegisterOutput::Fresh);
        ref::append_json_record(slow, e, sc, true);
        ASSERT_EQ(fast, slow);
    }
}

}  // namespace
}  // namespace nitro
