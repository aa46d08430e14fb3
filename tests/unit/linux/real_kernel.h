// SPDX-License-Identifier: MIT
// The real Debian kernel the guest tests boot (build/guest/vmlinuz), loaded once per test
// program; nullptr when scripts/build-guest has not run.
#pragma once

#include <filesystem>
#include <string>

#include "os/linux/kernel_profile.h"

namespace nitro::linux_os::test {

inline const std::string& real_kernel_path() {
    static const std::string p = std::string(NITRO_SOURCE_DIR) + "/build/guest/vmlinuz";
    return p;
}

inline const LoadedKernel* real_kernel() {
    static const LoadedKernel* k = []() -> const LoadedKernel* {
        if (!std::filesystem::exists(real_kernel_path())) return nullptr;
        return new LoadedKernel(load_kernel_file(real_kernel_path()));
    }();
    return k;
}

}  // namespace nitro::linux_os::test

#define REQUIRE_REAL_KERNEL()                                         \
    do {                                                              \
        if (!nitro::linux_os::test::real_kernel())                    \
            GTEST_SKIP() << nitro::linux_os::test::real_kernel_path() \
                         << " missing (run scripts/build-guest)";     \
    } while (0)
