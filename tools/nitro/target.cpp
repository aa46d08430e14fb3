// SPDX-License-Identifier: MIT
#include "target.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "nitro/error.h"
#include "nitro/log.h"
#include "nitro/memory.h"
#include "plugin_path.h"
#include "vm/domain_prepare.h"
#include "vm/libvirt_domain.h"
#include "vm/qmp.h"

namespace nitro::cli {

namespace {
constexpr int kMinQemuMajor = 10;  // the plugin's register reads need the QEMU 10 plugin API

void check_qemu_version(std::pair<int, int> v, const std::string& where) {
    if (v.first < kMinQemuMajor) {
        fail(
            "{} runs QEMU {}.{}, too old: nitro's plugin needs QEMU {} or newer (Debian 12: "
            "bookworm-backports; scripts/install-deps)",
            where, v.first, v.second, kMinQemuMajor);
    }
}

// The guest's RAM file; with the gdb listener and raw events (--nobackend) a guest without one
// is traced too, with memory read through the gdbstub (empty path).
vm::GuestRam probe_ram_for(const TraceOptions& o, vm::QemuMonitor& monitor) {
    if (o.listener != "gdb") return vm::probe_guest_ram(monitor);
    try {
        return vm::probe_guest_ram(monitor);
    } catch (const Error& e) {
        if (!o.nobackend) {
            fail("{}; or, with --listener gdb, trace raw events (--nobackend): guest memory is "
                 "then read through the gdbstub",
                 e.what());
        }
        log::info("{}", e.what());
        return {};
    }
}

// --- nitro boots the guest ------------------------------------------------------------------

class BootTarget final : public Target {
  public:
    explicit BootTarget(const TraceOptions& o) : opts_(o) {}

    void open(Progress& progress) override {
        vm::LaunchConfig cfg = launch_config(opts_.guest);
        if (opts_.listener == "tcg") cfg.plugin = find_plugin();  // the gdb listener needs none
        cfg.start_paused = true;
        progress.step("booting the guest (QEMU " + opts_.guest.accel + ")");
        vm_ = std::make_unique<vm::QemuLauncher>(std::move(cfg));
        vm_->start();
        ram_.path = vm_->memory_path();
        ram_.size = vm_->memory_size();
        ram_.shared = true;
        ram_.type = "memory-backend-file";
        ram_.below_4g = PcRamLayout::q35(ram_.size).below_4g;  // the launcher's machine is q35
        monitor_ = std::make_unique<vm::QmpMonitor>(vm_->qmp());
    }
    vm::QemuMonitor& monitor() override { return *monitor_; }
    std::string plugin_ctl() const override { return vm_->plugin_ctl_path(); }
    const vm::GuestRam& ram() const override { return ram_; }
    std::optional<std::string> kernel_image() const override { return opts_.guest.kernel; }
    void resume() override { vm_->resume(); }
    bool attached() const override { return false; }
    Ending finish(bool stopped_by_user, EndReason reason) override {
        if (stopped_by_user) {
            vm_->stop();
            return {"stopped; the guest was shut down (nitro booted it)", 0};
        }
        vm::GuestEnd end = vm_->wait();
        // The gdb listener's stops and continues are QMP STOP/RESUME events, among which QEMU's
        // SHUTDOWN can go unseen; the stub's exit report (QemuExited) says it ended cleanly.
        if (end == vm::GuestEnd::QemuExit && reason == EndReason::QemuExited) {
            return {"the guest powered off", 0};
        }
        return {vm::to_string(end), end == vm::GuestEnd::PowerOff ? 0 : 1};
    }

  private:
    TraceOptions opts_;
    std::unique_ptr<vm::QemuLauncher> vm_;
    std::unique_ptr<vm::QmpMonitor> monitor_;
    vm::GuestRam ram_;
};

// --- a QEMU the user started, through its QMP socket -----------------------------------------

class QmpTarget final : public Target {
  public:
    explicit QmpTarget(const TraceOptions& o) : opts_(o) {}

    void open(Progress& progress) override {
        progress.step("connecting to QEMU at " + opts_.qmp);
        if (access(opts_.qmp.c_str(), F_OK) != 0) {
            fail("no QMP socket {} (start QEMU with -qmp unix:{},server=on,wait=off)", opts_.qmp,
                 opts_.qmp);
        }
        if (access(opts_.qmp.c_str(), R_OK | W_OK) != 0) {
            fail(
                "not allowed to use the QMP socket {} (run nitro as root or as the user that "
                "runs QEMU)",
                opts_.qmp);
        }
        qmp_ = std::make_unique<vm::QmpClient>(opts_.qmp, std::chrono::seconds(5));
        monitor_ = std::make_unique<vm::QmpMonitor>(*qmp_);
        pid_ = qmp_->peer_pid();
        check_qemu_version(vm::probe_qemu_version(*monitor_), "QEMU pid " + std::to_string(pid_));
        ctl_ = !opts_.ctl.empty() ? opts_.ctl : "/dev/shm/nitro-qemu-" + std::to_string(pid_);
        if (opts_.listener != "gdb" && access(ctl_.c_str(), F_OK) != 0) {  // gdb: no plugin
            fail(
                "no nitro plugin in QEMU pid {}: its control file {} does not exist (start QEMU "
                "with -plugin {},ctl=PATH, and give --ctl PATH if PATH is not the default)",
                pid_, ctl_, find_plugin());
        }
        ram_ = probe_ram_for(opts_, *monitor_);
        kernel_ = vm::probe_kernel_image(*monitor_, pid_);
    }
    std::string plugin_ctl() const override { return ctl_; }
    const vm::GuestRam& ram() const override { return ram_; }
    std::optional<std::string> kernel_image() const override { return kernel_; }
    vm::QemuMonitor& monitor() override { return *monitor_; }
    bool attached() const override { return true; }
    Ending finish(bool stopped_by_user, EndReason reason) override {
        if (stopped_by_user) {
            return {fmt::format("detached from QEMU pid {}; the guest keeps running", pid_), 0};
        }
        // QEMU tells why it shut down in a SHUTDOWN event, if we still get it.
        std::string why;
        try {
            while (auto ev = qmp_->next_event(std::chrono::milliseconds(200))) {
                if (ev->value("event", "") == "SHUTDOWN" && ev->contains("data")) {
                    why = (*ev)["data"].value("reason", "");
                    break;
                }
            }
        } catch (const Error&) {
        }
        if (why == "guest-shutdown") return {"the guest powered off; QEMU exited", 0};
        if (why == "guest-panic") return {"the guest kernel panicked; QEMU exited", 1};
        if (reason == EndReason::QemuDied) return {"QEMU died (killed or crashed)", 1};
        if (!why.empty()) return {"QEMU shut down (" + why + ")", 0};
        return {"QEMU exited", 0};
    }

  private:
    TraceOptions opts_;
    std::unique_ptr<vm::QmpClient> qmp_;
    std::unique_ptr<vm::QmpMonitor> monitor_;
    pid_t pid_ = 0;
    std::string ctl_;
    vm::GuestRam ram_;
    std::optional<std::string> kernel_;
};

// --- a libvirt domain ------------------------------------------------------------------------

class LibvirtTarget final : public Target {
  public:
    explicit LibvirtTarget(const TraceOptions& o) : opts_(o) {}
    ~LibvirtTarget() override {
        // nitro started the domain paused and failed before letting it run: nothing ran yet,
        // stop it again rather than leave it paused.
        if (started_paused_ && dom_) {
            try {
                dom_->destroy();
            } catch (const Error& e) {
                log::warn("{}", e.what());
            }
        }
    }

    void open(Progress& progress) override {
        progress.step("connecting to libvirt at " + opts_.connect);
        conn_ = std::make_unique<vm::LibvirtConnection>(opts_.connect);
        dom_ = std::make_unique<vm::LibvirtDomain>(*conn_, opts_.domain);
        const std::string& name = opts_.domain;
        check_qemu_version(conn_->hypervisor_version(), "libvirt at " + opts_.connect);
        vm::DomainState st = dom_->state();
        if (!st.running) {
            if (!opts_.start) {
                fail(
                    "domain '{}' is not running ({}); add --start, or start it with "
                    "'virsh start {}'",
                    name, st.text, name);
            }
            if (opts_.listener != "gdb" && !vm::plugin_in_xml(dom_->xml(true))) {
                fail("domain '{}' is not prepared for nitro: run 'nitro prepare {}' first", name,
                     name);
            }
            progress.step("starting domain " + name);
            dom_->start(/*paused=*/true);
            started_paused_ = true;
        }
        if (opts_.listener == "gdb") {  // QEMU's gdbstub: no plugin needed
            ram_ = probe_ram_for(opts_, *dom_);
            kernel_ = vm::probe_kernel_image(*dom_, 0);
            return;
        }
        auto plugin = vm::plugin_in_xml(dom_->xml(false));
        if (!plugin) {
            if (vm::plugin_in_xml(dom_->xml(true))) {
                fail(
                    "domain '{}' is prepared for nitro but was started before that: restart it "
                    "('virsh shutdown {}', then nitro trace --domain {} --start)",
                    name, name, name);
            }
            fail("domain '{}' is not prepared for nitro: run 'nitro prepare {}', then restart it",
                 name, name);
        }
        if (plugin->ctl.empty()) {
            fail(
                "domain '{}' loads nitro's plugin without ctl=PATH; run 'nitro prepare {}' again "
                "and restart it",
                name, name);
        }
        ctl_ = plugin->ctl;
        ram_ = vm::probe_guest_ram(*dom_);
        kernel_ = vm::probe_kernel_image(*dom_, 0);
    }
    std::string plugin_ctl() const override { return ctl_; }
    const vm::GuestRam& ram() const override { return ram_; }
    std::optional<std::string> kernel_image() const override { return kernel_; }
    vm::QemuMonitor& monitor() override { return *dom_; }
    void resume() override {
        if (started_paused_) dom_->resume();
        started_paused_ = false;
    }
    bool attached() const override { return true; }
    Ending finish(bool stopped_by_user, EndReason reason) override {
        started_paused_ = false;  // the gdb listener resumed it itself (no resume() call)
        if (stopped_by_user) {
            return {fmt::format("detached; domain '{}' keeps running", opts_.domain), 0};
        }
        // libvirt notices QEMU's end a moment after the plugin does.
        vm::DomainState st;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        do {
            st = dom_->state();
            if (!st.running) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } while (std::chrono::steady_clock::now() < deadline);
        if (st.running) {
            return {fmt::format("nitro's plugin in domain '{}' ended ({}) but the domain is {}",
                                opts_.domain, to_string(reason), st.text),
                    1};
        }
        return {fmt::format("domain '{}' {}", opts_.domain, st.text), st.shut_down ? 0 : 1};
    }

  private:
    TraceOptions opts_;
    std::unique_ptr<vm::LibvirtConnection> conn_;
    std::unique_ptr<vm::LibvirtDomain> dom_;
    bool started_paused_ = false;
    std::string ctl_;
    vm::GuestRam ram_;
    std::optional<std::string> kernel_;
};

}  // namespace

Progress::Progress() : tty_(isatty(STDERR_FILENO) == 1) {}

void Progress::step(const std::string& what) {
    log::info("{}", what);
    if (!tty_ || verbosity() > 0) return;
    std::fprintf(stderr, "\r\033[Knitro: %s ...", what.c_str());
    std::fflush(stderr);
    shown_ = true;
}

void Progress::clear() {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
}

std::unique_ptr<Target> make_target(const TraceOptions& o) {
    int n = !o.guest.kernel.empty() + !o.domain.empty() + !o.qmp.empty();
    if (n == 0) {
        fail(
            "nothing to trace: give --kernel K (nitro boots the guest), --domain NAME (a libvirt "
            "domain) or --qmp SOCKET (a QEMU you started)");
    }
    if (n > 1) fail("give only one of --kernel, --domain and --qmp");
    if (!o.domain.empty()) return std::make_unique<LibvirtTarget>(o);
    if (!o.qmp.empty()) return std::make_unique<QmpTarget>(o);
    return std::make_unique<BootTarget>(o);
}

}  // namespace nitro::cli
