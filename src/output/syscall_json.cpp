// SPDX-License-Identifier: MIT
#include "output/syscall_json.h"

#include <charconv>
#include <cstdint>

#include "output/event_json.h"

namespace nitro::output {

namespace {

// As in event_json.cpp: fmt::format_to into a std::string costs a resize per call.
void put_dec(std::string& out, std::int64_t v) {
    char buf[21];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

}  // namespace

void append_syscall_record(std::string& out, const Event& ev, const Syscall& sc) {
    out += R"({"event": )";
    append_event_object(out, ev);
    out += R"(, "name": )";
    append_json_string(out, sc.name);
    out += R"(, "full_name": )";
    append_json_string(out, sc.full_name);
    out += R"(, "process": )";
    if (sc.process.valid) {
        out += R"({"name": )";
        append_json_string(out, sc.process.name);
        out += R"(, "pid": )";
        put_dec(out, sc.process.pid);
        out += R"(, "tid": )";
        put_dec(out, sc.process.tid);
        out += R"(, "ppid": )";
        put_dec(out, sc.process.ppid);
        out += '}';
    } else {
        out += "null";
    }
    out += R"(, "args": [)";
    for (std::size_t i = 0; i < sc.args.size(); ++i) {
        if (i) out += ", ";
        out += R"({"name": )";
        append_json_string(out, sc.args[i].name);
        char hex[18] = {'0', 'x'};
        auto r = std::to_chars(hex + 2, hex + sizeof hex, sc.args[i].value, 16);
        out += R"(, "value": ")";
        out.append(hex, r.ptr);
        out += R"(", "text": )";
        append_json_string(out, sc.args[i].text);
        out += "}";
    }
    out += "]";
    if (sc.ret) {
        out += R"(, "ret": )";
        put_dec(out, *sc.ret);
        out += R"(, "errno": )";
        if (sc.errno_name.empty()) {
            out += "null";
        } else {
            append_json_string(out, sc.errno_name);
        }
    }
    out += "}";
}

}  // namespace nitro::output
