// SPDX-License-Identifier: MIT
// The Nitro facade with a scripted listener: the original's loop, hooks, filters pushed down
// to the listener when only hooks are wanted, stop(), statistics, the backend factory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <set>

#include "nitro/error.h"
#include "nitro/nitro.h"
#include "os/linux/backend.h"
#include "os/linux/kernel_profile.h"
#include "synthetic_guest.h"

namespace nitro {
namespace {

using test::SyntheticGuest;
using ::testing::HasSubstr;

constexpr std::uint64_t kPath = SyntheticGuest::kUserBase + 0x100;

// Plays back queued events and records what it was told to do. Events come only while traps
// are on (as with the plugin); at the end of the queue it reports End, or Timeout when
// told to keep running.
class ScriptedListener final : public Listener {
  public:
    struct Log {
        std::set<std::pair<Abi, std::uint64_t>> filter;
        bool filter_enabled = false;
        bool traps = true;
        int trap_changes = 0;
        bool stopped = false;
        int capture_rules = 0;
        std::uint64_t nexts = 0;
    };
    ScriptedListener(std::deque<Event> events, std::shared_ptr<Log> log, bool keep_running)
        : events_(std::move(events)), log_(std::move(log)), keep_running_(keep_running) {}

    Status next(Event& ev, std::chrono::milliseconds) override {
        ++log_->nexts;
        if (log_->stopped) return Status::End;
        while (!events_.empty()) {
            Event e = std::move(events_.front());
            events_.pop_front();
            const Abi abi = e.compat ? Abi::I386 : Abi::X86_64;
            if (log_->filter_enabled && !log_->filter.count({abi, e.nr})) continue;
            if (!log_->traps) continue;
            ev = std::move(e);
            ++delivered_;
            return Status::Event;
        }
        return keep_running_ ? Status::Timeout : Status::End;
    }
    void stop() override { log_->stopped = true; }
    void set_traps(bool on) override {
        log_->traps = on;
        ++log_->trap_changes;
    }
    void add_syscall_filter(Abi abi, uint64_t nr) override {
        log_->filter.insert({abi, nr});
        log_->filter_enabled = true;
    }
    void remove_syscall_filter(Abi abi, uint64_t nr) override { log_->filter.erase({abi, nr}); }
    void clear_syscall_filter() override {
        log_->filter.clear();
        log_->filter_enabled = false;
    }
    void set_cr3_filter(const std::vector<uint64_t>&) override {}
    void set_captures(Abi, uint64_t, Direction, const std::vector<CaptureRule>& r) override {
        log_->capture_rules += static_cast<int>(r.size());
    }
    EndReason end_reason() const override {
        return log_->stopped ? EndReason::Stopped : EndReason::QemuExited;
    }
    ListenerStats stats() const override { return {delivered_, 0}; }

  private:
    std::deque<Event> events_;
    std::shared_ptr<Log> log_;
    bool keep_running_;
    std::uint64_t delivered_ = 0;
};

NitroOptions hooks_only() {
    NitroOptions o;
    o.hooks_only = true;
    return o;
}
NitroOptions sync_mode() {
    NitroOptions o;
    o.mode = Mode::Sync;
    return o;
}
BackendSource source(std::string image, std::string profile,
                     std::shared_ptr<PhysicalMemory> memory) {
    BackendSource s;
    s.kernel_image = std::move(image);
    s.profile = std::move(profile);
    s.memory = std::move(memory);
    return s;
}

class NitroTest : public ::testing::Test {
  protected:
    void SetUp() override {
        guest_.set_current(0, guest_.add_task(0, 97, 97, "test_open", 0));
        guest_.write_user(kPath, std::string_view("/proc/cpuinfo\0", 14));
    }
    // getpid, openat (entry and exit), getppid.
    std::deque<Event> script() {
        std::deque<Event> q;
        q.push_back(guest_.enter(0, 39, {}));
        Event open = guest_.enter(0, 257, {static_cast<std::uint64_t>(-100), kPath, 0, 0, 0, 0});
        Event open_exit = guest_.exit_of(open, 3);
        q.push_back(std::move(open));
        q.push_back(std::move(open_exit));
        q.push_back(guest_.enter(0, 110, {}));
        return q;
    }
    std::unique_ptr<Nitro> make(NitroOptions opts = {}, bool keep_running = false) {
        auto listener = std::make_unique<ScriptedListener>(script(), log_, keep_running);
        auto backend =
            std::make_unique<linux_os::LinuxBackend>(SyntheticGuest::profile(), guest_.memory());
        return std::make_unique<Nitro>(std::move(listener), std::move(backend), opts);
    }

    SyntheticGuest guest_;
    std::shared_ptr<ScriptedListener::Log> log_ = std::make_shared<ScriptedListener::Log>();
};

TEST_F(NitroTest, TheOriginalsLoop) {
    auto nitro = make();
    EXPECT_GT(log_->capture_rules, 0);  // the backend told the listener what to capture
    std::vector<std::string> lines;
    for (const Event& event : nitro->listen()) {
        Syscall syscall = nitro->backend().process_event(event);
        lines.push_back(fmt::format("{} {} {}", syscall.process.name, syscall.name,
                                    to_string(syscall.direction)));
        if (syscall.name == "openat" && syscall.direction == Direction::Exit) {
            EXPECT_EQ(syscall.args[1].text, "\"/proc/cpuinfo\"");
            EXPECT_EQ(syscall.ret, 3);
        }
    }
    EXPECT_EQ(lines,
              (std::vector<std::string>{"test_open getpid enter", "test_open openat enter",
                                        "test_open openat exit", "test_open getppid enter"}));
    // Listening ended: a second listen() yields nothing.
    EXPECT_TRUE(nitro->listen().begin() == Nitro::EventRange::Sentinel{});
    NitroStats s = nitro->stats();
    EXPECT_EQ(s.events, 4u);
    EXPECT_EQ(s.listener.events, 4u);
    EXPECT_EQ(s.backend.events, 4u);
    EXPECT_EQ(s.backend.decode_errors, 0u);
    EXPECT_THROW(nitro->wait(), Error);  // no guest of its own
}

TEST_F(NitroTest, RunDispatchesHooks) {
    auto nitro = make();
    std::vector<std::string> paths;
    nitro->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        paths.push_back(args.read_string(1).value_or("?"));
    });
    int calls = 0;
    EXPECT_EQ(nitro->run([&](const Event&, const Syscall&) { ++calls; }), 4u);
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(paths, std::vector<std::string>{"/proc/cpuinfo"});
    EXPECT_EQ(nitro->stats().backend.hooks_run, 1u);
    EXPECT_TRUE(log_->traps);
    EXPECT_FALSE(log_->filter_enabled);  // full tracing: no filter
}

TEST_F(NitroTest, HooksOnlyPushesTheFilterDown) {
    auto nitro = make(hooks_only());
    // No hooks: nothing is traced.
    EXPECT_FALSE(log_->traps);
    nitro->define_hook(
        "openat", [](Syscall&, ArgumentMap&) {}, Direction::Exit);
    nitro->define_hook("getppid", [](Syscall&, ArgumentMap&) {});
    std::vector<std::string> seen;
    nitro->run([&](const Event&, const Syscall& sc) {
        seen.push_back(sc.name);
        // Hooks may change while listening; the filter follows at the next event.
        if (sc.name == "openat") nitro->undefine_hook("getppid");
    });
    // getpid was filtered out by the listener; getppid was unhooked before its turn.
    EXPECT_EQ(seen, (std::vector<std::string>{"openat", "openat"}));
    using N = std::pair<Abi, std::uint64_t>;
    EXPECT_EQ(log_->filter, (std::set<N>{{Abi::X86_64, 257}, {Abi::I386, 295}}));
    EXPECT_TRUE(log_->traps);
}

TEST_F(NitroTest, HooksOnlyTurnsTrapsOffWhenTheLastHookGoes) {
    auto nitro = make(hooks_only(), /*keep_running=*/true);
    nitro->define_hook("openat", [](Syscall&, ArgumentMap&) {});
    Event ev;
    ASSERT_TRUE(nitro->next_event(ev));
    EXPECT_EQ(ev.nr, 257u);
    EXPECT_TRUE(log_->traps);
    nitro->undefine_hook("openat");
    nitro->stop();
    EXPECT_FALSE(nitro->next_event(ev));
    EXPECT_FALSE(log_->traps);
    EXPECT_TRUE(log_->filter.empty());
}

TEST_F(NitroTest, StopDrainsAndDetaches) {
    auto nitro = make({}, /*keep_running=*/true);
    std::uint64_t n = 0;
    for (const Event& e : nitro->listen()) {
        (void)e;
        if (++n == 1) nitro->stop();  // traps go off: the rest of the script is not delivered
    }
    EXPECT_EQ(n, 1u);
    EXPECT_TRUE(log_->stopped);
    EXPECT_FALSE(log_->traps);
}

TEST_F(NitroTest, SyncModeAllowsArgumentWrites) {
    auto nitro = make(sync_mode());
    nitro->define_hook("openat",
                       [](Syscall&, ArgumentMap& args) { args.write_string(1, "/proc/version"); });
    nitro->run();
    EXPECT_EQ(guest_.read_user(kPath, 14), std::string("/proc/version\0", 14));

    // Asynchronous: refused.
    auto async = make();
    async->define_hook("openat",
                       [](Syscall&, ArgumentMap& args) { args.write_string(1, "/proc/cpuinfo"); });
    EXPECT_THROW(async->run(), Error);
}

TEST_F(NitroTest, WithoutBackend) {
    Nitro nitro(std::make_unique<ScriptedListener>(script(), log_, false), nullptr);
    EXPECT_FALSE(nitro.has_backend());
    EXPECT_THROW(nitro.backend(), Error);
    EXPECT_THROW(nitro.run(), Error);
    std::uint64_t n = 0;
    for (const Event& e : nitro.listen()) n += e.nr != 0;
    EXPECT_EQ(n, 4u);
    EXPECT_THROW(Nitro(nullptr, nullptr), Error);
}

TEST(BackendFactory, SaysWhatIsMissing) {
    auto mem = std::make_shared<BufferPhysicalMemory>(4096);
    try {
        make_backend(source("", "", mem));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("Linux: no kernel image or saved profile"));
    }
    try {
        make_backend(source("/nonexistent/vmlinuz", "", mem));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("no backend fits this guest"));
        EXPECT_THAT(e.what(), HasSubstr("/nonexistent/vmlinuz"));
    }
    EXPECT_THROW(make_backend(source("x", "", nullptr)), Error);  // no memory
}

TEST(BackendFactory, LinuxFromASavedProfile) {
    const std::string path = ::testing::TempDir() + "/nitro-api-profile.json";
    // A complete profile (every layout a saved profile must have), with the synthetic
    // guest's task_struct offsets.
    linux_os::KernelProfile profile;
    linux_os::LayoutLookup lookup;
    lookup.source = "test";
    lookup.size_of = [](std::string_view) { return std::optional<std::uint64_t>(0x1000); };
    lookup.member = [](std::string_view, std::string_view) {
        linux_os::MemberInfo m;
        m.bit_offset = 0x200 * 8;
        m.size = 8;
        return std::optional<linux_os::MemberInfo>(m);
    };
    linux_os::fill_layouts(profile, lookup);
    const linux_os::KernelProfile synthetic = SyntheticGuest::profile();
    profile.task_struct.pid = synthetic.task_struct.pid;
    profile.task_struct.tgid = synthetic.task_struct.tgid;
    profile.task_struct.comm = synthetic.task_struct.comm;
    profile.task_struct.real_parent = synthetic.task_struct.real_parent;
    profile.current_task_percpu = synthetic.current_task_percpu;
    profile.current_task_source = "current_task";
    linux_os::save_profile(profile, path);
    SyntheticGuest guest;
    guest.set_current(0, guest.add_task(0, 5, 5, "sh", 0));
    auto backend = make_backend(source("", path, guest.memory()));
    ASSERT_NE(dynamic_cast<linux_os::LinuxBackend*>(backend.get()), nullptr);
    EXPECT_EQ(backend->process_event(guest.enter(0, 39, {})).process.name, "sh");
    std::remove(path.c_str());
}

TEST(FindPlugin, HonoursTheEnvironment) {
    setenv("NITRO_PLUGIN", "/nonexistent/libnitro-tcg.so", 1);
    EXPECT_THROW(find_plugin(), Error);
    unsetenv("NITRO_PLUGIN");
}

}  // namespace
}  // namespace nitro
