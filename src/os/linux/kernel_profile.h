// SPDX-License-Identifier: MIT
// Zero-configuration kernel profile: kernel image -> vmlinux -> BTF layouts + kallsyms.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "os/linux/btf_profile.h"
#include "os/linux/elf_image.h"
#include "os/linux/kallsyms.h"
#include "os/linux/kernel_image.h"

namespace nitro::linux_os {

struct LoadedKernel {
    std::vector<uint8_t> vmlinux;  // the decompressed ELF; `elf` views it
    Compression compression = Compression::None;
    std::unique_ptr<ElfImage> elf;
    Btf btf;
    Kallsyms symbols;  // empty if the image has neither .symtab nor kallsyms tables
    KernelProfile profile;
    struct Timings {
        double decompress_ms = 0, btf_ms = 0, kallsyms_ms = 0, total_ms = 0;
    } timings;
};

// Everything from a bzImage or vmlinux; throws nitro::Error with the first problem found.
LoadedKernel load_kernel(std::span<const uint8_t> image,
                         size_t max_vmlinux_size = kDefaultMaxVmlinuxSize);
LoadedKernel load_kernel_file(const std::string& path,
                              size_t max_vmlinux_size = kDefaultMaxVmlinuxSize);

// The profile cache: one JSON file per kernel build (see KernelProfile::cache_key()).
void save_profile(const KernelProfile& profile, const std::string& path);
KernelProfile load_profile(const std::string& path);

}  // namespace nitro::linux_os
