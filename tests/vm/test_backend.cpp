// SPDX-License-Identifier: MIT
// `nitro trace` with the Linux backend against the real test guest: processes by name and pid,
// decoded paths and buffers, fds that match what the guest programs print, errno on failures.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "test_cli_util.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Json = nlohmann::json;

const char* const kPrograms =
    "test_open; test_write; test_unlink; test_count getpid 50; test_writev; test_writev_32; "
    "test_signal; test_signal_32";

struct Traced {
    CommandResult run;  // the guest console is in run.out
    std::string trace;
};

Traced trace(const std::string& format, const std::string& kernel = "") {
    std::string out =
        ::testing::TempDir() + "/nitro-test-backend-" + std::to_string(getpid()) + "." + format;
    std::vector<std::string> args = {"trace", "--format", format, "--console", "-", "-o", out};
    auto g = guest_args(kPrograms, 1, kernel);
    args.insert(args.end(), g.begin(), g.end());
    Traced r{run_nitro(args, 300), {}};
    r.trace = read_file(out);
    std::remove(out.c_str());
    return r;
}

// One boot per format for the whole suite: boots are the slow part.
class Backend : public ::testing::Test {
  protected:
    static const Traced& text() {
        static Traced r = trace("text");
        return r;
    }
    static const Traced& jsonl() {
        static Traced r = trace("jsonl");
        return r;
    }
    void SetUp() override { NITRO_REQUIRE_GUEST(); }
};

std::string find(const std::string& text, const std::string& re, int group = 1) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex(re))) return "";
    return m[group];
}

void expect_test_open_decoded(const Traced& r) {
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    std::string guest_fd = find(r.run.out, "test_open: opened /proc/cpuinfo as fd ([0-9]+)");
    ASSERT_FALSE(guest_fd.empty()) << r.run.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        r.trace, m,
        std::regex(R"(\[pid ([0-9]+)\] test_open open(at)?\((AT_FDCWD, )?"/proc/cpuinfo", )"
                   R"(O_RDONLY\) = ([0-9]+)\n)")))
        << r.trace;
    EXPECT_EQ(m[4], guest_fd);
    // The guest's own view of the pid: set_tid_address returns the caller's thread id.
    std::string pid = m[1];
    std::string own = find(r.trace, R"(\] test_open set_tid_address\(0x[0-9a-f]+\) = ([0-9]+))");
    EXPECT_EQ(own, pid);
}

TEST_F(Backend, TestOpenOpensCpuinfoAsItsFd) { expect_test_open_decoded(text()); }

TEST_F(Backend, TestWriteWritesHelloWorldToTheFdItOpened) {
    const Traced& r = text();
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    std::string fd = find(
        r.trace,
        R"(\] test_write openat\(AT_FDCWD, "/tmp/test_write.txt", O_WRONLY\|O_CREAT\|O_TRUNC, 0644\) = ([0-9]+)\n)");
    ASSERT_FALSE(fd.empty()) << r.trace;
    EXPECT_EQ(count_lines_with(r.trace, "test_write write(" + fd + ", \"Hello World!\", 12) = 12"),
              1)
        << r.trace;
}

// test_writev overwrites its buffers right after each call; nitro (asynchronous by default)
// decodes later, from the bytes the plugin copied at the call.
void expect_writev_decoded(const Traced& r) {
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    std::string fd = find(r.run.out, "test_writev: wrote 20 rounds to fd ([0-9]+)");
    ASSERT_FALSE(fd.empty()) << r.run.out;
    // Also the 32-bit build: its struct iovec has 4-byte fields.
    for (const std::string program : {"test_writev", "test_writev_32"}) {
        for (int i = 0; i < 20; i++) {
            const std::string line = fmt::format(
                R"({} writev({}, [{{iov_base="round {:02}", iov_len=8}}, )"
                R"({{iov_base="part two {:02}", iov_len=11}}], 2) = 19)",
                program, fd, i, i);
            EXPECT_EQ(count_lines_with(r.trace, line), 1) << line << "\n" << r.trace;
        }
    }
}

TEST_F(Backend, WritevShowsTheBuffersOfTheCall) { expect_writev_decoded(text()); }

// The same guest on a newer kernel (scripts/build-guest: the newest cloud kernel apt knows,
// 6.12 from bookworm-backports): its profile from its own image, the same decoding.
TEST_F(Backend, NewerKernel) {
    const std::string kernel = newer_guest_kernel();
    if (kernel.empty()) GTEST_SKIP() << "no newer kernel: scripts/build-guest found none in apt";
    const Traced r = trace("text", kernel);
    expect_test_open_decoded(r);
    expect_writev_decoded(r);
    EXPECT_EQ(count_lines_with(r.trace, "[pid ?]"), 0);
}

TEST_F(Backend, TestUnlinkRemovesItsFile) {
    const Traced& r = text();
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    EXPECT_EQ(count_lines_with(r.trace, "test_unlink unlink(\"/tmp/test_unlink.tmp\") = 0"), 1)
        << r.trace;
}

TEST_F(Backend, FailureIsDecodedAsEnoent) {
    const Traced& r = text();
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    // test_unlink checks that its file is gone.
    EXPECT_EQ(count_lines_with(r.trace,
                               "test_unlink access(\"/tmp/test_unlink.tmp\", F_OK) = -1 "
                               "ENOENT (No such file or directory)"),
              1)
        << r.trace;
}

TEST_F(Backend, EveryLineHasAProcess) {
    const Traced& r = text();
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    EXPECT_GT(count_lines_with(r.trace, "] "), 100);
    EXPECT_EQ(count_lines_with(r.trace, "[pid ?]"), 0);
}

TEST_F(Backend, JsonlKeepsTheOriginalKeys) {
    const Traced& r = jsonl();
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    std::istringstream in(r.trace);
    std::string line;
    int open_exits = 0, enoent = 0, test_open_exe = 0;
    while (std::getline(in, line)) {
        Json j = Json::parse(line);
        // The executable's path: the program's, or empty where the address space the call was
        // made in had ended before nitro saw it (asynchronous mode); never another program's.
        if (j["process"].is_object() && j["process"]["name"] == "test_open") {
            EXPECT_TRUE(j["process"]["exe"] == "/tests/test_open" || j["process"]["exe"] == "") << line;
            if (j["process"]["exe"] == "/tests/test_open") test_open_exe++;
        }
        if (j["process"].is_object() && j["process"]["name"] == "sh") {
            EXPECT_TRUE(j["process"]["exe"] == "/bin/busybox" || j["process"]["exe"] == "") << line;
        }
        ASSERT_TRUE(j.contains("event") && j.contains("name") && j.contains("full_name") &&
                    j.contains("process") && j.contains("args"))
            << line;
        for (const char* k : {"vcpu", "type", "direction", "cr3", "rax", "time"}) {
            EXPECT_TRUE(j["event"].contains(k)) << k;
        }
        if (j["event"]["direction"] == "exit") {
            EXPECT_TRUE(j.contains("ret") && j.contains("errno")) << line;
            if (j["errno"] == "ENOENT") enoent++;
        }
        if (j["name"] == "openat" && j["event"]["direction"] == "exit" &&
            j["process"].is_object() && j["process"]["name"] == "test_open" &&
            j["args"][1]["text"] == "\"/proc/cpuinfo\"") {
            open_exits++;
            EXPECT_EQ(j["full_name"], "__x64_sys_openat");
            EXPECT_EQ(j["args"][1]["name"], "pathname");
            EXPECT_GE(j["ret"].get<int64_t>(), 0);
            EXPECT_TRUE(j["errno"].is_null());
            EXPECT_GT(j["process"]["pid"].get<int64_t>(), 1);
            EXPECT_EQ(j["process"]["pid"], j["process"]["tid"]);
            EXPECT_GE(j["process"]["ppid"].get<int64_t>(), 1);
        }
    }
    EXPECT_EQ(open_exits, 1);
    EXPECT_GE(enoent, 1);
    EXPECT_GE(test_open_exe, 1);
}

// Asynchronous events are attributed to the task that made them, as it was at the event (the
// listener reads the current task then), not to whatever runs when nitro gets to the event.
TEST_F(Backend, EachGetpidIsAttributedToThePidItReturns) {
    std::regex re(R"(\[pid (\d+)\] (\S+) getpid\(\) = (\d+))");
    int lines = 0, test_count = 0;
    for (auto it = std::sregex_iterator(text().trace.begin(), text().trace.end(), re);
         it != std::sregex_iterator(); ++it) {
        lines++;
        EXPECT_EQ((*it)[1], (*it)[3]) << it->str();
        if ((*it)[2] == "test_count") test_count++;
    }
    EXPECT_GE(test_count, 50);
    EXPECT_GE(lines, test_count);
}

// A wait4 whose return runs a SIGCHLD handler (a plain one and an SA_SIGINFO one), in a 64-bit
// and a 32-bit program: nitro shows the pid the program got (the kernel keeps it in the signal
// frame; the register holds the handler's argument), as the program prints it.
TEST_F(Backend, ResultOfACallWhoseReturnRunsASignalHandler) {
    const Traced& r = text();
    ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
    std::regex printed(R"(test_signal: wait4 returned (\d+))");
    int checked = 0;
    for (auto it = std::sregex_iterator(r.run.out.begin(), r.run.out.end(), printed);
         it != std::sregex_iterator(); ++it) {
        const std::string pid = (*it)[1];
        std::regex shown(R"(\] test_signal(_32)? (<\.\.\. )?wait4[ (].* = )" + pid + "\n");
        EXPECT_TRUE(std::regex_search(r.trace, shown)) << "wait4 = " << pid;
        ++checked;
    }
    EXPECT_EQ(checked, 4) << r.run.out;
}

// Only returns that do not go back after their call are flagged redirected: a 32-bit program's
// calls through the vDSO return after the int $0x80 that follows their syscall or sysenter.
TEST_F(Backend, PlainReturnsOfThirtyTwoBitProgramsAreNotRedirected) {
    int i386_exits = 0;
    std::istringstream in(jsonl().trace);
    for (std::string line; std::getline(in, line);) {
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded() || j["event"]["abi"] != "i386" || j["event"]["direction"] != "exit") continue;
        ++i386_exits;
        const std::string name = j["name"];
        if (name == "wait4" || name == "sigreturn" || name == "rt_sigreturn" || name == "execve") continue;
        EXPECT_FALSE(j["event"].value("redirected", false)) << line;
    }
    EXPECT_GE(i386_exits, 20);
}

// The name too is the task's at the event: the calls a shell's child makes before it executes
// a test program carry the shell's name, not the program's, although the program has long
// renamed the task by the time nitro handles them (the listener copies the name at the event).
TEST_F(Backend, CallsBeforeAnExecCarryTheNameTheTaskHadThen) {
    const std::string& trace = text().trace;
    std::regex line_re(R"(\[pid (\d+)\] (\S+) )");
    std::regex exec_re(R"(^\[pid (\d+)\] \S+ execve\("/tests/(test_\w+)\", .* = 0$)");
    std::map<std::string, std::vector<std::string>> names;  // per pid, in order
    int execs = 0;
    std::istringstream in(trace);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, exec_re)) {
            ++execs;
            for (const auto& name : names[m[1]]) EXPECT_NE(name, m[2].str()) << line;
            names[m[1]].clear();
            continue;
        }
        if (std::regex_search(line, m, line_re) && m.position(0) == 0) names[m[1]].push_back(m[2]);
    }
    EXPECT_GE(execs, 4);
}

}  // namespace
}  // namespace nitro::test
