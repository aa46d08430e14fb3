// SPDX-License-Identifier: MIT
// The gdb listener against the real test guest under TCG: QEMU's gdbstub with hardware
// breakpoints at the kernel's entry and return paths. Exact counts with paired exits at smp 1
// and 2, attaching at boot (-gdb) and to a running guest (gdbserver started through QMP),
// decoding with the Linux backend, and a clean detach.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <map>
#include <optional>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "decode/strace_text.h"
#include "listener/gdb/gdb_listener.h"
#include "listener/gdb/gdbserver_qmp.h"
#include "listener/gdb/memory_symbols.h"
#include "nitro/log.h"
#include "os/linux/backend.h"
#include "os/linux/kernel_profile.h"
#include "os/linux/profile_source.h"
#include "vm/qemu_launcher.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const linux_os::LoadedKernel& kernel() {
    static linux_os::LoadedKernel k = linux_os::load_kernel_file(guest_kernel());
    return k;
}

struct Ev {
    unsigned vcpu;
    Direction dir;
    bool compat;
    uint64_t nr, seq, entry_seq;
    unsigned entry_vcpu;
    bool unpaired;
    uint64_t cr3;
    EventType type;
    ExitInsn insn;
};

struct Traced {
    std::vector<Ev> events;
    std::string console;
    EndReason end = EndReason::None;
    std::string error;
    gdb::GdbStats stats;
    vm::GuestEnd guest_end = vm::GuestEnd::Running;
    std::string decoded;  // strace-like text when a backend was used
    double seconds = 0;   // from the start of QEMU to its end
};

enum class Attach { AtBoot, Running };

struct Guest {
    std::mutex mu;
    std::string console;
    bool saw(const std::string& s) {
        std::lock_guard lock(mu);
        return console.find(s) != std::string::npos;
    }
};

// Boots the guest running cmd, traces it with the gdb listener until it powers off.
// With traps_at_ready, the listener attaches at boot with its traps off and turns them on when
// the guest's init is up (set_traps while the guest runs).
// With symbols_from_memory (attaching to a running guest), the trap symbols come from the
// guest's memory (trap_symbols_from_memory) instead of the kernel image.
Traced run_traced(const std::string& cmd, int smp, Attach attach, bool decode = false,
               bool shared_memory = true, bool traps_at_ready = false,
               bool symbols_from_memory = false) {
    Traced out;
    Guest g;
    if (getenv("NITRO_TEST_DEBUG")) log::set_level(log::Level::Debug);
    vm::LaunchConfig cfg;
    cfg.kernel = guest_kernel();
    cfg.initrd = guest_initrd();
    cfg.smp = smp;
    cfg.append = "quiet nitro.run=\"" + cmd + "\"";
    cfg.console = [&](const std::string& line) {
        std::lock_guard lock(g.mu);
        g.console += line + "\n";
    };
    std::string dir = ::testing::TempDir() + "/nitro-gdb-" + std::to_string(getpid());
    std::filesystem::create_directories(dir);
    struct RemoveDir {  // also when the listener throws
        std::string path;
        ~RemoveDir() { std::filesystem::remove_all(path); }
    } remove_dir{dir};
    std::string sock = dir + "/gdb-" + std::to_string(smp) + ".sock";
    std::filesystem::remove(sock);
    if (attach == Attach::AtBoot) {
        cfg.extra_args = {"-gdb", "unix:" + sock + ",server=on,wait=off"};
        cfg.start_paused = true;
    }
    auto t0 = Clock::now();
    vm::QemuLauncher vm(cfg);
    vm.start();

    std::string endpoint = "unix:" + sock;
    gdb::GdbListenerOptions opts;
    // For measurements: NITRO_TEST_GDB_STEP=single steps over breakpoints with vCont;s.
    if (const char* m = getenv("NITRO_TEST_GDB_STEP"); m && std::string(m) == "single")
        opts.step_over = gdb::GdbListenerOptions::StepOver::SingleStep;
    if (attach == Attach::Running) {
        // Wait until the guest's init runs, then start the stub through the monitor.
        auto until = Clock::now() + 60s;
        while (!g.saw("NITRO-GUEST: ready") && Clock::now() < until) std::this_thread::sleep_for(20ms);
        EXPECT_TRUE(g.saw("NITRO-GUEST: ready")) << g.console;
        endpoint = gdb::start_gdbserver(vm.qmp(), sock);
        opts.after_detach = [&vm] { gdb::stop_gdbserver(vm.qmp()); };
    }
    std::shared_ptr<PhysicalMemory> memory;
    if (shared_memory || decode)
        memory = std::make_shared<MappedPhysicalMemory>(
            MappedPhysicalMemory::Options{.path = vm.memory_path(), .ram_size = vm.memory_size()});
    std::unique_ptr<linux_os::LinuxBackend> backend;
    if (decode) backend = std::make_unique<linux_os::LinuxBackend>(kernel().profile, memory);
    if (traps_at_ready) opts.traps = false;
    std::unique_ptr<gdb::GdbListener> listener;
    if (symbols_from_memory) {
        linux_os::GuestMemory gm = linux_os::open_guest_memory(vm.memory_path(), vm.memory_size());
        gdb::KernelTrapSymbols syms = gdb::trap_symbols_from_memory(*gm.memory, gm.ranges);
        // The same link addresses and banner as the kernel image's.
        gdb::KernelTrapSymbols from_image =
            gdb::KernelTrapSymbols::from_kallsyms(kernel().symbols, kernel().profile.banner);
        EXPECT_EQ(syms.link, from_image.link);
        EXPECT_EQ(syms.banner.substr(0, 64), from_image.banner.substr(0, 64));
        opts.memory = shared_memory ? memory : nullptr;
        listener = gdb::GdbListener::connect(endpoint, std::move(syms), opts);
    } else {
        listener =
            gdb::make_gdb_listener(endpoint, kernel(), shared_memory ? memory : nullptr, opts);
    }
    bool traps_on = !traps_at_ready;
    if (backend) backend->attach(*listener);
    decode::StraceText text;
    Event ev;
    auto deadline = Clock::now() + 400s;
    while (Clock::now() < deadline) {
        if (!traps_on && g.saw("NITRO-GUEST: ready")) {
            listener->set_traps(true);
            traps_on = true;
        }
        auto s = listener->next(ev, traps_on ? 500ms : 50ms);
        if (s == Listener::Status::End) break;
        if (s == Listener::Status::Timeout) continue;
        out.events.push_back(Ev{ev.vcpu, ev.direction, ev.compat, ev.nr, ev.seq, ev.entry_seq,
                                ev.entry_vcpu, ev.unpaired, ev.sregs.cr3, ev.type, ev.exit_insn});
        if (backend) {
            Syscall sc = backend->process_event(ev);
            text.feed(ev, sc, out.decoded);
        }
    }
    if (backend) text.flush(out.decoded);
    out.end = listener->end_reason();
    out.error = listener->error();
    out.stats = listener->gdb_stats();
    if (out.end == EndReason::None) listener->stop();
    listener.reset();
    out.guest_end = vm.wait();
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    std::lock_guard lock(g.mu);
    out.console = g.console;
    return out;
}

// The guest ran its commands and powered off, and the stub said so (an exit reply). (QEMU's QMP
// SHUTDOWN event can be lost behind the STOP/RESUME events of thousands of gdb stops, so the
// launcher may report a plain QEMU exit.)
bool powered_off(const Traced& r) {
    return r.end == EndReason::QemuExited &&
           r.console.find("NITRO-GUEST: done") != std::string::npos &&
           (r.guest_end == vm::GuestEnd::PowerOff || r.guest_end == vm::GuestEnd::QemuExit);
}

struct Counted {
    int entries = 0, exits = 0, paired = 0;
    std::set<unsigned> vcpus;
};

// Events of one call; with only_space, those in that address space (cr3 without PCID/KPTI bits).
Counted count(const std::vector<Ev>& events, bool compat, uint64_t nr,
              std::optional<uint64_t> only_space = std::nullopt) {
    Counted c;
    std::set<std::pair<unsigned, uint64_t>> open;
    for (const Ev& e : events) {
        if (e.compat != compat || e.nr != nr) continue;
        if (only_space && (e.cr3 & ~0x1fffULL) != *only_space) continue;
        c.vcpus.insert(e.vcpu);
        if (e.dir == Direction::Enter) {
            c.entries++;
            open.insert({e.vcpu, e.seq});
        } else {
            c.exits++;
            if (open.erase({e.entry_vcpu, e.entry_seq})) c.paired++;
        }
    }
    return c;
}

// The calls of the counted program: those in the address space that made most of them
// (getppid is also called by the guest's shell), in that space's busiest lifetime. A page
// directory freed by one process is soon another's (execs here alternate between two pages),
// so the cr3 alone can mix processes: seen, one getppid of the busybox shell that exec'd
// test_count, with the cr3 test_count got later. Each execve return into the space starts a
// new lifetime.
Counted count_program(const std::vector<Ev>& events, uint64_t nr, std::string* why) {
    std::map<uint64_t, int> by_space;
    for (const Ev& e : events)
        if (!e.compat && e.nr == nr && e.dir == Direction::Enter) by_space[e.cr3 & ~0x1fffULL]++;
    if (by_space.empty()) {
        *why = "no such call";
        return {};
    }
    const uint64_t space = std::max_element(by_space.begin(), by_space.end(), [](auto& a, auto& b) {
                               return a.second < b.second;
                           })->first;
    // Lifetimes: [start, end) index ranges between execve returns into the space.
    std::vector<size_t> starts = {0};
    for (size_t i = 0; i < events.size(); ++i) {
        const Ev& e = events[i];
        if (!e.compat && e.nr == 59 && e.dir == Direction::Exit && (e.cr3 & ~0x1fffULL) == space)
            starts.push_back(i + 1);
    }
    Counted best;
    for (size_t k = 0; k < starts.size(); ++k) {
        size_t end = k + 1 < starts.size() ? starts[k + 1] : events.size();
        Counted c = count(std::vector<Ev>(events.begin() + static_cast<std::ptrdiff_t>(starts[k]),
                                          events.begin() + static_cast<std::ptrdiff_t>(end)),
                          false, nr, space);
        if (c.entries > best.entries) best = c;
    }
    return best;
}

std::string summary(const Traced& r) {
    return "end " + std::string(to_string(r.end)) + " " + r.error + "; stops " +
           std::to_string(r.stats.stops) + ", steps " + std::to_string(r.stats.steps) +
           ", kernel irets " + std::to_string(r.stats.kernel_irets) + ", events " +
           std::to_string(r.events.size()) + "\n" + r.console;
}

struct Case {
    const char* name;
    const char* syscall;
    uint64_t nr;
    int smp;
    Attach attach;
    int threads;
    bool traps_at_ready = false;
};

class GdbCounted : public ::testing::TestWithParam<Case> {};

// Exactly N entries and N exits, each exit paired with its own entry.
TEST_P(GdbCounted, ExactlyNEntriesAndPairedExits) {
    NITRO_REQUIRE_GUEST();
    const Case& c = GetParam();
    const int n = 300;
    std::string cmd = std::string("test_count ") + c.syscall + " " + std::to_string(n) + " " +
                      std::to_string(c.threads);
    // Attaching to a running guest: the program starts a moment after the stub is up.
    if (c.attach == Attach::Running || c.traps_at_ready) cmd = "sleep 2; " + cmd;
    Traced r = run_traced(cmd, c.smp, c.attach, false, true, c.traps_at_ready);
    ASSERT_TRUE(powered_off(r)) << summary(r);
    ASSERT_NE(r.console.find(std::string("test_count: ") + c.syscall + " x 300"), std::string::npos)
        << summary(r);
    std::string why;
    Counted k = count_program(r.events, c.nr, &why);
    ASSERT_TRUE(why.empty()) << why << summary(r);
    EXPECT_EQ(k.entries, n) << summary(r);
    EXPECT_EQ(k.exits, n) << summary(r);
    EXPECT_EQ(k.paired, n) << summary(r);
    if (c.smp > 1 && c.threads > 1) {
        EXPECT_GT(k.vcpus.size(), 1u) << "never on another vCPU";
    }
    // Every paired exit of the whole trace names an earlier entry; no exits from interrupts.
    int unpaired_irets = 0;
    for (const Ev& e : r.events)
        if (e.dir == Direction::Exit && e.unpaired && e.insn == ExitInsn::Iret) unpaired_irets++;
    EXPECT_EQ(unpaired_irets, 0);
    EXPECT_GT(r.stats.kernel_irets + r.stats.interrupt_irets, 0u) << "no interrupt return seen";
    std::printf("%s: %.1f s, %zu events, %llu stops, %llu steps, %llu kernel irets, %llu "
                "interrupt irets\n",
                c.name, r.seconds, r.events.size(), static_cast<unsigned long long>(r.stats.stops),
                static_cast<unsigned long long>(r.stats.steps),
                static_cast<unsigned long long>(r.stats.kernel_irets),
                static_cast<unsigned long long>(r.stats.interrupt_irets));
}

INSTANTIATE_TEST_SUITE_P(
    Gdb, GdbCounted,
    ::testing::Values(Case{"gettid_smp1_boot", "gettid", 186, 1, Attach::AtBoot, 1},
                      Case{"getppid_smp1_boot", "getppid", 110, 1, Attach::AtBoot, 1},
                      Case{"gettid_smp2_boot_traps_at_ready", "gettid", 186, 2, Attach::AtBoot, 2,
                           true},
                      Case{"getppid_smp2_boot_traps_at_ready", "getppid", 110, 2, Attach::AtBoot,
                           2, true},
                      Case{"gettid_smp1_running", "gettid", 186, 1, Attach::Running, 1},
                      Case{"gettid_smp2_running", "gettid", 186, 2, Attach::Running, 2}),
    [](const auto& info) { return std::string(info.param.name); });

// The Linux backend decodes the gdb listener's events as it does the TCG listener's.
TEST(GdbListener, BackendDecodesTestOpen) {
    NITRO_REQUIRE_GUEST();
    Traced r = run_traced("test_open", 1, Attach::AtBoot, true);
    ASSERT_TRUE(powered_off(r)) << summary(r);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.console, m,
                                  std::regex("test_open: opened /proc/cpuinfo as fd ([0-9]+)")))
        << r.console;
    std::string fd = m[1];
    EXPECT_TRUE(std::regex_search(
        r.decoded, std::regex(R"(\[pid [0-9]+\] test_open open(at)?\((AT_FDCWD, )?"/proc/cpuinfo", )"
                              R"(O_RDONLY\) = )" + fd + "\n")))
        << r.decoded.substr(0, 20000);
}

// A 32-bit program enters through the compat entry points (sysenter, 32-bit syscall or
// int 0x80) and returns through sysretl or iret: all trapped under TCG.
TEST(GdbListener, ThirtyTwoBitProgramUsesCompatTraps) {
    NITRO_REQUIRE_GUEST();
    Traced r = run_traced("sleep 2; test_count_32 gettid 300", 1, Attach::Running);
    ASSERT_TRUE(powered_off(r)) << summary(r);
    if (r.console.find("test_count_32: not found") != std::string::npos)
        GTEST_SKIP() << "the guest has no 32-bit programs";
    Counted k = count(r.events, true, 224);  // gettid in the i386 table
    EXPECT_EQ(k.entries, 300) << summary(r);
    EXPECT_EQ(k.exits, 300) << summary(r);
    EXPECT_EQ(k.paired, 300) << summary(r);
    std::set<EventType> types;
    for (const Ev& e : r.events)
        if (e.compat && e.nr == 224) types.insert(e.type);
    std::printf("32-bit gettid entered through:");
    for (EventType t : types) std::printf(" %s", std::string(to_string(t)).c_str());
    std::printf("\n");
}

// No kernel image: the trap symbols (link addresses, banner) from the guest's kallsyms found
// through its vmcoreinfo; they equal the image's, and the counts are exact.
TEST(GdbListener, TrapSymbolsFromGuestMemory) {
    NITRO_REQUIRE_GUEST();
    Traced r = run_traced("sleep 2; test_count getppid 100", 1, Attach::Running, false, true,
                          false, true);
    ASSERT_TRUE(powered_off(r)) << summary(r);
    std::string why;
    Counted k = count_program(r.events, 110, &why);
    ASSERT_TRUE(why.empty()) << why << summary(r);
    EXPECT_EQ(k.entries, 100) << summary(r);
    EXPECT_EQ(k.paired, 100) << summary(r);
}

// Without the shared memory file every read goes through the stub's 'm' packets.
TEST(GdbListener, MemoryThroughTheStub) {
    NITRO_REQUIRE_GUEST();
    Traced r = run_traced("test_count getppid 100", 1, Attach::AtBoot, false, false);
    ASSERT_TRUE(powered_off(r)) << summary(r);
    EXPECT_TRUE(r.stats.memory_through_stub);
    EXPECT_GT(r.stats.memory_reads, 0u);
    std::string why;
    Counted k = count_program(r.events, 110, &why);
    ASSERT_TRUE(why.empty()) << why << summary(r);
    EXPECT_EQ(k.entries, 100) << summary(r);
    EXPECT_EQ(k.paired, 100) << summary(r);
}

}  // namespace
}  // namespace nitro::test

namespace nitro::test {
namespace {

// stop() in the middle of a trace: breakpoints out, detached, the stub stopped; the guest runs
// on to its end at full speed (a breakpoint left behind would stop the VM for good).
TEST(GdbListener, DetachLeavesTheGuestRunning) {
    NITRO_REQUIRE_GUEST();
    Guest g;
    vm::LaunchConfig cfg;
    cfg.kernel = guest_kernel();
    cfg.initrd = guest_initrd();
    cfg.smp = 2;
    cfg.append = "quiet nitro.run=\"sleep 1; test_count gettid 3000 2; echo AFTER-DETACH\"";
    cfg.console = [&](const std::string& line) {
        std::lock_guard lock(g.mu);
        g.console += line + "\n";
    };
    vm::QemuLauncher vm(cfg);
    vm.start();
    auto until = Clock::now() + 60s;
    while (!g.saw("NITRO-GUEST: ready") && Clock::now() < until) std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(g.saw("NITRO-GUEST: ready")) << g.console;
    std::string sock = ::testing::TempDir() + "/nitro-gdb-detach-" + std::to_string(getpid());
    std::filesystem::remove(sock);
    gdb::GdbListenerOptions opts;
    bool stub_stopped = false;
    opts.after_detach = [&] {
        gdb::stop_gdbserver(vm.qmp());
        stub_stopped = true;
    };
    auto listener = gdb::make_gdb_listener(gdb::start_gdbserver(vm.qmp(), sock), kernel(), nullptr,
                                           opts);
    Event ev;
    int gettids = 0;
    while (gettids < 50 && Clock::now() < until) {
        auto s = listener->next(ev, 500ms);
        ASSERT_NE(s, Listener::Status::End) << listener->error();
        if (s == Listener::Status::Event && ev.nr == 186 && ev.direction == Direction::Enter) gettids++;
    }
    EXPECT_EQ(gettids, 50);
    listener->stop();
    EXPECT_EQ(listener->end_reason(), EndReason::Stopped);
    EXPECT_EQ(listener->next(ev, 10ms), Listener::Status::End);
    EXPECT_TRUE(stub_stopped);
    EXPECT_EQ(listener->gdb_stats().breakpoints, 0u);
    // The stub is gone: nothing listens on its socket any more.
    EXPECT_THROW(gdb::Socket::connect("unix:" + sock, 200ms), Error);
    auto deadline = Clock::now() + 120s;
    vm::GuestEnd end = vm.wait([&] { return Clock::now() > deadline; });
    EXPECT_EQ(end, vm::GuestEnd::PowerOff);
    EXPECT_TRUE(g.saw("AFTER-DETACH")) << g.console;
    std::filesystem::remove(sock);
}

// The per-event cost (run by hand: --gtest_also_run_disabled_tests). The guest's clock does not
// see all of the time the VM spends stopped at breakpoints, so the host time between two console
// marks around the loop is printed along with the guest-timed figure.
double host_seconds_between(const std::vector<std::pair<Clock::time_point, std::string>>& lines,
                            const std::string& a, const std::string& b) {
    Clock::time_point ta{}, tb{};
    for (const auto& [t, l] : lines) {
        if (l.find(a) != std::string::npos && ta == Clock::time_point{}) ta = t;
        if (l.find(b) != std::string::npos && tb == Clock::time_point{}) tb = t;
    }
    return std::chrono::duration<double>(tb - ta).count();
}

TEST(GdbListener, DISABLED_PerEventCost) {
    NITRO_REQUIRE_GUEST();
    const int n = 2000;
    const std::string cmd =
        "echo BENCH-START; bench_loop null " + std::to_string(n) + "; echo BENCH-END";
    for (bool traced : {false, true}) {
        std::mutex mu;
        std::vector<std::pair<Clock::time_point, std::string>> lines;
        vm::LaunchConfig cfg;
        cfg.kernel = guest_kernel();
        cfg.initrd = guest_initrd();
        cfg.append = "quiet nitro.run=\"" + cmd + "\"";
        cfg.console = [&](const std::string& line) {
            std::lock_guard lock(mu);
            lines.emplace_back(Clock::now(), line);
        };
        std::string sock = ::testing::TempDir() + "/nitro-gdb-bench-" + std::to_string(getpid());
        std::filesystem::remove(sock);
        if (traced) {
            cfg.extra_args = {"-gdb", "unix:" + sock + ",server=on,wait=off"};
            cfg.start_paused = true;
        }
        vm::QemuLauncher vm(cfg);
        vm.start();
        uint64_t events = 0;
        if (traced) {
            auto memory = std::make_shared<MappedPhysicalMemory>(MappedPhysicalMemory::Options{
                .path = vm.memory_path(), .ram_size = vm.memory_size()});
            auto l = gdb::make_gdb_listener("unix:" + sock, kernel(), memory);
            Event ev;
            while (l->next(ev, 500ms) != Listener::Status::End) {
            }
            events = l->stats().events;
        }
        vm.wait();
        std::filesystem::remove(sock);
        std::lock_guard lock(mu);
        double host = host_seconds_between(lines, "BENCH-START", "BENCH-END");
        std::string guest_ns;
        for (const auto& [t, l] : lines)
            if (l.rfind("BENCH ", 0) == 0) guest_ns = l;
        std::printf("%s: host %.3f s for %d getppid = %.1f us/call; guest says '%s'; %llu events\n",
                    traced ? "gdb listener" : "untraced", host, n, host / n * 1e6,
                    guest_ns.c_str(), static_cast<unsigned long long>(events));
    }
}

}  // namespace
}  // namespace nitro::test
