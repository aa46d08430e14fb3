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

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "decode/strace_text.h"
#include "listener/tcg/ring_reader.h"
#include "os/linux/backend.h"
#include "os/linux/process.h"
#include "output/syscall_json.h"
#include "synthetic_guest.h"

namespace {

using nitro::CaptureKind;
using nitro::Event;
using nitro::test::SyntheticGuest;

constexpr unsigned kVcpus = 4;

// NITRO_BENCH_ITERATIONS=N runs every benchmark exactly N iterations, once: for counting
// instructions per event under callgrind (without it, the trial runs that size the measured
// one would be counted too).
void fixed_iterations(benchmark::internal::Benchmark* b) {
    if (const char* n = std::getenv("NITRO_BENCH_ITERATIONS")) {
        if (const long v = std::strtol(n, nullptr, 10); v > 0) b->Iterations(v);
    }
}
constexpr std::uint64_t kAtFdcwd = static_cast<std::uint64_t>(-100);

struct Stream {
    SyntheticGuest guest;
    std::vector<Event> events;
};

// The registers a real event carries (the synthetic guest sets only the ones decoding needs):
// user-space pointers and counters that vary from call to call, and the control registers and
// selectors of a 64-bit Linux process. They are in every jsonl record.
void user_registers(Event& e, unsigned vcpu, int round) {
    const std::uint64_t v = vcpu, r = static_cast<std::uint64_t>(round);
    e.regs.rdi = e.args[0];
    e.regs.rsi = e.args[1];
    e.regs.rdx = e.args[2];
    e.regs.r10 = e.args[3];
    e.regs.r8 = e.args[4];
    e.regs.r9 = e.args[5];
    e.regs.rip = 0x7f3a12e4a000ULL + v * 0x100000 + e.nr * 0x40;
    e.regs.rcx = e.regs.rip;
    e.regs.r11 = e.regs.rflags = 0x246;
    e.regs.rsp = 0x7ffc9a3c1000ULL + v * 0x10000 - r * 0x40;
    e.regs.rbp = e.regs.rsp + 0x90;
    e.regs.rbx = 0x55d41c2e7000ULL + v * 0x1000 + r * 8;
    e.regs.r12 = 0x55d41c2e5a20ULL + v * 0x1000;
    e.regs.r13 = 0x7ffc9a3c2f08ULL + v * 0x10000;
    e.regs.r14 = r;
    e.regs.r15 = 0x7f3a12f8b020ULL + v * 0x100000;
    e.sregs.cr0 = 0x80050033;
    e.sregs.cr4 = 0x3506f0;
    e.sregs.efer = 0xd01;
    e.sregs.fs_base = 0x7f3a12d6f740ULL + v * 0x100000;
    e.sregs.cs = 0x33;
    e.sregs.ss = 0x2b;
    e.host_time_ns = 1795000000000000000ULL + r * 1000003 + v * 7919;
    e.guest_time_ns = 4000000000ULL + r * 999983 + v * 7907;
}

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
        int round = 0;
        auto pair = [&](Event in, std::int64_t ret, auto&& add_exit_captures) {
            user_registers(in, in.vcpu, round);
            Event out = g.exit_of(in, ret);
            out.host_time_ns += 420;
            out.guest_time_ns += 400;
            add_exit_captures(out);
            ev.push_back(std::move(in));
            ev.push_back(std::move(out));
        };
        auto none = [](Event&) {};
        for (round = 0; round < 32; ++round) {
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

// The listener's part: the plugin's records (as it writes them: the registers that define the
// call, captures after them) read from a ring and turned into Events (RingReader::pop).
void BM_RingRecords(benchmark::State& state) {
    Stream& s = stream();
    constexpr uint32_t kRing = 1u << 20;
    std::vector<uint8_t> data(kRing);
    nitro_ring ring{};
    uint64_t end = 0;
    for (const Event& e : s.events) {
        const uint64_t regs[NITRO_NREGS] = {
            e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx, e.regs.rsi, e.regs.rdi, e.regs.rbp,
            e.regs.rsp, e.regs.r8, e.regs.r9, e.regs.r10, e.regs.r11, e.regs.r12, e.regs.r13,
            e.regs.r14, e.regs.r15, e.regs.rip, e.regs.rflags, e.sregs.cs, e.sregs.ss,
            e.sregs.fs_base, e.sregs.gs_base, e.sregs.kernel_gs_base, e.sregs.cr0, e.sregs.cr3,
            e.sregs.cr4, e.sregs.efer};
        constexpr auto R = [](int r) { return 1u << r; };
        uint32_t mask = R(NITRO_REG_RAX) | R(NITRO_REG_RSP) | R(NITRO_REG_RIP) | R(NITRO_REG_RCX) |
                        R(NITRO_REG_R11) | R(NITRO_REG_CS) | R(NITRO_REG_CR3) |
                        R(NITRO_REG_FS_BASE) | R(NITRO_REG_GS_BASE) | R(NITRO_REG_K_GS_BASE);
        if (e.direction == nitro::Direction::Enter) {
            mask |= R(NITRO_REG_RDI) | R(NITRO_REG_RSI) | R(NITRO_REG_RDX) | R(NITRO_REG_R10) |
                    R(NITRO_REG_R8) | R(NITRO_REG_R9);
        }
        nitro_record r{};
        r.kind = NITRO_REC_EVENT;
        r.type = static_cast<uint8_t>(e.type);
        r.direction = static_cast<uint8_t>(e.direction);
        r.vcpu = e.vcpu;
        r.seq = e.seq;
        r.entry_seq = e.entry_seq;
        r.nr = e.nr;
        r.context = e.context;
        std::memcpy(r.args, e.args.data(), sizeof r.args);
        r.regmask = mask;
        r.ncaptures = static_cast<uint8_t>(e.captures.size());
        std::vector<uint8_t> rec(sizeof r);
        for (int i = 0; i < NITRO_NREGS; i++) {
            if (!(mask >> i & 1)) continue;
            rec.resize(rec.size() + 8);
            std::memcpy(rec.data() + rec.size() - 8, &regs[i], 8);
        }
        for (const auto& c : e.captures) {
            nitro_capture_hdr h{c.arg, static_cast<uint8_t>(c.kind), static_cast<uint8_t>(c.status),
                                0, static_cast<uint32_t>(c.data.size())};
            size_t at = rec.size();
            rec.resize(at + sizeof h + ((c.data.size() + 7) & ~size_t{7}));
            std::memcpy(rec.data() + at, &h, sizeof h);
            std::memcpy(rec.data() + at + sizeof h, c.data.data(), c.data.size());
        }
        r.size = static_cast<uint32_t>(rec.size());
        std::memcpy(rec.data(), &r, sizeof r);
        if (end + rec.size() > kRing) break;
        std::memcpy(data.data() + end, rec.data(), rec.size());
        end += rec.size();
    }
    Event ev;
    auto reader = std::make_unique<nitro::tcg::RingReader>(&ring, data.data(), kRing);
    ring.head = end;
    for (auto _ : state) {
        if (!reader->pop(ev)) {  // a lap done: read the same records again
            ring.tail = 0;
            reader = std::make_unique<nitro::tcg::RingReader>(&ring, data.data(), kRing);
            reader->pop(ev);
        }
        benchmark::DoNotOptimize(ev);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_RingRecords)->Apply(fixed_iterations);

// Runs f(i) on the stream's events in turn, one event per benchmark iteration (items are
// events).
template <typename F>
void each_event(benchmark::State& state, const std::vector<Event>& events, F&& f) {
    std::size_t i = 0;
    for (auto _ : state) {
        f(i);
        if (++i == events.size()) i = 0;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Decoding only: process, name, arguments, return value, into one Syscall reused from event to
// event (LinuxBackend::process_event_into, as `nitro trace` does).
void BM_Decode(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    nitro::Syscall sc;
    each_event(state, s.events, [&](std::size_t i) {
        backend.process_event_into(s.events[i], sc);
        benchmark::DoNotOptimize(sc);
    });
}
BENCHMARK(BM_Decode)->Apply(fixed_iterations);

// The same with a new Syscall per event (Backend::process_event, the library API).
void BM_DecodeByValue(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    each_event(state, s.events, [&](std::size_t i) {
        nitro::Syscall sc = backend.process_event(s.events[i]);
        benchmark::DoNotOptimize(sc);
    });
}
BENCHMARK(BM_DecodeByValue)->Apply(fixed_iterations);

// Stages alone, for a per-stage cost (ns/event): the process lookup, and the jsonl formatting
// of calls decoded beforehand.
void BM_ProcessLookup(benchmark::State& state) {
    Stream& s = stream();
    const nitro::linux_os::KernelProfile profile = SyntheticGuest::profile();
    nitro::linux_os::ProcessReader reader(*s.guest.memory(), profile);
    each_event(state, s.events, [&](std::size_t i) {
        nitro::Process p = reader.current(s.events[i]);
        benchmark::DoNotOptimize(p);
    });
}
BENCHMARK(BM_ProcessLookup)->Apply(fixed_iterations);

void BM_FormatJsonl(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    std::vector<nitro::Syscall> decoded;
    decoded.reserve(s.events.size());
    for (const Event& ev : s.events) decoded.push_back(backend.process_event(ev));
    std::string out;
    each_event(state, s.events, [&](std::size_t i) {
        out.clear();
        nitro::output::append_syscall_record(out, s.events[i], decoded[i]);
        benchmark::DoNotOptimize(out.data());
    });
}
BENCHMARK(BM_FormatJsonl)->Apply(fixed_iterations);

// The whole pipeline with jsonl records, as `nitro trace --format jsonl` (without the write);
// bytes are the records' sizes.
void jsonl_pipeline(benchmark::State& state, nitro::linux_os::LinuxBackend& backend) {
    Stream& s = stream();
    std::string out;
    nitro::Syscall sc;
    std::size_t bytes = 0;
    each_event(state, s.events, [&](std::size_t i) {
        backend.process_event_into(s.events[i], sc);
        out.clear();
        nitro::output::append_syscall_record(out, s.events[i], sc);
        bytes += out.size();
        benchmark::DoNotOptimize(out.data());
    });
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void BM_PipelineJsonl(benchmark::State& state) {
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), stream().guest.memory());
    jsonl_pipeline(state, backend);
}
BENCHMARK(BM_PipelineJsonl)->Apply(fixed_iterations);

// The whole pipeline with strace-like text, as `nitro trace` (without the write).
void BM_PipelineText(benchmark::State& state) {
    Stream& s = stream();
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), s.guest.memory());
    nitro::decode::StraceText text;
    std::string out;
    nitro::Syscall sc;
    each_event(state, s.events, [&](std::size_t i) {
        backend.process_event_into(s.events[i], sc);
        out.clear();
        text.feed(s.events[i], sc, out);
        benchmark::DoNotOptimize(out.data());
    });
}
BENCHMARK(BM_PipelineText)->Apply(fixed_iterations);

// A hook on every openat (reads its path) on top of the jsonl pipeline.
void BM_PipelineJsonlWithHook(benchmark::State& state) {
    nitro::linux_os::LinuxBackend backend(SyntheticGuest::profile(), stream().guest.memory());
    std::size_t paths = 0;
    backend.define_hook("openat", [&](nitro::Syscall&, nitro::ArgumentMap& args) {
        paths += args.read_string(1).value_or("").size();
    });
    jsonl_pipeline(state, backend);
    benchmark::DoNotOptimize(paths);
}
BENCHMARK(BM_PipelineJsonlWithHook)->Apply(fixed_iterations);

}  // namespace

BENCHMARK_MAIN();
