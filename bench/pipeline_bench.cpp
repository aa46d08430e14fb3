// SPDX-License-Identifier: MIT
// nitro-pipeline-bench: the analysis pipeline alone -- process lookup, naming, argument
// decoding and jsonl formatting, as `nitro trace --format jsonl` runs them -- on a synthetic
// event stream with synthetic guest memory (page tables, per-CPU areas, task_structs, user
// strings) and the captures the TCG listener makes in asynchronous mode. No guest runs.
//
// The stream mixes the calls of the guest benchmarks and test programs: openat with a path,
// read with the bytes read, write, getppid, mmap, close, each entry followed by its exit,
// from several processes on several vCPUs. items_per_second is events per second.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "decode/strace_text.h"
#include "os/linux/backend.h"
#include "output/syscall_json.h"
#include "synthetic_guest.h"

namespace {

using nitro::CaptureKind;
using nitro::Event;
using nitro::test::SyntheticGuest;

constexpr unsigned kVcpus = 4;
constexpr std::uint64_t kAtFdcwd = static_cast<std::uint64_t>(-100);

struct Stream {
    SyntheticGuest guest;
    std::vector<Event> events;
};

// A few hundred calls, one process per vCPU, each with its own strings and buffers.
Stream& stream() {
    static Stream s = [] {
        Stream st;
        SyntheticGuest& g = st.guest;
        const std::uint64_t init = g.add_task(0, 1, 1, "init", 0);
        const char* names[kVcpus] = {"test_open", "bench_loop", "sh", "test_write"};
        for (unsigned v = 0; v < kVcpus; ++v) {
            g.set_current(v, g.add_task(1 + v, 200 + static_cast<int>(v), 200 + static_cast<int>(v),
                                        names[v], init));
        }
        const std::uint64_t path = SyntheticGuest::kUserBase + 0x100;
        const std::uint64_t buf = SyntheticGuest::kUserBase + 0x2000;
        const std::string path_text = "/usr/share/zoneinfo/Europe/Berlin";
        const std::string read_data =
            "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n";
        const std::string write_data = "Hello World!\n";
        g.write_user(path, path_text + '\0');
        g.write_user(buf, read_data);
        auto& ev = st.events;
        ev.reserve(1024);
        auto pair = [&](Event in, std::int64_t ret, auto&& add_exit_captures) {
            Event out = g.exit_of(in, ret);
            add_exit_captures(out);
            ev.push_back(std::move(in));
            ev.push_back(std::move(out));
        };
        auto none = [](Event&) {};
        for (int round = 0; round < 32; ++round) {
            for (unsigned v = 0; v < kVcpus; ++v) {
                Event open = g.enter(v, 257, {kAtFdcwd, path, 02000000 /* O_CLOEXEC */, 0, 0, 0});
                SyntheticGuest::add_capture(open, 1, CaptureKind::CString, path_text);
                pair(std::move(open), 3, none);

                Event rd = g.enter(v, 0, {3, buf, 4096, 0, 0, 0});
                pair(std::move(rd), static_cast<std::int64_t>(read_data.size()), [&](Event& e) {
                    SyntheticGuest::add_capture(e, 1, CaptureKind::BufRet, read_data);
                });

                Event wr = g.enter(v, 1, {1, buf, write_data.size(), 0, 0, 0});
                SyntheticGuest::add_capture(wr, 1, CaptureKind::BufLenArg, write_data);
                pair(std::move(wr), static_cast<std::int64_t>(write_data.size()), none);

                pair(g.enter(v, 110, {}), 1, none);  // getppid

                Event mm = g.enter(
                    v, 9,
                    {0, 8192, 3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */,
                     static_cast<std::uint64_t>(-1), 0});
                pair(std::move(mm), 0x7f3a12345000, none);

                pair(g.enter(v, 3, {3, 0, 0, 0, 0, 0}), 0, none);  // close
            }
        }
        return st;
    }();
    return s;
}

// Decoding only: process, name, arguments, return value.
void BM_Decode(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    std::size_t i = 0;
    for (auto _ : state) {
        nitro::Syscall sc = backend.process_event(s.events[i]);
        benchmark::DoNotOptimize(sc);
        if (++i == s.events.size()) i = 0;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Decode);

// The whole pipeline with jsonl records, as `nitro trace --format jsonl` (without the write).
void BM_PipelineJsonl(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    std::string out;
    std::size_t i = 0, bytes = 0;
    for (auto _ : state) {
        const Event& ev = s.events[i];
        nitro::Syscall sc = backend.process_event(ev);
        out.clear();
        nitro::output::append_syscall_record(out, ev, sc);
        bytes += out.size();
        benchmark::DoNotOptimize(out.data());
        if (++i == s.events.size()) i = 0;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_PipelineJsonl);

// The whole pipeline with strace-like text, as `nitro trace` (without the write).
void BM_PipelineText(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    nitro::decode::StraceText text;
    std::string out;
    std::size_t i = 0;
    for (auto _ : state) {
        const Event& ev = s.events[i];
        nitro::Syscall sc = backend.process_event(ev);
        out.clear();
        text.feed(ev, sc, out);
        benchmark::DoNotOptimize(out.data());
        if (++i == s.events.size()) i = 0;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_PipelineText);

// A hook on every openat (reads its path) on top of the jsonl pipeline.
void BM_PipelineJsonlWithHook(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    std::size_t paths = 0;
    backend.define_hook("openat", [&](nitro::Syscall&, nitro::ArgumentMap& args) {
        paths += args.read_string(1).value_or("").size();
    });
    std::string out;
    std::size_t i = 0;
    for (auto _ : state) {
        const Event& ev = s.events[i];
        nitro::Syscall sc = backend.process_event(ev);
        out.clear();
        nitro::output::append_syscall_record(out, ev, sc);
        benchmark::DoNotOptimize(out.data());
        if (++i == s.events.size()) i = 0;
    }
    benchmark::DoNotOptimize(paths);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_PipelineJsonlWithHook);

}  // namespace

BENCHMARK_MAIN();
