// SPDX-License-Identifier: MIT
#include "os/linux/profile_source.h"

#include <chrono>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/backend.h"
#include "os/linux/isf_profile.h"
#include "os/linux/kernel_profile.h"

namespace nitro::linux_os {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::vector<PhysRange> ranges_of(const GuestMemory& g) {
    if (!g.ranges.empty()) return g.ranges;
    return {{0, g.memory->limit()}};
}

}  // namespace

GuestMemory open_guest_memory(const std::string& ram_file, std::uint64_t ram_size) {
    auto mem = std::make_shared<MappedPhysicalMemory>(
        MappedPhysicalMemory::Options{.path = ram_file, .ram_size = ram_size});
    GuestMemory g;
    g.ranges = populated_ranges(ram_file, mem->layout());
    g.memory = std::move(mem);
    return g;
}

ResolvedProfile resolve_profile(const ProfileOptions& options, const GuestMemory* memory,
                                const Event* event) {
    const auto t0 = Clock::now();
    const ProfileCache cache(options.cache_dir);
    ResolvedProfile r;
    std::optional<VmcoreInfo> vmcoreinfo;
    bool vmcoreinfo_searched = false;
    auto find_vi = [&]() -> const std::optional<VmcoreInfo>& {
        if (!vmcoreinfo_searched && memory && memory->memory) {
            vmcoreinfo = find_vmcoreinfo(*memory->memory, ranges_of(*memory));
            vmcoreinfo_searched = true;
        }
        return vmcoreinfo;
    };

    if (!options.profile_file.empty()) {
        r.profile = load_profile_file(options.profile_file);
        r.source = "profile file " + options.profile_file;
    } else if (!options.kernel_image.empty()) {
        const auto image = read_file(options.kernel_image);
        if (auto cached = cache.load_for_image(image)) {
            r.profile = std::move(*cached);
            r.from_cache = true;
        } else {
            try {
                r.profile = load_kernel(image).profile;
            } catch (const Error& e) {
                fail("{}: {}", options.kernel_image, e.what());
            }
            cache.store_for_image(image, r.profile);
        }
        r.source = "kernel image " + options.kernel_image;
    } else if (memory && memory->memory) {
        PhysicalMemory& mem = *memory->memory;
        const auto& vi = find_vi();
        std::optional<KernelProfile> cached;
        if (vi && !vi->build_id.empty())
            cached = cache.load(ProfileCache::kMemoryPrefix + vi->build_id);
        if (cached) {
            // The build id comes from the guest: a guest could claim another kernel's. The
            // cached profile must also fit this guest's memory (release, init_task).
            const KernelLocation loc = locate_kernel(mem, *cached, vi, event);
            const bool fits = (cached->release.empty() || cached->release == vi->osrelease) &&
                              (!cached->symbols.count("init_task") || loc.init_task_verified);
            if (fits) {
                r.location = loc;
            } else {
                log::warn(
                    "profile cache: the cached profile of build id {} does not fit this guest's "
                    "memory; rebuilding it",
                    vi->build_id);
                cached.reset();
            }
        }
        if (cached) {
            r.profile = std::move(*cached);
            r.from_cache = true;
        } else {
            MemoryProfileOptions o;
            o.ranges = ranges_of(*memory);
            o.event = event;
            MemoryKernel k = profile_from_memory(mem, o);
            r.profile = std::move(k.profile);
            r.location = k.location;
            r.memory_timings = k.timings;
            cache.store(r.profile, ProfileCache::kMemoryPrefix);
        }
        r.source = "guest memory";
    } else {
        fail(
            "no kernel profile: nitro needs the guest's kernel image (--kernel-image PATH), guest "
            "memory to find the running kernel in, or a profile (--profile FILE: a Volatility 3 "
            "ISF .json/.json.xz or a nitro offsets file)");
    }
    if (memory && memory->memory && !r.location.slide_known)
        r.location = locate_kernel(*memory->memory, r.profile, find_vi(), event);
    if (r.from_cache) r.source += " (cached)";
    r.ms = ms_since(t0);
    log::debug("kernel profile {} from {} in {:.1f} ms; KASLR slide {}", r.profile.cache_key(),
               r.source, r.ms,
               r.location.slide_known
                   ? fmt::format("{:#x} ({})", r.location.slide, r.location.slide_source)
                   : std::string("unknown"));
    return r;
}

std::unique_ptr<LinuxBackend> LinuxBackend::open_from_memory(const std::string& ram_file,
                                                             std::uint64_t ram_size,
                                                             const Event* event) {
    GuestMemory g = open_guest_memory(ram_file, ram_size);
    ProfileOptions o;
    ResolvedProfile r = resolve_profile(o, &g, event);
    return std::make_unique<LinuxBackend>(std::move(r.profile), std::move(g.memory));
}

}  // namespace nitro::linux_os
