// SPDX-License-Identifier: MIT
// Where nitro's Linux kernel profile comes from, in order: a profile file the user gave
// (--profile: ISF, offsets or a nitro profile), the kernel image (--kernel-image, or the bzImage
// nitro booted), the guest's memory. Image and memory profiles are cached per kernel build
// (see profile_cache.h). When nothing works, one line says what is missing and what to give.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nitro/event.h"
#include "nitro/memory.h"
#include "os/linux/btf_profile.h"
#include "os/linux/memory_profile.h"
#include "os/linux/profile_cache.h"

namespace nitro::linux_os {

struct ProfileOptions {
    std::string profile_file;  // --profile FILE (ISF .json/.json.xz, offsets, nitro profile)
    std::string kernel_image;  // --kernel-image PATH, or the kernel nitro booted
    // --profile-cache DIR; "" disables the cache. Default: ProfileCache::default_dir().
    std::string cache_dir = ProfileCache::default_dir();
};

// Guest RAM and the parts of it worth scanning.
struct GuestMemory {
    std::shared_ptr<PhysicalMemory> memory;
    std::vector<PhysRange> ranges;  // empty: all of it
};

// Maps QEMU's RAM file (read-only) and finds its populated ranges.
GuestMemory open_guest_memory(const std::string& ram_file, std::uint64_t ram_size);

struct ResolvedProfile {
    KernelProfile profile;
    // This boot's slide and kernel mapping (only when guest memory was given; see
    // KernelLocation::slide_known).
    KernelLocation location;
    // "profile file PATH", "kernel image PATH", "guest memory", each with " (cached)" when the
    // cache answered.
    std::string source;
    bool from_cache = false;
    double ms = 0;
    // Where the time went when the profile was built from guest memory.
    std::optional<MemoryKernel::Timings> memory_timings;
};

// Tries the sources in order (see the file comment). `memory` may be null (no guest memory
// yet); `event` (optional) is one event of the running guest, for its registers. The guest
// must have booted for the memory source to work. Throws nitro::Error: a given profile file
// or image that fails is an error (no silent fallback); with neither, the memory error.
ResolvedProfile resolve_profile(const ProfileOptions& options, const GuestMemory* memory = nullptr,
                                const Event* event = nullptr);

}  // namespace nitro::linux_os
