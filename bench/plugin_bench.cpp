// SPDX-License-Identifier: MIT
// nitro-plugin-bench: the plugin's own cost per event, outside QEMU (Google Benchmark).
//
// The plugin's source is linked into this program together with a stand-in for the part of
// QEMU's plugin API it calls (tests/unit/tcg/fake_qemu.h): registers come from a register file
// laid out like QEMU's x86 CPU state, so the plugin finds it and reads it in place as it does
// in QEMU. A real TcgListener on another thread consumes the events from the plugin's rings.
// Each iteration is one traced system call, its entry and its exit instruction "executed" the
// way QEMU calls an instrumented instruction's callback; the QEMU side (translation, the call
// from generated code) is not measured: nitro-bench measures the whole in the guest.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "fake_qemu.h"
#include "listener/tcg/tcg_listener.h"
#include "ram_file.h"
#include "nitro/event.h"

namespace {

using namespace nitro;

// The plugin on a fake QEMU's one vCPU, and a listener consuming on another thread.
class Harness {
public:
    Harness() {
        listener_ = std::make_unique<tcg::TcgListener>(qemu_.ctl_path(), tcg::TcgOptions{});
        qemu_.translate();
        consumer_ = std::thread([this] {
            Event ev;
            uint64_t n = 0;
            while (!stop_.load(std::memory_order_relaxed)) {
                if (listener_->next(ev, std::chrono::milliseconds(20)) == Listener::Status::Event) {
                    // Published now and then: a count stored at every event would move its
                    // cache line between the cores as often.
                    if (++n % 4096 == 0) consumed_.store(n, std::memory_order_relaxed);
                } else {
                    consumed_.store(n, std::memory_order_relaxed);
                }
            }
            consumed_.store(n);
        });
    }
    ~Harness() {
        stop_ = true;
        consumer_.join();
        listener_.reset();
    }

    void call(uint64_t nr, uint64_t arg0, uint64_t ret) {
        qemu_.call(nr, {arg0, 0, 0, 0, 0, 0}, ret);
        calls_++;
    }
    // The same call with the guest's own work around each callback: `bytes` of other memory
    // written (QEMU running the guest's kernel displaces the plugin's lines from the caches).
    void call_between_work(uint64_t nr, uint64_t arg0, uint64_t ret, size_t bytes) {
        qemu_.enter(nr, {arg0, 0, 0, 0, 0, 0});
        guest_work(bytes);
        qemu_.leave(ret);
        guest_work(bytes);
        calls_++;
    }
    // What decoded tracing adds (the Linux backend's configuration): the current task read at
    // each event from a RAM file and its fields copied where they may have changed, through
    // the kernel's direct map; guest memory read there too.
    void with_context() {
        if (ram_) return;
        constexpr uint64_t kRamSize = 1 << 20, kLinear = 0xffff888000000000ULL;
        constexpr uint64_t kCurrentTask = 0x2c0, kWordPhys = 0x8000, kTaskPhys = 0x40000;
        ram_ = std::make_unique<tcg::RamFile>(kRamSize);
        std::string task(0x50, '\0');
        const uint32_t ids[2] = {231, 231};
        std::memcpy(task.data() + 0x10, ids, 8);
        std::memcpy(task.data() + 0x20, "bench", 5);
        const uint64_t word = kLinear + kTaskPhys;
        const uint64_t kgs = fake::fake_cpu().truth[NITRO_REG_K_GS_BASE];
        ram_->put(kTaskPhys, task);
        ram_->put(kWordPhys, std::string(reinterpret_cast<const char*>(&word), 8));
        // QEMU's reads see the same (the plugin compares now and then).
        qemu_.map(kgs + kCurrentTask, std::string(reinterpret_cast<const char*>(&word), 8));
        qemu_.map(word, task);
        listener_->set_context_word(kCurrentTask);
        listener_->set_context_fields({{0x10, 8}, {0x20, 16}, {0x40, 8}, {0x48, 8}});
        listener_->set_context_in_ram(0, kgs, ram_->path(), kWordPhys);
        listener_->set_context_linear_map(kLinear, kRamSize);
        listener_->set_guest_ram(ram_->path(), kRamSize);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!listener_->producer_stats().ram_file_mapped && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    uint64_t calls() const { return calls_; }
    uint64_t consumed() const { return consumed_.load(); }
    tcg::TcgListener::ProducerStats producer_stats() { return listener_->producer_stats(); }

private:
    void guest_work(size_t bytes) {
        if (work_.size() < bytes) work_.resize(bytes);
        for (size_t i = 0; i < bytes; i += 64) work_[i]++;
        benchmark::DoNotOptimize(work_.data());
    }

    fake::FakeQemu qemu_;
    std::unique_ptr<tcg::RamFile> ram_;
    std::vector<uint8_t> work_;
    std::unique_ptr<tcg::TcgListener> listener_;
    std::thread consumer_;
    alignas(64) std::atomic<bool> stop_{false};
    std::atomic<uint64_t> consumed_{0};
    alignas(64) uint64_t calls_ = 0;
};

Harness& harness() {
    static Harness h;
    return h;
}

// A traced getppid-like call: entry and exit records written, consumed on another thread.
void BM_PluginTracedCall(benchmark::State& state) {
    Harness& h = harness();
    uint64_t i = 0;
    for (auto _ : state) h.call(110, i++, 1);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);  // events
    auto ps = h.producer_stats();
    state.counters["direct_regs"] = ps.direct_vcpus;
    state.counters["ns_per_callback"] = ps.callbacks ? ps.busy_ns / ps.callbacks : 0;
}
BENCHMARK(BM_PluginTracedCall);

// The same under cache pressure: the time of the guest's work is in the iteration time, the
// plugin's own time per callback is ns_per_callback (timed inside the callbacks).
void BM_PluginTracedCallColdCache(benchmark::State& state) {
    Harness& h = harness();
    uint64_t i = 0;
    const auto bytes = static_cast<size_t>(state.range(0));
    auto before = h.producer_stats();
    for (auto _ : state) h.call_between_work(110, i++, 1, bytes);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);
    auto after = h.producer_stats();
    const double n = static_cast<double>(after.callbacks - before.callbacks);
    state.counters["ns_per_callback"] = n > 0 ? (after.busy_ns - before.busy_ns) / n : 0;
}
BENCHMARK(BM_PluginTracedCallColdCache)->Arg(32 << 10)->Arg(256 << 10);

// The traced call with decoded tracing's configuration (Harness::with_context); runs last, the
// configuration stays.
void BM_PluginTracedCallWithContext(benchmark::State& state) {
    Harness& h = harness();
    h.with_context();
    auto before = h.producer_stats();
    uint64_t i = 0;
    for (auto _ : state) h.call(110, i++, 1);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);
    auto after = h.producer_stats();
    const double n = static_cast<double>(after.callbacks - before.callbacks);
    state.counters["ns_per_callback"] = n > 0 ? (after.busy_ns - before.busy_ns) / n : 0;
    state.counters["context_mismatches"] = after.context_mismatches;
}
BENCHMARK(BM_PluginTracedCallWithContext);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    // Lossless: every event the plugin wrote reached the consumer (it drains the rest first).
    Harness& h = harness();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (h.consumed() < 2 * h.calls() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("calls %llu, events consumed %llu\n", static_cast<unsigned long long>(h.calls()),
                static_cast<unsigned long long>(h.consumed()));
    return h.consumed() == 2 * h.calls() ? 0 : 1;
}
