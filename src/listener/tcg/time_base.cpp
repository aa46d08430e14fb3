// SPDX-License-Identifier: MIT
#include "listener/tcg/time_base.h"

#include <ctime>

namespace nitro::tcg {

TimeBase TimeBase::from_ctl(const nitro_ctl& ctl) {
    TimeBase t;
    t.tsc0 = __atomic_load_n(&ctl.tsc_at_start, __ATOMIC_ACQUIRE);
    t.mono0_ns = __atomic_load_n(&ctl.mono_ns_at_start, __ATOMIC_ACQUIRE);
    t.real0_ns = __atomic_load_n(&ctl.realtime_ns_at_start, __ATOMIC_ACQUIRE);
    t.tsc_run0 = __atomic_load_n(&ctl.tsc_at_first_run, __ATOMIC_ACQUIRE);
    return t;
}

void TimeBase::calibrate(uint64_t tsc_now, uint64_t mono_now_ns) {
    if (tsc_now <= tsc0 || mono_now_ns < mono0_ns + 1000000) return;
    ns_per_tick = static_cast<double>(mono_now_ns - mono0_ns) / static_cast<double>(tsc_now - tsc0);
}

void TimeBase::calibrate_now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t tsc = __builtin_ia32_rdtsc();
    calibrate(tsc, static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec));
}

uint64_t TimeBase::host_ns(uint64_t tsc) const {
    if (ns_per_tick <= 0) return 0;
    // The offset in double (small), the sum in integers (wall-clock ns exceed double's 53 bits).
    auto ticks = static_cast<int64_t>(tsc - tsc0);
    auto delta = static_cast<int64_t>(static_cast<double>(ticks) * ns_per_tick);
    if (delta < 0 && static_cast<uint64_t>(-delta) > real0_ns) return 0;
    return real0_ns + static_cast<uint64_t>(delta);
}

uint64_t TimeBase::guest_ns(uint64_t tsc) const {
    if (ns_per_tick <= 0 || tsc_run0 == 0 || tsc < tsc_run0) return 0;
    return static_cast<uint64_t>(static_cast<double>(tsc - tsc_run0) * ns_per_tick);
}

}  // namespace nitro::tcg
