// SPDX-License-Identifier: MIT
// The plugin is passive until someone traces: with traps off from the start it registers no
// translation callback, so the guest runs as without it; set_traps(true) instruments (flushing
// QEMU's translated code at a vCPU's next resume from idle or translation) and every call after
// that is traced, exactly. Traps off later stop the events; the instrumentation stays (QEMU
// 10.0 cannot safely go back, see the plugin).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include <signal.h>

#include "listener/tcg/tcg_listener.h"
#include "vm/qemu_launcher.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kGettid = 186;
constexpr uint64_t kGetppid = 110;

// Per (address space, syscall number): entries, and exits paired with one of them.
struct Calls {
    std::map<std::pair<uint64_t, uint64_t>, int> entries, paired;
    // Entries and paired exits of nr in all address spaces.
    std::pair<int, int> total(uint64_t nr) const {
        std::pair<int, int> sum{0, 0};
        for (const auto& [key, n] : entries) {
            if (key.second != nr) continue;
            sum.first += n;
            auto it = paired.find(key);
            if (it != paired.end()) sum.second += it->second;
        }
        return sum;
    }
    // The busiest address space's count of nr.
    std::pair<int, int> busiest(uint64_t nr) const {
        std::pair<int, int> best{0, 0};
        for (const auto& [key, n] : entries) {
            if (key.second == nr && n > best.first) {
                auto it = paired.find(key);
                best = {n, it == paired.end() ? 0 : it->second};
            }
        }
        return best;
    }
};

// The test guest running cmd, with nitro's plugin, paused until the listener is attached.
vm::LaunchConfig guest_with_plugin(const std::string& cmd, int smp = 1) {
    vm::LaunchConfig cfg;
    cfg.kernel = guest_kernel();
    cfg.initrd = guest_initrd();
    cfg.smp = smp;
    cfg.append = "quiet nitro.run=\"" + cmd + "\"";
    cfg.plugin = (std::filesystem::path(NITRO_BINARY).parent_path() / "libnitro-tcg.so").string();
    cfg.start_paused = true;
    return cfg;
}

// Sets flag when the guest's console prints line.
std::function<void(const std::string&)> on_line(const char* text, std::atomic<bool>& flag) {
    return [text, &flag](const std::string& line) {
        if (line.find(text) != std::string::npos) flag = true;
    };
}

TEST(PassivePlugin, PassiveUntilTracedThenEveryCallIsTraced) {
    NITRO_REQUIRE_GUEST();
    std::atomic<bool> phase_a{false}, phase_b{false};
    // Each phase is announced on the console and followed by a pause: the test switches the
    // traps while the guest sleeps (its vCPUs go idle and resume).
    vm::LaunchConfig cfg = guest_with_plugin(
        "test_count getppid 1000 1; echo NITRO-TEST-A; sleep 3; test_count gettid 3000 2; "
        "echo NITRO-TEST-B; sleep 3; test_count getppid 700 1",
        2);
    auto a = on_line("NITRO-TEST-A", phase_a), b = on_line("NITRO-TEST-B", phase_b);
    cfg.console = [a, b](const std::string& line) {
        a(line);
        b(line);
    };
    vm::QemuLauncher vm(cfg);
    vm.start();
    tcg::TcgListener listener(vm.plugin_ctl_path(), tcg::TcgOptions{.traps = false});
    vm.resume();

    Calls calls;
    std::map<std::pair<unsigned, uint64_t>, std::pair<uint64_t, uint64_t>> open;  // -> key
    uint64_t events_before_a = 0, events_total = 0;
    bool instrumented_before_a = true, traps_on = false, traps_off_again = false;
    bool instrumented_during_b = false;
    tcg::TcgListener::ProducerStats at_b;
    Event ev;
    auto deadline = std::chrono::steady_clock::now() + 4min;
    while (std::chrono::steady_clock::now() < deadline) {
        if (phase_a && !traps_on) {
            auto p = listener.producer_stats();
            instrumented_before_a = p.instrumented;
            events_before_a = events_total;
            listener.set_traps(true);
            traps_on = true;
        }
        if (phase_b && !traps_off_again) {
            at_b = listener.producer_stats();
            listener.set_traps(false);
            traps_off_again = true;
        }
        auto s = listener.next(ev, 100ms);
        if (s == Listener::Status::End) break;
        if (s != Listener::Status::Event) continue;
        ++events_total;
        if (traps_on && !traps_off_again) instrumented_during_b = true;
        if (ev.compat || (ev.nr != kGettid && ev.nr != kGetppid)) continue;
        std::pair<uint64_t, uint64_t> key{ev.sregs.cr3 & ~0x1fffULL & ~(1ULL << 63), ev.nr};
        if (ev.direction == Direction::Enter) {
            calls.entries[key]++;
            open[{ev.vcpu, ev.seq}] = key;
        } else {
            auto it = open.find({ev.entry_vcpu, ev.entry_seq});
            if (it != open.end() && it->second == key) {
                calls.paired[key]++;
                open.erase(it);
            }
        }
    }
    auto end = listener.producer_stats();
    vm.wait();

    ASSERT_TRUE(phase_a && phase_b) << "the guest did not reach both phases";
    // Traps off from the start: nothing was instrumented and nothing traced.
    EXPECT_FALSE(instrumented_before_a);
    EXPECT_EQ(events_before_a, 0u);
    // Traps on: the instrumentation came back before test_count ran, and every call was seen.
    EXPECT_TRUE(instrumented_during_b);
    EXPECT_TRUE(at_b.instrumented);
    // (gettid: a call nothing else in the guest makes)
    EXPECT_EQ(calls.total(kGettid), std::make_pair(3000, 3000));
    // Neither getppid phase was traced: the first ran with traps off, the last after them
    // (the shell's own few getppid calls may be).
    EXPECT_LT(calls.busiest(kGetppid).first, 100);
    // Traps off again: events stopped, the instrumentation stayed; one flush in all.
    EXPECT_TRUE(end.instrumented);
    EXPECT_EQ(end.code_flushes, 1u);
}

// A guest that never idles (one vCPU in a loop of null calls): the switch happens at the next
// translation of any block; traps off and on again then take effect at once.
TEST(PassivePlugin, SwitchesInABusyGuest) {
    NITRO_REQUIRE_GUEST();
    std::atomic<bool> go{false};
    vm::LaunchConfig cfg = guest_with_plugin("echo NITRO-TEST-GO; bench_loop null 100000000");
    cfg.console = on_line("NITRO-TEST-GO", go);
    vm::QemuLauncher vm(cfg);
    vm.start();
    tcg::TcgListener listener(vm.plugin_ctl_path(), tcg::TcgOptions{.traps = false});
    vm.resume();
    auto until = [](auto pred, std::chrono::seconds limit) {
        auto t0 = std::chrono::steady_clock::now();
        while (!pred() && std::chrono::steady_clock::now() - t0 < limit) {
            std::this_thread::sleep_for(1ms);
        }
        return pred();
    };
    ASSERT_TRUE(until([&] { return go.load(); }, std::chrono::seconds(120)));
    std::this_thread::sleep_for(1s);  // the loop runs from translated code by now
    EXPECT_FALSE(listener.producer_stats().instrumented);
    for (int round = 0; round < 2; round++) {
        listener.set_traps(true);
        Event ev;
        uint64_t getppid_entries = 0;
        auto t0 = std::chrono::steady_clock::now();
        while (getppid_entries < 1000 && std::chrono::steady_clock::now() - t0 < 20s) {
            if (listener.next(ev, 10ms) == Listener::Status::Event && !ev.compat &&
                ev.nr == kGetppid && ev.direction == Direction::Enter) {
                ++getppid_entries;
            }
        }
        EXPECT_EQ(getppid_entries, 1000u) << "round " << round;
        EXPECT_TRUE(listener.producer_stats().instrumented);
        listener.set_traps(false);
        while (listener.next(ev, 100ms) == Listener::Status::Event) {
        }  // what the rings still hold from this round
    }
    EXPECT_EQ(listener.producer_stats().code_flushes, 1u);
    vm.stop();
}

// QEMU dying (here: killed by SIGSEGV, as a crash would) ends the listener within a second,
// also while its process is a zombie that nobody has reaped yet.
TEST(PluginLifecycle, CrashedQemuEndsTheListener) {
    NITRO_REQUIRE_GUEST();
    vm::QemuLauncher vm(guest_with_plugin("sleep 600"));
    vm.start();
    tcg::TcgListener listener(vm.plugin_ctl_path(), tcg::TcgOptions{});
    vm.resume();
    Event ev;
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 3s) listener.next(ev, 50ms);
    ASSERT_EQ(::kill(vm.pid(), SIGSEGV), 0);
    t0 = std::chrono::steady_clock::now();
    Listener::Status s = Listener::Status::Timeout;
    while (s != Listener::Status::End && std::chrono::steady_clock::now() - t0 < 10s) {
        s = listener.next(ev, 100ms);
    }
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(s, Listener::Status::End);
    EXPECT_EQ(listener.end_reason(), EndReason::QemuDied);
    EXPECT_LT(took, 2s);
}

}  // namespace
}  // namespace nitro::test
