// SPDX-License-Identifier: MIT
// VM tests with a real libvirt: a connection (starting virtlogd and libvirtd when they are not
// running; no systemd in CI) and a persistent domain running the test guest, destroyed and
// undefined on scope exit (also when a test fails).
#pragma once
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "nitro/error.h"
#include "test_cli_util.h"
#include "vm/libvirt_domain.h"
#include "vm_fixture.h"

namespace nitro::test {

inline constexpr const char* kUri = "qemu:///system";

// Connects to libvirt, starting virtlogd and libvirtd first if needed. Empty: the reason.
inline std::unique_ptr<vm::LibvirtConnection> connect_libvirt(std::string& why) {
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

    TestDomain(vm::LibvirtConnection& c, const std::string& cmd,
               const std::string& prefix = "nitro-test-")
        : conn(c) {
        static std::atomic<int> n{0};
        name = prefix + std::to_string(getpid()) + "-" + std::to_string(n++);
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
    // The uid QEMU runs as (libvirt's pid file), or -1.
    long qemu_uid() const {
        std::ifstream pidfile("/run/libvirt/qemu/" + name + ".pid");
        long pid = 0;
        struct stat st {};
        if (!(pidfile >> pid) || stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0)
            return -1;
        return st.st_uid;
    }
};

// Tests with a libvirt connection (skipped without libvirt or the test guest).
class LibvirtTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NITRO_REQUIRE_GUEST();
        std::string why;
        conn_ = connect_libvirt(why);
        if (!conn_) GTEST_SKIP() << "no libvirt: " << why;
        // libvirt probes QEMU's capabilities on first use (and on every use when its cache is
        // invalid, e.g. /dev/kvm not usable by QEMU's user: see scripts/test): not in the
        // timed commands of the tests.
        [[maybe_unused]] int rc = std::system(
            "virsh -q -c qemu:///system domcapabilities --virttype qemu >/dev/null 2>&1");
    }
    std::unique_ptr<vm::LibvirtConnection> conn_;
};

}  // namespace nitro::test
