// SPDX-License-Identifier: MIT
// A consumer that falls behind: in the lossless mode the vCPU waits for room when its ring is
// full, loses nothing, and counts each wait (ProducerStats::full_waits, shown by --stats and
// nitro-bench: the guest paid for a slow consumer). The plugin's own code on a fake QEMU
// (fake_qemu.h), its own process (the plugin keeps process-wide state).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "fake_qemu.h"
#include "listener/tcg/tcg_listener.h"

namespace nitro::tcg {
namespace {

TEST(PluginFullRing, TheVcpuWaitsCountsTheWaitAndLosesNothing) {
    fake::FakeQemu qemu("ring=65536");  // the smallest ring: a few hundred calls fill it
    TcgListener listener(qemu.ctl_path(), TcgOptions{.mode = Mode::Async});
    qemu.translate();
    EXPECT_EQ(listener.producer_stats().full_waits, 0u);

    constexpr uint64_t kCalls = 2000;
    std::atomic<uint64_t> made{0};
    std::thread vcpu([&] {
        for (uint64_t i = 0; i < kCalls; i++) {
            qemu.call(39, {i, 0, 0, 0, 0, 0}, 100 + i);
            made.store(i + 1);
        }
    });
    // Nobody reads: the vCPU stops at a full ring, far short of its calls.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const uint64_t stalled_at = made.load();
    EXPECT_LT(stalled_at, kCalls);
    EXPECT_GE(listener.producer_stats().full_waits, 1u);

    // Reading frees room; every call arrives, in order, entry then exit.
    Event ev;
    uint64_t entries = 0, exits = 0;
    while (entries + exits < 2 * kCalls &&
           listener.next(ev, std::chrono::seconds(5)) == Listener::Status::Event) {
        if (ev.direction == Direction::Enter) {
            EXPECT_EQ(ev.regs.rdi, entries);
            ++entries;
        } else {
            EXPECT_EQ(ev.regs.rax, 100 + exits);
            ++exits;
        }
    }
    vcpu.join();
    EXPECT_EQ(entries, kCalls);
    EXPECT_EQ(exits, kCalls);
    EXPECT_EQ(listener.stats().dropped, 0u);
    const uint64_t waits = listener.producer_stats().full_waits;
    EXPECT_GE(waits, 1u);
    // Each wait is one stop at a full ring, not one per record: far fewer than the calls.
    EXPECT_LT(waits, kCalls);
    std::printf("stalled after %llu calls; %llu waits for room\n",
                static_cast<unsigned long long>(stalled_at), static_cast<unsigned long long>(waits));
}

}  // namespace
}  // namespace nitro::tcg
