// SPDX-License-Identifier: MIT
// Helpers for tests that boot the real test guest (build/guest, made by scripts/build-guest).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nitro::test {

struct CommandResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs the nitro binary under test with args; kills it after timeout_s seconds.
CommandResult run_nitro(const std::vector<std::string>& args, int timeout_s = 300);

/// Paths of the test guest; tests are skipped (with a reason) if it was not built.
std::string guest_kernel();
/// A second, newer kernel for the same guest (scripts/build-guest takes the newest cloud kernel
/// apt knows: bookworm-backports); empty when there is none.
std::string newer_guest_kernel();
std::string guest_initrd();
/// Arguments that boot the test guest running cmd (nitro.run=...).
/// kernel: another kernel image for the same guest (default: guest_kernel()).
std::vector<std::string> guest_args(const std::string& cmd, int smp = 1,
                                    const std::string& kernel = "");

/// Lines of text that contain needle.
int count_lines_with(const std::string& text, const std::string& needle);

}  // namespace nitro::test

#define NITRO_REQUIRE_GUEST()                                                     \
    do {                                                                          \
        if (nitro::test::guest_kernel().empty()) {                                \
            GTEST_SKIP() << "test guest not built: run scripts/build-guest first"; \
        }                                                                         \
    } while (0)
