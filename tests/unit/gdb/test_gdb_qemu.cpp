// SPDX-License-Identifier: MIT
// Against a real QEMU (TCG, no guest): the CPU waits at the reset vector, which is enough to
// exercise registers, memory, breakpoints, stepping and interrupting through the gdbstub.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "listener/gdb/gdb_client.h"
#include "nitro/error.h"

extern char** environ;

namespace nitro::gdb {
namespace {

using namespace std::chrono_literals;

std::string find_qemu() {
    if (const char* env = std::getenv("NITRO_QEMU")) return env;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        std::size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        auto candidate =
            std::filesystem::path(dirs.substr(start, end - start)) / "qemu-system-x86_64";
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
    }
    return {};
}

class QemuGdbStub : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string qemu = find_qemu();
        if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 not found";
        char tmpl[] = "/tmp/nitro-gdb-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        socket_ = dir_ + "/gdb.sock";
        std::string gdb_arg = "unix:" + socket_ + ",server=on,wait=off";
        std::vector<std::string> args = {
            qemu,       "-S",   "-gdb",        gdb_arg, "-machine", "q35,accel=tcg",
            "-display", "none", "-nodefaults", "-m",    "64"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ASSERT_EQ(posix_spawn(&pid_, qemu.c_str(), nullptr, nullptr, argv.data(), environ), 0);
        auto deadline = Clock::now() + 20s;
        while (!client_) {
            try {
                client_ = GdbClient::connect("unix:" + socket_, ClientOptions{5000ms});
            } catch (const Error& e) {
                int status;
                if (waitpid(pid_, &status, WNOHANG) == pid_) {
                    pid_ = -1;
                    FAIL() << "qemu exited early";
                }
                if (Clock::now() > deadline) FAIL() << "cannot reach the gdbstub: " << e.what();
                std::this_thread::sleep_for(50ms);
            }
        }
    }

    void TearDown() override {
        client_.reset();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status;
            waitpid(pid_, &status, 0);
        }
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    pid_t pid_ = -1;
    std::string dir_;
    std::string socket_;
    std::unique_ptr<GdbClient> client_;
};

TEST_F(QemuGdbStub, ReadsTheResetState) {
    GdbClient& c = *client_;
    EXPECT_TRUE(c.features().xfer_features);
    EXPECT_GT(c.features().packet_size, 0u);
    for (const char* name : {"rax", "r15", "rip", "eflags", "cs", "gs", "fs_base", "gs_base",
                             "k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"})
        EXPECT_NE(c.registers().find(name), nullptr) << name;
    EXPECT_EQ(c.read_register("cr0"), 0x60000010u);
    EXPECT_EQ(c.read_register("rip"), 0xfff0u);
    EXPECT_EQ(c.read_register("cs"), 0xf000u);
    EXPECT_EQ(c.read_register("efer"), 0u);
    RegisterFile regs = c.read_registers();
    EXPECT_EQ(regs.get("cr0"), 0x60000010u);
    EXPECT_EQ(regs.get("rip"), 0xfff0u);
    EXPECT_EQ(regs.get("eflags"), 0x2u);
    auto threads = c.threads();
    ASSERT_EQ(threads.size(), 1u);
    StopReply why = c.query_stop();
    EXPECT_EQ(why.code, 5);
    EXPECT_EQ(why.thread, threads[0]);
    // The firmware's first instruction: a far jump (0xea) at the top of the 4 GiB space.
    auto reset = c.read_memory(0xfffffff0, 16);
    ASSERT_EQ(reset.size(), 16u);
    EXPECT_EQ(reset[0], 0xea);
    EXPECT_EQ(c.read_memory(0xffff0000, 5000).size(), 5000u);  // several packets
}

TEST_F(QemuGdbStub, StepsBreaksAndInterrupts) {
    GdbClient& c = *client_;
    // nop; nop; nop; jmp . — in low RAM, entered in real mode with cs = 0.
    std::vector<std::uint8_t> code{0x90, 0x90, 0x90, 0xeb, 0xfe};
    c.write_memory(0x1000, code);
    EXPECT_EQ(c.read_memory(0x1000, code.size()), code);
    c.write_register("cs", 0);
    c.write_register("rip", 0x1000);
    EXPECT_EQ(c.read_register("rip"), 0x1000u);

    auto threads = c.threads();
    ASSERT_FALSE(threads.empty());
    StopReply stepped = c.step(threads[0]);
    EXPECT_EQ(stepped.code, 5);
    EXPECT_EQ(c.read_register("rip"), 0x1001u);

    c.insert_breakpoint(BreakpointType::Hardware, 0x1003);
    c.resume();
    auto hit = c.wait_for_stop(10s);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->code, 5);
    EXPECT_EQ(c.read_register("rip"), 0x1003u);
    c.remove_breakpoint(BreakpointType::Hardware, 0x1003);

    c.resume();
    EXPECT_FALSE(c.wait_for_stop(200ms));  // spinning on jmp .
    c.interrupt();
    auto stopped = c.wait_for_stop(10s);
    ASSERT_TRUE(stopped);
    EXPECT_EQ(c.read_register("rip"), 0x1003u);
    c.detach();
}

}  // namespace
}  // namespace nitro::gdb
