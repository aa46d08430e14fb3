// SPDX-License-Identifier: MIT
// QEMU's gdbstub for a VM that is already running: started on demand on a private Unix socket
// through the monitor (QMP human-monitor-command "gdbserver"), stopped again afterwards.
#pragma once

#include <string>

namespace nitro::vm {
class QmpClient;
class QemuMonitor;
}

namespace nitro::gdb {

/// Starts the gdbstub on `socket_path` (which must not exist yet) and returns the endpoint to
/// connect to ("unix:PATH"). Throws nitro::Error with QEMU's answer when it refuses.
std::string start_gdbserver(vm::QemuMonitor& monitor, const std::string& socket_path);
std::string start_gdbserver(vm::QmpClient& qmp, const std::string& socket_path);
/// Stops the gdbstub ("gdbserver none"); errors are logged, not thrown (used on detach).
void stop_gdbserver(vm::QemuMonitor& monitor);
void stop_gdbserver(vm::QmpClient& qmp);

}  // namespace nitro::gdb
