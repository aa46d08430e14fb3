// SPDX-License-Identifier: MIT
// nitro as a library on the real test guest: a hook on openat sees test_open's path, with only
// the hooked call traced; in synchronous mode a hook rewrites the path in guest memory and the
// guest's open fails as the new path says.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "nitro/nitro.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

// Ends listening if the guest has not finished in time, so that a hang fails the test instead
// of blocking it (the Nitro destructor then stops QEMU).
class Watchdog {
  public:
    Watchdog(Nitro& nitro, std::chrono::seconds limit)
        : thread_([this, &nitro, limit] {
              auto until = std::chrono::steady_clock::now() + limit;
              while (!done_ && std::chrono::steady_clock::now() < until) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(50));
              }
              if (!done_) {
                  fired_ = true;
                  nitro.stop();
              }
          }) {}
    ~Watchdog() {
        done_ = true;
        thread_.join();
    }
    bool fired() const { return fired_; }

  private:
    std::atomic<bool> done_{false}, fired_{false};
    std::thread thread_;
};

struct Console {
    std::mutex mu;
    std::string text;
    std::function<void(const std::string&)> sink() {
        return [this](const std::string& line) {
            std::lock_guard lock(mu);
            text += line + "\n";
            if (getenv("NITRO_TEST_ECHO")) fprintf(stderr, "console: %s\n", line.c_str());
        };
    }
    std::string get() {
        std::lock_guard lock(mu);
        return text;
    }
};

Target test_guest(const std::string& cmd, Console& console) {
    Target t;
    t.kernel = guest_kernel();
    t.initrd = guest_initrd();
    t.append = "quiet nitro.run=\"" + cmd + "\"";
    t.console = console.sink();
    return t;
}

NitroOptions options(Mode mode) {
    NitroOptions o;
    o.mode = mode;
    o.hooks_only = true;
    o.plugin = NITRO_PLUGIN;
    return o;
}

TEST(Hooks, OpenatHookSeesThePath) {
    NITRO_REQUIRE_GUEST();
    Console console;
    Nitro nitro(test_guest("test_open", console), options(Mode::Async));
    struct Seen {
        std::string path, process;
        std::int64_t pid = 0;
    };
    std::vector<Seen> opens;
    std::vector<std::int64_t> rets;
    std::int64_t test_open_pid = 0;
    nitro.define_hook("openat", [&](Syscall& sc, ArgumentMap& args) {
        opens.push_back(
            {args.read_string(1).value_or("<unreadable>"), sc.process.name, sc.process.pid});
        if (opens.back().path == "/proc/cpuinfo") test_open_pid = sc.process.pid;
    });
    nitro.define_hook(
        "openat",
        [&](Syscall& sc, ArgumentMap&) {
            if (sc.process.pid == test_open_pid) rets.push_back(sc.ret.value_or(-9999));
        },
        Direction::Exit);
    std::map<std::string, int> names;
    {
        Watchdog watchdog(nitro, std::chrono::seconds(50));
        nitro.run([&](const Event&, const Syscall& sc) { names[sc.name]++; });
        ASSERT_FALSE(watchdog.fired()) << nitro.stats().events << " events; console:\n"
                                       << console.get();
    }
    EXPECT_EQ(nitro.wait(), GuestEnd::PowerOff);

    const Seen* hit = nullptr;
    for (const auto& o : opens) {
        if (o.path == "/proc/cpuinfo") hit = &o;
    }
    ASSERT_NE(hit, nullptr) << opens.size() << " openat calls, none of /proc/cpuinfo";
    EXPECT_EQ(hit->process, "test_open");
    EXPECT_GT(hit->pid, 1);
    ASSERT_FALSE(rets.empty());
    EXPECT_GE(rets.back(), 0);
    // Only the hooked call was traced (the filter is in the plugin).
    EXPECT_EQ(names.size(), 1u) << "traced: " << [&] {
        std::string s;
        for (const auto& [n, c] : names) s += n + " ";
        return s;
    }();
    EXPECT_GT(names["openat"], 0);
    NitroStats s = nitro.stats();
    EXPECT_EQ(s.backend.hooks_run, static_cast<std::uint64_t>(names["openat"]));
    EXPECT_EQ(s.listener.dropped, 0u);
    EXPECT_NE(console.get().find("NITRO-EXIT: status=0 cmd=test_open"), std::string::npos)
        << console.get();
    std::printf("%llu events, %llu hooks run, %llu decoding errors, %llu process errors\n",
                static_cast<unsigned long long>(s.events),
                static_cast<unsigned long long>(s.backend.hooks_run),
                static_cast<unsigned long long>(s.backend.decode_errors),
                static_cast<unsigned long long>(s.backend.process_errors));
}

TEST(Hooks, SyncHookRewritesThePath) {
    NITRO_REQUIRE_GUEST();
    Console console;
    Nitro nitro(test_guest("test_open", console), options(Mode::Sync));
    std::int64_t pid = 0;
    std::string written, error;
    std::optional<std::int64_t> ret;
    std::string exit_path;
    nitro.define_hook("openat", [&](Syscall& sc, ArgumentMap& args) {
        if (sc.process.name != "test_open" || args.read_string(1) != "/proc/cpuinfo") return;
        pid = sc.process.pid;
        try {
            // Same length as /proc/cpuinfo; a file that does not exist.
            args.write_string(1, "/proc/nothing");
            written = args.read_string(1).value_or("");
        } catch (const Error& e) {
            error = e.what();
        }
    });
    nitro.define_hook(
        "openat",
        [&](Syscall& sc, ArgumentMap& args) {
            if (pid == 0 || sc.process.pid != pid) return;
            ret = sc.ret;
            exit_path = args.read_string(1).value_or("");
        },
        Direction::Exit);
    {
        Watchdog watchdog(nitro, std::chrono::seconds(50));
        nitro.run();
        ASSERT_FALSE(watchdog.fired()) << nitro.stats().events << " events; console:\n"
                                       << console.get();
    }
    EXPECT_EQ(nitro.wait(), GuestEnd::PowerOff);
    ASSERT_GT(pid, 0) << "test_open's openat of /proc/cpuinfo was not seen\n" << console.get();
    EXPECT_EQ(error, "");
    EXPECT_EQ(written, "/proc/nothing");
    // The kernel opened the rewritten path: ENOENT, and test_open says so on the console.
    ASSERT_TRUE(ret.has_value());
    EXPECT_EQ(*ret, -2);
    EXPECT_EQ(exit_path, "/proc/nothing");
    const std::string text = console.get();
    // test_open's perror() message: "open /proc/cpuinfo: ..." -- or "open /proc/nothing: ...",
    // when the linker merged the path into the tail of the message's literal, as it does here:
    // the write changed the program's read-only data.
    EXPECT_NE(text.find(": No such file or directory"), std::string::npos) << text;
    EXPECT_NE(text.find("NITRO-EXIT: status=1 cmd=test_open"), std::string::npos) << text;
}

}  // namespace
}  // namespace nitro::test
