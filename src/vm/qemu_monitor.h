// SPDX-License-Identifier: MIT
// A running QEMU seen through its monitor: the QMP commands nitro needs to attach to a guest it
// did not start (its RAM file, its kernel image), whether the monitor is nitro's own QMP
// connection or libvirt's monitor passthrough.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace nitro::vm {

class QmpClient;

/// Something that runs QMP commands on one QEMU.
class QemuMonitor {
  public:
    using Json = nlohmann::json;
    virtual ~QemuMonitor() = default;
    /// Runs a command and returns its "return" value; throws nitro::Error on a QMP error.
    virtual Json execute(const std::string& command, const Json& arguments = Json::object()) = 0;
};

/// A QemuMonitor over nitro's own QMP connection.
class QmpMonitor final : public QemuMonitor {
  public:
    explicit QmpMonitor(QmpClient& qmp) : qmp_(qmp) {}
    Json execute(const std::string& command, const Json& arguments) override;

  private:
    QmpClient& qmp_;
};

/// Guest RAM as QEMU holds it: the machine's memory backend.
struct GuestRam {
    std::string backend;    ///< QOM path of the backend ("/objects/pc.ram")
    std::string type;       ///< QOM type ("memory-backend-file", "memory-backend-ram", ...)
    std::string path;       ///< mem-path of a memory-backend-file, else empty
    bool shared = false;    ///< share=on (needed: nitro maps the file)
    uint64_t size = 0;      ///< bytes of RAM
    uint64_t below_4g = 0;  ///< bytes of RAM mapped below 4 GiB (from the machine type)
};

/// Asks QEMU for the machine's RAM backend. Throws nitro::Error when QEMU has none that nitro
/// can map, naming what to change (share=on, a memory-backend-file).
GuestRam probe_guest_ram(QemuMonitor& monitor);

/// The kernel image QEMU booted directly (-kernel / libvirt <os><kernel>), absolute, or
/// nullopt when the guest booted from a disk. Relative paths are resolved against the QEMU
/// process's working directory when its pid is known (qemu_pid > 0).
std::optional<std::string> probe_kernel_image(QemuMonitor& monitor, pid_t qemu_pid);

/// Major, minor version of the QEMU behind the monitor (query-version).
std::pair<int, int> probe_qemu_version(QemuMonitor& monitor);

}  // namespace nitro::vm
