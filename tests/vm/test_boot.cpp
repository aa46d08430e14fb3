// SPDX-License-Identifier: MIT
// Boots the real test guest with `nitro run` and checks each guest program's marker.
#include <gtest/gtest.h>

#include "vm_fixture.h"

namespace nitro::test {
namespace {

class GuestProgram : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(GuestProgram, RunsToItsMarker) {
    NITRO_REQUIRE_GUEST();
    auto [cmd, expect] = GetParam();
    std::vector<std::string> args = {"run"};
    auto g = guest_args(cmd);
    args.insert(args.end(), g.begin(), g.end());
    auto r = run_nitro(args, 120);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(expect), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string("NITRO-EXIT: status=0 cmd=") + cmd), std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("the guest powered off"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    TestGuest, GuestProgram,
    ::testing::Values(std::make_pair("test_open", "test_open: opened /proc/cpuinfo"),
                      std::make_pair("test_write", "test_write: wrote 12 bytes"),
                      std::make_pair("test_unlink", "test_unlink: removed /tmp/test_unlink.tmp"),
                      std::make_pair("test_count getppid 500 2",
                                     "test_count: getppid x 500 in 2 thread(s)"),
                      std::make_pair("test_open_32", "test_open: opened /proc/cpuinfo")),
    [](const auto& info) {
        std::string n = info.param.first;
        for (auto& c : n) {
            if (!isalnum(static_cast<unsigned char>(c))) c = '_';
        }
        return n;
    });

TEST(Run, FailingProgramGivesItsStatus) {
    NITRO_REQUIRE_GUEST();
    std::vector<std::string> args = {"run"};
    auto g = guest_args("test_count nosuch 1");
    args.insert(args.end(), g.begin(), g.end());
    auto r = run_nitro(args, 120);
    EXPECT_EQ(r.exit_code, 0) << r.err;  // the guest still powers off cleanly
    EXPECT_NE(r.out.find("NITRO-EXIT: status=2 cmd=test_count nosuch 1"), std::string::npos)
        << r.out;
}

TEST(Run, BadKernelPathIsOneLineError) {
    auto r = run_nitro({"run", "--kernel", "/nonexistent/vmlinuz"}, 30);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err, "nitro: kernel /nonexistent/vmlinuz: No such file or directory\n");
}

TEST(Run, BadAccelIsRejected) {
    auto r = run_nitro({"run", "--kernel", "/x", "--accel", "xen"}, 30);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--accel"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace nitro::test
