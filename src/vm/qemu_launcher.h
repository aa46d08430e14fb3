// SPDX-License-Identifier: MIT
// The embedded default: nitro starts qemu-system-x86_64 itself for a kernel + initrd (+ disk),
// with guest RAM in a shared memory-backend file (so nitro can map guest physical memory),
// a private QMP socket, the serial console captured, and optionally nitro's TCG plugin.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vm/child_process.h"
#include "vm/qmp.h"
#include "vm/temp_dir.h"

namespace nitro::vm {

struct LaunchConfig {
    std::string kernel;
    std::string initrd;
    std::string append;
    std::string disk;  ///< optional raw or qcow2 image, attached as virtio disk
    int smp = 1;
    int memory_mib = 512;
    std::string accel = "tcg";  ///< "tcg" or "kvm"
    std::string qemu = "qemu-system-x86_64";
    /// nitro's TCG plugin and its arguments ("key=value"); empty path = no plugin.
    std::string plugin;
    std::vector<std::string> plugin_args;
    /// Start with the vCPUs paused (resume() starts them), so a listener misses nothing.
    bool start_paused = false;
    /// Extra QEMU arguments (e.g. -gdb for the gdb listener).
    std::vector<std::string> extra_args;
    /// Receives each line the guest prints on its serial console (without newline).
    std::function<void(const std::string&)> console;
};

/// How a guest run ended.
enum class GuestEnd { Running, PowerOff, Reset, Panic, QemuExit, Killed };
const char* to_string(GuestEnd end);

class QemuLauncher {
public:
    explicit QemuLauncher(LaunchConfig config);
    /// Stops QEMU if still running and removes every file it created.
    ~QemuLauncher();
    QemuLauncher(const QemuLauncher&) = delete;
    QemuLauncher& operator=(const QemuLauncher&) = delete;

    /// Checks the configuration, starts QEMU and connects to its QMP socket.
    /// Throws nitro::Error with a one-line reason (QEMU missing or too old, bad kernel path...).
    void start();
    /// Waits until QEMU ends or should_stop() returns true (checked every 100 ms).
    GuestEnd wait(const std::function<bool()>& should_stop = {});
    /// Starts the vCPUs of a guest started paused.
    void resume();
    /// The control file of nitro's plugin in this QEMU (when the plugin is loaded).
    std::string plugin_ctl_path() const { return dir_ ? dir_->file("plugin.ctl") : ""; }
    /// Asks QEMU to quit now (QMP quit, then signals); idempotent.
    void stop();

    /// Directory of the run's private files (for the plugin's control file and the like).
    const TempDir& run_dir() const { return *dir_; }
    const std::string& memory_path() const { return memory_path_; }
    uint64_t memory_size() const { return static_cast<uint64_t>(config_.memory_mib) << 20; }
    const std::string& qmp_path() const { return qmp_path_; }
    QmpClient& qmp() { return *qmp_; }
    pid_t pid() const { return child_ ? child_->pid() : -1; }
    GuestEnd end() const { return end_; }
    /// The last lines of QEMU's own messages on stderr (for error reports).
    std::string qemu_stderr() const;

    /// Major version of the given QEMU binary, or throws nitro::Error if it cannot run.
    static int qemu_major_version(const std::string& qemu);

private:
    std::vector<std::string> command_line() const;
    void check_config() const;
    void read_output(int fd, bool is_console);
    void note_event(const QmpClient::Json& event);

    LaunchConfig config_;
    std::unique_ptr<TempDir> dir_;
    std::string memory_path_;
    std::string qmp_path_;
    std::unique_ptr<ChildProcess> child_;
    std::unique_ptr<QmpClient> qmp_;
    std::thread console_thread_;
    std::thread stderr_thread_;
    mutable std::mutex stderr_mutex_;
    std::string stderr_tail_;
    GuestEnd end_ = GuestEnd::Running;
    std::atomic<bool> panic_seen_{false};
};

}  // namespace nitro::vm
