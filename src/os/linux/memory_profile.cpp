// SPDX-License-Identifier: MIT
#include "os/linux/memory_profile.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <unordered_set>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/byte_reader.h"
#include "os/linux/kallsyms.h"
#include "os/linux/process.h"
#include "os/linux/sha256.h"

namespace nitro::linux_os {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

constexpr uint64_t kPage = 4096;
constexpr uint64_t k2M = uint64_t{2} << 20;
// The kernel image window: __START_KERNEL_map + KERNEL_IMAGE_SIZE (1 GiB with KASLR).
constexpr uint64_t kImageWindow = uint64_t{1} << 30;
// kallsyms tables lie in .rodata, before .BTF; this much memory before the BTF is searched
// when vmcoreinfo does not say where they are.
constexpr uint64_t kKallsymsSearch = uint64_t{64} << 20;
constexpr uint64_t kMaxKallsymsRegion = uint64_t{64} << 20;
constexpr size_t kScanChunk = size_t{4} << 20;
constexpr size_t kMaxExtents = size_t{1} << 16;
constexpr size_t kMaxBtfTries = 256;
constexpr uint32_t kBtfHeaderLen = 24;
// The BTF header as pahole/libbpf write it: magic 0xeb9f, version 1, flags 0, hdr_len 24,
// type_off 0.
constexpr std::array<uint8_t, 12> kBtfPattern = {0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00,
                                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
constexpr std::string_view kVmcoreinfoStart = "OSRELEASE=";

bool read_phys(const PhysicalMemory& mem, uint64_t addr, std::span<uint8_t> out) {
    return mem.read(GuestPhys(addr), std::as_writable_bytes(out)) == MemStatus::Ok;
}

template <typename T>
std::optional<T> read_phys_value(const PhysicalMemory& mem, uint64_t addr) {
    T v;
    if (mem.read(GuestPhys(addr), std::as_writable_bytes(std::span<T, 1>(&v, 1))) != MemStatus::Ok)
        return std::nullopt;
    return v;
}

std::optional<uint64_t> parse_hex(std::string_view s) {
    if (s.starts_with("0x")) s.remove_prefix(2);
    if (s.empty() || s.size() > 16) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<int64_t> parse_dec(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

bool printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// The BTF blob's total size from its header, or nullopt when the header is not one libbpf
// could accept or the size is absurd.
std::optional<uint64_t> btf_size_from_header(std::span<const uint8_t> h) {
    if (h.size() < kBtfHeaderLen ||
        std::memcmp(h.data(), kBtfPattern.data(), kBtfPattern.size()) != 0)
        return std::nullopt;
    const uint32_t type_len = *load_le<uint32_t>(h, 12);
    const uint32_t str_off = *load_le<uint32_t>(h, 16);
    const uint32_t str_len = *load_le<uint32_t>(h, 20);
    if (type_len == 0 || str_len == 0 || str_off < type_len || str_off - type_len > kPage)
        return std::nullopt;
    const uint64_t size = kBtfHeaderLen + uint64_t{str_off} + str_len;
    if (size > kMaxMemoryBtfSize) return std::nullopt;
    return size;
}

struct BtfFound {
    uint64_t at = 0;
    std::vector<uint8_t> raw;
    Btf btf;
    KernelProfile profile;
};

// The first candidate at or above `from` that libbpf parses and that has everything the
// profile needs.
std::optional<BtfFound> first_valid_btf(const PhysicalMemory& mem,
                                        const std::vector<PhysRange>& ranges, uint64_t from,
                                        std::string& why) {
    // One candidate at a time, in address order: headers a guest sprays below the real blob
    // cost a parse each (bounded by kMaxBtfTries), they cannot hide it.
    for (size_t tries = 0; tries < kMaxBtfTries; ++tries) {
        std::vector<PhysRange> clipped;
        for (const auto& r : ranges) {
            if (r.start + r.size <= from) continue;
            const uint64_t s = std::max(r.start, from);
            clipped.push_back({s, r.start + r.size - s});
        }
        const auto found = find_btf_candidates(mem, clipped, 1);
        if (found.empty()) return std::nullopt;
        const PhysRange c = found[0];
        from = c.start + 1;
        std::vector<uint8_t> raw(c.size);
        if (!read_phys(mem, c.start, raw)) {
            why = fmt::format("BTF header at {:#x}: blob of {} bytes runs out of RAM", c.start,
                              c.size);
            continue;
        }
        try {
            Btf btf = Btf::from_bytes(raw);
            KernelProfile p = build_profile(btf);
            return BtfFound{c.start, std::move(raw), std::move(btf), std::move(p)};
        } catch (const Error& e) {
            why = fmt::format("BTF at {:#x}: {}", c.start, e.what());
            log::debug("{}", why);
        }
    }
    why = fmt::format("more than {} BTF headers that do not parse", kMaxBtfTries);
    return std::nullopt;
}

// Reads up to `size` bytes ending at `end` (guest-physical), shrinking the start until the
// range is all RAM.
std::optional<std::pair<uint64_t, std::vector<uint8_t>>> read_before(const PhysicalMemory& mem,
                                                                     uint64_t end, uint64_t size) {
    for (uint64_t want = size; want >= k2M; want /= 2) {
        const uint64_t start = end > want ? end - want : 0;
        std::vector<uint8_t> buf(end - start);
        if (read_phys(mem, start, buf)) return std::make_pair(start, std::move(buf));
    }
    return std::nullopt;
}

// The symbols a profile from memory needs: the profile's, and those the checks use.
bool wanted_symbol(std::string_view name) {
    static const std::unordered_set<std::string_view> names = [] {
        std::unordered_set<std::string_view> n = {"_text", "__start_BTF", "linux_banner",
                                                  "init_task"};
        for (const char* s : profile_symbol_names()) n.insert(s);
        return n;
    }();
    return names.count(name) != 0;
}

// The kallsyms tables where vmcoreinfo says they are (6.x kernels export their addresses).
std::optional<Kallsyms> kallsyms_from_vmcoreinfo(const PhysicalMemory& mem, const VmcoreInfo& vi,
                                                 KallsymsLayout* layout) {
    const char* names[] = {"kallsyms_names",       "kallsyms_num_syms", "kallsyms_token_table",
                           "kallsyms_token_index", "kallsyms_offsets",  "kallsyms_relative_base",
                           "kallsyms_addresses",   "kallsyms_markers"};
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const char* n : names)
        if (auto a = vi.symbol(n)) {
            lo = std::min(lo, *a);
            hi = std::max(hi, *a);
        }
    auto num_at = vi.symbol("kallsyms_num_syms");
    if (lo == UINT64_MAX || !num_at) return std::nullopt;
    auto num_phys = vi.image_phys(*num_at);
    auto lo_phys = vi.image_phys(lo);
    if (!num_phys || !lo_phys) return std::nullopt;
    auto num = read_phys_value<uint32_t>(mem, *num_phys);
    if (!num || *num == 0 || *num > (1u << 22)) return std::nullopt;
    // Whatever comes last (token_index, or from 6.4 the offsets and seqs tables) ends within
    // this much of the highest label.
    const uint64_t len = hi - lo + 512 + 8 * uint64_t{*num} + 4096;
    if (len > kMaxKallsymsRegion) return std::nullopt;
    std::vector<uint8_t> buf(len);
    if (!read_phys(mem, *lo_phys, buf)) return std::nullopt;
    try {
        return Kallsyms::from_tables(buf, lo, layout, wanted_symbol);
    } catch (const Error& e) {
        log::debug("kallsyms at vmcoreinfo's addresses: {}", e.what());
        return std::nullopt;
    }
}

// Reads init_task's pid and comm through the image mapping: a check of symbols, slide and
// layouts at once.
bool init_task_looks_right(const PhysicalMemory& mem, const KernelProfile& p, uint64_t init_task,
                           uint64_t virt_minus_phys) {
    const uint64_t phys = init_task - virt_minus_phys;
    auto pid = read_phys_value<int32_t>(mem, phys + p.task_struct.pid.offset);
    std::array<uint8_t, 16> comm{};
    if (!pid || !read_phys(mem, phys + p.task_struct.comm.offset, comm)) return false;
    const auto* c = reinterpret_cast<const char*>(comm.data());
    const std::string_view name(c, strnlen(c, comm.size()));
    return *pid == 0 && name.starts_with("swapper");
}

const KernelSymbol* relocatable(const Kallsyms& s, std::string_view name) {
    const auto* sym = s.find(name);
    return sym && !sym->absolute() ? sym : nullptr;
}

}  // namespace

// --- ranges ---------------------------------------------------------------------------------

std::vector<PhysRange> all_ranges(const PcRamLayout& layout) {
    std::vector<PhysRange> out;
    if (layout.below_4g) out.push_back({0, layout.below_4g});
    if (layout.above_4g()) out.push_back({layout.above_4g_start, layout.above_4g()});
    return out;
}

std::vector<PhysRange> populated_ranges(const std::string& ram_file, const PcRamLayout& layout) {
    const int fd = ::open(ram_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno("cannot open guest RAM file " + ram_file);
    std::vector<std::pair<uint64_t, uint64_t>> extents;  // file offsets [start, end)
    bool whole = false;
    for (off_t off = 0; static_cast<uint64_t>(off) < layout.ram_size;) {
        const off_t data = ::lseek(fd, off, SEEK_DATA);
        if (data < 0) {
            if (errno != ENXIO) whole = true;  // no SEEK_DATA support: scan everything
            break;
        }
        off_t hole = ::lseek(fd, data, SEEK_HOLE);
        if (hole < 0) {
            whole = true;
            break;
        }
        if (hole <= data) hole = data + static_cast<off_t>(kPage);
        extents.emplace_back(static_cast<uint64_t>(data), static_cast<uint64_t>(hole));
        off = hole;
        if (extents.size() >= kMaxExtents) {
            // A very fragmented file: scan the rest whole rather than ask forever.
            extents.emplace_back(static_cast<uint64_t>(off), layout.ram_size);
            break;
        }
    }
    ::close(fd);
    if (whole) return all_ranges(layout);
    std::vector<PhysRange> out;
    for (auto [s, e] : extents) {
        s &= ~(kPage - 1);
        e = std::min((e + kPage - 1) & ~(kPage - 1), layout.ram_size);
        if (s >= e) continue;
        // File offsets below below_4g are guest-physical as they are; the rest sits above 4 GiB.
        if (s < layout.below_4g) {
            const uint64_t end = std::min(e, layout.below_4g);
            out.push_back({s, end - s});
            s = end;
        }
        if (s < e) out.push_back({layout.above_4g_start + (s - layout.below_4g), e - s});
    }
    return out;
}

// --- vmcoreinfo -----------------------------------------------------------------------------

std::optional<uint64_t> VmcoreInfo::symbol(std::string_view name) const {
    auto it = symbols.find(name);
    if (it == symbols.end()) return std::nullopt;
    return it->second;
}

std::optional<uint64_t> VmcoreInfo::image_phys(uint64_t virt) const {
    if (!phys_base || virt < kStartKernelMap || virt - kStartKernelMap >= kImageWindow)
        return std::nullopt;
    return virt - kStartKernelMap + static_cast<uint64_t>(*phys_base);
}

std::optional<VmcoreInfo> parse_vmcoreinfo(std::string_view text) {
    VmcoreInfo vi;
    size_t lines = 0;
    while (!text.empty() && ++lines <= 512) {
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        const auto key = line.substr(0, eq);
        const auto value = line.substr(eq + 1);
        if (key == "OSRELEASE") {
            if (value.empty() || value.size() > 64 || !printable(value)) return std::nullopt;
            vi.osrelease = std::string(value);
        } else if (key == "BUILD-ID") {
            std::string id(value);
            std::transform(id.begin(), id.end(), id.begin(),
                           [](char c) { return static_cast<char>(std::tolower(c)); });
            if (id.size() >= 8 && id.size() <= 128 &&
                id.find_first_not_of("0123456789abcdef") == std::string::npos)
                vi.build_id = id;
        } else if (key == "KERNELOFFSET") {
            if (auto v = parse_hex(value)) vi.kerneloffset = static_cast<int64_t>(*v);
        } else if (key == "NUMBER(phys_base)") {
            vi.phys_base = parse_dec(value);
        } else if (key == "NUMBER(pgtable_l5_enabled)") {
            if (auto v = parse_dec(value); v && (*v == 0 || *v == 1)) vi.la57 = *v == 1;
        } else if (key.starts_with("SYMBOL(") && key.ends_with(")") && key.size() < 128) {
            if (auto v = parse_hex(value))
                vi.symbols.emplace(std::string(key.substr(7, key.size() - 8)), *v);
        }
    }
    if (vi.osrelease.empty()) return std::nullopt;
    // Values the rest of nitro relies on must be sane, or they are dropped: the slide is a
    // multiple of 2 MiB inside the 1 GiB image window, phys_base page-aligned.
    if (vi.kerneloffset &&
        (*vi.kerneloffset < 0 || *vi.kerneloffset >= static_cast<int64_t>(kImageWindow) ||
         *vi.kerneloffset % static_cast<int64_t>(k2M) != 0))
        vi.kerneloffset.reset();
    if (vi.phys_base && *vi.phys_base % static_cast<int64_t>(kPage) != 0) vi.phys_base.reset();
    return vi;
}

std::optional<VmcoreInfo> find_vmcoreinfo(const PhysicalMemory& mem,
                                          const std::vector<PhysRange>& ranges) {
    std::array<uint8_t, 16> head{};
    std::vector<uint8_t> page(kPage);
    for (const auto& r : ranges) {
        for (uint64_t a = (r.start + kPage - 1) & ~(kPage - 1); a + kPage <= r.start + r.size;
             a += kPage) {
            if (!read_phys(mem, a, head) ||
                std::memcmp(head.data(), kVmcoreinfoStart.data(), kVmcoreinfoStart.size()) != 0)
                continue;
            if (!read_phys(mem, a, page)) continue;
            const auto* p = reinterpret_cast<const char*>(page.data());
            const std::string_view text(p, strnlen(p, page.size()));
            if (auto vi = parse_vmcoreinfo(text)) {
                vi->found_at = a;
                return vi;
            }
        }
    }
    return std::nullopt;
}

std::string memory_build_id(const PhysicalMemory& mem, const std::vector<PhysRange>& ranges) {
    auto vi = find_vmcoreinfo(mem, ranges);
    return vi ? vi->build_id : std::string();
}

// --- BTF ------------------------------------------------------------------------------------

std::vector<PhysRange> find_btf_candidates(const PhysicalMemory& mem,
                                           const std::vector<PhysRange>& ranges,
                                           size_t max_candidates) {
    std::vector<PhysRange> out;
    std::vector<uint8_t> buf;
    const size_t overlap = kBtfHeaderLen - 1;
    for (const auto& r : ranges) {
        for (uint64_t pos = r.start; pos < r.start + r.size;) {
            const uint64_t len = std::min<uint64_t>(kScanChunk, r.start + r.size - pos);
            // Enough beyond the chunk to see a whole header that starts inside it.
            const uint64_t extra = std::min<uint64_t>(overlap, r.start + r.size - pos - len);
            buf.resize(len + extra);
            if (!read_phys(mem, pos, buf)) {
                pos += len;
                continue;
            }
            const uint8_t* base = buf.data();
            for (size_t i = 0; i < len;) {
                // memchr for the first byte is much faster than memmem on zero-filled pages.
                const void* hit = std::memchr(base + i, kBtfPattern[0], len - i);
                if (!hit) break;
                const auto at = static_cast<size_t>(static_cast<const uint8_t*>(hit) - base);
                if (at + kBtfPattern.size() > buf.size() ||
                    std::memcmp(base + at, kBtfPattern.data(), kBtfPattern.size()) != 0) {
                    i = at + 1;
                    continue;
                }
                std::array<uint8_t, kBtfHeaderLen> hdr{};
                const bool have = at + kBtfHeaderLen <= buf.size()
                                      ? (std::memcpy(hdr.data(), base + at, hdr.size()), true)
                                      : read_phys(mem, pos + at, hdr);
                if (have)
                    if (auto size = btf_size_from_header(hdr)) {
                        out.push_back({pos + at, *size});
                        if (out.size() >= max_candidates) return out;
                    }
                i = at + 1;
            }
            pos += len;
        }
    }
    return out;
}

// --- the kernel's location ------------------------------------------------------------------

namespace {
// What vmcoreinfo (if any) says of the KASLR slide and of the kernel image's physical base.
void slide_from_vmcoreinfo(KernelLocation& loc, const VmcoreInfo* vi) {
    if (vi && vi->kerneloffset) {
        loc.slide = *vi->kerneloffset;
        loc.slide_known = true;
        loc.slide_source = "vmcoreinfo";
    }
    if (vi && vi->phys_base)
        loc.image_virt_minus_phys = kStartKernelMap - static_cast<uint64_t>(*vi->phys_base);
}
}  // namespace

KernelLocation locate_kernel(PhysicalMemory& mem, const KernelProfile& profile,
                             const std::optional<VmcoreInfo>& vi, const Event* event) {
    KernelLocation loc;
    slide_from_vmcoreinfo(loc, vi ? &*vi : nullptr);
    if (vi) {
        auto pgd = vi->symbol("init_top_pgt");
        if (!pgd) pgd = vi->symbol("swapper_pg_dir");
        if (pgd)
            if (auto phys = vi->image_phys(*pgd); phys && *phys % kPage == 0) {
                PagingConfig cfg;
                cfg.root = GuestPhys(*phys);
                cfg.mode = vi->la57.value_or(false) ? PagingMode::Level5 : PagingMode::Level4;
                loc.kernel_paging = cfg;
            }
    }
    if (!loc.slide_known && event) {
        // The kernel image is mapped from _text (cleanup_highmap() clears the PMDs below it),
        // in 2 MiB pages: the first mapped page of the window is _text.
        PagingConfig own =
            PagingConfig::from_registers(event->sregs.cr3, event->sregs.cr4, event->sregs.efer);
        PagingConfig kpti = own;
        kpti.root = x86::kpti_kernel_pgd(event->sregs.cr3);
        auto it = profile.symbols.find("_text");
        const uint64_t text_link = it != profile.symbols.end() ? it->second : kDefaultTextLink;
        for (const PagingConfig* cfg : {&own, &kpti}) {
            for (uint64_t va = kStartKernelMap; va < kStartKernelMap + kImageWindow; va += k2M) {
                auto t = translate(mem, *cfg, GuestVirt(va));
                if (!t.ok()) continue;
                loc.slide = static_cast<int64_t>(va - text_link);
                loc.slide_known = true;
                loc.slide_source = "kernel mapping";
                loc.image_virt_minus_phys = va - t.value().phys.value();
                if (!loc.kernel_paging) loc.kernel_paging = *cfg;
                break;
            }
            if (loc.slide_known) break;
        }
    }
    if (loc.slide_known) {
        auto it = profile.symbols.find("init_task");
        if (it != profile.symbols.end()) {
            loc.init_task = it->second + static_cast<uint64_t>(loc.slide);
            if (loc.image_virt_minus_phys)
                loc.init_task_verified =
                    init_task_looks_right(mem, profile, *loc.init_task, *loc.image_virt_minus_phys);
        }
    }
    return loc;
}

// --- the profile ----------------------------------------------------------------------------

MemoryKernel profile_from_memory(PhysicalMemory& mem, const MemoryProfileOptions& options) {
    const auto t0 = Clock::now();
    MemoryKernel k;
    std::vector<PhysRange> ranges = options.ranges;
    if (ranges.empty()) ranges.push_back({0, mem.limit()});

    k.vmcoreinfo = find_vmcoreinfo(mem, ranges);
    k.timings.vmcoreinfo_ms = ms_since(t0);
    const VmcoreInfo* vi = k.vmcoreinfo ? &*k.vmcoreinfo : nullptr;
    if (vi)
        log::debug("vmcoreinfo at {:#x}: {} build id {} KERNELOFFSET {:#x}", vi->found_at,
                   vi->osrelease, vi->build_id.empty() ? "-" : vi->build_id,
                   vi->kerneloffset.value_or(0));

    // The BTF: from the kernel's text upwards when vmcoreinfo says where that is (the blob the
    // kernel runs with, not a stale copy from decompression), else anywhere.
    const auto t1 = Clock::now();
    std::string why = "no BTF header (0xeb9f) in guest memory";
    std::optional<BtfFound> found;
    if (vi)
        if (auto stext = vi->symbol("_stext"))
            if (auto phys = vi->image_phys(*stext))
                found = first_valid_btf(mem, ranges, *phys, why);
    if (!found) found = first_valid_btf(mem, ranges, 0, why);
    k.timings.btf_ms = ms_since(t1);
    if (!found)
        fail(
            "no kernel BTF in guest memory ({}); is the guest a Linux kernel built with "
            "CONFIG_DEBUG_INFO_BTF, and has it booted? Give the kernel image (--kernel-image) or a "
            "profile (--profile ISF.json[.xz] or an offsets file)",
            why);
    k.btf_at = found->at;
    k.btf_size = found->raw.size();
    k.profile = std::move(found->profile);

    // Symbols: kallsyms where vmcoreinfo says, else searched for before the BTF. They carry
    // runtime (relocated) addresses.
    const auto t2 = Clock::now();
    std::optional<Kallsyms> syms;
    KallsymsLayout layout;
    if (vi) syms = kallsyms_from_vmcoreinfo(mem, *vi, &layout);
    // A small window first: in distribution kernels the tables end a MiB or two before .BTF.
    for (uint64_t window : {kKallsymsSearch / 8, kKallsymsSearch}) {
        if (syms) break;
        if (auto region = read_before(mem, found->at, window)) {
            try {
                syms = Kallsyms::from_tables(region->second, region->first, &layout, wanted_symbol);
            } catch (const Error& e) {
                log::debug("kallsyms in the {} MiB before the BTF: {}", window >> 20, e.what());
            }
        }
    }
    k.timings.kallsyms_ms = ms_since(t2);

    KernelLocation& loc = k.location;
    slide_from_vmcoreinfo(loc, vi);
    if (syms) {
        k.kernel_symbols = layout.num_syms;
        const auto* text = relocatable(*syms, "_text");
        if (!loc.slide_known && text && text->address >= kDefaultTextLink &&
            (text->address - kDefaultTextLink) % k2M == 0 &&
            text->address - kDefaultTextLink < kImageWindow) {
            loc.slide = static_cast<int64_t>(text->address - kDefaultTextLink);
            loc.slide_known = true;
            loc.slide_source = "kallsyms";
        }
        if (!loc.image_virt_minus_phys)
            if (const auto* start = relocatable(*syms, "__start_BTF"))
                if ((start->address - found->at) % k2M == 0)
                    loc.image_virt_minus_phys = start->address - found->at;
    }

    if (syms && loc.slide_known) {
        // The profile keeps link-time addresses, like one built from the image, so that it can
        // be cached and used on the next boot with that boot's slide.
        KernelProfile with_syms = build_profile(found->btf, nullptr, &*syms);
        for (auto& [name, addr] : with_syms.symbols) {
            const auto* s = syms->find(name);
            if (s && !s->absolute()) addr -= static_cast<uint64_t>(loc.slide);
        }
        k.profile.symbols = std::move(with_syms.symbols);
        if (auto it = k.profile.symbols.find("init_task"); it != k.profile.symbols.end()) {
            loc.init_task = it->second + static_cast<uint64_t>(loc.slide);
            if (loc.image_virt_minus_phys)
                loc.init_task_verified = init_task_looks_right(mem, k.profile, *loc.init_task,
                                                               *loc.image_virt_minus_phys);
            if (!loc.init_task_verified) {
                log::warn(
                    "kernel symbols from guest memory do not agree with its BTF (init_task is "
                    "not the swapper task); continuing without kernel symbols");
                k.profile.symbols.clear();
                loc.init_task.reset();
            }
        }
        // The banner, from linux_banner.
        if (auto it = syms->find("linux_banner"); it && loc.image_virt_minus_phys) {
            std::array<uint8_t, 512> b{};
            if (read_phys(mem, it->address - *loc.image_virt_minus_phys, b)) {
                const auto* p = reinterpret_cast<const char*>(b.data());
                std::string s(p, strnlen(p, b.size()));
                while (!s.empty() && s.back() == '\n') s.pop_back();
                if (s.starts_with("Linux version ") && printable(s)) k.profile.banner = s;
            }
        }
    } else if (syms) {
        log::warn(
            "kernel symbols from guest memory dropped: without vmcoreinfo and with _text away "
            "from its usual link address the KASLR slide is unknown");
    } else {
        log::warn(
            "no kallsyms tables found in guest memory: process tracing works from BTF alone, "
            "kernel symbols are unavailable");
    }

    if (vi) {
        k.profile.build_id = vi->build_id;
        k.profile.release = vi->osrelease;
    }
    if (k.profile.release.empty() && k.profile.banner.starts_with("Linux version ")) {
        const std::string_view rest = std::string_view(k.profile.banner).substr(14);
        k.profile.release = std::string(rest.substr(0, rest.find(' ')));
    }
    if (k.profile.build_id.empty()) {
        Sha256 h;
        h.update(found->raw);
        k.profile.btf_sha256 = h.hex();
    }
    if (!loc.slide_known || !loc.kernel_paging) {
        // The kernel's page tables from vmcoreinfo; without vmcoreinfo and kallsyms, the slide
        // and the mapping from the event's page tables.
        const KernelLocation l = locate_kernel(mem, k.profile, k.vmcoreinfo, options.event);
        if (!loc.slide_known && l.slide_known) {
            loc.slide = l.slide;
            loc.slide_known = true;
            loc.slide_source = l.slide_source;
            if (!loc.image_virt_minus_phys) loc.image_virt_minus_phys = l.image_virt_minus_phys;
        }
        if (!loc.kernel_paging) loc.kernel_paging = l.kernel_paging;
    }

    if (options.event) {
        ProcessReader reader(mem, k.profile);
        const Process p = reader.current(*options.event);
        if (!p.valid)
            log::warn("the profile from guest memory cannot read the current task: {}", p.error);
        else
            log::debug("current task on vCPU {}: {} pid {}", options.event->vcpu, p.name, p.pid);
    }
    k.timings.total_ms = ms_since(t0);
    log::debug(
        "kernel profile from guest memory: {} (BTF at {:#x}, {} bytes; {} symbols; slide {:#x} "
        "from {}) in {:.1f} ms (vmcoreinfo {:.1f}, BTF {:.1f}, kallsyms {:.1f})",
        k.profile.release.empty() ? "unknown release" : k.profile.release, k.btf_at, k.btf_size,
        k.kernel_symbols, loc.slide, loc.slide_known ? loc.slide_source : "nowhere",
        k.timings.total_ms, k.timings.vmcoreinfo_ms, k.timings.btf_ms, k.timings.kallsyms_ms);
    return k;
}

}  // namespace nitro::linux_os
