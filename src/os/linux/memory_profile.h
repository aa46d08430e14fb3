// SPDX-License-Identifier: MIT
// The kernel profile from guest physical memory alone, without the kernel image: the running
// kernel's BTF (its .BTF section is loaded with the image), its kallsyms tables, and the
// kernel's own vmcoreinfo note (build id, KASLR offset, phys_base, where kallsyms is), found by
// scanning the RAM. Also the KASLR slide of a profile that came from elsewhere (image, cache,
// ISF). Everything read from the guest is untrusted: sizes are capped, candidates are checked
// against each other (BTF parsed by libbpf, kallsyms decoded, init_task read back).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nitro/event.h"
#include "nitro/memory.h"
#include "os/linux/btf_profile.h"

namespace nitro::linux_os {

// Where the x86-64 kernel image is linked: __START_KERNEL_map, and _text with the default
// CONFIG_PHYSICAL_START (16 MiB) that distributions use. Only needed when the guest gives no
// vmcoreinfo (which states the KASLR offset itself).
inline constexpr uint64_t kStartKernelMap = 0xffffffff80000000ULL;
inline constexpr uint64_t kDefaultTextLink = 0xffffffff81000000ULL;
// Largest BTF blob accepted from memory (Debian 6.1's is 4 MiB; allyesconfig kernels ~ 20 MiB).
inline constexpr uint64_t kMaxMemoryBtfSize = uint64_t{64} << 20;

// A guest-physical range worth scanning.
struct PhysRange {
    uint64_t start = 0;
    uint64_t size = 0;
};

// The parts of QEMU's RAM file that hold data (SEEK_DATA/SEEK_HOLE), as guest-physical ranges
// under `layout`. Pages the guest never wrote are holes in the file: skipping them keeps a scan
// fast and stops it from allocating them. Falls back to the whole RAM when the file system
// cannot tell. Throws nitro::Error if the file cannot be opened.
std::vector<PhysRange> populated_ranges(const std::string& ram_file, const PcRamLayout& layout);
// All of RAM under `layout` (below and above 4 GiB).
std::vector<PhysRange> all_ranges(const PcRamLayout& layout);

// The kernel's vmcoreinfo (kernel/crash_core.c): "KEY=value" lines the kernel keeps in one page
// for crash dump tools. Only the keys nitro uses are kept.
struct VmcoreInfo {
    std::string osrelease;
    std::string build_id;                 // BUILD-ID (lower-case hex), may be empty
    std::optional<int64_t> kerneloffset;  // KERNELOFFSET: the KASLR slide of the image
    std::optional<int64_t> phys_base;     // NUMBER(phys_base)
    std::optional<bool> la57;             // NUMBER(pgtable_l5_enabled)
    std::map<std::string, uint64_t, std::less<>> symbols;  // SYMBOL(name)=hex, runtime addresses
    uint64_t found_at = 0;                                 // guest-physical address of the text

    std::optional<uint64_t> symbol(std::string_view name) const;
    // Guest-physical address of a kernel-image virtual address (__pa_symbol), if phys_base is
    // known and the address lies in the image window.
    std::optional<uint64_t> image_phys(uint64_t virt) const;
};

// Parses vmcoreinfo text; nullopt when it lacks OSRELEASE or holds malformed values.
std::optional<VmcoreInfo> parse_vmcoreinfo(std::string_view text);
// Looks for the vmcoreinfo page (page-aligned, starting "OSRELEASE=") in the given ranges.
std::optional<VmcoreInfo> find_vmcoreinfo(const PhysicalMemory& mem,
                                          const std::vector<PhysRange>& ranges);

// Per boot, never cached: where this boot put the kernel.
struct KernelLocation {
    int64_t slide = 0;  // runtime minus link address of kernel-image symbols
    bool slide_known = false;
    std::string slide_source;  // "vmcoreinfo", "kallsyms", "kernel mapping"
    // virt - phys of the kernel image mapping (its virtual addresses to guest-physical),
    // when known.
    std::optional<uint64_t> image_virt_minus_phys;
    // The kernel's own page tables (swapper_pg_dir / init_top_pgt) when vmcoreinfo names them.
    std::optional<PagingConfig> kernel_paging;
    // Runtime address of init_task and whether its task_struct read back as "swapper".
    std::optional<uint64_t> init_task;
    bool init_task_verified = false;
};

struct MemoryProfileOptions {
    // Guest-physical ranges to scan; empty: all of [0, mem.limit()).
    std::vector<PhysRange> ranges;
    // One event from the listener (optional): its cr3 and gs bases check the result (the
    // current task must be readable) and, without vmcoreinfo, give the kernel mapping.
    const Event* event = nullptr;
};

struct MemoryKernel {
    KernelProfile profile;  // link-time symbols, like a profile from the image
    KernelLocation location;
    std::optional<VmcoreInfo> vmcoreinfo;
    uint64_t btf_at = 0;  // guest-physical address of the BTF blob
    uint64_t btf_size = 0;
    size_t kernel_symbols = 0;  // symbols decoded from kallsyms (0: none found)
    struct Timings {
        // btf_ms: finding the blob and parsing it (libbpf and the profile's members).
        double vmcoreinfo_ms = 0, btf_ms = 0, kallsyms_ms = 0, total_ms = 0;
    } timings;
};

// Finds the running kernel's BTF (and kallsyms, vmcoreinfo) in guest memory and builds its
// profile. Throws nitro::Error saying what was not found.
MemoryKernel profile_from_memory(PhysicalMemory& mem, const MemoryProfileOptions& options = {});

// Only what is needed to recognise the kernel before building anything: the vmcoreinfo build
// id (cheap: one read per page). Empty when there is none.
std::string memory_build_id(const PhysicalMemory& mem, const std::vector<PhysRange>& ranges);

// The KASLR slide (and kernel mapping) of this boot for a profile that came from elsewhere
// (image, cache, ISF): vmcoreinfo's KERNELOFFSET, else the lowest mapped 2 MiB page of the
// kernel image window in the event's page tables (minus the profile's _text). Checked by
// reading init_task back when the profile knows it. Never throws; slide_known says whether it
// worked.
KernelLocation locate_kernel(PhysicalMemory& mem, const KernelProfile& profile,
                             const std::optional<VmcoreInfo>& vmcoreinfo,
                             const Event* event = nullptr);

// Guest-physical candidates of the BTF header (magic 0xeb9f, version 1, 24-byte header,
// types first) with a plausible size, in address order (for tests and diagnostics).
std::vector<PhysRange> find_btf_candidates(const PhysicalMemory& mem,
                                           const std::vector<PhysRange>& ranges,
                                           size_t max_candidates = 64);

}  // namespace nitro::linux_os
