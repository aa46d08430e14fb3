// SPDX-License-Identifier: MIT
#include "decoded_trace.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include "decode/strace_text.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/error.h"
#include "os/linux/backend.h"
#include "os/linux/kernel_profile.h"
#include "output/event_json.h"
#include "output/sink.h"
#include "plugin_path.h"

namespace nitro::cli {

namespace {

// Linux calls that change the calling thread's identity as the plugin sees it (see the raw
// path in trace_command.cpp).

// One record with the original Nitro's keys (event, name, full_name, process) and nitro's
// additions (args, ret, errno).
void append_json_record(std::string& out, const Event& ev, const Syscall& sc) {
    using output::append_json_string;
    out += R"({"event": )";
    output::append_event_object(out, ev);
    out += R"(, "name": )";
    append_json_string(out, sc.name);
    out += R"(, "full_name": )";
    append_json_string(out, sc.full_name);
    out += R"(, "process": )";
    if (sc.process.valid) {
        out += R"({"name": )";
        append_json_string(out, sc.process.name);
        fmt::format_to(std::back_inserter(out), R"(, "pid": {}, "tid": {}, "ppid": {}}})",
                       sc.process.pid, sc.process.tid, sc.process.ppid);
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

// Writes each '\n'-terminated line of text as one record.
void write_lines(output::Sink& sink, std::string& text) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        sink.write(std::string_view(text).substr(start, nl - start));
    }
    text.clear();
}

}  // namespace

int decoded_trace(const TraceOptions& o) {
    if (o.guest.kernel.empty()) {
        fail(
            "decoded tracing needs the guest's kernel image (--kernel) for its BTF profile; "
            "use --nobackend for raw events");
    }
    // Load the profile before booting: a kernel without BTF fails here, not mid-trace.
    linux_os::KernelProfile profile = linux_os::load_kernel_file(o.guest.kernel).profile;

    const bool text = o.format == "text";
    output::Sink sink(o.out, o.format == "json" ? output::Sink::Framing::JsonArray
                                                : output::Sink::Framing::Lines);
    vm::LaunchConfig cfg = launch_config(o.guest);
    cfg.plugin = find_plugin();
    cfg.start_paused = true;
    vm::QemuLauncher vm(std::move(cfg));
    vm.start();

    auto memory = std::make_shared<MappedPhysicalMemory>(
        MappedPhysicalMemory::Options{.path = vm.memory_path(), .ram_size = vm.memory_size()});
    linux_os::LinuxBackend backend(std::move(profile), memory);

    auto listener_ptr = attach_listener(vm, o.sync);
    tcg::TcgListener& listener = *listener_ptr;
    backend.attach(listener);
    vm.resume();

    auto t0 = std::chrono::steady_clock::now();
    auto deadline = trace_deadline(o.duration);
    decode::StraceText strace_text;
    Event ev;
    std::string out;
    uint64_t events = 0;
    auto handle = [&](const Event& e) {
        Syscall sc = backend.process_event(e);
        events++;
        if (text) {
            strace_text.feed(e, sc, out);
            write_lines(sink, out);
        } else {
            out.clear();
            append_json_record(out, e, sc);
            sink.write(out);
        }
    };
    bool stopped_by_user = false;
    for (;;) {
        if (interrupted() || std::chrono::steady_clock::now() >= deadline) {
            stopped_by_user = true;
            listener.set_traps(false);
            while (listener.next(ev, std::chrono::milliseconds(0)) == Listener::Status::Event) {
                handle(ev);
            }
            listener.stop();
            break;
        }
        auto s = listener.next(ev, std::chrono::milliseconds(200));
        if (s == Listener::Status::End) break;
        if (s == Listener::Status::Timeout) continue;
        handle(ev);
    }
    if (text) {
        strace_text.flush(out);
        write_lines(sink, out);
    }
    sink.close();
    auto stats = listener.stats();
    vm::GuestEnd end = stopped_by_user ? (vm.stop(), vm::GuestEnd::Killed) : vm.wait();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "nitro: %s; %llu events decoded, %llu records written",
                 stopped_by_user ? "stopped" : vm::to_string(end),
                 static_cast<unsigned long long>(events),
                 static_cast<unsigned long long>(sink.records()));
    if (stats.dropped) {
        std::fprintf(stderr, ", %llu DROPPED", static_cast<unsigned long long>(stats.dropped));
    }
    std::fprintf(stderr, "\n");
    if (o.stats) {
        std::fprintf(stderr, "nitro: %.2f s, %llu events, %llu dropped, %llu malformed records\n",
                     secs, static_cast<unsigned long long>(stats.events),
                     static_cast<unsigned long long>(stats.dropped),
                     static_cast<unsigned long long>(listener.record_errors()));
    }
    if (stopped_by_user) return 0;
    return end == vm::GuestEnd::PowerOff ? 0 : 1;
}

}  // namespace nitro::cli
