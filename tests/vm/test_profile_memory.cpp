// SPDX-License-Identifier: MIT
// The kernel profile from guest memory alone: boot the test guest (QEMU needs the kernel to
// boot it; nitro's profile code is never given it), build the profile from the guest's RAM at
// its first event, and decode test_open's openat("/proc/cpuinfo") with it: process name, pid
// and the fd the guest itself printed; list the tasks, a two-threaded program's threads among
// them. A second build comes from the profile cache. On the guest's kernel (Debian 12's 6.1)
// and, when scripts/build-guest found one, a newer one (6.12: threads listed through
// signal_struct.thread_head since 6.6).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <regex>

#include "listener/tcg/tcg_listener.h"
#include "os/linux/backend.h"
#include "os/linux/profile_source.h"
#include "os/linux/task_list.h"
#include "vm/qemu_launcher.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct CacheDir {
    std::string path =
        (fs::temp_directory_path() / ("nitro-test-profile-memory-" + std::to_string(getpid())))
            .string();
    ~CacheDir() { fs::remove_all(path); }
};

class ProfileFromMemory : public ::testing::TestWithParam<std::string> {};

TEST_P(ProfileFromMemory, DecodesTestOpenWithoutTheKernelImage) {
    NITRO_REQUIRE_GUEST();
    const std::string kernel_image = GetParam() == "newer" ? newer_guest_kernel() : guest_kernel();
    if (kernel_image.empty()) {
        GTEST_SKIP() << "no newer kernel: scripts/build-guest found none in apt (bookworm-backports)";
    }
    CacheDir cache;
    std::mutex mu;
    std::string console;
    vm::LaunchConfig cfg;
    cfg.kernel = kernel_image;
    cfg.initrd = guest_initrd();
    cfg.append = "quiet nitro.run=\"test_open; test_count gettid 20000 2\"";
    cfg.plugin = NITRO_PLUGIN;
    cfg.start_paused = true;
    cfg.console = [&](const std::string& line) {
        std::lock_guard lock(mu);
        console += line + "\n";
    };
    vm::QemuLauncher vm(cfg);  // stops QEMU and removes its files however the test ends
    vm.start();

    tcg::TcgListener listener(vm.plugin_ctl_path(), tcg::TcgOptions{.mode = Mode::Async});
    {
        // The capture rules do not depend on the profile: send them before the guest runs.
        linux_os::LinuxBackend rules(linux_os::KernelProfile{},
                                     std::make_shared<BufferPhysicalMemory>(4096));
        rules.attach(listener);
    }
    vm.resume();

    const auto deadline = Clock::now() + std::chrono::seconds(50);
    Event ev;
    Listener::Status s = Listener::Status::Timeout;
    while (Clock::now() < deadline &&
           (s = listener.next(ev, std::chrono::milliseconds(200))) == Listener::Status::Timeout) {
    }
    ASSERT_EQ(s, Listener::Status::Event) << "no event from the guest";

    // The profile, from guest memory and the first event's registers only.
    linux_os::GuestMemory memory = linux_os::open_guest_memory(vm.memory_path(), vm.memory_size());
    linux_os::ProfileOptions options;
    options.cache_dir = cache.path;
    ASSERT_TRUE(options.kernel_image.empty() && options.profile_file.empty());
    const linux_os::ResolvedProfile cold = linux_os::resolve_profile(options, &memory, &ev);
    EXPECT_EQ(cold.source, "guest memory");
    EXPECT_FALSE(cold.from_cache);
    EXPECT_EQ(cold.profile.release.rfind("6.", 0), 0u) << cold.profile.release;
    EXPECT_EQ(cold.profile.build_id.size(), 40u);
    EXPECT_TRUE(cold.profile.symbols.count("init_task"));
    EXPECT_TRUE(cold.location.slide_known);
    EXPECT_TRUE(cold.location.init_task_verified);
    uint64_t populated = 0;
    for (const auto& r : memory.ranges) populated += r.size;
    std::printf(
        "profile from guest memory: %.1f ms (%zu symbols kept, slide %#llx from %s, %llu of %llu "
        "MiB of RAM populated)\n",
        cold.ms, cold.profile.symbols.size(), static_cast<unsigned long long>(cold.location.slide),
        cold.location.slide_source.c_str(), static_cast<unsigned long long>(populated >> 20),
        static_cast<unsigned long long>(vm.memory_size() >> 20));
    RecordProperty("profile_from_memory_ms", static_cast<int>(cold.ms));
    ASSERT_TRUE(cold.memory_timings);
    std::printf("  vmcoreinfo %.1f ms, BTF scan and parse %.1f ms, kallsyms %.1f ms\n",
                cold.memory_timings->vmcoreinfo_ms, cold.memory_timings->btf_ms,
                cold.memory_timings->kallsyms_ms);

    // All tasks, from init_task through the kernel's own page tables (vmcoreinfo's
    // swapper_pg_dir): the slide, the symbols and the layouts agree.
    ASSERT_TRUE(cold.location.kernel_paging && cold.location.init_task);
    AddressSpace kernel(*memory.memory, *cold.location.kernel_paging);
    const linux_os::TaskList tasks =
        linux_os::list_tasks(kernel, cold.profile, *cold.location.init_task);
    bool init_seen = false;
    for (const auto& t : tasks.tasks) init_seen |= t.pid == 1 && t.tgid == 1;
    EXPECT_TRUE(init_seen) << tasks.error;
    ASSERT_FALSE(tasks.tasks.empty());
    EXPECT_EQ(tasks.tasks[0].comm.rfind("swapper", 0), 0u) << tasks.tasks[0].comm;
    std::printf("%zu tasks listed from init_task%s\n", tasks.tasks.size(),
                tasks.corrupt ? " (list changed under the walk)" : "");

    // The one-call form (default cache directory, here redirected) answers from the cache.
    setenv("NITRO_CACHE_DIR", cache.path.c_str(), 1);
    auto opened = linux_os::LinuxBackend::open_from_memory(vm.memory_path(), vm.memory_size(), &ev);
    unsetenv("NITRO_CACHE_DIR");
    EXPECT_EQ(nlohmann::json(opened->profile()), nlohmann::json(cold.profile));

    // Attached again with the profile, as nitro's command line does: the plugin now copies
    // the current task at each event (the context word), so that the calls made while nitro
    // catches up are still attributed to the task that made them, not the one running now.
    linux_os::LinuxBackend backend(cold.profile, memory.memory);
    backend.attach(listener);
    std::string open_ret, open_pid, tid_ret, seen;
    int events = 0, unnamed = 0;
    // test_count's threads as the task list shows them, while its second thread runs.
    std::vector<linux_os::TaskEntry> counting;
    int64_t counting_pid = 0, counting_tid = 0;
    std::string counting_error = "no event from a thread of test_count";
    for (;;) {
        if (s == Listener::Status::Event) {
            const Syscall sc = backend.process_event(ev);
            ++events;
            if (!sc.process.valid) ++unnamed;
            if (counting.empty() && sc.process.valid && sc.process.name == "test_count" &&
                sc.process.tid != sc.process.pid && sc.name == "gettid") {
                const linux_os::TaskList now =
                    linux_os::list_tasks(kernel, cold.profile, *cold.location.init_task);
                counting_error = now.error;
                counting_pid = sc.process.pid;
                counting_tid = sc.process.tid;
                for (const auto& t : now.tasks) {
                    if (t.tgid == static_cast<int32_t>(sc.process.pid)) counting.push_back(t);
                }
            }
            if (sc.process.valid && sc.process.name == "test_open") {
                // What test_open did, for the failure message.
                seen += fmt::format("{} {} {}(", sc.direction == Direction::Exit ? "exit" : "enter",
                                    sc.process.pid, sc.name);
                for (const auto& a : sc.args) seen += a.text + ", ";
                seen += sc.ret ? fmt::format(") = {}\n", *sc.ret) : std::string(")\n");
            }
            if (sc.direction == Direction::Exit && sc.process.valid &&
                sc.process.name == "test_open" && sc.ret) {
                if (sc.name == "openat" && sc.args.size() > 1 &&
                    sc.args[1].text == "\"/proc/cpuinfo\"") {
                    open_ret = std::to_string(*sc.ret);
                    open_pid = std::to_string(sc.process.pid);
                }
                if (sc.name == "set_tid_address") tid_ret = std::to_string(*sc.ret);
            }
        }
        if (s == Listener::Status::End || Clock::now() > deadline) break;
        s = listener.next(ev, std::chrono::milliseconds(200));
    }
    EXPECT_EQ(vm.wait(), vm::GuestEnd::PowerOff);
    std::smatch m;
    std::string out;
    {
        std::lock_guard lock(mu);
        out = console;
    }
    ASSERT_TRUE(
        std::regex_search(out, m, std::regex("test_open: opened /proc/cpuinfo as fd ([0-9]+)")))
        << out;
    EXPECT_EQ(open_ret, m[1]) << "openat(\"/proc/cpuinfo\") by test_open not decoded:\n" << seen;
    EXPECT_FALSE(open_pid.empty());
    EXPECT_EQ(open_pid, tid_ret) << seen;  // the guest's own view of its pid
    EXPECT_GT(events, 50);
    EXPECT_EQ(unnamed, 0);
    // The process: its main thread (waiting for the two it created) and the thread that made
    // the call, at least; the other may have ended or not begun. All named test_count.
    ASSERT_GE(counting.size(), 2u) << counting_error;
    EXPECT_LE(counting.size(), 3u);
    bool main_seen = false, caller_seen = false;
    for (const auto& t : counting) {
        EXPECT_EQ(t.comm, "test_count");
        main_seen |= t.pid == counting_pid;
        caller_seen |= t.pid == counting_tid;
    }
    EXPECT_TRUE(main_seen && caller_seen) << counting_pid << " " << counting_tid;

    // The second time the cache answers, with the same profile.
    const linux_os::ResolvedProfile warm = linux_os::resolve_profile(options, &memory, nullptr);
    EXPECT_TRUE(warm.from_cache);
    EXPECT_EQ(nlohmann::json(warm.profile), nlohmann::json(cold.profile));
    EXPECT_EQ(warm.location.slide, cold.location.slide);
    EXPECT_TRUE(warm.location.init_task_verified);
    std::printf("profile from the cache: %.1f ms\n", warm.ms);
}

INSTANTIATE_TEST_SUITE_P(Kernels, ProfileFromMemory, ::testing::Values("guest", "newer"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nitro::test
