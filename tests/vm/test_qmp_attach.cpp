// SPDX-License-Identifier: MIT
// nitro trace --qmp: attach to a QEMU the test started itself (nitro's plugin, a shared
// memory-backend-file, a QMP socket), trace until the guest powers off or until Ctrl-C (the guest
// keeps running), and the errors for a QEMU without the plugin or without a kernel profile.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "listener/tcg/ring_abi.h"
#include "test_cli_util.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

// qemu-system-x86_64 as a user would start it for nitro.
struct UserQemu {
    ScratchDir dir{"/dev/shm"};
    std::unique_ptr<Background> qemu;
    std::string qmp;
    std::string console;

    UserQemu(const std::string& cmd, bool plugin) {
        qmp = dir.file("qmp.sock");
        console = dir.file("console.txt");
        std::vector<std::string> argv = {
            "qemu-system-x86_64",
            "-machine",
            "q35,accel=tcg,memory-backend=ram0",
            "-m",
            "256M",
            "-object",
            "memory-backend-file,id=ram0,size=256M,mem-path=" + dir.file("ram") + ",share=on",
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "file:" + console,
            "-qmp",
            "unix:" + qmp + ",server=on,wait=off",
            "-kernel",
            guest_kernel(),
            "-initrd",
            guest_initrd(),
            "-append",
            "console=ttyS0 quiet nitro.run=\"" + cmd + "\""};
        if (plugin) argv.insert(argv.end(), {"-plugin", NITRO_PLUGIN});
        qemu = std::make_unique<Background>(argv);
        wait_for([&] { return access(qmp.c_str(), F_OK) == 0 || !qemu->running(); }, 30);
    }
    ~UserQemu() {
        pid_t pid = qemu->pid();
        qemu.reset();  // SIGTERM, then SIGKILL
        std::error_code ec;
        std::filesystem::remove("/dev/shm/nitro-qemu-" + std::to_string(pid), ec);
    }
};

TEST(QmpAttach, TracesUntilTheGuestPowersOff) {
    NITRO_REQUIRE_GUEST();
    UserQemu vm("sleep 2; test_open", true);
    ASSERT_TRUE(vm.qemu->running()) << vm.qemu->err();
    CommandResult r = run_nitro({"trace", "--qmp", vm.qmp}, 120);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count_lines_with(r.out, kCpuinfoOpen), 1) << r.out << r.err;
    EXPECT_NE(r.err.find("the guest powered off"), std::string::npos) << r.err;
}

TEST(QmpAttach, CtrlCDetachesAndLeavesTheGuestRunning) {
    NITRO_REQUIRE_GUEST();
    UserQemu vm("sleep 2; test_open; sleep 300", true);
    ASSERT_TRUE(vm.qemu->running()) << vm.qemu->err();
    ScratchDir out_dir;
    std::string out = out_dir.file("events.json");
    Background nitro({NITRO_BINARY, "trace", "--qmp", vm.qmp, "--format", "json", "-o", out});
    ASSERT_TRUE(wait_for(
        [&] {
            return read_file(vm.console).find("NITRO-EXIT: status=0 cmd=test_open") !=
                   std::string::npos;
        },
        90))
        << nitro.err();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    nitro.signal(SIGINT);
    EXPECT_EQ(nitro.wait(30), 0) << nitro.err();
    EXPECT_NE(nitro.err().find("the guest keeps running"), std::string::npos) << nitro.err();
    auto doc = nlohmann::json::parse(read_file(out), nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << read_file(out).substr(0, 300);
    ASSERT_TRUE(doc.is_array());
    bool cpuinfo = false;
    for (const auto& rec : doc) {
        if (rec.value("name", "") == "openat" &&
            rec.dump().find("/proc/cpuinfo") != std::string::npos && rec["process"].is_object() &&
            rec["process"]["name"] == "test_open") {
            cpuinfo = true;
        }
    }
    EXPECT_TRUE(cpuinfo) << doc.dump().substr(0, 500);
    // The guest keeps running without nitro: QEMU is alive a second later and answers.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_TRUE(vm.qemu->running());
    // A second nitro can attach again (the first one detached cleanly).
    CommandResult again =
        run_nitro({"trace", "--qmp", vm.qmp, "--duration", "1", "--nobackend"}, 60);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(vm.qemu->running());
}

TEST(QmpAttach, QemuWithoutThePlugin) {
    NITRO_REQUIRE_GUEST();
    UserQemu vm("sleep 30", false);
    ASSERT_TRUE(vm.qemu->running()) << vm.qemu->err();
    CommandResult r = run_nitro({"trace", "--qmp", vm.qmp, "--nobackend"}, 60);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no nitro plugin in QEMU pid"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("-plugin"), std::string::npos) << r.err;
}

TEST(QmpAttach, NoKernelProfile) {
    NITRO_REQUIRE_GUEST();
    UserQemu vm("sleep 30", true);
    ASSERT_TRUE(vm.qemu->running()) << vm.qemu->err();
    CommandResult r = run_nitro({"trace", "--qmp", vm.qmp, "--kernel-image", guest_initrd()}, 60);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no kernel profile from"), std::string::npos) << r.err;
}

TEST(QmpAttach, NoSocket) {
    CommandResult r = run_nitro({"trace", "--qmp", "/nonexistent/qmp.sock"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no QMP socket /nonexistent/qmp.sock"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace nitro::test

namespace nitro::test {
namespace {

TEST(QmpAttach, PluginFromAnotherNitroBuild) {
    NITRO_REQUIRE_GUEST();
    UserQemu vm("sleep 30", false);
    ASSERT_TRUE(vm.qemu->running()) << vm.qemu->err();
    // A control file as a plugin of another ABI version leaves it.
    ScratchDir dir;
    std::string ctl = dir.file("plugin.ctl");
    {
        nitro_ctl c{};
        c.magic = NITRO_ABI_MAGIC;
        c.version = NITRO_ABI_VERSION + 100;
        c.header_size = sizeof c;
        std::ofstream f(ctl, std::ios::binary);
        f.write(reinterpret_cast<const char*>(&c), sizeof c);
    }
    CommandResult r = run_nitro({"trace", "--qmp", vm.qmp, "--ctl", ctl, "--nobackend"}, 60);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(fmt::format("nitro plugin ABI {} does not match this nitro",
                                     NITRO_ABI_VERSION + 100)),
              std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace nitro::test
