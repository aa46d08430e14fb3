// SPDX-License-Identifier: MIT
// nitro trace: boot a guest with nitro's plugin and trace its system calls.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "commands.h"
#include "decoded_trace.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/error.h"
#include "nitro/log.h"
#include "output/event_json.h"
#include "output/sink.h"
#include "plugin_path.h"

namespace nitro::cli {

namespace {

// Linux calls that change the calling thread's identity as the plugin sees it.
const std::vector<uint64_t> kRekey64 = {59 /* execve */, 322 /* execveat */, 158 /* arch_prctl */};
const std::vector<uint64_t> kRekey32 = {11 /* execve */, 358 /* execveat */,
                                        243 /* set_thread_area */};

void format_raw_text(std::string& out, const Event& ev) {
    fmt::format_to(std::back_inserter(out), "vcpu {} {} {} {} nr {}", ev.vcpu, to_string(ev.type),
                   to_string(ev.direction), ev.compat ? "i386" : "x86_64",
                   static_cast<int64_t>(ev.nr));
    if (ev.direction == Direction::Enter) {
        fmt::format_to(std::back_inserter(out), " ({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x})",
                       ev.args[0], ev.args[1], ev.args[2], ev.args[3], ev.args[4], ev.args[5]);
    } else {
        fmt::format_to(std::back_inserter(out), " = {} via {}", ev.ret(), to_string(ev.exit_insn));
        if (ev.unpaired) out += " (no entry)";
    }
    fmt::format_to(std::back_inserter(out), " cr3 {:#x} seq {}", ev.sregs.cr3, ev.seq);
}

}  // namespace

CLI::App* add_trace_command(CLI::App& app, TraceOptions& o) {
    CLI::App* cmd = app.add_subcommand("trace", "Boot a guest and trace its system calls");
    add_guest_options(*cmd, o.guest);
    cmd->add_option("--console", o.guest.console,
                    "Where the guest's serial console goes: a file, or - for the terminal "
                    "(default: discarded)");
    o.guest.console = "";
    cmd->add_flag("--nobackend", o.nobackend,
                  "Raw events only: no process or syscall decoding (the original's --nobackend)");
    cmd->add_option("--format", o.format, "Output format")
        ->check(CLI::IsMember({"text", "jsonl", "json"}));
    cmd->add_option("-o,--out", o.out, "Output file (default: standard output)");
    cmd->add_flag("--sync", o.sync,
                  "Synchronous: each vCPU waits until nitro has processed its event");
    cmd->add_flag("--stats", o.stats, "Print statistics at the end (on stderr)");
    cmd->add_option("--duration", o.duration, "Stop after this many seconds");
    cmd->footer(
        "Examples:\n"
        "  nitro trace --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \\\n"
        "              --append 'nitro.run=test_open' --nobackend --format jsonl -o "
        "events.jsonl\n");
    return cmd;
}

std::unique_ptr<tcg::TcgListener> attach_listener(const vm::QemuLauncher& vm, bool sync) {
    tcg::TcgOptions topts;
    topts.mode = sync ? Mode::Sync : Mode::Async;
    auto listener = std::make_unique<tcg::TcgListener>(vm.plugin_ctl_path(), topts);
    listener->set_rekey_syscalls(Abi::X86_64, kRekey64);
    listener->set_rekey_syscalls(Abi::I386, kRekey32);
    return listener;
}

std::chrono::steady_clock::time_point trace_deadline(double duration_s) {
    if (duration_s <= 0) return std::chrono::steady_clock::time_point::max();
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(duration_s));
}

int trace_command(const TraceOptions& o) {
    if (!o.nobackend) return decoded_trace(o);
    output::Sink sink(o.out, o.format == "json" ? output::Sink::Framing::JsonArray
                                                : output::Sink::Framing::Lines);
    vm::LaunchConfig cfg = launch_config(o.guest);
    cfg.plugin = find_plugin();
    cfg.start_paused = true;
    vm::QemuLauncher vm(std::move(cfg));
    vm.start();

    auto listener_ptr = attach_listener(vm, o.sync);
    tcg::TcgListener& listener = *listener_ptr;
    vm.resume();

    auto t0 = std::chrono::steady_clock::now();
    auto deadline = trace_deadline(o.duration);
    Event ev;
    std::string line;
    std::map<std::pair<bool, uint64_t>, uint64_t> by_nr;
    bool stopped_by_user = false;
    for (;;) {
        if (interrupted() || std::chrono::steady_clock::now() >= deadline) {
            stopped_by_user = true;
            listener.set_traps(false);
            // Drain what the plugin already buffered before detaching.
            while (listener.next(ev, std::chrono::milliseconds(0)) == Listener::Status::Event) {
                line.clear();
                if (o.format == "text")
                    format_raw_text(line, ev);
                else
                    output::append_raw_event(line, ev);
                sink.write(line);
            }
            listener.stop();
            break;
        }
        auto s = listener.next(ev, std::chrono::milliseconds(200));
        if (s == Listener::Status::End) break;
        if (s == Listener::Status::Timeout) continue;
        line.clear();
        if (o.format == "text") {
            format_raw_text(line, ev);
        } else {
            output::append_raw_event(line, ev);
        }
        sink.write(line);
        if (ev.direction == Direction::Enter) by_nr[{ev.compat, ev.nr}]++;
    }
    sink.close();
    auto stats = listener.stats();
    vm::GuestEnd end = stopped_by_user ? (vm.stop(), vm::GuestEnd::Killed) : vm.wait();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "nitro: %s; %llu events written",
                 stopped_by_user ? "stopped" : vm::to_string(end),
                 static_cast<unsigned long long>(sink.records()));
    if (stats.dropped)
        std::fprintf(stderr, ", %llu DROPPED", static_cast<unsigned long long>(stats.dropped));
    std::fprintf(stderr, "\n");
    if (o.stats) {
        std::fprintf(stderr, "nitro: %.2f s, %llu events, %llu dropped, %llu malformed records\n",
                     secs, static_cast<unsigned long long>(stats.events),
                     static_cast<unsigned long long>(stats.dropped),
                     static_cast<unsigned long long>(listener.record_errors()));
        for (const auto& [k, n] : by_nr) {
            std::fprintf(stderr, "  %s %4llu: %llu\n", k.first ? "i386  " : "x86_64",
                         static_cast<unsigned long long>(k.second),
                         static_cast<unsigned long long>(n));
        }
    }
    if (stopped_by_user) return 0;
    return end == vm::GuestEnd::PowerOff ? 0 : 1;
}

}  // namespace nitro::cli
