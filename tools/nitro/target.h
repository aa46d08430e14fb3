// SPDX-License-Identifier: MIT
// What `nitro trace` traces: a guest nitro boots itself, a libvirt domain, or a QEMU the user
// started. Each gives the same things to the listener and the backend (the plugin's control
// file, the guest RAM file, the kernel image when known) and says how the guest ended.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "nitro/listener.h"
#include "vm/qemu_monitor.h"

namespace nitro::cli {

/// A one-line progress message on stderr while setting up, only on a terminal.
class Progress {
  public:
    Progress();
    ~Progress() { clear(); }
    void step(const std::string& what);
    void clear();

  private:
    bool tty_ = false;
    bool shown_ = false;
};

/// How a trace ended, for the last line nitro prints and its exit code.
struct Ending {
    std::string what;
    int exit_code = 0;
};

class Target {
  public:
    virtual ~Target() = default;
    /// Boots or connects; afterwards the accessors below are valid. Throws nitro::Error.
    virtual void open(Progress& progress) = 0;
    /// The control file of nitro's plugin in this QEMU.
    virtual std::string plugin_ctl() const = 0;
    /// The guest's RAM file (shared memory backend).
    virtual const vm::GuestRam& ram() const = 0;
    /// The kernel image QEMU booted, when it booted one directly.
    virtual std::optional<std::string> kernel_image() const = 0;
    /// QMP on this QEMU (nitro's own connection, or libvirt's monitor passthrough), e.g. for a
    /// listener that needs to ask QEMU for something (the gdb stub).
    virtual vm::QemuMonitor& monitor() = 0;
    /// Lets the guest run once the listener is attached (a guest nitro started paused).
    virtual void resume() {}
    /// True when nitro attached to a guest that must be left running when nitro stops.
    virtual bool attached() const = 0;
    /// After the listener ended (stopped_by_user false: reason says why) or nitro stopped:
    /// stops a guest nitro booted, leaves an attached one running, and says what happened.
    virtual Ending finish(bool stopped_by_user, EndReason reason) = 0;
};

/// The target the options name (exactly one of --kernel, --domain, --qmp).
std::unique_ptr<Target> make_target(const TraceOptions& o);

}  // namespace nitro::cli
