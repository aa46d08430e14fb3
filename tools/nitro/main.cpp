// SPDX-License-Identifier: MIT
// The nitro command-line program.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>

#include "commands.h"
#include "nitro/error.h"
#include "nitro/log.h"

namespace {

std::atomic<int> g_interrupts{0};
int g_verbose = 0;

void on_signal(int) {
    // A second Ctrl-C forces the exit; the first asks for a clean stop.
    if (g_interrupts.fetch_add(1) >= 1) _exit(130);
}

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

}  // namespace

namespace nitro::cli {
bool interrupted() { return g_interrupts.load() > 0; }
int verbosity() { return g_verbose; }
}  // namespace nitro::cli

int main(int argc, char** argv) {
    using namespace nitro;
    CLI::App app{"nitro: system call tracing of virtual machines from the outside"};
    app.set_version_flag("--version", "nitro " NITRO_VERSION);
    app.require_subcommand(1);
    int& verbose = g_verbose;
    app.add_flag("-v,--verbose", verbose, "More diagnostics on stderr (-vv for debug)");
    // Options of the main program (-v) are accepted after the sub-command too.
    app.fallthrough();

    cli::RunOptions run;
    CLI::App* run_cmd = app.add_subcommand(
        "run", "Boot a guest under QEMU without tracing; print its console until it powers off");
    cli::add_guest_options(*run_cmd, run.guest);
    run_cmd->footer(
        "Example:\n  nitro run --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \\\n"
        "            --append 'nitro.run=test_open'");

    cli::TraceOptions trace;
    CLI::App* trace_cmd = cli::add_trace_command(app, trace);

    cli::PrepareOptions prepare;
    CLI::App* prepare_cmd = cli::add_prepare_command(app, prepare);

    cli::ConvertOptions convert;
    CLI::App* convert_cmd = cli::add_convert_command(app, convert);

    CLI11_PARSE(app, argc, argv);
    log::set_level(verbose >= 2   ? log::Level::Debug
                   : verbose == 1 ? log::Level::Info
                                  : log::Level::Warn);
    install_signal_handlers();
    try {
        if (*run_cmd) return cli::run_command(run);
        if (*trace_cmd) return cli::trace_command(trace);
        if (*prepare_cmd) return cli::prepare_command(prepare);
        if (*convert_cmd) return cli::convert_command(convert);
    } catch (const Error& e) {
        std::fprintf(stderr, "nitro: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nitro: unexpected error: %s\n", e.what());
        return 1;
    }
    return 0;
}
