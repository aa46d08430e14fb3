// SPDX-License-Identifier: MIT
// nitro trace --listener gdb --domain: a libvirt domain traced through QEMU's gdbstub, started
// through libvirt's monitor passthrough on a socket in a directory QEMU's user (libvirt-qemu)
// may write. A prepared domain (shared memory file) is decoded; an unprepared one (no plugin, no
// shared memory) is traced raw with guest memory read through the stub. libvirtd and virtlogd
// are started when they are not running; every domain is destroyed and undefined, also when a
// test fails.
#include <glob.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <set>

#include "nitro/error.h"
#include "test_cli_util.h"
#include "libvirt_test_domain.h"
#include "vm/libvirt_domain.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

// nitro's socket directories (/tmp/nitro-gdb-*) that exist now.
std::set<std::string> gdb_socket_dirs() {
    std::set<std::string> out;
    glob_t g{};
    if (glob("/tmp/nitro-gdb-*", 0, nullptr, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) out.insert(g.gl_pathv[i]);
    globfree(&g);
    return out;
}

class GdbLibvirt : public LibvirtTest {
  protected:
    // Starts the domain and waits for the guest's init.
    void start_and_wait(TestDomain& d) {
        d.dom->start();
        ASSERT_TRUE(wait_for([&] { return d.console_has("NITRO-GUEST: ready"); }, 120))
            << read_file(d.console);
        std::printf("QEMU of %s runs as uid %ld\n", d.name.c_str(), d.qemu_uid());
    }
};

// A prepared domain (nitro prepare: shared memory file): decoded like the TCG listener's trace.
TEST_F(GdbLibvirt, PreparedDomainIsDecoded) {
    TestDomain d(*conn_, "sleep 3; test_open");
    ASSERT_EQ(run_nitro({"prepare", d.name}, 120).exit_code, 0);
    start_and_wait(d);
    auto dirs_before = gdb_socket_dirs();
    CommandResult t = run_nitro(
        {"trace", "--listener", "gdb", "--domain", d.name, "-e", "openat", "--stats"}, 240);
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_EQ(count_lines_with(t.out, kCpuinfoOpen), 1) << t.out << t.err;
    EXPECT_TRUE(d.console_has("NITRO-EXIT: status=0 cmd=test_open")) << read_file(d.console);
    EXPECT_NE(t.err.find("from the shared memory file"), std::string::npos) << t.err;
    EXPECT_NE(t.err.find("shut off"), std::string::npos) << t.err;
    EXPECT_EQ(gdb_socket_dirs(), dirs_before) << "a socket directory was left behind";
}

// --start: nitro starts the domain paused; the listener lets its vCPUs run once the breakpoints
// are in (nitro sends no cont of its own) and traces it from the boot on.
TEST_F(GdbLibvirt, DomainStartedByNitro) {
    TestDomain d(*conn_, "test_open");
    ASSERT_EQ(run_nitro({"prepare", d.name}, 120).exit_code, 0);
    CommandResult t = run_nitro(
        {"trace", "--listener", "gdb", "--domain", d.name, "--start", "-e", "openat"}, 300);
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_EQ(count_lines_with(t.out, kCpuinfoOpen), 1) << t.out << t.err;
    EXPECT_NE(t.err.find("shut off (the guest shut down)"), std::string::npos) << t.err;
}

// Ctrl-C while attached to a running domain: breakpoints out, the stub stopped through libvirt,
// the socket directory removed; the guest runs on.
TEST_F(GdbLibvirt, CtrlCLeavesTheDomainRunning) {
    TestDomain d(*conn_,
                    "sleep 3; test_open; sleep 3; echo AFTER-DETACH; sleep 300");
    start_and_wait(d);
    auto dirs_before = gdb_socket_dirs();
    Background nitro({NITRO_BINARY, "trace", "--listener", "gdb", "--domain", d.name,
                      "--nobackend", "-e", "openat"});
    ASSERT_TRUE(wait_for([&] { return d.console_has("NITRO-EXIT: status=0 cmd=test_open"); }, 120))
        << nitro.err() << read_file(d.console);
    nitro.signal(SIGINT);
    EXPECT_EQ(nitro.wait(30), 0) << nitro.err();
    EXPECT_NE(nitro.err().find("keeps running"), std::string::npos) << nitro.err();
    EXPECT_GT(count_lines_with(nitro.out(), "syscall enter x86_64 nr 257"), 0) << nitro.out();
    EXPECT_TRUE(wait_for([&] { return d.console_has("AFTER-DETACH"); }, 60))
        << read_file(d.console);
    EXPECT_TRUE(d.dom->running()) << d.dom->state().text;
    EXPECT_EQ(gdb_socket_dirs(), dirs_before) << "a socket directory was left behind";
}

// An unprepared domain (no plugin, RAM not in a shared file): raw events, memory through the
// stub; decoding is refused with what to do.
TEST_F(GdbLibvirt, UnpreparedDomainIsTracedRawThroughTheStub) {
    TestDomain d(*conn_, "sleep 4; test_open");
    start_and_wait(d);
    auto dirs_before = gdb_socket_dirs();
    CommandResult refused = run_nitro({"trace", "--listener", "gdb", "--domain", d.name}, 60);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("--nobackend"), std::string::npos) << refused.err;
    CommandResult t = run_nitro({"trace", "--listener", "gdb", "--domain", d.name, "--nobackend",
                                 "-e", "openat", "--stats"},
                                240);
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_TRUE(d.console_has("NITRO-EXIT: status=0 cmd=test_open")) << read_file(d.console);
    // openat (257) entries and their exits; test_open's among them (its fd comes back).
    std::smatch m;
    std::string console = read_file(d.console);
    ASSERT_TRUE(std::regex_search(console, m,
                                  std::regex("test_open: opened /proc/cpuinfo as fd ([0-9]+)")))
        << console;
    EXPECT_GT(count_lines_with(t.out, "syscall enter x86_64 nr 257"), 0) << t.out << t.err;
    EXPECT_GT(count_lines_with(t.out, "syscall exit x86_64 nr 257 = " + std::string(m[1])), 0)
        << t.out;
    EXPECT_NE(t.err.find("through the gdbstub"), std::string::npos) << t.err;
    EXPECT_EQ(gdb_socket_dirs(), dirs_before) << "a socket directory was left behind";
}

}  // namespace
}  // namespace nitro::test
