// SPDX-License-Identifier: MIT
#include "nitro/nitro.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "listener/tcg/tcg_listener.h"
#include "nitro/error.h"
#include "os/linux/backend.h"
#include "os/linux/kernel_profile.h"
#include "os/linux/pairing.h"
#include "vm/qemu_launcher.h"

namespace nitro {

namespace {

GuestEnd from_vm(vm::GuestEnd e) {
    switch (e) {
        case vm::GuestEnd::Running:
            return GuestEnd::Running;
        case vm::GuestEnd::PowerOff:
            return GuestEnd::PowerOff;
        case vm::GuestEnd::Reset:
            return GuestEnd::Reset;
        case vm::GuestEnd::Panic:
            return GuestEnd::Panic;
        case vm::GuestEnd::QemuExit:
            return GuestEnd::QemuExit;
        case vm::GuestEnd::Killed:
            return GuestEnd::Killed;
    }
    return GuestEnd::QemuExit;
}

// One OS nitro can decode: builds its backend, or throws nitro::Error saying what it lacks.
struct BackendKind {
    const char* name;
    std::unique_ptr<Backend> (*make)(const BackendSource&);
};

std::unique_ptr<Backend> make_linux(const BackendSource& s) {
    linux_os::KernelProfile profile;
    if (!s.profile.empty()) {
        profile = linux_os::load_profile(s.profile);
    } else if (!s.kernel_image.empty()) {
        // Only the profile is kept: the decompressed vmlinux is tens of MiB.
        profile = linux_os::load_kernel_file(s.kernel_image).profile;
    } else {
        fail("no kernel image or saved profile to read its layouts from");
    }
    return std::make_unique<linux_os::LinuxBackend>(std::move(profile), s.memory);
}

// A new OS is one line here.
constexpr BackendKind kBackends[] = {
    {"Linux", make_linux},
};

}  // namespace

const char* to_string(GuestEnd end) {
    switch (end) {
        case GuestEnd::Running:
            return "running";
        case GuestEnd::PowerOff:
            return "guest powered off";
        case GuestEnd::Reset:
            return "guest reset";
        case GuestEnd::Panic:
            return "guest kernel panic";
        case GuestEnd::QemuExit:
            return "QEMU exited";
        case GuestEnd::Killed:
            return "stopped";
    }
    return "?";
}

std::unique_ptr<Backend> make_backend(const BackendSource& source) {
    if (!source.memory) fail("no backend without guest memory");
    std::string why;
    for (const BackendKind& kind : kBackends) {
        try {
            return kind.make(source);
        } catch (const Error& e) {
            why += fmt::format("{}{}: {}", why.empty() ? "" : "; ", kind.name, e.what());
        }
    }
    fail(
        "no backend fits this guest ({}); give the guest's kernel image (with BTF) or a saved "
        "profile, or trace raw events without a backend",
        why);
}

std::string find_plugin() {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("NITRO_PLUGIN"); env && *env) {
        if (fs::is_regular_file(env)) return env;
        fail("NITRO_PLUGIN={} does not exist", env);
    }
    std::vector<fs::path> candidates;
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path dir = exe.parent_path();
        candidates.push_back(dir / NITRO_PLUGIN_NAME);
        candidates.push_back(dir / NITRO_PLUGIN_RELDIR / NITRO_PLUGIN_NAME);
    }
    candidates.push_back(fs::path(NITRO_PLUGIN_INSTALL_DIR) / NITRO_PLUGIN_NAME);
    std::string tried;
    for (fs::path p : candidates) {
        p = p.lexically_normal();
        if (fs::is_regular_file(p)) return p.string();
        tried += (tried.empty() ? "" : ", ") + p.string();
    }
    fail("nitro's QEMU plugin {} not found (looked in {}); set NITRO_PLUGIN=PATH",
         NITRO_PLUGIN_NAME, tried);
}

struct Nitro::Guest {
    std::unique_ptr<vm::QemuLauncher> vm;
    bool stopped = false;
};

Nitro::Nitro(Target target, NitroOptions options)
    : options_(std::move(options)), guest_(std::make_unique<Guest>()) {
    if (target.kernel.empty()) fail("no guest kernel to boot (Target::kernel)");
    BackendSource source;
    source.kernel_image = options_.kernel_image.empty() ? target.kernel : options_.kernel_image;
    source.profile = options_.profile;

    vm::LaunchConfig cfg;
    cfg.kernel = target.kernel;
    cfg.initrd = target.initrd;
    cfg.append = target.append;
    cfg.disk = target.disk;
    cfg.smp = target.smp;
    cfg.memory_mib = target.memory_mib;
    cfg.accel = target.accel;
    cfg.qemu = target.qemu;
    cfg.console = std::move(target.console);
    cfg.plugin = options_.plugin.empty() ? find_plugin() : options_.plugin;
    cfg.start_paused = true;

    std::unique_ptr<Backend> backend;
    const bool sync = options_.mode == Mode::Sync;
    // The guest stays paused until the first listen(): a guest nitro cannot decode ends here,
    // QEMU with it, before it ran.
    guest_->vm = std::make_unique<vm::QemuLauncher>(std::move(cfg));
    guest_->vm->start();
    if (options_.backend) {
        // Hooks write arguments through guest RAM: mapped writable in synchronous mode only,
        // where the guest waits while they run.
        memory_ = std::make_shared<MappedPhysicalMemory>(
            MappedPhysicalMemory::Options{.path = guest_->vm->memory_path(),
                                          .ram_size = guest_->vm->memory_size(),
                                          .writable = sync});
        source.memory = memory_;
        backend = make_backend(source);
    }
    // Hooks only: traps go on once the hooks' numbers are pushed down (sync_filters); with
    // none, the plugin stays passive (a moment of traps on would instrument for good).
    traps_ = !options_.hooks_only;
    auto listener = std::make_unique<tcg::TcgListener>(
        guest_->vm->plugin_ctl_path(), tcg::TcgOptions{.mode = options_.mode, .traps = traps_});
    linux_os::set_linux_pairing_hints(*listener);  // also without a backend (raw events)
    listener_ = std::move(listener);
    backend_ = std::move(backend);
    if (backend_) {
        backend_->attach(*listener_);
        if (sync) backend_->set_memory_writes("");
    }
    sync_filters();
}

Nitro::Nitro(std::unique_ptr<Listener> listener, std::unique_ptr<Backend> backend,
             NitroOptions options)
    : options_(std::move(options)), listener_(std::move(listener)), backend_(std::move(backend)) {
    if (!listener_) fail("Nitro needs a listener");
    started_ = true;  // nothing to start: the listener's source runs on its own
    if (backend_) {
        backend_->attach(*listener_);
        if (options_.mode == Mode::Sync) backend_->set_memory_writes("");
    }
    sync_filters();
}

Nitro::~Nitro() {
    // The listener detaches before QEMU goes away (the plugin's vCPUs must not wait for it).
    listener_.reset();
    if (guest_ && guest_->vm) guest_->vm->stop();
}

Backend& Nitro::backend() {
    if (!backend_) fail("this Nitro has no backend (NitroOptions::backend is false)");
    return *backend_;
}

void Nitro::sync_filters() {
    if (!options_.hooks_only || !backend_) return;
    const HookTable& hooks = backend_->hooks();
    if (filter_generation_ == hooks.generation()) return;
    filter_generation_ = hooks.generation();
    auto wanted = hooks.numbers();
    // An empty number filter traces every call: with no hooks, traps go off instead. They go
    // off before the last number is removed, and on after the first one is added.
    if (wanted.empty() && traps_) {
        listener_->set_traps(false);
        traps_ = false;
    }
    for (const auto& n : filtered_) {
        if (!std::binary_search(wanted.begin(), wanted.end(), n)) {
            listener_->remove_syscall_filter(n.first, n.second);
        }
    }
    for (const auto& n : wanted) {
        if (!std::binary_search(filtered_.begin(), filtered_.end(), n)) {
            listener_->add_syscall_filter(n.first, n.second);
        }
    }
    filtered_ = std::move(wanted);
    if (!filtered_.empty() && !traps_ && !draining_) {
        listener_->set_traps(true);
        traps_ = true;
    }
}

bool Nitro::next_event(Event& ev) {
    if (ended_) return false;
    if (!started_) {
        started_ = true;
        guest_->vm->resume();
    }
    for (;;) {
        if (stop_requested_.load(std::memory_order_relaxed) && !draining_) {
            // Drain what the plugin already buffered, then detach.
            draining_ = true;
            listener_->set_traps(false);
            traps_ = false;
        }
        sync_filters();
        auto s = listener_->next(ev, std::chrono::milliseconds(draining_ ? 0 : 200));
        if (s == Listener::Status::Event) {
            ++events_;
            return true;
        }
        if (s == Listener::Status::End || draining_) {
            if (draining_ && s != Listener::Status::End) listener_->stop();
            ended_ = true;
            return false;
        }
    }
}

std::uint64_t Nitro::run(const std::function<void(const Event&, const Syscall&)>& on_syscall) {
    Backend& b = backend();
    std::uint64_t n = 0;
    for (const Event& ev : listen()) {
        Syscall sc = b.process_event(ev);
        ++n;
        if (on_syscall) on_syscall(ev, sc);
    }
    return n;
}

GuestEnd Nitro::wait() {
    if (!guest_ || !guest_->vm) fail("this Nitro did not start a guest: nothing to wait for");
    if (draining_) {
        // stop(): the guest would run on; end it.
        guest_->vm->stop();
        return GuestEnd::Killed;
    }
    return from_vm(guest_->vm->wait());
}

NitroStats Nitro::stats() const {
    NitroStats s;
    s.events = events_;
    s.listener = listener_->stats();
    if (backend_) s.backend = backend_->stats();
    return s;
}

}  // namespace nitro
