// SPDX-License-Identifier: MIT
#include "listener/gdb/gdbserver_qmp.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

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

void give_socket_dir_to_qemu(const std::string& dir, int qemu_pid) {
    if (qemu_pid <= 0) return;
    struct stat proc {};
    std::string where = "/proc/" + std::to_string(qemu_pid);
    if (stat(where.c_str(), &proc) != 0)
        fail("QEMU (pid {}) is not running: {}", qemu_pid, std::strerror(errno));
    if (proc.st_uid == geteuid()) return;
    if (chown(dir.c_str(), proc.st_uid, proc.st_gid) != 0)
        fail("QEMU (pid {}) runs as uid {}: cannot give it the directory {} for the gdbstub's "
             "socket ({}); run nitro as root",
             qemu_pid, proc.st_uid, dir, std::strerror(errno));
    log::debug("gdbserver: socket directory {} given to uid {} (QEMU pid {})", dir, proc.st_uid,
               qemu_pid);
}

int libvirt_qemu_pid(const std::string& domain) {
    if (domain.empty() || domain.find('/') != std::string::npos) return 0;
    std::vector<std::string> files = {"/run/libvirt/qemu/" + domain + ".pid"};
    if (const char* run = std::getenv("XDG_RUNTIME_DIR"))
        files.push_back(std::string(run) + "/libvirt/qemu/run/" + domain + ".pid");
    for (const auto& f : files) {
        std::ifstream in(f);
        long pid = 0;
        if (in >> pid && pid > 0 && pid < (1L << 22)) return static_cast<int>(pid);
    }
    return 0;
}

}  // namespace nitro::gdb
