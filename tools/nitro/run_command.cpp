// SPDX-License-Identifier: MIT
#include <cstdio>
#include <memory>

#include "commands.h"
#include "nitro/error.h"

namespace nitro::cli {

void add_guest_options(CLI::App& cmd, GuestOptions& g, bool kernel_required) {
    auto* k = cmd.add_option("--kernel", g.kernel, "Guest kernel image (bzImage)");
    if (kernel_required) k->required();
    cmd.add_option("--initrd", g.initrd, "Guest initial RAM disk");
    cmd.add_option("--append", g.append, "Extra kernel command line");
    cmd.add_option("--disk", g.disk, "Disk image (attached as virtio, changes discarded)");
    cmd.add_option("--smp", g.smp, "Number of vCPUs")->check(CLI::Range(1, 64));
    cmd.add_option("--memory", g.memory, "Guest RAM in MiB")->check(CLI::Range(64, 1 << 20));
    cmd.add_option("--accel", g.accel, "QEMU accelerator")->check(CLI::IsMember({"tcg", "kvm"}));
}

vm::LaunchConfig launch_config(const GuestOptions& g) {
    vm::LaunchConfig c;
    c.kernel = g.kernel;
    c.initrd = g.initrd;
    c.append = g.append;
    c.disk = g.disk;
    c.smp = g.smp;
    c.memory_mib = g.memory;
    c.accel = g.accel;
    if (g.console == "-") {
        c.console = [](const std::string& line) {
            std::fprintf(stdout, "%s\n", line.c_str());
            std::fflush(stdout);
        };
    } else if (!g.console.empty()) {
        std::shared_ptr<FILE> f(std::fopen(g.console.c_str(), "w"), [](FILE* p) {
            if (p) std::fclose(p);
        });
        if (!f) fail_errno("cannot write console file " + g.console);
        c.console = [f](const std::string& line) {
            std::fprintf(f.get(), "%s\n", line.c_str());
            std::fflush(f.get());
        };
    }
    return c;
}

int run_command(const RunOptions& opts) {
    vm::QemuLauncher vm(launch_config(opts.guest));
    vm.start();
    vm::GuestEnd end = vm.wait([] { return interrupted(); });
    std::fprintf(stderr, "nitro: %s\n", vm::to_string(end));
    if (end == vm::GuestEnd::Killed) return 130;
    return end == vm::GuestEnd::PowerOff ? 0 : 1;
}

}  // namespace nitro::cli
