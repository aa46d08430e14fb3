// SPDX-License-Identifier: MIT
/// @file
/// nitro as a library: the Nitro facade owns a guest (QEMU started with nitro's plugin), the
/// Listener attached to it and the Backend chosen for the guest's OS, as the original Nitro's
/// tutorial uses them:
///
/// ```cpp
/// nitro::Nitro nitro(target);
/// for (const nitro::Event& event : nitro.listen()) {
///     nitro::Syscall syscall = nitro.backend().process_event(event);
///     ...
/// }
/// ```
///
/// See docs/api.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nitro/abi.h"
#include "nitro/backend.h"
#include "nitro/event.h"
#include "nitro/hooks.h"
#include "nitro/listener.h"
#include "nitro/memory.h"
#include "nitro/syscall.h"

namespace nitro {

/// A guest nitro boots itself under QEMU: a kernel and an initrd, optionally a disk.
struct Target {
    std::string kernel;  ///< bzImage (also the default source of the kernel profile)
    std::string initrd;
    std::string append;  ///< kernel command line (console=ttyS0 is added)
    std::string disk;    ///< optional raw or qcow2 image
    int smp = 1;
    int memory_mib = 512;
    std::string accel = "tcg";  ///< nitro's plugin needs TCG
    std::string qemu = "qemu-system-x86_64";
    /// Receives each line of the guest's serial console; empty = discarded. Called from a
    /// thread of nitro's, not the one that listens.
    std::function<void(const std::string&)> console;
};

struct NitroOptions {
    /// Mode::Sync makes each vCPU wait at each event until the next one is asked for: hooks
    /// can then change the call's arguments in guest memory (RAM is mapped writable).
    Mode mode = Mode::Async;
    /// Build an OS backend (false: raw events only, like `nitro trace --nobackend`).
    bool backend = true;
    /// Trace only the calls that have hooks (the filter is pushed down to the plugin, and
    /// follows define_hook()/undefine_hook()); with no hook defined, nothing is traced.
    bool hooks_only = false;
    /// The kernel image to build the profile from; default: Target::kernel.
    std::string kernel_image;
    /// A saved kernel profile (JSON) to use instead of the kernel image.
    std::string profile;
    /// nitro's QEMU plugin; default: find_plugin().
    std::string plugin;
};

/// How a guest run ended.
enum class GuestEnd { Running, PowerOff, Reset, Panic, QemuExit, Killed };
const char* to_string(GuestEnd end);

/// Counters at the end (or at any time) of a run.
struct NitroStats {
    std::uint64_t events = 0;  ///< events listen() yielded
    ListenerStats listener;    ///< events the listener delivered, and those it dropped
    BackendStats backend;      ///< events decoded, hooks run, decoding errors
};

/// What a backend can be built from.
struct BackendSource {
    std::string kernel_image;                ///< the guest's kernel image (bzImage or vmlinux)
    std::string profile;                     ///< or a saved profile (JSON)
    std::shared_ptr<PhysicalMemory> memory;  ///< guest RAM
};

/// The backend for a guest's OS (the original's backend factory): tries each OS nitro knows
/// (Linux: a kernel profile from the image's BTF, or the saved profile) and returns the first
/// that fits. Throws nitro::Error saying what each one lacked.
std::unique_ptr<Backend> make_backend(const BackendSource& source);

/// nitro's QEMU plugin: $NITRO_PLUGIN, else beside the running program, else in
/// <prefix>/lib/nitro of the running program or of nitro's install. Throws nitro::Error naming
/// the places tried.
std::string find_plugin();

class Nitro {
  public:
    /// Boots @p target paused with nitro's plugin, attaches the listener and picks the backend.
    /// The guest runs from the first listen() (or run()). Throws nitro::Error.
    explicit Nitro(Target target, NitroOptions options = {});
    /// With an event source of one's own (a replay, a scripted listener in tests) and a backend
    /// (or none). NitroOptions::mode tells whether hooks may write memory (Mode::Sync).
    Nitro(std::unique_ptr<Listener> listener, std::unique_ptr<Backend> backend,
          NitroOptions options = {});
    /// Stops the guest (if nitro started it) and removes its files.
    ~Nitro();
    Nitro(const Nitro&) = delete;
    Nitro& operator=(const Nitro&) = delete;

    /// The events, until the guest ends or stop() is called:
    /// `for (const Event& e : nitro.listen())`. Starts the guest the first time.
    struct NextEvent {
        Nitro* owner;
        bool operator()(Event& ev) const { return owner->next_event(ev); }
    };
    using EventRange = nitro::EventRange<NextEvent>;
    EventRange listen() { return EventRange(NextEvent{this}); }

    /// Waits for the next event (the guest starts the first time). False at the end.
    bool next_event(Event& ev);
    /// Passes every event through the backend (running hooks) until the end; @p on_syscall, if
    /// given, sees each decoded call. Returns the number of events. Needs a backend.
    std::uint64_t run(const std::function<void(const Event&, const Syscall&)>& on_syscall = {});
    /// Ends listen() and run(): traps go off, events already buffered are still delivered,
    /// then the listener detaches. Safe to call from another thread or a signal handler.
    void stop() { stop_requested_.store(true, std::memory_order_relaxed); }

    /// The OS backend; throws nitro::Error when made without one (NitroOptions::backend).
    Backend& backend();
    bool has_backend() const { return backend_ != nullptr; }
    Listener& listener() { return *listener_; }
    /// Guest RAM (null when there is no guest of nitro's own).
    PhysicalMemory* memory() { return memory_.get(); }

    /// Shorthands for backend().define_hook() and backend().undefine_hook().
    void define_hook(std::string_view name, HookCallback callback,
                     Direction direction = Direction::Enter) {
        backend().define_hook(name, std::move(callback), direction);
    }
    bool undefine_hook(std::string_view name, Direction direction = Direction::Enter) {
        return backend().undefine_hook(name, direction);
    }

    /// Waits until the guest ends (after listening ended) and says how; Killed after stop().
    /// Throws nitro::Error when nitro did not start the guest.
    GuestEnd wait();
    NitroStats stats() const;

  private:
    struct Guest;
    void start_guest();
    void sync_filters();

    NitroOptions options_;
    std::unique_ptr<Guest> guest_;  // QEMU, when nitro started it
    std::shared_ptr<PhysicalMemory> memory_;
    std::unique_ptr<Listener> listener_;
    std::unique_ptr<Backend> backend_;
    std::atomic<bool> stop_requested_{false};
    bool started_ = false;
    bool draining_ = false;
    bool ended_ = false;
    std::uint64_t events_ = 0;
    // The hook set the listener's filter was last set from (hooks_only).
    std::optional<std::uint64_t> filter_generation_;
    std::vector<std::pair<Abi, std::uint64_t>> filtered_;
    bool traps_ = true;
};

}  // namespace nitro
