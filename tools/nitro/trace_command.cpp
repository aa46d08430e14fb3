// SPDX-License-Identifier: MIT
// nitro trace: attach a listener to a target (a guest nitro boots, a libvirt domain, a QEMU
// the user started), hand each event to the output (raw or decoded), stop cleanly.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "commands.h"
#include "listener/gdb/gdb_listener.h"
#include "listener/gdb/gdbserver_qmp.h"
#include "listener/gdb/memory_symbols.h"
#include "os/linux/kernel_profile.h"
#include "os/linux/profile_source.h"
#include "vm/temp_dir.h"
#include "nitro/memory.h"
#include "listener/tcg/capture_file.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/error.h"
#include "nitro/log.h"
#include "nitro/syscall_table.h"
#include "os/linux/pairing.h"
#include "output/event_json.h"
#include "output/sink.h"
#include "target.h"
#include "trace_output.h"

namespace nitro::cli {

namespace {

// --- raw output (--nobackend) ----------------------------------------------------------------

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

/// Writes one raw event in the chosen format (text line, or one JSON object for jsonl/json).
void write_raw_event(output::Sink& sink, std::string& line, const std::string& format,
                     const Event& ev) {
    line.clear();
    if (format == "text") {
        format_raw_text(line, ev);
    } else {
        output::append_raw_event(line, ev);
    }
    sink.write(line);
}

class RawOutput final : public TraceOutput {
  public:
    explicit RawOutput(const TraceOptions& o)
        : format_(o.format),
          sink_(o.out, o.format == "json" ? output::Sink::Framing::JsonArray
                                          : output::Sink::Framing::Lines) {}
    void handle(const Event& ev) override { write_raw_event(sink_, line_, format_, ev); }
    void finish() override { sink_.close(); }
    uint64_t records() const override { return sink_.records(); }

  private:
    std::string format_;
    output::Sink sink_;
    std::string line_;
};

/// --format raw: the plugin's records as they are, into a capture file (tcg listener only); the
/// fastest way to record everything. `nitro convert` turns the file into text or JSON later.
class CaptureOutput final : public TraceOutput {
  public:
    explicit CaptureOutput(const TraceOptions& o) : path_(o.out) {}
    void attach(Listener& listener) override {
        tcg_ = dynamic_cast<tcg::TcgListener*>(&listener);
        if (!tcg_) fail("--format raw records the TCG plugin's events: use --listener tcg");
        file_ = std::make_unique<tcg::CaptureWriter>(path_, tcg_->vcpu_count(), tcg_->time_base());
    }
    tcg::TcgListener* record_source() override { return tcg_; }
    void handle(const Event&) override {}  // records arrive through handle_record()
    void handle_record(const nitro_record* rec) override { file_->append(rec); }
    void finish() override {
        if (file_) file_->close(tcg_->time_base(), tcg_->stats().dropped);
    }
    uint64_t records() const override { return file_ ? file_->records() : 0; }

  private:
    std::string path_;
    tcg::TcgListener* tcg_ = nullptr;
    std::unique_ptr<tcg::CaptureWriter> file_;
};

// --- listeners -------------------------------------------------------------------------------

/// --listener gdb: QEMU's gdbstub, started through the target's monitor on a private socket,
/// hardware breakpoints at the kernel's entry and return paths (docs/gdb-listener.md). Works
/// without nitro's plugin; without a shared memory file guest memory is read through the stub.
std::unique_ptr<Listener> make_gdb_listener(const TraceOptions& o, Target& target) {
    // The trap symbols: from the kernel image, or (not known, e.g. a domain that booted from a
    // disk) from the running kernel's kallsyms in guest memory.
    std::string image = !o.kernel_image.empty() ? o.kernel_image : target.kernel_image().value_or("");
    const vm::GuestRam& ram = target.ram();
    gdb::KernelTrapSymbols symbols;
    if (!image.empty()) {
        linux_os::LoadedKernel kernel = linux_os::load_kernel_file(image);
        symbols = gdb::KernelTrapSymbols::from_kallsyms(kernel.symbols, kernel.profile.banner);
    } else if (!ram.path.empty()) {
        linux_os::GuestMemory gm = linux_os::open_guest_memory(ram.path, ram.size);
        try {
            symbols = gdb::trap_symbols_from_memory(*gm.memory, gm.ranges);
        } catch (const Error& e) {
            fail("--listener gdb: {}; give the guest's kernel image (--kernel-image PATH)",
                 e.what());
        }
    } else {
        fail("--listener gdb needs the guest's kernel image to find the system call entry "
             "points (or a shared memory file to find them in guest memory): give "
             "--kernel-image PATH");
    }
    // QEMU creates the socket: under libvirt it runs as another user (libvirt-qemu), who gets
    // the private directory.
    auto dir = std::make_shared<vm::TempDir>("/tmp", "nitro-gdb");
    if (!o.domain.empty()) {
        gdb::give_socket_dir_to_qemu(dir->path(), gdb::libvirt_qemu_pid(o.domain));
    }
    vm::QemuMonitor* monitor = &target.monitor();
    std::string endpoint = gdb::start_gdbserver(*monitor, dir->file("gdb.sock"));
    gdb::GdbListenerOptions go;
    go.mode = o.sync ? Mode::Sync : Mode::Async;
    go.after_detach = [monitor, dir] { gdb::stop_gdbserver(*monitor); };
    std::shared_ptr<PhysicalMemory> memory;
    if (!ram.path.empty()) {
        memory = std::make_shared<MappedPhysicalMemory>(MappedPhysicalMemory::Options{
            .path = ram.path, .ram_size = ram.size, .below_4g_mem_size = ram.below_4g});
    } else {
        log::info("no shared memory file: guest memory is read through the gdbstub (slower)");
    }
    go.memory = std::move(memory);
    try {
        return gdb::GdbListener::connect(endpoint, std::move(symbols), std::move(go));
    } catch (const Error&) {
        gdb::stop_gdbserver(*monitor);  // attaching failed: leave no stub behind
        throw;
    }
}

/// The listener --listener names, attached to the target.
std::unique_ptr<Listener> make_listener(const TraceOptions& o, Target& target) {
    if (o.listener == "tcg") {
        tcg::TcgOptions topts;
        topts.mode = o.sync ? Mode::Sync : Mode::Async;
        topts.all_registers = o.registers;
        if (target.attached()) topts.attach_timeout = std::chrono::milliseconds(2000);
        auto l = std::make_unique<tcg::TcgListener>(target.plugin_ctl(), topts);
        // Which calls change a thread's identity or create one, for pairing exits with
        // entries (also without a backend: raw events).
        linux_os::set_linux_pairing_hints(*l);
        return l;
    }
    if (o.listener == "gdb") return make_gdb_listener(o, target);
    fail("unknown listener '{}' (this nitro has: tcg, gdb)", o.listener);
}

}  // namespace

std::vector<std::pair<Abi, uint64_t>> resolve_syscalls(const std::vector<std::string>& names) {
    std::vector<std::pair<Abi, uint64_t>> nrs;
    for (const auto& name : names) {
        bool found = false;
        for (Abi abi : {Abi::X86_64, Abi::I386}) {
            if (auto nr = syscall_number(abi, name)) {
                nrs.emplace_back(abi, *nr);
                found = true;
            }
        }
        if (!found) {
            fail("unknown system call '{}' in -e (names as in strace: openat, read, execve...)",
                 name);
        }
    }
    return nrs;
}

namespace {

void check_output_writable(const std::string& path) {
    if (path.empty() || path == "-") return;
    namespace fs = std::filesystem;
    fs::path p(path);
    if (fs::is_directory(p)) fail("cannot write output file {}: it is a directory", path);
    fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (!fs::is_directory(dir)) {
        fail("cannot write output file {}: directory {} does not exist (choose another -o)", path,
             dir.string());
    }
    bool ok = fs::exists(p) ? access(path.c_str(), W_OK) == 0 : access(dir.c_str(), W_OK) == 0;
    if (!ok) fail("cannot write output file {}: permission denied (choose another -o)", path);
}

}  // namespace

// --- the loop, shared by every target and output ---------------------------------------------

// Runs until the listener ends, Ctrl-C or --duration; then traps off, drain, stop. next(timeout)
// fetches the next item, deliver() hands it on.
namespace {

template <typename Next, typename Deliver>
LoopResult run_loop(Listener& listener, double duration, Next next, Deliver deliver) {
    LoopResult r;
    auto deadline = trace_deadline(duration);
    for (;;) {
        if (interrupted() || std::chrono::steady_clock::now() >= deadline) {
            r.stopped_by_user = true;
            // Traps off first, then everything the plugin already buffered, then detach:
            // the guest continues without nitro.
            listener.set_traps(false);
            while (next(std::chrono::milliseconds(0)) == Listener::Status::Event) deliver(r);
            listener.stop();
            break;
        }
        auto s = next(std::chrono::milliseconds(200));
        if (s == Listener::Status::End) break;
        if (s == Listener::Status::Timeout) continue;
        deliver(r);
    }
    return r;
}

void count_entry(LoopResult& r, Direction dir, bool compat, uint64_t nr) {
    r.events++;
    if (dir == Direction::Enter) r.entries_by_nr.add(compat ? Abi::I386 : Abi::X86_64, nr);
}

}  // namespace

LoopResult trace_loop(Listener& listener, TraceOutput& out, double duration) {
    if (tcg::TcgListener* records = out.record_source()) {
        const nitro_record* rec = nullptr;
        return run_loop(
            listener, duration, [&](auto timeout) { return records->next_record(rec, timeout); },
            [&](LoopResult& r) {
                count_entry(r, static_cast<Direction>(rec->direction),
                            rec->flags & NITRO_REC_F_COMPAT, rec->nr);
                out.handle_record(rec);
            });
    }
    Event ev;
    return run_loop(
        listener, duration, [&](auto timeout) { return listener.next(ev, timeout); },
        [&](LoopResult& r) {
            count_entry(r, ev.direction, ev.compat, ev.nr);
            out.handle(ev);
        });
}

void print_stats(const LoopResult& r, const Listener& listener, const TraceOutput& out,
                 double secs) {
    ListenerStats ls = listener.stats();
    uint64_t malformed = 0;
    if (auto* t = dynamic_cast<const tcg::TcgListener*>(&listener)) malformed = t->record_errors();
    std::fprintf(stderr,
                 "nitro: stats: %.2f s, %llu events (%.0f/s), %llu dropped, %llu malformed "
                 "records, %llu records written\n",
                 secs, static_cast<unsigned long long>(r.events), secs > 0 ? r.events / secs : 0.0,
                 static_cast<unsigned long long>(ls.dropped),
                 static_cast<unsigned long long>(malformed),
                 static_cast<unsigned long long>(out.records()));
    out.print_stats(stderr);
    if (auto* g = dynamic_cast<const gdb::GdbListener*>(&listener)) {
        const gdb::GdbStats& gs = g->gdb_stats();
        std::fprintf(stderr,
                     "nitro: gdb listener: %llu breakpoint stops (%llu filtered, %llu interrupt "
                     "returns), %llu step-overs, %llu guest memory reads %s\n",
                     static_cast<unsigned long long>(gs.stops),
                     static_cast<unsigned long long>(gs.filtered),
                     static_cast<unsigned long long>(gs.interrupt_irets + gs.kernel_irets),
                     static_cast<unsigned long long>(gs.steps),
                     static_cast<unsigned long long>(gs.memory_reads),
                     gs.memory_through_stub
                         ? "through the gdbstub (no shared memory file: slower)"
                         : "from the shared memory file");
    }
    std::vector<std::pair<uint64_t, std::pair<Abi, uint64_t>>> rows;
    for (const auto& [k, n] : r.entries_by_nr.all()) rows.push_back({n, k});
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    if (auto* t = dynamic_cast<const tcg::TcgListener*>(&listener)) {
        auto p = t->producer_stats();
        std::fprintf(stderr,
                     "nitro: plugin: %llu callbacks, %.0f ns of vCPU time each on average (incl. "
                     "waits for ring space and the one-time register-file search); register file "
                     "used in place on %s\n",
                     static_cast<unsigned long long>(p.callbacks),
                     p.callbacks ? p.busy_ns / static_cast<double>(p.callbacks) : 0.0,
                     p.direct_vcpus && !p.api_vcpus ? "every traced vCPU"
                     : p.direct_vcpus               ? "some vCPUs"
                                                    : "no vCPU (QEMU's API)");
        std::fprintf(stderr,
                     "nitro: plugin: translated code %s (%u flush%s); each event's current task "
                     "%s%s; %llu reads of guest memory, %llu from the RAM file through the "
                     "plugin's page walk%s; the vCPUs waited %llu time%s for a full ring\n",
                     p.instrumented ? "instrumented" : "not instrumented (passive)",
                     p.code_flushes, p.code_flushes == 1 ? "" : "es",
                     p.ram_file_mapped ? "from the RAM file" : "through QEMU's page walk",
                     p.context_mismatches ? " (a direct read disagreed: QEMU's walk on that vCPU)"
                                          : "",
                     static_cast<unsigned long long>(p.memory_reads),
                     static_cast<unsigned long long>(p.walked_reads),
                     p.ram_walk_mismatches ? " (a read through the plugin's own page walk disagreed: "
                                             "QEMU's walk on that vCPU)"
                                           : "",
                     static_cast<unsigned long long>(p.full_waits), p.full_waits == 1 ? "" : "s");
    }
    std::fprintf(stderr, "nitro: calls by system call (entries):\n");
    for (const auto& [n, k] : rows) {
        const SyscallInfo* info = lookup_syscall(k.first, k.second);
        std::string name = info ? std::string(info->name) : "syscall_" + std::to_string(k.second);
        std::fprintf(stderr, "  %-24s %-6s %10llu\n", name.c_str(),
                     std::string(abi_name(k.first)).c_str(), static_cast<unsigned long long>(n));
    }
}

CLI::App* add_trace_command(CLI::App& app, TraceOptions& o) {
    CLI::App* cmd = app.add_subcommand(
        "trace",
        "Trace the system calls of a guest: one nitro boots, a libvirt domain, or a QEMU "
        "you started");
    add_guest_options(*cmd, o.guest, /*kernel_required=*/false);
    for (auto* opt : cmd->get_options()) {
        if (opt->get_name() != "--help") opt->group("Target 1: nitro boots the guest");
    }
    auto* g_domain = cmd->add_option_group("Target 2: a libvirt domain (see nitro prepare)");
    g_domain->add_option("--domain", o.domain, "Name of the libvirt domain to trace");
    g_domain->add_option("--connect", o.connect, "libvirt URI")->capture_default_str();
    g_domain->add_flag("--start", o.start,
                       "Start the domain (paused until nitro is attached) "
                       "when it is shut off");
    auto* g_qmp = cmd->add_option_group("Target 3: a QEMU you started with nitro's plugin");
    g_qmp->add_option("--qmp", o.qmp, "QEMU's QMP socket (-qmp unix:PATH,server=on,wait=off)");
    g_qmp->add_option("--ctl", o.ctl,
                      "The plugin's control file, when QEMU was given ctl=PATH "
                      "(default /dev/shm/nitro-qemu-<QEMU pid>)");

    cmd->add_option("--console", o.guest.console,
                    "Where the guest's serial console goes when nitro boots it: a file, or - for "
                    "the terminal (default: discarded)");
    o.guest.console = "";
    cmd->add_option("--kernel-image", o.kernel_image,
                    "The guest's kernel image, for the kernel profile (default: the kernel QEMU "
                    "booted)");
    cmd->add_option("--profile", o.profile_file,
                    "A kernel profile instead of the kernel's own BTF: a Volatility 3 symbol "
                    "table (ISF .json/.json.xz), an offsets file, or a nitro profile "
                    "(docs/kernel-profile.md)");
    cmd->add_option("--profile-cache", o.profile_cache,
                    "Where built profiles are kept per kernel build (default $XDG_CACHE_HOME/nitro "
                    "or ~/.cache/nitro)");
    cmd->add_flag("--no-profile-cache", o.no_profile_cache, "Neither read nor write the cache");
    cmd->add_option("--listener", o.listener,
                    "Event source: tcg (nitro's QEMU plugin) or gdb (QEMU's gdbstub, for KVM; "
                    "slow, see docs/gdb-listener.md)")
        ->check(CLI::IsMember({"tcg", "gdb"}))
        ->capture_default_str();
    cmd->add_flag("--nobackend", o.nobackend,
                  "Raw events only: no process or syscall decoding (the original's --nobackend)");
    cmd->add_option("--format", o.format,
                    "Output format: text (strace-like), jsonl (one JSON "
                    "object per line), json (one JSON array), raw (with --nobackend: the "
                    "plugin's records into a capture file, the fastest; see nitro convert)")
        ->check(CLI::IsMember({"text", "jsonl", "json", "raw"}))
        ->capture_default_str();
    cmd->add_option("-o,--out", o.out, "Output file (default: standard output)");
    cmd->add_option("-e,--syscalls", o.syscalls,
                    "Only these system calls (names, comma-separated; filtered inside QEMU)")
        ->delimiter(',');
    cmd->add_option("--pid", o.pid,
                    "Only this process (its address space is filtered inside QEMU once seen)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--process", o.process, "Only processes with this name (comm)");
    cmd->add_flag("-f,--follow", o.follow,
                  "With --pid or --process: also the processes they create, and theirs, whatever "
                  "they run (as strace -f)");
    cmd->add_flag("--sync", o.sync,
                  "Synchronous: each vCPU waits until nitro has processed its event");
    cmd->add_flag("--registers", o.registers,
                  "Every register at every event (the tcg listener reads those that define the "
                  "call, the rest every 256th event); JSON records list them (decoded records "
                  "otherwise list cr3 and rax only)");
    cmd->add_flag("--stats", o.stats,
                  "At the end, on stderr: events by system call, decoding errors, dropped "
                  "events, time");
    cmd->add_option("--duration", o.duration, "Stop after this many seconds")
        ->check(CLI::NonNegativeNumber);
    cmd->footer(
        "Ctrl-C (or SIGTERM) stops cleanly: traps off, buffered events written, the output "
        "complete;\nan attached guest (--domain, --qmp) keeps running. A second Ctrl-C forces the "
        "exit.\n"
        "-v (before or after 'trace') prints diagnostics; see docs/cli.md for everything.\n\n"
        "Examples:\n"
        "  # boot the test guest, print its system calls strace-like until it powers off\n"
        "  nitro trace --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \\\n"
        "              --append 'nitro.run=test_open'\n"
        "  # raw events of every vCPU as JSON lines\n"
        "  nitro trace --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \\\n"
        "              --nobackend --format jsonl -o events.jsonl\n"
        "  # everything at full speed into a capture file, converted afterwards\n"
        "  nitro trace --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \\\n"
        "              --nobackend --format raw -o events.ncap\n"
        "  nitro convert events.ncap --format jsonl -o events.jsonl\n"
        "  # a libvirt domain by name (after 'nitro prepare web1' and a restart), openat only\n"
        "  nitro trace --domain web1 -e openat,openat2 --format json -o events.json\n"
        "  # one process of a QEMU you started with -plugin .../libnitro-tcg.so\n"
        "  nitro trace --qmp /run/vm1.qmp --process sshd --stats --duration 60\n");
    return cmd;
}

std::chrono::steady_clock::time_point trace_deadline(double duration_s) {
    if (duration_s <= 0) return std::chrono::steady_clock::time_point::max();
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(duration_s));
}

std::unique_ptr<TraceOutput> make_raw_output(const TraceOptions& o) {
    if (o.format == "raw") return std::make_unique<CaptureOutput>(o);
    return std::make_unique<RawOutput>(o);
}

int trace_command(const TraceOptions& o) {
    if (o.format == "raw" && !o.nobackend) {
        fail("--format raw records undecoded events: add --nobackend (decode later with a live "
             "guest only)");
    }
    if (o.format == "raw" && (o.out.empty() || o.out == "-")) {
        fail("--format raw writes a binary capture file: give -o FILE");
    }
    if (o.nobackend && (o.pid || !o.process.empty())) {
        fail("--pid and --process need the backend to know processes; drop --nobackend");
    }
    if (o.follow && !o.pid && o.process.empty()) {
        fail("--follow follows the processes --pid or --process selects: give one of them");
    }
    auto filter = resolve_syscalls(o.syscalls);
    check_output_writable(o.out);
    auto target = make_target(o);
    Progress progress;

    // The kernel profile before booting, when the kernel is known: a kernel without BTF fails
    // here, not after the guest started.
    std::unique_ptr<DecodedOutputFactory> decoded;
    std::string early_kernel = !o.kernel_image.empty() ? o.kernel_image : o.guest.kernel;
    if (!o.nobackend && !early_kernel.empty()) {
        decoded = std::make_unique<DecodedOutputFactory>(o, early_kernel, progress);
    }
    target->open(progress);
    if (!o.nobackend && !decoded) {
        decoded = std::make_unique<DecodedOutputFactory>(o, target->kernel_image().value_or(""),
                                                         progress);
    }
    std::unique_ptr<TraceOutput> out =
        decoded ? decoded->make(*target) : make_raw_output(o);

    progress.step("attaching to nitro's plugin");
    std::unique_ptr<Listener> listener = make_listener(o, *target);
    for (const auto& [abi, nr] : filter) listener->add_syscall_filter(abi, nr);
    out->attach(*listener);
    if (o.listener != "gdb") target->resume();  // the gdb listener runs the vCPUs itself
    progress.clear();
    log::info("tracing");

    auto t0 = std::chrono::steady_clock::now();
    LoopResult r = trace_loop(*listener, *out, o.duration);
    out->finish();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EndReason reason = listener->end_reason();
    Ending end = target->finish(r.stopped_by_user, reason);
    ListenerStats ls = listener->stats();
    std::fprintf(stderr, "nitro: %s; %llu events, %llu records written", end.what.c_str(),
                 static_cast<unsigned long long>(r.events),
                 static_cast<unsigned long long>(out->records()));
    if (ls.dropped) {
        std::fprintf(stderr, ", %llu DROPPED", static_cast<unsigned long long>(ls.dropped));
    }
    std::fprintf(stderr, "\n");
    if (o.stats) print_stats(r, *listener, *out, secs);
    return end.exit_code;
}

}  // namespace nitro::cli
