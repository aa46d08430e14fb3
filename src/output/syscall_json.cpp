// SPDX-License-Identifier: MIT
#include "output/syscall_json.h"

#include <cstdint>
#include <memory>

#include "output/event_json.h"
#include "output/json_writer.h"

namespace nitro::output {

std::size_t syscall_record_bound(const Syscall& sc) {
    using json::kNumberBound;
    using json::string_bound;
    // The keys and punctuation are bounded by 64 bytes per group below (generously).
    std::size_t n = 64 + kEventObjectBound;
    n += 64 + string_bound(sc.name.size()) + string_bound(sc.full_name.size());
    n += 64 + string_bound(sc.process.name.size()) + string_bound(sc.process.exe.size()) + 3 * kNumberBound;
    for (const SyscallArg& a : sc.args) {
        n += 64 + string_bound(a.name.size()) + kNumberBound + string_bound(a.text.size());
    }
    n += 64 + kNumberBound + string_bound(sc.errno_name.size()) + string_bound(sc.ret_detail.size());
    return n;
}

char* write_syscall_record(char* p, const Event& ev, const Syscall& sc, RegisterOutput regs) {
    using json::put_dec;
    using json::put_hex;
    using json::put_lit;
    using json::put_string;
    p = put_lit(p, R"({"event": )");
    p = write_event_object(p, ev, regs);
    p = put_lit(p, R"(, "name": )");
    p = put_string(p, sc.name);
    p = put_lit(p, R"(, "full_name": )");
    p = put_string(p, sc.full_name);
    p = put_lit(p, R"(, "process": )");
    if (sc.process.valid) {
        p = put_lit(p, R"({"name": )");
        p = put_string(p, sc.process.name);
        p = put_lit(p, R"(, "pid": )");
        p = put_dec(p, sc.process.pid);
        p = put_lit(p, R"(, "tid": )");
        p = put_dec(p, sc.process.tid);
        p = put_lit(p, R"(, "ppid": )");
        p = put_dec(p, sc.process.ppid);
        p = put_lit(p, R"(, "exe": )");
        p = put_string(p, sc.process.exe);
        *p++ = '}';
    } else {
        p = put_lit(p, "null");
    }
    p = put_lit(p, R"(, "args": [)");
    for (std::size_t i = 0; i < sc.args.size(); ++i) {
        if (i) p = put_lit(p, ", ");
        p = put_lit(p, R"({"name": )");
        p = put_string(p, sc.args[i].name);
        p = put_lit(p, R"(, "value": ")");
        p = put_hex(p, sc.args[i].value);
        p = put_lit(p, R"(", "text": )");
        p = put_string(p, sc.args[i].text);
        *p++ = '}';
    }
    *p++ = ']';
    if (sc.ret) {
        p = put_lit(p, R"(, "ret": )");
        p = put_dec(p, *sc.ret);
        p = put_lit(p, R"(, "errno": )");
        if (sc.errno_name.empty()) {
            p = put_lit(p, "null");
        } else {
            p = put_string(p, sc.errno_name);
        }
        if (!sc.ret_detail.empty()) {
            p = put_lit(p, R"(, "ret_detail": )");
            p = put_string(p, sc.ret_detail);
        }
    }
    *p++ = '}';
    return p;
}

void append_syscall_record(std::string& out, const Event& ev, const Syscall& sc,
                           RegisterOutput regs) {
    // Made in a buffer kept from record to record, then appended: a std::string cannot be
    // written past its size, and growing it to the bound first would zero-fill kilobytes.
    thread_local std::unique_ptr<char[]> buf;
    thread_local std::size_t cap = 0;
    const std::size_t need = syscall_record_bound(sc) + json::kSlack;
    if (need > cap) {
        cap = std::max(need, cap * 2);
        buf = std::make_unique_for_overwrite<char[]>(cap);
    }
    out.append(buf.get(), write_syscall_record(buf.get(), ev, sc, regs));
}

}  // namespace nitro::output
