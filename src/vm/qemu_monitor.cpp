// SPDX-License-Identifier: MIT
#include "vm/qemu_monitor.h"

#include <filesystem>

#include "nitro/error.h"
#include "nitro/memory.h"
#include "vm/qmp.h"

namespace nitro::vm {

QemuMonitor::Json QmpMonitor::execute(const std::string& command, const Json& arguments) {
    return qmp_.execute(command, arguments);
}

namespace {

QemuMonitor::Json qom_get(QemuMonitor& m, const std::string& path, const std::string& prop) {
    return m.execute("qom-get", {{"path", path}, {"property", prop}});
}

}  // namespace

GuestRam probe_guest_ram(QemuMonitor& monitor) {
    GuestRam ram;
    QemuMonitor::Json backend;
    try {
        backend = qom_get(monitor, "/machine", "memory-backend");
    } catch (const Error&) {
        backend = nullptr;
    }
    if (!backend.is_string() || backend.get<std::string>().empty()) {
        fail(
            "the guest's RAM is not in a memory backend object; nitro needs a shared "
            "memory-backend-file (QEMU: -object memory-backend-file,id=ram,mem-path=FILE,"
            "share=on,size=N -machine memory-backend=ram; libvirt: nitro prepare)");
    }
    ram.backend = backend.get<std::string>();
    auto type = qom_get(monitor, ram.backend, "type");
    ram.type = type.is_string() ? type.get<std::string>() : "";
    if (ram.type != "memory-backend-file") {
        fail(
            "the guest's RAM is a {}, not a memory-backend-file that nitro can map; give QEMU "
            "-object memory-backend-file,...,share=on (libvirt: nitro prepare, then restart the "
            "domain)",
            ram.type.empty() ? "backend of unknown type" : ram.type);
    }
    auto path = qom_get(monitor, ram.backend, "mem-path");
    auto share = qom_get(monitor, ram.backend, "share");
    auto size = qom_get(monitor, ram.backend, "size");
    if (!path.is_string() || !share.is_boolean() || !size.is_number_unsigned()) {
        fail("QEMU's answer about memory backend {} is malformed", ram.backend);
    }
    ram.path = path.get<std::string>();
    ram.shared = share.get<bool>();
    ram.size = size.get<uint64_t>();
    if (!ram.shared) {
        fail(
            "the guest's RAM file {} is private to QEMU (share=off); nitro needs share=on "
            "(libvirt: <memoryBacking><access mode='shared'/>, see nitro prepare)",
            ram.path);
    }
    if (std::filesystem::is_directory(ram.path)) {
        fail(
            "the guest's memory backend has mem-path={} (a directory: QEMU unlinks its file); "
            "give mem-path a file name",
            ram.path);
    }
    // The split of RAM below and above 4 GiB depends on the machine type.
    std::string machine;
    try {
        auto t = qom_get(monitor, "/machine", "type");
        if (t.is_string()) machine = t.get<std::string>();
    } catch (const Error&) {
    }
    PcRamLayout layout = machine.find("q35") == std::string::npos && machine.starts_with("pc-")
                             ? PcRamLayout::i440fx(ram.size)
                             : PcRamLayout::q35(ram.size);
    try {
        auto max_below = qom_get(monitor, "/machine", "max-ram-below-4g");
        if (max_below.is_number_unsigned() && max_below.get<uint64_t>() != 0 &&
            max_below.get<uint64_t>() < layout.below_4g) {
            layout = PcRamLayout::with_below_4g(ram.size, max_below.get<uint64_t>());
        }
    } catch (const Error&) {
    }
    ram.below_4g = layout.below_4g;
    return ram;
}

std::optional<std::string> probe_kernel_image(QemuMonitor& monitor, pid_t qemu_pid) {
    QemuMonitor::Json k;
    try {
        k = qom_get(monitor, "/machine", "kernel");
    } catch (const Error&) {
        return std::nullopt;
    }
    if (!k.is_string() || k.get<std::string>().empty()) return std::nullopt;
    std::filesystem::path p = k.get<std::string>();
    if (p.is_relative()) {
        if (qemu_pid <= 0) return std::nullopt;
        std::error_code ec;
        auto cwd = std::filesystem::read_symlink("/proc/" + std::to_string(qemu_pid) + "/cwd", ec);
        if (ec) return std::nullopt;
        p = cwd / p;
    }
    return p.lexically_normal().string();
}

std::pair<int, int> probe_qemu_version(QemuMonitor& monitor) {
    auto v = monitor.execute("query-version");
    if (!v.is_object() || !v.contains("qemu") || !v["qemu"].is_object()) {
        fail("QEMU's query-version answer is malformed");
    }
    return {v["qemu"].value("major", 0), v["qemu"].value("minor", 0)};
}

}  // namespace nitro::vm
