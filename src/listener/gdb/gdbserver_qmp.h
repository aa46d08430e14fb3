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

/// QEMU creates the stub's Unix socket itself, so the directory must be writable by the user
/// QEMU runs as (libvirt: libvirt-qemu by default, see qemu.conf). Gives `dir` (a private
/// directory nitro made) to the owner of process `qemu_pid` when that is another user; nitro
/// (root) can still connect to the socket and remove the directory. Throws nitro::Error when the
/// directory cannot be given away (nitro not root).
void give_socket_dir_to_qemu(const std::string& dir, int qemu_pid);

/// The pid of a libvirt domain's QEMU from libvirt's pid file (qemu:///system, or the session
/// daemon's run directory), or 0 when there is none to read.
int libvirt_qemu_pid(const std::string& domain);

}  // namespace nitro::gdb
