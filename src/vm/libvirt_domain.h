// SPDX-License-Identifier: MIT
// A libvirt domain, through libvirt's C API (libvirt and libvirt-qemu): lookup by name, its
// definition, start, state, and QMP commands through libvirt's QEMU monitor passthrough
// (virDomainQemuMonitorCommand), so that nitro never talks to QEMU behind libvirt's back
// except through the plugin's control file and the RAM file.
#pragma once

#include <memory>
#include <string>

#include "vm/qemu_monitor.h"

namespace nitro::vm {

/// A connection to libvirt. Throws nitro::Error with what to do when libvirtd is unreachable.
class LibvirtConnection {
  public:
    explicit LibvirtConnection(const std::string& uri);
    ~LibvirtConnection();
    LibvirtConnection(const LibvirtConnection&) = delete;
    LibvirtConnection& operator=(const LibvirtConnection&) = delete;

    const std::string& uri() const { return uri_; }
    /// The hypervisor version (QEMU's for the qemu driver) as {major, minor}.
    std::pair<int, int> hypervisor_version() const;
    /// libvirt's own version as {major, minor}.
    std::pair<int, int> libvirt_version() const;
    void* handle() const { return conn_; }

  private:
    std::string uri_;
    void* conn_ = nullptr;  // virConnectPtr
};

/// How a domain stands, with libvirt's reason for the last shut-off.
struct DomainState {
    bool running = false;    ///< running or paused (QEMU is alive)
    bool shut_down = false;  ///< shut off because the guest powered off
    std::string text;        ///< "running", "shut off (the guest shut down)", ...
};

class LibvirtDomain final : public QemuMonitor {
  public:
    /// Looks up the domain by name. Throws nitro::Error "no libvirt domain 'X' on URI ...".
    LibvirtDomain(LibvirtConnection& conn, const std::string& name);
    ~LibvirtDomain() override;
    LibvirtDomain(const LibvirtDomain&) = delete;
    LibvirtDomain& operator=(const LibvirtDomain&) = delete;

    const std::string& name() const { return name_; }
    std::string uuid() const;
    bool persistent() const;
    DomainState state() const;
    bool running() const { return state().running; }
    /// The persistent definition (inactive XML, with security information, as libvirt
    /// serialises it) or the live one.
    std::string xml(bool inactive = true) const;
    /// Replaces the persistent definition (virDomainDefineXML); the domain keeps its name.
    void define(const std::string& xml);
    /// Starts the domain (virDomainCreate), with its vCPUs paused if asked; throws with
    /// libvirt's and QEMU's reason.
    void start(bool paused = false);
    /// Resumes a paused domain.
    void resume();
    /// Forcibly stops the domain (virDomainDestroy); idempotent.
    void destroy();
    /// QMP through libvirt's monitor passthrough (libvirt-qemu).
    Json execute(const std::string& command, const Json& arguments) override;

    /// Removes the definition (virDomainUndefine); for tests and clean-up.
    void undefine();

  private:
    LibvirtConnection& conn_;
    std::string name_;
    void* dom_ = nullptr;  // virDomainPtr
};

/// libvirt's last error message as one line ("unknown error" if none).
std::string libvirt_error();

}  // namespace nitro::vm
