// SPDX-License-Identifier: MIT
// Synchronous mode: each vCPU waits for nitro at every event; when nitro dies the guest must
// resume within a second. QEMU is started by the test (not by nitro, which would take QEMU
// down with it) and the listener runs in a child process that the test kills.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "listener/tcg/tcg_listener.h"
#include "vm/child_process.h"
#include "vm/qemu_launcher.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Clock = std::chrono::steady_clock;

TEST(SyncMode, GuestResumesWithinASecondWhenNitroIsKilled) {
    NITRO_REQUIRE_GUEST();
    std::mutex mu;
    std::vector<std::pair<Clock::time_point, std::string>> console;
    vm::LaunchConfig cfg;
    cfg.kernel = guest_kernel();
    cfg.initrd = guest_initrd();
    // A line of output per 2000 calls: a steady stream of events and of progress marks.
    std::string cmds;
    for (int i = 0; i < 40; i++) cmds += "test_count getppid 2000; ";
    cfg.append = "quiet nitro.run=\"" + cmds + "\"";
    cfg.plugin = NITRO_PLUGIN;
    cfg.start_paused = true;
    cfg.console = [&](const std::string& line) {
        std::lock_guard lock(mu);
        console.emplace_back(Clock::now(), line);
    };
    vm::QemuLauncher vm(cfg);
    vm.start();

    // The "nitro" that will be killed: this test binary again, running the ChildListener
    // test below, which attaches in sync mode and consumes slowly.
    setenv("NITRO_SYNC_CTL", vm.plugin_ctl_path().c_str(), 1);
    vm::ChildProcess child({"/proc/self/exe", "--gtest_filter=SyncMode.ChildListener"});
    unsetenv("NITRO_SYNC_CTL");  // for this process's own later tests
    std::string out;
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (out.find("ATTACHED") == std::string::npos && Clock::now() < deadline) {
        char buf[256];
        ssize_t n = read(child.stdout_fd(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ASSERT_NE(out.find("ATTACHED"), std::string::npos) << out;
    vm.resume();
    // Let the guest boot and complete one paced iteration (each takes ~2 s in sync mode).
    size_t lines_before = 0;
    for (auto until = Clock::now() + std::chrono::seconds(120); Clock::now() < until;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::lock_guard lock(mu);
        lines_before = console.size();
        if (lines_before && console.back().second.find("NITRO-RUN") != std::string::npos &&
            console.size() > 3) {
            break;
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // well inside an iteration
    auto killed_at = Clock::now();
    child.signal(SIGKILL);
    child.wait();

    vm::GuestEnd end = vm.wait();
    EXPECT_EQ(end, vm::GuestEnd::PowerOff);
    std::lock_guard lock(mu);
    // After the kill, the guest must print its next test_count line within a second of
    // un-paced running (a loop iteration takes well under 100 ms untraced).
    Clock::time_point first_after{};
    for (const auto& [t, line] : console) {
        if (t > killed_at && line.find("test_count: getppid x 2000") != std::string::npos) {
            first_after = t;
            break;
        }
    }
    ASSERT_NE(first_after, Clock::time_point{})
        << "the guest printed nothing after the kill (" << lines_before << " lines before, "
        << console.size() << " in all; last: " << (console.empty() ? "" : console.back().second)
        << ")";
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(first_after - killed_at);
    RecordProperty("resume_gap_ms", static_cast<int>(gap.count()));
    std::printf("guest resumed %lld ms after nitro was killed\n",
                static_cast<long long>(gap.count()));
    std::string timeline;
    for (const auto& [t, line] : console) {
        timeline +=
            std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(t - killed_at).count()) +
            " ms: " + line + "\n";
    }
    EXPECT_LT(gap.count(), 1000) << "guest stalled after nitro died\n" << timeline;
    EXPECT_GT(console.size(), lines_before);
    bool done = false;
    for (const auto& [t, line] : console) {
        if (line.find("NITRO-GUEST: done") != std::string::npos) done = true;
    }
    EXPECT_TRUE(done);
}

// Not a test of its own: the listener process of the test above (skipped when run directly).
TEST(SyncMode, ChildListener) {
    const char* ctl = getenv("NITRO_SYNC_CTL");
    if (!ctl)
        GTEST_SKIP() << "runs only as the child of GuestResumesWithinASecondWhenNitroIsKilled";
    tcg::TcgListener l(ctl, tcg::TcgOptions{.mode = Mode::Sync});
    std::printf("ATTACHED\n");
    std::fflush(stdout);
    Event ev;
    while (l.next(ev, std::chrono::milliseconds(100)) != Listener::Status::End) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));  // a slow consumer
    }
}

}  // namespace
}  // namespace nitro::test
