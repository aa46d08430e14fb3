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
#include "vm/libvirt_domain.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

constexpr const char* kUri = "qemu:///system";

// Connects to libvirt, starting virtlogd and libvirtd first if needed. Empty: the reason.
std::unique_ptr<vm::LibvirtConnection> connect_libvirt(std::string& why) {
    try {
        return std::make_unique<vm::LibvirtConnection>(kUri);
    } catch (const Error& e) {
        why = e.what();
    }
    if (geteuid() != 0) return nullptr;
    if (std::system("command -v libvirtd >/dev/null 2>&1") != 0) {
        why = "libvirtd is not installed (scripts/install-deps)";
        return nullptr;
    }
    [[maybe_unused]] int rc =
        std::system("virtlogd -d >/dev/null 2>&1; libvirtd -d >/dev/null 2>&1");
    for (int i = 0; i < 100; i++) {
        try {
            return std::make_unique<vm::LibvirtConnection>(kUri);
        } catch (const Error& e) {
            why = e.what();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return nullptr;
}

// A persistent domain for the test guest, destroyed and undefined on scope exit.
struct TestDomain {
    vm::LibvirtConnection& conn;
    ScratchDir dir;
    std::string name;
    std::string console;
    std::unique_ptr<vm::LibvirtDomain> dom;

    TestDomain(vm::LibvirtConnection& c, const std::string& cmd) : conn(c) {
        static std::atomic<int> n{0};
        name = "nitro-test-" + std::to_string(getpid()) + "-" + std::to_string(n++);
        // libvirt gives the kernel and initrd to QEMU's user (libvirt-qemu): use copies.
        std::filesystem::copy_file(guest_kernel(), dir.file("vmlinuz"));
        std::filesystem::copy_file(guest_initrd(), dir.file("initrd.img"));
        console = dir.file("console.log");
        std::string xml = R"(<domain type='qemu'>
  <name>)" + name + R"(</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>)" + dir.file("vmlinuz") +
                          R"(</kernel>
    <initrd>)" + dir.file("initrd.img") +
                          R"(</initrd>
    <cmdline>console=ttyS0 quiet nitro.run=&quot;)" +
                          cmd + R"(&quot;</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path=')" +
                          console + R"('/><target port='0'/></serial>
  </devices>
</domain>
)";
        std::string path = dir.file("domain.xml");
        std::ofstream(path) << xml;
        std::string define = "virsh -q -c " + std::string(kUri) + " define " + path + " >/dev/null";
        if (std::system(define.c_str()) != 0) throw std::runtime_error("virsh define failed");
        dom = std::make_unique<vm::LibvirtDomain>(conn, name);
    }
    ~TestDomain() {
        try {
            dom->destroy();
        } catch (const std::exception&) {
        }
        try {
            dom->undefine();
        } catch (const std::exception&) {
        }
    }
    bool console_has(const std::string& s) const {
        return read_file(console).find(s) != std::string::npos;
    }
};

class Libvirt : public ::testing::Test {
  protected:
    void SetUp() override {
        NITRO_REQUIRE_GUEST();
        std::string why;
        conn_ = connect_libvirt(why);
        if (!conn_) GTEST_SKIP() << "no libvirt: " << why;
        // libvirt probes QEMU's capabilities on first use (and on every use when its cache is
        // invalid, e.g. /dev/kvm not usable by QEMU's user: see scripts/test): not in the
        // timed commands below.
        [[maybe_unused]] int rc = std::system(
            "virsh -q -c qemu:///system domcapabilities --virttype qemu >/dev/null 2>&1");
    }
    std::unique_ptr<vm::LibvirtConnection> conn_;
};

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
