// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include "listener/tcg/time_base.h"

namespace nitro::tcg {
namespace {

TEST(TimeBase, UncalibratedGivesZero) {
    TimeBase tb;
    tb.tsc0 = 10;
    EXPECT_EQ(tb.host_ns(100), 0u);
    EXPECT_EQ(tb.guest_ns(100), 0u);
}

TEST(TimeBase, CalibratesFromTwoSamples) {
    TimeBase tb;
    tb.tsc0 = 1'000'000;
    tb.mono0_ns = 5'000'000'000;
    tb.real0_ns = 1'000'000'000'000'000'000ULL;
    tb.tsc_run0 = 2'000'000;
    // 3 GHz: 30 million ticks in 10 ms
    tb.calibrate(1'000'000 + 30'000'000, 5'000'000'000 + 10'000'000);
    EXPECT_NEAR(tb.ns_per_tick, 1.0 / 3.0, 1e-12);
    EXPECT_EQ(tb.host_ns(1'000'000 + 3'000'000), tb.real0_ns + 1'000'000);
    EXPECT_EQ(tb.guest_ns(2'000'000 + 3'000), 1000u);
    EXPECT_EQ(tb.guest_ns(1'500'000), 0u);  // before the first run
}

TEST(TimeBase, IgnoresSamplesTooCloseToTheStart) {
    TimeBase tb;
    tb.tsc0 = 1000;
    tb.mono0_ns = 1000;
    tb.calibrate(2000, 1000 + 500'000);  // 0.5 ms later: too imprecise
    EXPECT_EQ(tb.ns_per_tick, 0);
    tb.calibrate(500, 1000 + 5'000'000);  // TSC went backwards: not this host's TSC
    EXPECT_EQ(tb.ns_per_tick, 0);
}

TEST(TimeBase, CalibratesAgainstThisHost) {
    TimeBase tb;
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    tb.tsc0 = __builtin_ia32_rdtsc();
    tb.mono0_ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
    timespec pause{0, 5'000'000};
    nanosleep(&pause, nullptr);
    tb.calibrate_now();
    // Any x86 host TSC runs between 100 MHz and 10 GHz.
    EXPECT_GT(tb.ns_per_tick, 0.1);
    EXPECT_LT(tb.ns_per_tick, 10.0);
}

}  // namespace
}  // namespace nitro::tcg
