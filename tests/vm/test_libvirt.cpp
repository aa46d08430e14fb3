// SPDX-License-Identifier: MIT
// nitro with a real libvirt: define a domain for the test guest, nitro prepare it, trace it by
// name, Ctrl-C while attached (the domain keeps running), prepare --undo (the definition is
// restored byte for byte as libvirt serialises it), and the errors. libvirtd and virtlogd are
// started when they are not running (no systemd in CI); every domain is destroyed and
// undefined even when a test fails.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "nitro/error.h"
#include "test_cli_util.h"
#include "libvirt_test_domain.h"
#include "vm/libvirt_domain.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Libvirt = LibvirtTest;

TEST_F(Libvirt, PrepareTraceByNameUndo) {
    TestDomain d(*conn_, "sleep 1; test_open");
    const std::string before = d.dom->xml(true);

    CommandResult p = run_nitro({"prepare", d.name}, 120);
    ASSERT_EQ(p.exit_code, 0) << p.err;
    EXPECT_NE(p.out.find("+     <qemu:arg value='-plugin'/>"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("+     <access mode='shared'/>"), std::string::npos) << p.out;
    EXPECT_NE(d.dom->xml(true).find("libnitro-tcg"), std::string::npos);

    CommandResult t = run_nitro({"trace", "--domain", d.name, "--start"}, 180);
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_EQ(count_lines_with(t.out, kCpuinfoOpen), 1) << t.out << t.err;
    EXPECT_NE(t.err.find("shut off (the guest shut down)"), std::string::npos) << t.err;

    CommandResult u = run_nitro({"prepare", d.name, "--undo"}, 120);
    ASSERT_EQ(u.exit_code, 0) << u.err;
    // Byte for byte, as libvirt serialises the inactive definition with its secrets.
    EXPECT_EQ(d.dom->xml(true), before);
    CommandResult again = run_nitro({"prepare", d.name, "--undo"}, 120);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("is not prepared by nitro: nothing to undo"), std::string::npos)
        << again.err;
}

TEST_F(Libvirt, CtrlCOnARunningDomainLeavesItRunning) {
    TestDomain d(*conn_, "sleep 3; test_open; sleep 300");
    ASSERT_EQ(run_nitro({"prepare", d.name}, 120).exit_code, 0);
    d.dom->start();
    ScratchDir out_dir;
    std::string out = out_dir.file("events.json");
    Background nitro({NITRO_BINARY, "trace", "--domain", d.name, "--format", "json", "-o", out});
    ASSERT_TRUE(wait_for([&] { return d.console_has("NITRO-EXIT: status=0 cmd=test_open"); }, 120))
        << nitro.err() << read_file(d.console);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    nitro.signal(SIGINT);
    EXPECT_EQ(nitro.wait(30), 0) << nitro.err();
    EXPECT_NE(nitro.err().find("keeps running"), std::string::npos) << nitro.err();
    auto doc = nlohmann::json::parse(read_file(out), nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << read_file(out).substr(0, 300);
    ASSERT_TRUE(doc.is_array());
    EXPECT_NE(doc.dump().find("/proc/cpuinfo"), std::string::npos);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_TRUE(d.dom->running()) << d.dom->state().text;
}

TEST_F(Libvirt, Errors) {
    CommandResult r = run_nitro({"trace", "--domain", "nitro-no-such-domain"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no libvirt domain 'nitro-no-such-domain'"), std::string::npos) << r.err;
    r = run_nitro({"prepare", "nitro-no-such-domain"}, 30);
    EXPECT_NE(r.err.find("no libvirt domain 'nitro-no-such-domain'"), std::string::npos) << r.err;

    TestDomain d(*conn_, "sleep 300");
    r = run_nitro({"trace", "--domain", d.name}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("is not running (shut off"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--start"), std::string::npos) << r.err;

    r = run_nitro({"trace", "--domain", d.name, "--start"}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("is not prepared for nitro: run 'nitro prepare " + d.name),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(d.dom->running());

    // Running without the plugin, then prepared: it needs a restart.
    d.dom->start();
    r = run_nitro({"trace", "--domain", d.name}, 30);
    EXPECT_NE(r.err.find("is not prepared for nitro"), std::string::npos) << r.err;
    ASSERT_EQ(run_nitro({"prepare", d.name}, 120).exit_code, 0);
    r = run_nitro({"trace", "--domain", d.name}, 30);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("was started before that: restart it"), std::string::npos) << r.err;
    EXPECT_TRUE(d.dom->running());

    // Not allowed: an unprivileged user on the system URI.
    if (geteuid() == 0 && std::system("command -v setpriv >/dev/null") == 0) {
        vm::ChildProcess p({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            NITRO_BINARY, "trace", "--domain", d.name});
        std::string err;
        char buf[4096];
        for (ssize_t n; (n = read(p.stderr_fd(), buf, sizeof buf)) > 0;) err.append(buf, n);
        int st = p.wait();
        EXPECT_EQ(WEXITSTATUS(st), 1);
        EXPECT_TRUE(err.find("not allowed to use libvirt") != std::string::npos ||
                    err.find("cannot connect to libvirt") != std::string::npos)
            << err;
    }
}

}  // namespace
}  // namespace nitro::test
