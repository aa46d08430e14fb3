// SPDX-License-Identifier: MIT
#include "os/linux/kernel_profile.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/sha256.h"

namespace nitro::linux_os {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

LoadedKernel load_kernel(std::span<const uint8_t> image, size_t max_vmlinux_size) {
    const auto t0 = Clock::now();
    auto vm = extract_vmlinux(image, max_vmlinux_size);
    const double decompress_ms = ms_since(t0);

    auto elf = std::make_unique<ElfImage>(vm.elf);
    const auto t1 = Clock::now();
    Btf btf = Btf::from_vmlinux(*elf);
    const double btf_parse_ms = ms_since(t1);

    const auto t2 = Clock::now();
    Kallsyms symbols;
    try {
        symbols = Kallsyms::from_vmlinux(*elf);
    } catch (const Error& e) {
        // Layouts alone are still useful (e.g. with a System.map supplied later).
        log::warn("{}", e.what());
    }
    const double kallsyms_ms = ms_since(t2);

    const auto t3 = Clock::now();
    KernelProfile profile = build_profile(btf, elf.get(), symbols.empty() ? nullptr : &symbols);
    if (profile.build_id.empty()) {
        // The cache key of kernels built without a build id.
        Sha256 h;
        h.update(Btf::locate(*elf));
        profile.btf_sha256 = h.hex();
    }
    const double profile_ms = ms_since(t3);

    LoadedKernel k{std::move(vm.elf),
                   vm.compression,
                   std::move(elf),
                   std::move(btf),
                   std::move(symbols),
                   std::move(profile),
                   {}};
    k.timings = {decompress_ms, btf_parse_ms + profile_ms, kallsyms_ms, ms_since(t0)};
    log::debug(
        "kernel profile for {}: {} decompress {:.1f} ms, BTF {:.1f} ms, kallsyms {:.1f} ms "
        "({} symbols), total {:.1f} ms",
        k.profile.release, to_string(k.compression), k.timings.decompress_ms, k.timings.btf_ms,
        k.timings.kallsyms_ms, k.symbols.size(), k.timings.total_ms);
    return k;
}

LoadedKernel load_kernel_file(const std::string& path, size_t max_vmlinux_size) {
    const auto bytes = read_file(path);
    try {
        return load_kernel(bytes, max_vmlinux_size);
    } catch (const Error& e) {
        fail("{}: {}", path, e.what());
    }
}

void save_profile(const KernelProfile& profile, const std::string& path) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        if (!f) fail("cannot write {}", tmp);
        f << nlohmann::json(profile).dump(2) << '\n';
        if (!f) fail("cannot write {}", tmp);
    }
    // Rename so that a concurrent reader never sees half a file.
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail_errno("cannot rename " + tmp);
}

KernelProfile load_profile(const std::string& path) {
    std::ifstream f(path);
    if (!f) fail("cannot open profile {}", path);
    nlohmann::json j;
    try {
        f >> j;
    } catch (const nlohmann::json::exception& e) {
        fail("profile {}: not valid JSON ({})", path, e.what());
    }
    try {
        return profile_from_json(j);
    } catch (const Error& e) {
        fail("profile {}: {}", path, e.what());
    }
}

}  // namespace nitro::linux_os
