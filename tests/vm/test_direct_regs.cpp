// SPDX-License-Identifier: MIT
// The plugin's in-place register reads against the real guest, through the C++ listener API:
// the register file is found on every vCPU, the events are exact and paired, the registers
// agree with a run that reads them through QEMU's API, and the event times are plausible.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "listener/tcg/tcg_listener.h"
#include "vm/qemu_launcher.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

constexpr uint64_t kGettid = 186;
constexpr int kCalls = 3000;

struct TraceRun {
    tcg::TcgListener::ProducerStats producer;
    // per address space: entries, exits paired with an entry of the same space
    std::map<uint64_t, std::pair<int, int>> counts;
    std::set<uint64_t> entry_rips, exit_rips;
    std::set<uint64_t> cs_at_entry;
    bool times_ordered = true;
    uint64_t first_guest_ns = 0, last_guest_ns = 0, last_host_ns = 0;
};

TraceRun trace_gettid(int smp, bool direct) {
    vm::LaunchConfig cfg;
    cfg.kernel = guest_kernel();
    cfg.initrd = guest_initrd();
    cfg.smp = smp;
    cfg.append = "quiet nitro.run=\"test_count gettid " + std::to_string(kCalls) + " " +
                 std::to_string(smp) + "\"";
    cfg.plugin = (std::filesystem::path(NITRO_BINARY).parent_path() / "libnitro-tcg.so").string();
    cfg.plugin_args = {direct ? "direct=on" : "direct=off"};
    cfg.start_paused = true;
    vm::QemuLauncher vm(cfg);
    vm.start();
    tcg::TcgListener listener(vm.plugin_ctl_path(), tcg::TcgOptions{});
    vm.resume();
    TraceRun run;
    std::map<std::pair<unsigned, uint64_t>, uint64_t> open;  // (vcpu, seq) -> space
    std::map<unsigned, uint64_t> last_guest_by_vcpu;
    Event ev;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
    while (std::chrono::steady_clock::now() < deadline) {
        auto s = listener.next(ev, std::chrono::milliseconds(200));
        if (s == Listener::Status::End) break;
        if (s != Listener::Status::Event) continue;
        if (ev.guest_time_ns < last_guest_by_vcpu[ev.vcpu]) run.times_ordered = false;
        last_guest_by_vcpu[ev.vcpu] = ev.guest_time_ns;
        if (!run.first_guest_ns) run.first_guest_ns = ev.guest_time_ns;
        run.last_guest_ns = ev.guest_time_ns;
        run.last_host_ns = ev.host_time_ns;
        if (ev.compat || ev.nr != kGettid) continue;
        uint64_t space = ev.sregs.cr3 & ~0x1fffULL & ~(1ULL << 63);
        if (ev.direction == Direction::Enter) {
            run.counts[space].first++;
            open[{ev.vcpu, ev.seq}] = space;
            run.entry_rips.insert(ev.regs.rip);
            run.cs_at_entry.insert(ev.sregs.cs);
        } else {
            auto it = open.find({ev.entry_vcpu, ev.entry_seq});
            if (it != open.end() && it->second == space) {
                run.counts[space].second++;
                open.erase(it);
            }
            run.exit_rips.insert(ev.regs.rip);
        }
    }
    run.producer = listener.producer_stats();
    vm.wait();
    return run;
}

// The address space of test_count: the one with the most gettid calls.
std::pair<int, int> busiest(const TraceRun& r) {
    std::pair<int, int> best{0, 0};
    for (const auto& [space, c] : r.counts) {
        if (c.first > best.first) best = c;
    }
    return best;
}

TEST(DirectRegs, FoundOnEveryVcpuAndEventsAgreeWithApiReads) {
    NITRO_REQUIRE_GUEST();
    TraceRun direct = trace_gettid(2, true);
    EXPECT_EQ(direct.producer.direct_vcpus, 0x3u) << "register file not used on both vCPUs";
    EXPECT_EQ(direct.producer.api_vcpus, 0u);
    EXPECT_EQ(busiest(direct), std::make_pair(kCalls, kCalls));

    TraceRun api = trace_gettid(2, false);
    EXPECT_EQ(api.producer.direct_vcpus, 0u);
    EXPECT_EQ(busiest(api), std::make_pair(kCalls, kCalls));

    // A static program: its syscall instructions and the kernel's return instructions are at
    // fixed addresses, whichever way the registers were read.
    EXPECT_EQ(direct.entry_rips, api.entry_rips);
    // The kernel moves by its KASLR slide (2 MiB aligned) from boot to boot.
    ASSERT_EQ(direct.exit_rips.size(), api.exit_rips.size());
    for (auto a = direct.exit_rips.begin(), b = api.exit_rips.begin(); a != direct.exit_rips.end();
         ++a, ++b) {
        EXPECT_EQ(*a & 0x1fffff, *b & 0x1fffff);
        EXPECT_TRUE(*a >> 63 && *b >> 63);
    }
    EXPECT_EQ(direct.cs_at_entry, std::set<uint64_t>({0x33}));
    EXPECT_EQ(api.cs_at_entry, std::set<uint64_t>({0x33}));
}

TEST(EventTimes, GuestAndHostTimesArePlausible) {
    NITRO_REQUIRE_GUEST();
    auto before = std::chrono::system_clock::now();
    TraceRun r = trace_gettid(1, true);
    auto after = std::chrono::system_clock::now();
    auto ns = [](auto t) {
        return static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
    };
    EXPECT_TRUE(r.times_ordered);
    // The first traced event comes after the kernel booted (over half a second of guest time
    // under TCG) and the whole run lasts less than the test's minutes.
    EXPECT_GT(r.first_guest_ns, 500'000'000u);
    EXPECT_LT(r.last_guest_ns, 180'000'000'000u);
    EXPECT_GT(r.last_guest_ns, r.first_guest_ns);
    EXPECT_GE(r.last_host_ns, ns(before));
    EXPECT_LE(r.last_host_ns, ns(after));
    EXPECT_GT(r.producer.callbacks, static_cast<uint64_t>(2 * kCalls));
    EXPECT_GT(r.producer.busy_ns, 0);
}

}  // namespace
}  // namespace nitro::test
