// SPDX-License-Identifier: MIT
// nitro-bench: boots the test guest once per (mode, repetition) and runs guest-timed workloads
// (bench_loop null: getppid loop; bench_loop file: open/read/close on tmpfs). The guest measures
// its own time per operation; the table shows each mode's ratio to the untraced guest.
//
// The traced modes are paired: each boot runs the workloads untraced first (the plugin loaded
// and passive, a consumer attached with traps off), then nitro turns traps on and the guest
// runs them again. Their ratio is the median of these per-boot ratios: the file loop's time
// varies by 10-20 % from boot to boot (where the guest's caches and the host's pages land),
// which a ratio between two boots cannot tell from nitro's cost.
//
// Modes: untraced (no plugin) | plugin loaded, traps off | events consumed without output |
// raw tracing of every syscall to a capture file (nitro trace --format raw) | the same to a
// jsonl file | decoded tracing (Linux backend) to jsonl | the gdb listener (QEMU's gdbstub,
// fewer iterations) | strace -f inside the guest (what a Linux user would otherwise pick).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include "listener/tcg/capture_file.h"
#include "listener/gdb/gdb_listener.h"
#include "nitro/memory.h"
#include "os/linux/backend.h"
#include "os/linux/kernel_profile.h"
#include "output/syscall_json.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/error.h"
#include "output/event_json.h"
#include "output/sink.h"
#include "vm/qemu_launcher.h"

namespace {

using namespace nitro;

struct Workload {
    std::string name;
    long n;         // iterations normally
    long n_strace;  // iterations under strace (each op is ~100x slower)
};

enum class BenchMode { Untraced, TrapsOff, Floor, Consume, RawTrace, RawJson, Decoded, Gdb, Strace };
const char* mode_name(BenchMode m) {
    switch (m) {
        case BenchMode::Untraced: return "untraced";
        case BenchMode::TrapsOff: return "plugin, traps off";
        case BenchMode::Floor: return "QEMU floor: empty callbacks";
        case BenchMode::Consume: return "events consumed, no output";
        case BenchMode::RawTrace: return "raw trace to file";
        case BenchMode::RawJson: return "raw trace to jsonl";
        case BenchMode::Decoded: return "decoded trace to jsonl";
        case BenchMode::Gdb: return "gdb listener, consumed";
        case BenchMode::Strace: return "strace -f in guest";
    }
    return "?";
}

struct Options {
    std::string guest_dir = std::string(NITRO_SOURCE_DIR) + "/build/guest";
    std::string plugin;
    int reps = 3;
    int smp = 1;
    double scale = 1.0;
    bool kaslr = false;
    int runs = 5;
    std::string out_dir = "/tmp";
    std::vector<std::string> plugin_args;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

bool is_paired(BenchMode m) {
    return m == BenchMode::Floor || m == BenchMode::Consume || m == BenchMode::RawTrace ||
           m == BenchMode::RawJson || m == BenchMode::Decoded;
}

// System calls per iteration of each workload (open, read, close for the file loop).
long calls_per_op(const Workload& w) { return w.name == "file" ? 3 : 1; }

// What the guest printed in one boot: ns/op by workload name (the median of its runs); for a
// paired mode also the untraced first half of the boot.
struct RunResult {
    std::map<std::string, double> ns;
    std::map<std::string, double> untraced_half;
    double plugin_ns = 0;  // the plugin's own time per callback (traced modes but the floor)
};

// The marker the guest prints between the halves of a paired boot; it then sleeps while nitro
// turns traps on (the plugin instruments at the vCPU's next wake-up, within milliseconds).
constexpr std::string_view kTraceMarker = "NITRO-BENCH-TRACE";
constexpr int kTraceSwitchSleepS = 3;

// Boots the guest once and runs every workload.
RunResult run_once(const Options& o, BenchMode mode, const std::vector<Workload>& loads,
                   uint64_t* events) {
    const bool paired = is_paired(mode);
    // strace and the gdb listener cost milliseconds per call: fewer iterations, in one run.
    const bool slow = mode == BenchMode::Strace || mode == BenchMode::Gdb;
    const int runs = slow ? 1 : o.runs;
    // The file loop's time varies by about 10 % from one run to the next, even within a boot
    // (each run is a new process, its pages elsewhere), the null loop's by about 2 %: several
    // shorter runs and their median.
    auto iterations = [&](const Workload& w) {
        return std::max(1L, static_cast<long>((slow ? w.n_strace : w.n) * o.scale / runs));
    };
    // Paired halves start with a warm-up run (a tenth): the second half runs in code that was
    // translated again when the plugin began to instrument.
    // (one more iteration than a tenth: never the count of a measured run)
    auto warmup = [&](const Workload& w) { return iterations(w) * runs / 10 + 1; };
    std::string cmds;
    long traced_calls = 0;  // the least number of calls the traced half makes
    for (int half = 0; half < (paired ? 2 : 1); half++) {
        if (half == 1) cmds += "echo " + std::string(kTraceMarker) + "; sleep " + std::to_string(kTraceSwitchSleepS) + "; ";
        for (const auto& w : loads) {
            long n = iterations(w);
            if (mode == BenchMode::Strace) {
                cmds += "strace -f -o /tmp/strace.out bench_loop " + w.name + " " + std::to_string(n) + "; ";
                continue;
            }
            if (paired) {
                cmds += "bench_loop " + w.name + " " + std::to_string(warmup(w)) + "; ";
                if (half == 1) traced_calls += (warmup(w) + n * runs) * calls_per_op(w);
            }
            for (int r = 0; r < runs; r++) cmds += "bench_loop " + w.name + " " + std::to_string(n) + "; ";
        }
    }
    std::map<std::string, std::vector<double>> runs_ns, runs_untraced_half;
    std::mutex mu;
    auto results = [&] {
        std::lock_guard lock(mu);
        RunResult r;
        for (const auto& [name, v] : runs_ns) r.ns[name] = median(v);
        for (const auto& [name, v] : runs_untraced_half) r.untraced_half[name] = median(v);
        return r;
    };
    std::atomic<bool> second_half{false};
    vm::LaunchConfig cfg;
    cfg.kernel = o.guest_dir + "/vmlinuz";
    cfg.initrd = o.guest_dir + "/initrd.img";
    cfg.smp = o.smp;
    // Without KASLR every boot places the kernel alike: the modes compare the same code
    // placement (with it, boot-to-boot variation of the file loop was about +-10 %).
    cfg.append = std::string(o.kaslr ? "" : "nokaslr ") + "quiet nitro.run=\"" + cmds + "\"";
    cfg.console = [&](const std::string& line) {
        static const std::regex re("^BENCH (\\w+) (\\d+) ([0-9.]+)");
        std::smatch m;
        if (line.rfind(kTraceMarker, 0) == 0) second_half = true;
        if (!std::regex_search(line, m, re)) return;
        std::string name = m[1];
        for (const auto& w : loads) {
            if (w.name != name || std::stol(m[2]) != iterations(w)) continue;  // a warm-up
            std::lock_guard lock(mu);
            (paired && !second_half ? runs_untraced_half : runs_ns)[name].push_back(std::stod(m[3]));
        }
    };
    bool with_plugin = mode == BenchMode::TrapsOff || paired;
    if (with_plugin) {
        cfg.plugin = o.plugin;
        cfg.plugin_args = o.plugin_args;
        // The floor: QEMU instruments the same instructions, each callback only counts itself.
        if (mode == BenchMode::Floor) cfg.plugin_args.push_back("callbacks=empty");
        cfg.start_paused = true;
    }
    struct rusage ru0 {};
    getrusage(RUSAGE_CHILDREN, &ru0);
    auto cpu_s = [](const struct rusage& r) {
        return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    };
    struct QemuCpu {
        const struct rusage& start;
        decltype(cpu_s)& f;
        ~QemuCpu() {
            struct rusage ru1 {};
            getrusage(RUSAGE_CHILDREN, &ru1);
            std::fprintf(stderr, "qemu cpu %.3f s\n", f(ru1) - f(start));
        }
    } qemu_cpu{ru0, cpu_s};
    const std::string cfg_kernel = cfg.kernel;
    std::string gdb_sock;
    if (mode == BenchMode::Gdb) {
        // QEMU's gdbstub on a private socket; the listener starts the vCPUs itself.
        gdb_sock = o.out_dir + "/nitro-bench-gdb-" + std::to_string(getpid()) + ".sock";
        std::filesystem::remove(gdb_sock);
        cfg.extra_args = {"-gdb", "unix:" + gdb_sock + ",server=on,wait=off"};
        cfg.start_paused = true;
    }
    vm::QemuLauncher vm(cfg);
    vm.start();
    if (mode == BenchMode::Gdb) {
        auto kernel = linux_os::load_kernel_file(cfg_kernel);
        auto memory = std::make_shared<MappedPhysicalMemory>(
            MappedPhysicalMemory::Options{.path = vm.memory_path(), .ram_size = vm.memory_size()});
        auto listener = gdb::make_gdb_listener("unix:" + gdb_sock, kernel, memory);
        Event ev;
        while (listener->next(ev, std::chrono::milliseconds(200)) != Listener::Status::End) {
        }
        *events += listener->stats().events;
        listener.reset();
        vm.wait();
        std::filesystem::remove(gdb_sock);
        return results();
    }
    if (!with_plugin) {
        vm.wait();
        return results();
    }
    // Traps off from the attach on: the plugin stays passive (a moment of traps on would make
    // it instrument for good, see docs/listener.md) until the second half of a paired boot.
    tcg::TcgListener listener(vm.plugin_ctl_path(), tcg::TcgOptions{.traps = false});
    bool traps_on = false;
    auto start_tracing_at_marker = [&] {
        if (!traps_on && paired && second_half) {
            listener.set_traps(true);
            traps_on = true;
        }
    };
    vm.resume();
    if (mode == BenchMode::RawTrace) {
        // What `nitro trace --nobackend --format raw` does: records copied as they are.
        tcg::CaptureWriter file(o.out_dir + "/nitro-bench-events.ncap", listener.vcpu_count(),
                                listener.time_base());
        const nitro_record* rec = nullptr;
        for (;;) {
            start_tracing_at_marker();
            auto s = listener.next_record(rec, std::chrono::milliseconds(20));
            if (s == Listener::Status::End) break;
            if (s == Listener::Status::Event) file.append(rec);
        }
        file.close(listener.time_base(), listener.stats().dropped);
    } else {
        // Consume: events read, nothing written. Raw jsonl: what `nitro trace --nobackend
        // --format jsonl` does. Decoded jsonl: what `nitro trace --format jsonl -o FILE` does,
        // the Linux backend decoding every call into one Syscall reused from event to event.
        std::unique_ptr<linux_os::LinuxBackend> backend;
        if (mode == BenchMode::Decoded) {
            backend = linux_os::LinuxBackend::open(cfg_kernel, vm.memory_path(), vm.memory_size());
            backend->attach(listener);
        }
        output::Sink sink(o.out_dir + "/nitro-bench-events.jsonl", output::Sink::Framing::Lines);
        Event ev;
        Syscall sc;
        std::string line;
        for (;;) {
            start_tracing_at_marker();
            auto s = listener.next(ev, std::chrono::milliseconds(20));
            if (s == Listener::Status::End) break;
            if (s != Listener::Status::Event || mode == BenchMode::Consume || mode == BenchMode::Floor) {
                continue;
            }
            line.clear();
            if (backend) {
                backend->process_event_into(ev, sc);
                output::append_syscall_record(line, ev, sc);
            } else {
                output::append_raw_event(line, ev);
            }
            sink.write(line);
        }
        sink.close();
    }
    *events += listener.stats().events;
    auto ps = listener.producer_stats();
    if (mode == BenchMode::Floor) {
        vm.wait();
        // Each traced call runs an entry and a return callback: fewer means the instrumentation
        // began after the guest's pause (as for events below).
        if (ps.callbacks < 2 * static_cast<uint64_t>(traced_calls)) {
            std::fprintf(stderr, "nitro-bench: instrumentation began late (%llu callbacks); boot not counted\n",
                         static_cast<unsigned long long>(ps.callbacks));
            return {};
        }
        return results();
    }
    const double plugin_ns = ps.callbacks ? ps.busy_ns / ps.callbacks : 0.0;
    std::fprintf(stderr,
                 "plugin: %llu callbacks, %.0f ns each, direct register reads on %s, context "
                 "words %s (%u mismatches); %llu memory reads, %llu of them from the RAM file "
                 "(%u mismatches); %llu waits for a full ring\n",
                 static_cast<unsigned long long>(ps.callbacks), plugin_ns,
                 ps.direct_vcpus ? "all vCPUs" : ps.api_vcpus ? "no vCPU" : "-",
                 ps.ram_file_mapped ? "from the RAM file" : "through QEMU", ps.context_mismatches,
                 static_cast<unsigned long long>(ps.memory_reads),
                 static_cast<unsigned long long>(ps.walked_reads), ps.ram_walk_mismatches,
                 static_cast<unsigned long long>(ps.full_waits));
    vm.wait();
    // Every traced call makes an entry and an exit: fewer events than that means tracing began
    // after the guest's pause, and part of the traced half ran untraced.
    if (paired && listener.stats().events < 2 * static_cast<uint64_t>(traced_calls)) {
        std::fprintf(stderr, "nitro-bench: tracing began late (%llu events, at least %ld expected); boot not counted\n",
                     static_cast<unsigned long long>(listener.stats().events), 2 * traced_calls);
        return {};
    }
    RunResult r = results();
    r.plugin_ns = plugin_ns;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"nitro-bench: guest-timed workloads under nitro's tracing modes"};
    Options o;
    app.add_option("--guest", o.guest_dir, "Directory of the test guest (scripts/build-guest)");
    app.add_option("--reps", o.reps, "Boots per mode (the median is reported)");
    app.add_option("--runs", o.runs,
                   "Runs of each workload per boot (per half of a paired boot), splitting its "
                   "iterations; their median counts")
        ->check(CLI::Range(1, 50));
    app.add_option("--smp", o.smp, "vCPUs");
    app.add_option("--scale", o.scale, "Multiply the iteration counts");
    app.add_flag("--kaslr", o.kaslr,
                 "Boot the guest with KASLR (default: nokaslr, the same kernel layout in every "
                 "boot, for less variation between boots)");
    app.add_option("--out-dir", o.out_dir, "Where the traced modes write their event files");
    std::vector<std::string> modes = {"untraced", "trapsoff", "floor", "raw", "rawjson",
                                      "decoded",  "gdb",      "strace"};
    app.add_option("--modes", modes, "Modes to run: untraced trapsoff floor consume raw rawjson decoded gdb strace");
    app.add_option("--plugin-arg", o.plugin_args,
                   "Extra plugin arguments for the traced modes (e.g. direct=off, ring=BYTES)");
    std::vector<std::string> workloads = {"null", "file"};
    app.add_option("--workloads", workloads, "Workloads to run: null file");
    CLI11_PARSE(app, argc, argv);
    std::string self = std::filesystem::canonical("/proc/self/exe").parent_path();
    o.plugin = self + "/../libnitro-tcg.so";
    if (!std::filesystem::exists(o.plugin)) o.plugin = self + "/libnitro-tcg.so";

    std::vector<Workload> loads;
    for (const auto& w : workloads) {
        if (w == "null") loads.push_back({"null", 200000, 4000});
        else if (w == "file") loads.push_back({"file", 20000, 1000});
        else {
            std::fprintf(stderr, "unknown workload %s\n", w.c_str());
            return 2;
        }
    }
    std::vector<BenchMode> run_modes;
    for (const auto& m : modes) {
        if (m == "untraced") run_modes.push_back(BenchMode::Untraced);
        else if (m == "trapsoff") run_modes.push_back(BenchMode::TrapsOff);
        else if (m == "floor") run_modes.push_back(BenchMode::Floor);
        else if (m == "consume") run_modes.push_back(BenchMode::Consume);
        else if (m == "raw") run_modes.push_back(BenchMode::RawTrace);
        else if (m == "rawjson") run_modes.push_back(BenchMode::RawJson);
        else if (m == "decoded") run_modes.push_back(BenchMode::Decoded);
        else if (m == "gdb") run_modes.push_back(BenchMode::Gdb);
        else if (m == "strace") run_modes.push_back(BenchMode::Strace);
        else {
            std::fprintf(stderr, "unknown mode %s\n", m.c_str());
            return 2;
        }
    }
    if (std::find(run_modes.begin(), run_modes.end(), BenchMode::Untraced) == run_modes.end()) {
        run_modes.insert(run_modes.begin(), BenchMode::Untraced);  // the reference
    }
    try {
        std::map<BenchMode, std::map<std::string, std::vector<double>>> samples, ratios, halves;
        std::map<BenchMode, std::vector<double>> plugin_ns;
        std::map<BenchMode, uint64_t> events;
        std::map<BenchMode, int> boots;
        // Interleave the modes repetition by repetition so drift hits all of them alike.
        for (int rep = 0; rep < o.reps; rep++) {
            for (BenchMode m : run_modes) {
                auto r = run_once(o, m, loads, &events[m]);
                if (r.ns.empty() && is_paired(m)) continue;  // reported by run_once
                boots[m]++;
                if (r.plugin_ns > 0) plugin_ns[m].push_back(r.plugin_ns);
                for (const auto& w : loads) {
                    if (!r.ns.count(w.name) || (is_paired(m) && !r.untraced_half.count(w.name))) {
                        nitro::fail("workload {} printed no result in mode {}", w.name, mode_name(m));
                    }
                    samples[m][w.name].push_back(r.ns[w.name]);
                    if (is_paired(m)) {
                        halves[m][w.name].push_back(r.untraced_half[w.name]);
                        ratios[m][w.name].push_back(r.ns[w.name] / r.untraced_half[w.name]);
                    }
                }
                std::fprintf(stderr, "rep %d %-24s null %8.1f ns  file %8.1f ns", rep + 1,
                             mode_name(m), r.ns["null"], r.ns["file"]);
                if (is_paired(m)) {
                    std::fprintf(stderr, "  (untraced half: null %.1f ns, file %.1f ns)",
                                 r.untraced_half["null"], r.untraced_half["file"]);
                }
                std::fprintf(stderr, "\n");
            }
        }
        std::printf("\nguest-timed, median of %d boots, smp %d (ratio to untraced; traced modes: "
                    "median of the ratios to the untraced half of the same boot)\n",
                    o.reps, o.smp);
        // The range: the lowest and highest ratio of the boots (the host's noise, seen).
        std::printf("%-26s %10s %6s %11s %10s %6s %11s %9s %11s\n", "mode", "null ns/op", "ratio",
                    "range", "file ns/op", "ratio", "range", "ns/callb.", "events/boot");
        double base_null = median(samples[BenchMode::Untraced]["null"]);
        double base_file = median(samples[BenchMode::Untraced]["file"]);
        auto ratios_of = [&](BenchMode m, const std::string& w, double base) {
            if (is_paired(m)) return ratios[m][w];
            std::vector<double> r;
            for (double s : samples[m][w]) r.push_back(s / base);
            return r;
        };
        auto range = [](const std::vector<double>& v) {
            if (v.empty()) return std::string("-");
            auto [lo, hi] = std::minmax_element(v.begin(), v.end());
            return fmt::format("{:.2f}-{:.2f}", *lo, *hi);
        };
        for (BenchMode m : run_modes) {
            double n = median(samples[m]["null"]), f = median(samples[m]["file"]);
            const auto rn = ratios_of(m, "null", base_null), rf = ratios_of(m, "file", base_file);
            const std::string cb = plugin_ns[m].empty() ? "-" : fmt::format("{:.0f}", median(plugin_ns[m]));
            std::printf("%-26s %10.1f %6.2f %11s %10.1f %6.2f %11s %9s %11llu\n", mode_name(m), n,
                        median(rn), range(rn).c_str(), f, median(rf), range(rf).c_str(), cb.c_str(),
                        static_cast<unsigned long long>(boots[m] ? events[m] / boots[m] : 0));
        }
        for (BenchMode m : run_modes) {
            if (!is_paired(m)) continue;
            std::printf("  %s, untraced halves: null %.1f ns/op, file %.1f ns/op (%d boots)\n",
                        mode_name(m), median(halves[m]["null"]), median(halves[m]["file"]), boots[m]);
        }
    } catch (const nitro::Error& e) {
        std::fprintf(stderr, "nitro-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
