// SPDX-License-Identifier: MIT
#include "listener/gdb/gdbserver_qmp.h"

#include <sys/stat.h>

#include "nitro/error.h"
#include "nitro/log.h"
#include "vm/qemu_monitor.h"
#include "vm/qmp.h"

namespace nitro::gdb {

std::string start_gdbserver(vm::QmpClient& qmp, const std::string& socket_path) {
    vm::QmpMonitor monitor(qmp);
    return start_gdbserver(monitor, socket_path);
}

void stop_gdbserver(vm::QmpClient& qmp) {
    vm::QmpMonitor monitor(qmp);
    stop_gdbserver(monitor);
}

std::string start_gdbserver(vm::QemuMonitor& qmp, const std::string& socket_path) {
    if (socket_path.empty() || socket_path.find_first_of(", \t\n") != std::string::npos)
        fail("gdbserver socket path '{}' is empty or holds a comma or blank", socket_path);
    struct stat st {};
    if (stat(socket_path.c_str(), &st) == 0)
        fail("gdbserver socket {} already exists; remove it or choose another", socket_path);
    std::string cmd = "gdbserver unix:" + socket_path + ",server=on,wait=off";
    auto out = qmp.execute("human-monitor-command", {{"command-line", cmd}});
    std::string text = out.is_string() ? out.get<std::string>() : out.dump();
    // HMP prints "Waiting for gdb connection on device '...'" on success, an error otherwise.
    if (stat(socket_path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
        fail("QEMU did not start its gdbstub on {}: {}", socket_path,
             text.empty() ? "no socket appeared" : text.substr(0, text.find('\n')));
    log::debug("gdbserver: {}", text.substr(0, text.find('\n')));
    return "unix:" + socket_path;
}

void stop_gdbserver(vm::QemuMonitor& qmp) {
    try {
        qmp.execute("human-monitor-command", {{"command-line", "gdbserver none"}});
    } catch (const Error& e) {
        log::warn("cannot stop QEMU's gdbstub: {}", e.what());
    }
}

}  // namespace nitro::gdb
