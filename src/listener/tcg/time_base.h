// SPDX-License-Identifier: MIT
// Converts the host TSC values of plugin records into host wall-clock time and guest time.
#pragma once

#include <cstdint>

#include "listener/tcg/ring_abi.h"

namespace nitro::tcg {

/// The plugin samples the host TSC with CLOCK_MONOTONIC and CLOCK_REALTIME at start and notes
/// the TSC when the vCPUs first ran. The TSC rate comes from that sample and a later one taken
/// by the consumer on the same host (calibrate()); conversions are exact up to that rate.
///
/// Guest time: under TCG (without icount) QEMU's virtual clock and the guest's TSC advance with
/// the host's TSC from the moment the vCPUs start, so the guest time of an event is the host
/// time elapsed since the first run. A VM paused in between (QMP stop/cont) is not accounted for.
struct TimeBase {
    uint64_t tsc0 = 0;       ///< plugin start: TSC
    uint64_t mono0_ns = 0;   ///< plugin start: CLOCK_MONOTONIC
    uint64_t real0_ns = 0;   ///< plugin start: CLOCK_REALTIME
    uint64_t tsc_run0 = 0;   ///< TSC when the vCPUs first ran (0 = not yet)
    double ns_per_tick = 0;  ///< 0 until calibrated

    static TimeBase from_ctl(const nitro_ctl& ctl);
    /// Derives the TSC rate from the start sample and (tsc_now, mono_now_ns); ignores samples
    /// too close to the start to be precise (< 1 ms).
    void calibrate(uint64_t tsc_now, uint64_t mono_now_ns);
    /// Calibrates against this host's clock now.
    void calibrate_now();
    /// Host CLOCK_REALTIME of a TSC value (0 if uncalibrated).
    uint64_t host_ns(uint64_t tsc) const;
    /// Nanoseconds of guest time since the vCPUs first ran (0 if unknown).
    uint64_t guest_ns(uint64_t tsc) const;
};

}  // namespace nitro::tcg
