// SPDX-License-Identifier: MIT
// The kernel profile from guest memory alone, on synthetic guest RAM holding the real Debian
// kernel's sections where a KASLR boot would put them (build/guest/vmlinuz; skipped without
// it), and on hostile memory: broken BTF headers, absurd sizes, garbage vmcoreinfo.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "nitro/error.h"
#include "os/linux/byte_reader.h"
#include "os/linux/memory_profile.h"
#include "os/linux/profile_source.h"
#include "real_kernel.h"

namespace nitro::linux_os {
namespace {

using test::real_kernel;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSlide = 0x1c000000;    // a KASLR slide (2 MiB multiple)
constexpr uint64_t kTextPhys = 32 * kMiB;  // where "the decompressor" put _text
constexpr uint64_t kVmcoreinfoPhys = 4 * kMiB;

void put(BufferPhysicalMemory& mem, uint64_t at, std::span<const uint8_t> bytes) {
    ASSERT_LE(at + bytes.size(), mem.size());
    std::memcpy(mem.bytes().data() + at, bytes.data(), bytes.size());
}

void put_u64(BufferPhysicalMemory& mem, uint64_t at, uint64_t v) {
    put(mem, at, std::span(reinterpret_cast<const uint8_t*>(&v), 8));
}

std::span<const uint8_t> btf_bytes() { return Btf::locate(*real_kernel()->elf); }

// The link-time address of a kallsyms table, found the way the decoder finds it.
struct KallsymsTables {
    KallsymsLayout layout;
    uint64_t rodata_addr = 0;
    uint64_t addr(uint64_t off) const { return rodata_addr + off; }
};

KallsymsTables kallsyms_tables() {
    const auto* rodata = real_kernel()->elf->find_section(".rodata");
    KallsymsTables t;
    t.rodata_addr = rodata->addr;
    Kallsyms::from_tables(real_kernel()->elf->section_data(*rodata), rodata->addr, &t.layout);
    return t;
}

uint64_t text_link() { return *real_kernel()->symbols.link_address("_text"); }

// The image as a booted kernel holds it: every allocated section at kTextPhys + (addr - _text)
// and, like the decompressor's relocation pass, kallsyms_relative_base moved by the slide.
std::unique_ptr<BufferPhysicalMemory> booted_guest(bool with_kallsyms = true) {
    const auto& k = *real_kernel();
    auto mem = std::make_unique<BufferPhysicalMemory>(128 * kMiB);
    for (const auto& s : k.elf->sections()) {
        if (s.addr < kStartKernelMap || s.size == 0) continue;
        const auto data = k.elf->section_data(s);
        if (data.empty()) continue;
        put(*mem, kTextPhys + (s.addr - text_link()), data);
    }
    const auto t = kallsyms_tables();
    const uint64_t rb_phys = kTextPhys + (t.addr(t.layout.relative_base_at) - text_link());
    put_u64(*mem, rb_phys, t.layout.relative_base + kSlide);
    if (!with_kallsyms) {
        // Wipe the token table: no kallsyms to be found.
        const uint64_t at = kTextPhys + (t.addr(t.layout.token_index) - text_link());
        std::memset(mem->bytes().data() + at, 0xff, 512);
    }
    return mem;
}

std::string vmcoreinfo_text() {
    const auto& k = *real_kernel();
    const auto t = kallsyms_tables();
    const auto run = [&](uint64_t link) { return fmt::format("{:x}", link + kSlide); };
    std::string s;
    s += "OSRELEASE=" + k.profile.release + "\n";
    s += "BUILD-ID=" + k.profile.build_id + "\n";
    s += "PAGESIZE=4096\n";
    s += "SYMBOL(_stext)=" + run(text_link()) + "\n";
    s += "SYMBOL(init_top_pgt)=" + run(*k.symbols.link_address("init_top_pgt")) + "\n";
    s += "SYMBOL(kallsyms_names)=" + run(t.addr(t.layout.names)) + "\n";
    s += "SYMBOL(kallsyms_num_syms)=" + run(t.addr(t.layout.num_syms_at)) + "\n";
    s += "SYMBOL(kallsyms_token_table)=" + run(t.addr(t.layout.token_table)) + "\n";
    s += "SYMBOL(kallsyms_token_index)=" + run(t.addr(t.layout.token_index)) + "\n";
    s += "SYMBOL(kallsyms_offsets)=" + run(t.addr(t.layout.addresses)) + "\n";
    s += "SYMBOL(kallsyms_relative_base)=" + run(t.addr(t.layout.relative_base_at)) + "\n";
    // __pa_symbol(x) = x - __START_KERNEL_map + phys_base
    const int64_t phys_base = static_cast<int64_t>(kTextPhys) -
                              static_cast<int64_t>(text_link() + kSlide - kStartKernelMap);
    s += fmt::format("NUMBER(phys_base)={}\n", phys_base);
    s += "NUMBER(pgtable_l5_enabled)=1\n";
    s += fmt::format("KERNELOFFSET={:x}\n", kSlide);
    return s;
}

void put_vmcoreinfo(BufferPhysicalMemory& mem, const std::string& text) {
    put(mem, kVmcoreinfoPhys,
        std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

nlohmann::json layouts(const KernelProfile& p) {
    nlohmann::json j = p;
    for (const char* k : {"banner", "release", "build_id", "btf_sha256", "symbols"}) j.erase(k);
    return j;
}

TEST(LinuxMemoryProfile, BootedKernelWithVmcoreinfoGivesTheImageProfile) {
    REQUIRE_REAL_KERNEL();
    auto mem = booted_guest();
    put_vmcoreinfo(*mem, vmcoreinfo_text());
    const MemoryKernel m = profile_from_memory(*mem);
    const KernelProfile& image = real_kernel()->profile;
    ASSERT_TRUE(m.vmcoreinfo);
    EXPECT_EQ(m.vmcoreinfo->found_at, kVmcoreinfoPhys);
    // Everything, symbols included (as link-time addresses), matches the image's profile.
    EXPECT_EQ(nlohmann::json(m.profile), nlohmann::json(image));
    EXPECT_EQ(m.profile.cache_key(), image.build_id);
    EXPECT_TRUE(m.location.slide_known);
    EXPECT_EQ(m.location.slide, static_cast<int64_t>(kSlide));
    EXPECT_EQ(m.location.slide_source, "vmcoreinfo");
    EXPECT_TRUE(m.location.init_task_verified);
    EXPECT_EQ(m.location.init_task, image.symbols.at("init_task") + kSlide);
    EXPECT_EQ(m.btf_at, kTextPhys + (real_kernel()->elf->find_section(".BTF")->addr - text_link()));
    EXPECT_EQ(m.kernel_symbols, real_kernel()->symbols.size());
    ASSERT_TRUE(m.location.kernel_paging);
    EXPECT_EQ(m.location.kernel_paging->mode, PagingMode::Level5);
    std::printf(
        "profile from synthetic memory: %.1f ms (vmcoreinfo %.1f, BTF %.1f, kallsyms %.1f)\n",
        m.timings.total_ms, m.timings.vmcoreinfo_ms, m.timings.btf_ms, m.timings.kallsyms_ms);
}

TEST(LinuxMemoryProfile, WithoutVmcoreinfoKallsymsGiveTheSlide) {
    REQUIRE_REAL_KERNEL();
    auto mem = booted_guest();
    const MemoryKernel m = profile_from_memory(*mem);
    const KernelProfile& image = real_kernel()->profile;
    EXPECT_FALSE(m.vmcoreinfo);
    EXPECT_EQ(layouts(m.profile), layouts(image));
    EXPECT_EQ(m.profile.symbols, image.symbols);
    EXPECT_EQ(m.profile.banner, image.banner);
    EXPECT_EQ(m.profile.release, image.release);
    EXPECT_TRUE(m.profile.build_id.empty());
    EXPECT_EQ(m.profile.btf_sha256.size(), 64u);
    EXPECT_EQ(m.profile.cache_key(), "btf-" + m.profile.btf_sha256);
    EXPECT_EQ(m.location.slide, static_cast<int64_t>(kSlide));
    EXPECT_EQ(m.location.slide_source, "kallsyms");
    EXPECT_TRUE(m.location.init_task_verified);
}

TEST(LinuxMemoryProfile, BtfAloneIsEnoughForLayouts) {
    REQUIRE_REAL_KERNEL();
    BufferPhysicalMemory mem(16 * kMiB);
    put(mem, 5 * kMiB + 0x70, btf_bytes());
    const MemoryKernel m = profile_from_memory(mem);
    EXPECT_EQ(layouts(m.profile), layouts(real_kernel()->profile));
    EXPECT_TRUE(m.profile.symbols.empty());
    EXPECT_FALSE(m.location.slide_known);
    EXPECT_EQ(m.btf_at, 5 * kMiB + 0x70);
}

TEST(LinuxMemoryProfile, KallsymsWipedStillGivesLayouts) {
    REQUIRE_REAL_KERNEL();
    auto mem = booted_guest(/*with_kallsyms=*/false);
    const MemoryKernel m = profile_from_memory(*mem);
    EXPECT_EQ(layouts(m.profile), layouts(real_kernel()->profile));
    EXPECT_TRUE(m.profile.symbols.empty());
    EXPECT_EQ(m.kernel_symbols, 0u);
}

TEST(LinuxMemoryProfile, SkipsBrokenCopiesBeforeTheRealBtf) {
    REQUIRE_REAL_KERNEL();
    const auto btf = btf_bytes();
    BufferPhysicalMemory mem(32 * kMiB);
    // A stale, half-overwritten copy first (as decompression leaves behind) ...
    std::vector<uint8_t> stale(btf.begin(), btf.end());
    std::mt19937 rng(7);
    for (size_t i = stale.size() / 3; i < stale.size(); ++i) stale[i] = static_cast<uint8_t>(rng());
    put(mem, 1 * kMiB, stale);
    // ... a header that claims an absurd size, one with overlapping sections ...
    std::vector<uint8_t> absurd(btf.begin(), btf.begin() + 24);
    uint32_t huge = 0x7fffffff;
    std::memcpy(absurd.data() + 12, &huge, 4);
    std::memcpy(absurd.data() + 16, &huge, 4);
    put(mem, 8 * kMiB, absurd);
    std::vector<uint8_t> overlap(btf.begin(), btf.begin() + 24);
    uint32_t small = 8;
    std::memcpy(overlap.data() + 16, &small, 4);  // strings inside the types
    put(mem, 8 * kMiB + 4096, overlap);
    // ... then the real one.
    put(mem, 12 * kMiB, btf);
    const auto candidates = find_btf_candidates(mem, {{0, mem.size()}});
    ASSERT_EQ(candidates.size(), 2u);  // the stale copy and the real one; absurd ones never
    EXPECT_EQ(candidates[0].start, 1 * kMiB);
    EXPECT_EQ(candidates[1].start, 12 * kMiB);
    const MemoryKernel m = profile_from_memory(mem);
    EXPECT_EQ(m.btf_at, 12 * kMiB);
    EXPECT_EQ(layouts(m.profile), layouts(real_kernel()->profile));
}

TEST(LinuxMemoryProfile, TruncatedOrGarbageBtfIsAClearError) {
    REQUIRE_REAL_KERNEL();
    const auto btf = btf_bytes();
    {
        // The blob runs past the end of RAM.
        BufferPhysicalMemory mem(btf.size());
        put(mem, 4096, btf.subspan(0, btf.size() - 4096));
        try {
            profile_from_memory(mem);
            FAIL() << "accepted a truncated BTF";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("runs out of RAM"), std::string::npos) << what;
            EXPECT_NE(what.find("--kernel-image"), std::string::npos) << what;
        }
    }
    {
        // A plausible header followed by garbage: libbpf must reject it.
        BufferPhysicalMemory mem(8 * kMiB);
        std::vector<uint8_t> junk(64 * 1024);
        std::mt19937 rng(1);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        const uint32_t hdr[6] = {0x0001eb9f, 24, 0, 40000, 40000, 20000};
        std::memcpy(junk.data(), hdr, sizeof hdr);
        put(mem, 1 * kMiB, junk);
        EXPECT_EQ(find_btf_candidates(mem, {{0, mem.size()}}).size(), 1u);
        EXPECT_THROW(profile_from_memory(mem), Error);
    }
    {
        // Nothing at all (a guest that has not booted yet).
        BufferPhysicalMemory mem(4 * kMiB);
        try {
            profile_from_memory(mem);
            FAIL();
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("no kernel BTF in guest memory"),
                      std::string::npos)
                << e.what();
        }
    }
}

TEST(LinuxMemoryProfile, HeaderAtTheEndOfAScanChunk) {
    REQUIRE_REAL_KERNEL();
    // The scan reads 4 MiB chunks: a header straddling two of them must still be found.
    BufferPhysicalMemory mem(16 * kMiB);
    const uint64_t at = 4 * kMiB - 7;
    put(mem, at, btf_bytes());
    const auto c = find_btf_candidates(mem, {{0, mem.size()}});
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].start, at);
    EXPECT_EQ(c[0].size, btf_bytes().size());
}

TEST(LinuxMemoryProfile, LocatesTheKernelForAProfileFromElsewhere) {
    REQUIRE_REAL_KERNEL();
    auto mem = booted_guest();
    put_vmcoreinfo(*mem, vmcoreinfo_text());
    auto vi = find_vmcoreinfo(*mem, {{0, mem->size()}});
    ASSERT_TRUE(vi);
    const KernelLocation loc = locate_kernel(*mem, real_kernel()->profile, vi);
    EXPECT_TRUE(loc.slide_known);
    EXPECT_EQ(loc.slide, static_cast<int64_t>(kSlide));
    EXPECT_TRUE(loc.init_task_verified);
    // A wrong slide is caught by init_task.
    auto wrong = vi;
    wrong->kerneloffset = kSlide + 0x200000;
    EXPECT_FALSE(locate_kernel(*mem, real_kernel()->profile, wrong).init_task_verified);
    EXPECT_FALSE(locate_kernel(*mem, real_kernel()->profile, std::nullopt).slide_known);
}

TEST(LinuxMemoryProfile, ResolveCachesAndDistrustsClaimedBuildIds) {
    REQUIRE_REAL_KERNEL();
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("nitro-memcache-" + std::to_string(getpid())))
            .string();
    std::filesystem::remove_all(dir);
    GuestMemory g;
    g.memory = booted_guest();
    put_vmcoreinfo(static_cast<BufferPhysicalMemory&>(*g.memory), vmcoreinfo_text());
    ProfileOptions o;
    o.cache_dir = dir;
    const ResolvedProfile cold = resolve_profile(o, &g);
    EXPECT_EQ(cold.source, "guest memory");
    EXPECT_EQ(nlohmann::json(cold.profile), nlohmann::json(real_kernel()->profile));
    const ResolvedProfile warm = resolve_profile(o, &g);
    EXPECT_EQ(warm.source, "guest memory (cached)");
    EXPECT_EQ(nlohmann::json(warm.profile), nlohmann::json(real_kernel()->profile));
    EXPECT_EQ(warm.location.slide, static_cast<int64_t>(kSlide));
    EXPECT_TRUE(warm.location.init_task_verified);
    // Stored in the memory namespace: never taken for the image's profile.
    const ProfileCache cache(dir);
    EXPECT_FALSE(cache.load(real_kernel()->profile.build_id));
    const std::string key =
        std::string(ProfileCache::kMemoryPrefix) + real_kernel()->profile.build_id;
    ASSERT_TRUE(cache.load(key));
    // A cached profile that does not fit this guest (as if another guest had claimed the same
    // build id) is rebuilt.
    KernelProfile other = real_kernel()->profile;
    other.symbols["init_task"] += 0x1000;
    cache.store(other, ProfileCache::kMemoryPrefix);
    const ResolvedProfile rebuilt = resolve_profile(o, &g);
    EXPECT_FALSE(rebuilt.from_cache);
    EXPECT_EQ(nlohmann::json(rebuilt.profile), nlohmann::json(real_kernel()->profile));
    std::filesystem::remove_all(dir);
}

TEST(LinuxVmcoreinfo, ParsesTheKeysNitroUses) {
    const auto vi = parse_vmcoreinfo(
        "OSRELEASE=6.1.0-56-cloud-amd64\nBUILD-ID=3B43fad5034874490492495d552c0af6a5fab235\n"
        "PAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffffbd610000\nNUMBER(phys_base)=-815792128\n"
        "NUMBER(pgtable_l5_enabled)=1\nKERNELOFFSET=3ac00000\nOFFSET(list_head.next)=0\n");
    ASSERT_TRUE(vi);
    EXPECT_EQ(vi->osrelease, "6.1.0-56-cloud-amd64");
    EXPECT_EQ(vi->build_id, "3b43fad5034874490492495d552c0af6a5fab235");
    EXPECT_EQ(vi->kerneloffset, 0x3ac00000);
    EXPECT_EQ(vi->phys_base, -815792128);
    EXPECT_EQ(vi->la57, true);
    EXPECT_EQ(vi->symbol("swapper_pg_dir"), 0xffffffffbd610000ULL);
    EXPECT_EQ(vi->image_phys(0xffffffffbd610000ULL),
              0xffffffffbd610000ULL - kStartKernelMap - 815792128);
    EXPECT_FALSE(vi->image_phys(0xffff888000000000ULL));  // not in the image window
}

TEST(LinuxVmcoreinfo, HostileValuesAreDropped) {
    EXPECT_FALSE(parse_vmcoreinfo(""));
    EXPECT_FALSE(parse_vmcoreinfo("KERNELOFFSET=1000\n"));  // no OSRELEASE
    EXPECT_FALSE(parse_vmcoreinfo("OSRELEASE=\n"));         // empty release
    EXPECT_FALSE(
        parse_vmcoreinfo("OSRELEASE=a\x01"
                         "b\n"));  // control characters
    EXPECT_FALSE(parse_vmcoreinfo("OSRELEASE=" + std::string(100, 'x') + "\n"));  // too long
    auto vi = parse_vmcoreinfo(
        "OSRELEASE=6.1\nKERNELOFFSET=1234\nNUMBER(phys_base)=12x\nBUILD-ID=../../etc\n"
        "SYMBOL(a)=zz\nSYMBOL(b)=ffffffffffffffffff\nNUMBER(pgtable_l5_enabled)=7\n"
        "SYMBOL(c)=10");
    ASSERT_TRUE(vi);
    EXPECT_FALSE(vi->kerneloffset);  // not a multiple of 2 MiB
    EXPECT_FALSE(vi->phys_base);
    EXPECT_TRUE(vi->build_id.empty());
    EXPECT_FALSE(vi->symbol("a"));
    EXPECT_FALSE(vi->symbol("b"));  // more than 64 bits
    EXPECT_FALSE(vi->la57);
    EXPECT_EQ(vi->symbol("c"), 0x10u);
    EXPECT_FALSE(parse_vmcoreinfo("OSRELEASE=6.1\nKERNELOFFSET=80000000\n")->kerneloffset);
    // A page full of "OSRELEASE=" without a terminator: bounded, and the parse stops.
    BufferPhysicalMemory mem(64 * 1024);
    std::string page;
    while (page.size() < 4096) page += "OSRELEASE=";
    std::memcpy(mem.bytes().data() + 8192, page.data(), 4096);
    auto found = find_vmcoreinfo(mem, {{0, mem.size()}});
    EXPECT_FALSE(found);  // the value is longer than any release
}

TEST(LinuxMemoryRanges, SkipsHolesOfASparseRamFile) {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("nitro-ram-" + std::to_string(getpid())))
            .string();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 64 * kMiB), 0);
    const char data[] = "data";
    ASSERT_EQ(::pwrite(fd, data, 4, 1 * kMiB + 10), 4);
    ASSERT_EQ(::pwrite(fd, data, 4, 40 * kMiB), 4);
    ::close(fd);
    const auto layout = PcRamLayout::with_below_4g(64 * kMiB, 16 * kMiB);
    const auto ranges = populated_ranges(path, layout);
    std::filesystem::remove(path);
    uint64_t total = 0;
    bool low = false, high = false;
    for (const auto& r : ranges) {
        total += r.size;
        low |= r.start <= 1 * kMiB + 10 && 1 * kMiB + 10 < r.start + r.size;
        // File offset 40 MiB is guest-physical 4 GiB + 24 MiB under this split.
        const uint64_t hi = (uint64_t{1} << 32) + 24 * kMiB;
        high |= r.start <= hi && hi < r.start + r.size;
    }
    EXPECT_TRUE(low);
    EXPECT_TRUE(high);
    // Either the file system reports holes (a few pages), or it cannot and all of RAM is given.
    EXPECT_TRUE(total < 4 * kMiB || total == 64 * kMiB) << total;
    EXPECT_THROW(populated_ranges(path, layout), Error);  // gone
}

}  // namespace
}  // namespace nitro::linux_os
