// SPDX-License-Identifier: MIT
// nitro trace from the command line with the guest nitro boots: filters, Ctrl-C, and the one-line
// errors (no target, unknown system call, output not writable, QEMU too old, no kernel profile).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <stdlib.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "test_cli_util.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

std::vector<std::string> boot_args(const std::string& cmd) {
    auto a = guest_args(cmd);
    a.insert(a.begin(), "trace");
    return a;
}

std::vector<nlohmann::json> jsonl(const std::string& text) {
    std::vector<nlohmann::json> v;
    std::stringstream s(text);
    for (std::string line; std::getline(s, line);) {
        if (!line.empty()) v.push_back(nlohmann::json::parse(line));
    }
    return v;
}

TEST(Cli, SyscallFilterInQemuAndProcessFilter) {
    NITRO_REQUIRE_GUEST();
    auto args = boot_args("test_open; test_write");
    args.insert(args.end(),
                {"-e", "openat,write", "--process", "test_open", "--format", "jsonl", "--stats"});
    CommandResult r = run_nitro(args, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto records = jsonl(r.out);
    ASSERT_FALSE(records.empty()) << r.err;
    bool cpuinfo = false;
    for (const auto& rec : records) {
        std::string name = rec["name"];
        EXPECT_TRUE(name == "openat" || name == "write") << rec.dump();
        EXPECT_EQ(rec["process"]["name"], "test_open") << rec.dump();
        if (rec.dump().find("/proc/cpuinfo") != std::string::npos) cpuinfo = true;
        // Decoded records list the original's cr3 and rax, no other register.
        EXPECT_TRUE(rec["event"].contains("cr3") && rec["event"].contains("rax")) << rec.dump();
        EXPECT_FALSE(rec["event"].contains("rdi")) << rec.dump();
    }
    EXPECT_TRUE(cpuinfo) << r.out;
    // -e is applied inside QEMU: nitro never saw anything but openat and write.
    EXPECT_NE(r.err.find("calls by system call"), std::string::npos) << r.err;
    // nitro booted the guest paused and attached first: the plugin instrumented from the first
    // instruction, without a flush; it read each event's task from the RAM file.
    EXPECT_NE(r.err.find("translated code instrumented (0 flushes)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("current task from the RAM file"), std::string::npos) << r.err;
    for (const char* other : {" execve ", " read ", " mmap ", " close "}) {
        EXPECT_EQ(r.err.find(other), std::string::npos) << other << " in\n" << r.err;
    }
}

// --follow: what the selected process starts (xargs runs cat as its child), whatever it is
// named, and nothing of the same programs run outside it.
TEST(Cli, FollowTracesTheChildrenOfTheSelectedProcess) {
    NITRO_REQUIRE_GUEST();
    auto args = boot_args("echo /proc/version | xargs cat; cat /proc/cmdline");
    args.insert(args.end(), {"--process", "xargs", "--follow", "--format", "jsonl", "--stats"});
    CommandResult r = run_nitro(args, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bool version = false, exec_cat = false;
    std::int64_t xargs_pid = 0;
    for (const auto& rec : jsonl(r.out)) {
        const std::string name = rec["process"]["name"];
        const std::string text = rec.dump();
        // busybox runs an applet through /proc/self/exe: "exe" until it names itself.
        EXPECT_TRUE(name == "xargs" || name == "cat" || name == "exe") << text;
        EXPECT_EQ(text.find("/proc/cmdline"), std::string::npos) << text;
        if (name == "xargs" && xargs_pid == 0) xargs_pid = rec["process"]["pid"];
        const auto& a = rec["args"];
        if (name == "cat" && rec["name"] == "openat" && a.size() > 1 &&
            a[1]["text"] == "\"/proc/version\"") {
            version = true;
            EXPECT_EQ(rec["process"]["ppid"], xargs_pid) << text;
        }
        // busybox runs its applets through /proc/self/exe, argv[0] naming the applet; the
        // child's execve is its own, returning 0 in the new image.
        if (rec["name"] == "execve" && a.size() > 1 &&
            a[1]["text"].get<std::string>().rfind("[\"cat\"", 0) == 0 &&
            rec["event"]["direction"] == "exit") {
            exec_cat = true;
            EXPECT_EQ(rec["ret"], 0) << text;
            EXPECT_NE(rec["process"]["pid"], xargs_pid) << text;
        }
    }
    EXPECT_NE(xargs_pid, 0) << r.out;
    EXPECT_TRUE(version) << r.out;
    EXPECT_TRUE(exec_cat) << r.out;
    EXPECT_NE(r.err.find("--follow: 2 processes followed"), std::string::npos) << r.err;

    // Without --follow, xargs alone.
    args.erase(std::find(args.begin(), args.end(), "--follow"));
    r = run_nitro(args, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& rec : jsonl(r.out)) EXPECT_EQ(rec["process"]["name"], "xargs") << rec.dump();
}

// --registers: every register read at every event, and listed in the decoded records.
TEST(Cli, RegistersFlagListsEveryRegisterAtEveryEvent) {
    NITRO_REQUIRE_GUEST();
    auto args = boot_args("test_open");
    args.insert(args.end(), {"-e", "openat", "--format", "jsonl", "--registers"});
    CommandResult r = run_nitro(args, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int records = 0;
    for (const auto& rec : jsonl(r.out)) {
        ++records;
        for (const char* reg : {"rbx", "rdi", "r12", "rip", "rflags", "cr0", "cr4", "efer",
                                "fs_base", "kernel_gs_base", "cs", "ss"}) {
            EXPECT_TRUE(rec["event"].contains(reg)) << reg << " missing: " << rec.dump();
        }
    }
    EXPECT_GT(records, 2) << r.out << r.err;
}

// The gdb listener behind the command line: QEMU's gdbstub started through QMP, breakpoints at
// the kernel's entry and return paths, the Linux backend decoding.
TEST(Cli, GdbListenerDecodesTestOpen) {
    NITRO_REQUIRE_GUEST();
    auto args = boot_args("test_open");
    args.insert(args.end(), {"--listener", "gdb", "-e", "openat", "--format", "jsonl"});
    CommandResult r = run_nitro(args, 400);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int cpuinfo = 0;
    for (const auto& rec : jsonl(r.out)) {
        EXPECT_EQ(rec["name"], "openat") << rec.dump();
        if (rec["event"]["direction"] == "exit" && rec["process"]["name"] == "test_open" &&
            rec.dump().find("/proc/cpuinfo") != std::string::npos) {
            cpuinfo++;
            EXPECT_GE(rec["ret"].get<int64_t>(), 0);
        }
    }
    EXPECT_EQ(cpuinfo, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("powered off"), std::string::npos) << r.err;
}

// --format raw records the plugin's events into a capture file; nitro convert reads it back.
TEST(Cli, RawCaptureFileConvertsToJsonl) {
    NITRO_REQUIRE_GUEST();
    std::string file = ::testing::TempDir() + "/nitro-cli-" + std::to_string(getpid()) + ".ncap";
    auto args = boot_args("test_count gettid 500");
    args.insert(args.end(), {"--nobackend", "--format", "raw", "-o", file});
    CommandResult r = run_nitro(args, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    CommandResult c = run_nitro({"convert", file, "--format", "jsonl", "-e", "gettid"}, 60);
    std::remove(file.c_str());
    ASSERT_EQ(c.exit_code, 0) << c.err;
    int enters = 0, exits = 0;
    for (const auto& rec : jsonl(c.out)) {
        EXPECT_EQ(rec["event"]["nr"], 186);
        (rec["event"]["direction"] == "enter" ? enters : exits)++;
    }
    // test_count's 500, and nothing else in the guest calls gettid before it
    EXPECT_GE(enters, 500);
    EXPECT_EQ(enters, exits);
    EXPECT_NE(c.err.find("events converted"), std::string::npos) << c.err;
    // raw needs --nobackend and a file
    auto bad = boot_args("test_open");
    bad.insert(bad.end(), {"--format", "raw", "-o", file});
    CommandResult e = run_nitro(bad, 30);
    EXPECT_NE(e.exit_code, 0);
    EXPECT_NE(e.err.find("--nobackend"), std::string::npos) << e.err;
}

TEST(Cli, PidFilterPushedDownAsAddressSpace) {
    NITRO_REQUIRE_GUEST();
    auto args = boot_args("test_open");
    args.insert(args.end(), {"--pid", "1", "--format", "jsonl", "--stats"});
    CommandResult r = run_nitro(args, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto records = jsonl(r.out);
    ASSERT_FALSE(records.empty()) << r.err;
    for (const auto& rec : records) EXPECT_EQ(rec["process"]["pid"], 1) << rec.dump();
    EXPECT_NE(r.err.find("--pid 1 pushed down"), std::string::npos) << r.err;
}

TEST(Cli, CtrlCWritesACompleteJsonArrayAndExitsZero) {
    NITRO_REQUIRE_GUEST();
    ScratchDir dir;
    std::string out = dir.file("events.json"), console = dir.file("console.txt");
    std::vector<std::string> argv = {NITRO_BINARY};
    for (auto& a : boot_args("test_open; sleep 120")) argv.push_back(a);
    argv.insert(argv.end(), {"--format", "json", "-o", out, "--console", console});
    Background nitro(argv);
    ASSERT_TRUE(wait_for(
        [&] {
            return read_file(console).find("NITRO-EXIT: status=0 cmd=test_open") !=
                   std::string::npos;
        },
        90))
        << nitro.err();
    nitro.signal(SIGINT);
    EXPECT_EQ(nitro.wait(30), 0) << nitro.err();
    EXPECT_NE(nitro.err().find("nitro: stopped"), std::string::npos) << nitro.err();
    auto doc = nlohmann::json::parse(read_file(out), nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << "not valid JSON: " << read_file(out).substr(0, 200);
    ASSERT_TRUE(doc.is_array());
    EXPECT_NE(doc.dump().find("/proc/cpuinfo"), std::string::npos);
}

TEST(CliErrors, NoTargetOrTwoTargets) {
    CommandResult r = run_nitro({"trace"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("nothing to trace: give --kernel"), std::string::npos) << r.err;
    r = run_nitro({"trace", "--kernel", "/nonexistent", "--domain", "x"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("only one of --kernel, --domain and --qmp"), std::string::npos) << r.err;
}

TEST(CliErrors, UnknownSyscallName) {
    CommandResult r = run_nitro({"trace", "--kernel", "/nonexistent", "-e", "openat,bogus"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("unknown system call 'bogus'"), std::string::npos) << r.err;
}

TEST(CliErrors, OutputNotWritable) {
    CommandResult r =
        run_nitro({"trace", "--kernel", "/nonexistent", "-o", "/nonexistent-dir/events.json"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot write output file /nonexistent-dir/events.json"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("choose another -o"), std::string::npos) << r.err;
}

TEST(CliErrors, ProcessFiltersNeedTheBackend) {
    CommandResult r = run_nitro({"trace", "--kernel", "/nonexistent", "--nobackend", "--pid", "5"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("need the backend"), std::string::npos) << r.err;
}

TEST(CliErrors, NoBtfNoProfile) {
    NITRO_REQUIRE_GUEST();
    // The initrd is no kernel: nitro says what is missing and what the user can give.
    CommandResult r = run_nitro({"trace", "--kernel", guest_initrd()}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no kernel profile from"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--nobackend"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliErrors, QemuTooOld) {
    NITRO_REQUIRE_GUEST();
    ScratchDir dir;
    std::string fake = dir.file("qemu-system-x86_64");
    {
        std::ofstream f(fake);
        f << "#!/bin/sh\necho 'QEMU emulator version 8.2.2 (Debian 1:8.2.2)'\n";
    }
    chmod(fake.c_str(), 0755);
    std::string old_path = getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin";
    setenv("PATH", (dir.path + ":" + old_path).c_str(), 1);
    auto args = boot_args("test_open");
    args.push_back("--nobackend");
    CommandResult r = run_nitro(args, 30);
    setenv("PATH", old_path.c_str(), 1);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("QEMU 8 is too old"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace nitro::test
