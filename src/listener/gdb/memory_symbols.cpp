// SPDX-License-Identifier: MIT
#include "listener/gdb/memory_symbols.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>
#include <string_view>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/kallsyms.h"

namespace nitro::gdb {

namespace {

// Bounds on what is read from the guest.
constexpr std::uint64_t kMaxTables = std::uint64_t{64} << 20;
constexpr std::uint32_t kMaxSymbols = 1u << 22;
constexpr std::size_t kMaxBanner = 512;
constexpr std::uint64_t kDefaultTextLink = 0xffffffff81000000ULL;
constexpr std::int64_t k2M = 2 << 20;

bool read(const PhysicalMemory& mem, std::uint64_t addr, std::span<std::uint8_t> out) {
    return mem.read(GuestPhys(addr), std::as_writable_bytes(out)) == MemStatus::Ok;
}

}  // namespace

KernelTrapSymbols trap_symbols_from_memory(const PhysicalMemory& mem,
                                           const std::vector<linux_os::PhysRange>& ranges) {
    auto vi = linux_os::find_vmcoreinfo(mem, ranges);
    if (!vi) fail("no vmcoreinfo note in guest memory (is the kernel up, and a Linux one?)");
    // The kallsyms tables, where vmcoreinfo says they are.
    const char* tables[] = {"kallsyms_names",       "kallsyms_num_syms", "kallsyms_token_table",
                            "kallsyms_token_index", "kallsyms_offsets",  "kallsyms_relative_base",
                            "kallsyms_addresses",   "kallsyms_markers",  "kallsyms_seqs_of_names"};
    std::uint64_t lo = UINT64_MAX, hi = 0;
    for (const char* n : tables)
        if (auto a = vi->symbol(n)) {
            lo = std::min(lo, *a);
            hi = std::max(hi, *a);
        }
    auto num_at = vi->symbol("kallsyms_num_syms");
    if (lo == UINT64_MAX || !num_at)
        fail("the guest kernel's vmcoreinfo ({}) does not say where its kallsyms tables are",
             vi->osrelease);
    auto num_phys = vi->image_phys(*num_at);
    auto lo_phys = vi->image_phys(lo);
    std::uint32_t num = 0;
    if (!num_phys || !lo_phys ||
        !read(mem, *num_phys, std::span(reinterpret_cast<std::uint8_t*>(&num), 4)) || num == 0 ||
        num > kMaxSymbols)
        fail("the guest kernel's kallsyms tables are not readable (vmcoreinfo of {})",
             vi->osrelease);
    // The last table ends within this much of the highest label (as in memory_profile.cpp).
    const std::uint64_t len = hi - lo + 512 + 8 * std::uint64_t{num} + 4096;
    if (len > kMaxTables) fail("the guest kernel's kallsyms tables are implausibly large");
    std::vector<std::uint8_t> buf(len);
    if (!read(mem, *lo_phys, buf)) fail("the guest kernel's kallsyms tables run out of RAM");
    std::vector<std::string_view> wanted = KernelTrapSymbols::names();
    auto keep = [&](std::string_view n) {
        return std::find(wanted.begin(), wanted.end(), n) != wanted.end();
    };
    linux_os::Kallsyms syms = linux_os::Kallsyms::from_tables(buf, lo, nullptr, keep);

    // The slide: vmcoreinfo's KERNELOFFSET, else _text against its usual link address.
    auto text = syms.find("_text");
    std::int64_t slide = 0;
    if (vi->kerneloffset) {
        slide = *vi->kerneloffset;
    } else if (text && text->address >= kDefaultTextLink &&
               (text->address - kDefaultTextLink) % k2M == 0) {
        slide = static_cast<std::int64_t>(text->address - kDefaultTextLink);
    } else {
        fail("the guest kernel's KASLR slide is unknown (no KERNELOFFSET in vmcoreinfo)");
    }
    KernelTrapSymbols out;
    for (std::string_view n : wanted) {
        const auto* s = syms.find(n);
        if (!s || s->absolute()) continue;
        out.link.emplace(std::string(n), s->address - static_cast<std::uint64_t>(slide));
    }
    // linux_banner's text, through the image mapping.
    auto banner_at = syms.find("linux_banner");
    auto banner_phys = banner_at ? vi->image_phys(banner_at->address) : std::nullopt;
    std::array<std::uint8_t, kMaxBanner> b{};
    if (!banner_phys || !read(mem, *banner_phys, b))
        fail("linux_banner is not readable in guest memory");
    std::string_view text_of(reinterpret_cast<const char*>(b.data()), b.size());
    text_of = text_of.substr(0, text_of.find_first_of(std::string_view("\n\0", 2)));
    if (!text_of.starts_with("Linux version "))
        fail("linux_banner in guest memory does not read \"Linux version ...\"");
    out.banner = std::string(text_of);
    auto entry = out.get("entry_SYSCALL_64");
    auto t0 = out.get("_text"), t1 = out.get("_etext");
    if (!entry || !t0 || !t1 || *entry < *t0 || *entry >= *t1)
        fail("the kallsyms tables in guest memory lack entry_SYSCALL_64 or _text/_etext");
    log::info("gdb listener: {} trap symbols from guest memory ({}, KASLR slide {:#x})",
              out.link.size(), vi->osrelease, slide);
    return out;
}

}  // namespace nitro::gdb
