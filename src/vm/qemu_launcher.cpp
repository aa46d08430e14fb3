// SPDX-License-Identifier: MIT
#include "vm/qemu_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>

#include "nitro/error.h"
#include "nitro/log.h"

namespace nitro::vm {

namespace {
constexpr int kMinQemuMajor = 10;  // plugin register reads need the QEMU 10 plugin API
constexpr size_t kStderrTail = 4096;

void check_readable(const std::string& what, const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail("{} {}: {}", what, path, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail("{} {} is not a regular file", what, path);
    if (access(path.c_str(), R_OK) != 0) fail("{} {}: {}", what, path, std::strerror(errno));
}

// The memory-backend file must live on a file system that supports shared mappings and is
// fast: /dev/shm when it exists.
std::string run_parent() {
    struct stat st {};
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) {
        return "/dev/shm";
    }
    const char* t = getenv("TMPDIR");
    return t ? t : "/tmp";
}
}  // namespace

const char* to_string(GuestEnd end) {
    switch (end) {
        case GuestEnd::Running: return "running";
        case GuestEnd::PowerOff: return "the guest powered off";
        case GuestEnd::Reset: return "the guest rebooted";
        case GuestEnd::Panic: return "the guest kernel panicked";
        case GuestEnd::QemuExit: return "QEMU exited";
        case GuestEnd::Killed: return "QEMU was stopped by nitro";
    }
    return "?";
}

QemuLauncher::QemuLauncher(LaunchConfig config) : config_(std::move(config)) {}

QemuLauncher::~QemuLauncher() {
    try {
        stop();
    } catch (const std::exception& e) {
        log::warn("stopping QEMU: {}", e.what());
    }
    if (console_thread_.joinable()) console_thread_.join();
    if (stderr_thread_.joinable()) stderr_thread_.join();
    child_.reset();
}

int QemuLauncher::qemu_major_version(const std::string& qemu) {
    ChildProcess p({qemu, "--version"});
    std::string out;
    char buf[512];
    ssize_t n;
    while ((n = read(p.stdout_fd(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    int st = p.wait();
    std::smatch m;
    static const std::regex re("version ([0-9]+)\\.");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !std::regex_search(out, m, re)) {
        fail("{} --version failed; is QEMU installed? (scripts/install-deps)", qemu);
    }
    return std::stoi(m[1]);
}

void QemuLauncher::check_config() const {
    if (config_.kernel.empty()) fail("no kernel given (--kernel)");
    check_readable("kernel", config_.kernel);
    if (!config_.initrd.empty()) check_readable("initrd", config_.initrd);
    if (!config_.disk.empty()) check_readable("disk image", config_.disk);
    if (config_.smp < 1 || config_.smp > 64) fail("--smp must be between 1 and 64");
    if (config_.memory_mib < 64 || config_.memory_mib > (1 << 20)) {
        fail("--memory must be between 64 and 1048576 MiB");
    }
    if (config_.accel != "tcg" && config_.accel != "kvm") fail("--accel must be tcg or kvm");
    if (config_.accel == "kvm") {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) fail("KVM is not usable: /dev/kvm: {} (use --accel tcg)", std::strerror(errno));
        close(fd);
    }
    if (!config_.plugin.empty()) check_readable("nitro plugin", config_.plugin);
    int major = qemu_major_version(config_.qemu);
    if (major < kMinQemuMajor) {
        fail("QEMU {} is too old: nitro needs QEMU {} or newer (Debian 12: bookworm-backports; "
             "run scripts/install-deps)",
             major, kMinQemuMajor);
    }
}

std::vector<std::string> QemuLauncher::command_line() const {
    std::vector<std::string> a = {config_.qemu};
    auto add = [&](std::initializer_list<std::string> items) { a.insert(a.end(), items); };
    std::string mem = std::to_string(config_.memory_mib) + "M";
    add({"-machine", "q35,accel=" + config_.accel + ",memory-backend=nitro-ram"});
    add({"-cpu", config_.accel == "kvm" ? "host" : "max"});
    add({"-smp", std::to_string(config_.smp), "-m", mem});
    add({"-object", "memory-backend-file,id=nitro-ram,size=" + mem + ",mem-path=" + memory_path_ +
                        ",share=on,prealloc=off"});
    add({"-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio", "-monitor", "none"});
    add({"-qmp", "unix:" + qmp_path_ + ",server=on,wait=off"});
    add({"-kernel", config_.kernel});
    if (!config_.initrd.empty()) add({"-initrd", config_.initrd});
    add({"-append", "console=ttyS0 panic=-1 " + config_.append});
    if (!config_.disk.empty()) {
        add({"-drive", "file=" + config_.disk + ",if=virtio,snapshot=on"});
    }
    if (!config_.plugin.empty()) {
        std::string p = config_.plugin + ",ctl=" + plugin_ctl_path();
        for (const auto& arg : config_.plugin_args) p += "," + arg;
        add({"-plugin", p});
    }
    if (config_.start_paused) a.push_back("-S");
    a.insert(a.end(), config_.extra_args.begin(), config_.extra_args.end());
    return a;
}

void QemuLauncher::start() {
    check_config();
    dir_ = std::make_unique<TempDir>(run_parent(), "nitro");
    memory_path_ = dir_->file("ram");
    qmp_path_ = dir_->file("qmp.sock");
    auto argv = command_line();
    {
        std::string line;
        for (const auto& s : argv) line += s + " ";
        log::info("starting {}", line);
    }
    child_ = std::make_unique<ChildProcess>(argv);
    console_thread_ = std::thread([this] { read_output(child_->stdout_fd(), true); });
    stderr_thread_ = std::thread([this] { read_output(child_->stderr_fd(), false); });
    try {
        // QEMU creates the QMP socket after parsing its options; if it dies first (bad option,
        // unloadable plugin), report its own words.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (access(qmp_path_.c_str(), F_OK) != 0) {
            if (child_->poll()) {
                fail("QEMU failed to start ({}): {}", describe_wait_status(*child_->poll()),
                     qemu_stderr());
            }
            if (std::chrono::steady_clock::now() > deadline) fail("QEMU did not start in 30 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        qmp_ = std::make_unique<QmpClient>(qmp_path_, std::chrono::seconds(10));
    } catch (...) {
        if (child_->poll() && !qemu_stderr().empty()) {
            // fall through with the richer message below
        }
        stop();
        throw;
    }
}

void QemuLauncher::read_output(int fd, bool is_console) {
    std::string pending;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!is_console) {
            std::lock_guard lock(stderr_mutex_);
            stderr_tail_.append(buf, static_cast<size_t>(n));
            if (stderr_tail_.size() > kStderrTail) {
                stderr_tail_.erase(0, stderr_tail_.size() - kStderrTail);
            }
            continue;
        }
        pending.append(buf, static_cast<size_t>(n));
        size_t pos;
        while ((pos = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, pos);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            pending.erase(0, pos + 1);
            if (line.find("Kernel panic") != std::string::npos) panic_seen_ = true;
            if (config_.console) config_.console(line);
        }
    }
    if (is_console && !pending.empty() && config_.console) config_.console(pending);
}

std::string QemuLauncher::qemu_stderr() const {
    std::lock_guard lock(stderr_mutex_);
    std::string s = stderr_tail_;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    // One line for error messages: QEMU's last line says what went wrong.
    auto nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
}

void QemuLauncher::note_event(const QmpClient::Json& event) {
    std::string name = event.value("event", "");
    if (name == "SHUTDOWN") {
        std::string reason = event.contains("data") ? event["data"].value("reason", "") : "";
        if (reason == "guest-shutdown") {
            end_ = GuestEnd::PowerOff;
        } else if (reason == "guest-reset") {
            end_ = panic_seen_ ? GuestEnd::Panic : GuestEnd::Reset;
        } else if (reason == "guest-panic") {
            end_ = GuestEnd::Panic;
        } else if (end_ == GuestEnd::Running) {
            end_ = GuestEnd::QemuExit;
        }
    }
}

GuestEnd QemuLauncher::wait(const std::function<bool()>& should_stop) {
    while (!child_->poll()) {
        if (should_stop && should_stop()) {
            stop();
            break;
        }
        try {
            if (qmp_ && !qmp_->closed()) {
                if (auto ev = qmp_->next_event(std::chrono::milliseconds(100))) note_event(*ev);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        } catch (const Error&) {
            // QMP closes as QEMU exits; the loop ends on the next poll.
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    child_->wait();
    // QEMU may have exited before we read its last events (SHUTDOWN says why): drain them.
    try {
        while (qmp_ && end_ == GuestEnd::Running) {
            auto ev = qmp_->next_event(std::chrono::milliseconds(0));
            if (!ev) break;
            note_event(*ev);
        }
    } catch (const Error&) {
    }
    if (console_thread_.joinable()) console_thread_.join();
    if (stderr_thread_.joinable()) stderr_thread_.join();
    if (end_ == GuestEnd::Running) end_ = panic_seen_ ? GuestEnd::Panic : GuestEnd::QemuExit;
    return end_;
}

void QemuLauncher::resume() { qmp_->execute("cont"); }

void QemuLauncher::stop() {
    if (!child_ || child_->poll()) return;
    if (end_ == GuestEnd::Running) end_ = GuestEnd::Killed;
    if (qmp_ && !qmp_->closed()) {
        try {
            qmp_->execute("quit", {}, std::chrono::seconds(2));
        } catch (const Error&) {
        }
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!child_->poll() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    child_->terminate(2000);
}

}  // namespace nitro::vm
