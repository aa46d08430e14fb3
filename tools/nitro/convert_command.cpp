// SPDX-License-Identifier: MIT
// nitro convert: a capture file (nitro trace --nobackend --format raw) to text, jsonl or json.
#include <cstdio>

#include "commands.h"
#include "listener/tcg/replay_listener.h"
#include "nitro/error.h"
#include "trace_output.h"

namespace nitro::cli {

CLI::App* add_convert_command(CLI::App& app, ConvertOptions& o) {
    CLI::App* cmd = app.add_subcommand(
        "convert", "Turn a capture file (trace --nobackend --format raw) into text or JSON");
    cmd->add_option("file", o.file, "The capture file")->required();
    cmd->add_option("--format", o.format,
                    "text, jsonl (one JSON object per line) or json (one JSON array), with the "
                    "keys of nitro trace --nobackend")
        ->check(CLI::IsMember({"text", "jsonl", "json"}))
        ->capture_default_str();
    cmd->add_option("-o,--out", o.out, "Output file (default: standard output)");
    cmd->add_option("-e,--syscalls", o.syscalls, "Only these system calls (names, comma-separated)")
        ->delimiter(',');
    cmd->add_flag("--stats", o.stats, "At the end, on stderr: events by system call");
    cmd->footer(
        "Example:\n"
        "  nitro trace --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \\\n"
        "              --nobackend --format raw -o events.ncap\n"
        "  nitro convert events.ncap --format jsonl -o events.jsonl\n");
    return cmd;
}

int convert_command(const ConvertOptions& o) {
    tcg::ReplayListener replay(o.file);
    for (const auto& [abi, nr] : resolve_syscalls(o.syscalls)) replay.add_syscall_filter(abi, nr);
    TraceOptions t;
    t.nobackend = true;
    t.format = o.format;
    t.out = o.out;
    auto out = make_raw_output(t);
    out->attach(replay);
    LoopResult r = trace_loop(replay, *out, 0);
    out->finish();
    const auto& reader = replay.reader();
    std::fprintf(stderr, "nitro: %llu events converted", static_cast<unsigned long long>(r.events));
    if (reader.errors()) {
        std::fprintf(stderr, ", %llu malformed records skipped",
                     static_cast<unsigned long long>(reader.errors()));
    }
    if (reader.truncated() || reader.header().records == 0) {
        std::fprintf(stderr, "; the file ends early (the trace did not finish cleanly)");
    }
    if (reader.header().dropped) {
        std::fprintf(stderr, "; %llu events were DROPPED while recording",
                     static_cast<unsigned long long>(reader.header().dropped));
    }
    std::fprintf(stderr, "\n");
    if (o.stats) print_stats(r, replay, *out, 0);
    return 0;
}

}  // namespace nitro::cli
