// SPDX-License-Identifier: MIT
// The zero-configuration profile on the real Debian kernel the guest tests boot
// (build/guest/vmlinuz, linux-image-6.1.0-*-cloud-amd64). Skipped when it is not there.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "nitro/error.h"
#include "os/linux/byte_reader.h"
#include "os/linux/kernel_profile.h"

namespace nitro::linux_os {
namespace {

const std::string kImage = std::string(NITRO_SOURCE_DIR) + "/build/guest/vmlinuz";

#define REQUIRE_IMAGE()                                                     \
    do {                                                                    \
        if (!std::filesystem::exists(kImage))                               \
            GTEST_SKIP() << kImage << " missing (run scripts/build-guest)"; \
    } while (0)

// One load per test program: decompressing 53 MB under ASan is not free.
const LoadedKernel& kernel() {
    static const LoadedKernel k = load_kernel_file(kImage);
    return k;
}

TEST(LinuxRealKernel, DecompressesTheLz4Payload) {
    REQUIRE_IMAGE();
    const auto image = read_file(kImage);
    const auto hdr = parse_boot_header(image);
    ASSERT_TRUE(hdr);
    EXPECT_GE(hdr->version, 0x0208);
    const auto& k = kernel();
    EXPECT_EQ(k.compression, Compression::Lz4Legacy);
    EXPECT_GT(k.vmlinux.size(), size_t{20} << 20);
    ASSERT_TRUE(k.elf);
    EXPECT_NE(k.elf->find_section(".BTF"), nullptr);
    EXPECT_NE(k.elf->find_section(".rodata"), nullptr);
    EXPECT_FALSE(k.elf->has_symtab());  // so kallsyms is what we test below
    EXPECT_EQ(k.profile.build_id.size(), 40u);
}

TEST(LinuxRealKernel, BannerAndRelease) {
    REQUIRE_IMAGE();
    const auto& p = kernel().profile;
    EXPECT_EQ(p.banner.rfind("Linux version 6.1", 0), 0u) << p.banner;
    EXPECT_NE(p.banner.find(" #1 SMP"), std::string::npos) << p.banner;
    EXPECT_EQ(p.release.rfind("6.1.0-", 0), 0u) << p.release;
    // Without symbols the scan must find the same string.
    EXPECT_EQ(find_banner(*kernel().elf), p.banner);
}

TEST(LinuxRealKernel, TaskStructOffsetsAreSane) {
    REQUIRE_IMAGE();
    const auto& p = kernel().profile;
    const auto& t = p.task_struct;
    EXPECT_GT(t.size, 4000u);
    EXPECT_LT(t.size, 20000u);
    EXPECT_EQ(t.comm.size, 16u);
    EXPECT_EQ(t.pid.size, 4u);
    EXPECT_EQ(t.tgid.size, 4u);
    EXPECT_EQ(t.tgid.offset, t.pid.offset + 4);
    EXPECT_EQ(t.mm.size, 8u);
    EXPECT_EQ(t.active_mm.offset, t.mm.offset + 8);
    EXPECT_EQ(t.tasks.size, 16u);
    EXPECT_TRUE(t.thread_group.valid);  // 6.1 still has it
    for (const Field* f : {&t.pid, &t.tgid, &t.comm, &t.mm, &t.active_mm, &t.real_parent, &t.parent,
                           &t.tasks, &t.signal, &t.flags, &t.exit_state, &t.stack})
        EXPECT_LE(f->offset + f->size, t.size);
    EXPECT_EQ(t.flags.offset, 44u);  // after thread_info (24), __state, stack, usage
    EXPECT_EQ(t.stack.offset, 32u);
    EXPECT_EQ(p.list_head.next.offset, 0u);
    EXPECT_EQ(p.list_head.prev.offset, 8u);
}

TEST(LinuxRealKernel, NestedAndPathMembers) {
    REQUIRE_IMAGE();
    const auto& k = kernel();
    const auto& p = k.profile;
    // mm_struct keeps its fields in an anonymous struct (before the cpu bitmap).
    EXPECT_EQ(p.mm_struct.pgd.size, 8u);
    EXPECT_EQ(p.mm_struct.arg_end.offset, p.mm_struct.arg_start.offset + 8);
    EXPECT_LT(p.mm_struct.exe_file.offset, p.mm_struct.size);
    EXPECT_EQ(k.btf.member_path("mm_struct.pgd").offset(), p.mm_struct.pgd.offset);
    // qstr.len lives in struct { u32 hash; u32 len; } inside an anonymous union.
    EXPECT_EQ(p.qstr.len.offset, 4u);
    EXPECT_EQ(p.qstr.name.offset, 8u);
    EXPECT_EQ(k.btf.member_path("dentry.d_name.name").offset(),
              p.dentry.d_name.offset + p.qstr.name.offset);
    EXPECT_EQ(k.btf.member_path("file.f_path.dentry").offset(),
              p.file.f_path.offset + p.path.dentry.offset);
    EXPECT_EQ(k.btf.offset_of("task_struct", "comm"), p.task_struct.comm.offset);
    EXPECT_EQ(k.btf.size_of("list_head"), 16u);
    EXPECT_THROW(k.btf.offset_of("task_struct", "no_such_member"), Error);
    // A bitfield in task_struct: sched_reset_on_fork.
    const auto bf = k.btf.member("task_struct", "sched_reset_on_fork");
    EXPECT_TRUE(bf.is_bitfield());
    EXPECT_THROW(k.btf.offset_of("task_struct", "sched_reset_on_fork"), Error);
}

TEST(LinuxRealKernel, PtRegsMatchesTheX86Layout) {
    REQUIRE_IMAGE();
    const auto& r = kernel().profile.pt_regs;
    // arch/x86/include/asm/ptrace.h: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di
    // orig_ax ip cs flags sp ss, 8 bytes each.
    EXPECT_EQ(r.size, 21u * 8);
    EXPECT_EQ(r.r10.offset, 7u * 8);
    EXPECT_EQ(r.r9.offset, 8u * 8);
    EXPECT_EQ(r.r8.offset, 9u * 8);
    EXPECT_EQ(r.ax.offset, 10u * 8);
    EXPECT_EQ(r.dx.offset, 12u * 8);
    EXPECT_EQ(r.si.offset, 13u * 8);
    EXPECT_EQ(r.di.offset, 14u * 8);
    EXPECT_EQ(r.orig_ax.offset, 15u * 8);
    EXPECT_EQ(r.ip.offset, 16u * 8);
    EXPECT_EQ(r.flags.offset, 18u * 8);
    EXPECT_EQ(r.sp.offset, 19u * 8);
}

TEST(LinuxRealKernel, KallsymsFindsTheSymbolsNitroNeeds) {
    REQUIRE_IMAGE();
    const auto& k = kernel();
    const auto& s = k.symbols;
    EXPECT_GT(s.size(), 50000u);
    for (const char* name :
         {"init_task", "linux_banner", "entry_SYSCALL_64", "entry_SYSENTER_compat",
          "__x64_sys_openat", "swapgs_restore_regs_and_return_to_usermode", "__per_cpu_offset",
          "_text", "current_task", "sys_call_table"})
        EXPECT_NE(s.find(name), nullptr) << name;
    // The int 0x80 entry: entry_INT80_compat until the int80 hardening replaced it with an
    // IDT entry, asm_int80_emulation; Debian's 6.1.192 has the backport.
    const char* int80 = s.find("entry_INT80_compat") ? "entry_INT80_compat" : "asm_int80_emulation";
    EXPECT_NE(s.find(int80), nullptr);
    EXPECT_EQ(s.link_address("_text"), 0xffffffff81000000ULL);
    const auto* text = k.elf->find_section(".text");
    ASSERT_NE(text, nullptr);
    auto in_text = [&](const char* name) {
        const auto a = s.link_address(name).value_or(0);
        return a >= text->addr && a < text->addr + text->size;
    };
    EXPECT_TRUE(in_text("entry_SYSCALL_64"));
    EXPECT_TRUE(in_text("entry_SYSENTER_compat"));
    EXPECT_TRUE(in_text(int80));
    EXPECT_TRUE(in_text("__x64_sys_openat"));
    EXPECT_TRUE(in_text("swapgs_restore_regs_and_return_to_usermode"));
    // .entry.text is merged into .text: it sits between these two markers.
    EXPECT_GE(s.link_address("entry_SYSCALL_64"), s.link_address("__entry_text_start"));
    EXPECT_LT(s.link_address("entry_SYSCALL_64"), s.link_address("__entry_text_end"));
    EXPECT_EQ(s.find("entry_SYSCALL_64")->type, 'T');
    // Data symbols land in .data; linux_banner's bytes are the banner.
    const auto* data = k.elf->find_section(".data");
    ASSERT_NE(data, nullptr);
    const auto init_task = s.link_address("init_task").value_or(0);
    EXPECT_GE(init_task, data->addr);
    EXPECT_LT(init_task, data->addr + data->size);
    const auto banner = k.elf->cstring_at(s.link_address("linux_banner").value_or(0));
    ASSERT_TRUE(banner);
    EXPECT_EQ(banner->rfind("Linux version 6.1", 0), 0u);
    // Per-CPU symbols are absolute and agree with BTF's DATASEC.
    const auto* ct = s.find("current_task");
    EXPECT_TRUE(ct->absolute());
    EXPECT_EQ(ct->address, kernel().profile.current_task_percpu);
    EXPECT_EQ(kernel().profile.current_task_source, "current_task");
}

// Every exported symbol (__ksymtab, PREL32 entries {value, name, namespace}) must decode to
// the same address through kallsyms: an independent check of all addresses at once.
TEST(LinuxRealKernel, KallsymsAgreesWithKsymtab) {
    REQUIRE_IMAGE();
    const auto& k = kernel();
    size_t checked = 0, mismatched = 0;
    for (const char* sec_name : {"__ksymtab", "__ksymtab_gpl"}) {
        const auto* sec = k.elf->find_section(sec_name);
        ASSERT_NE(sec, nullptr) << sec_name;
        const auto data = k.elf->section_data(*sec);
        for (uint64_t off = 0; off + 12 <= data.size(); off += 12) {
            const auto value_rel = static_cast<int32_t>(*load_le<uint32_t>(data, off));
            const auto name_rel = static_cast<int32_t>(*load_le<uint32_t>(data, off + 4));
            const uint64_t value = sec->addr + off + static_cast<uint64_t>(int64_t{value_rel});
            const uint64_t name_at = sec->addr + off + 4 + static_cast<uint64_t>(int64_t{name_rel});
            const auto name = k.elf->cstring_at(name_at, 512);
            ASSERT_TRUE(name);
            ++checked;
            const auto* sym = k.symbols.find(*name);
            bool ok = sym && sym->address == value;
            if (!ok && sym) {
                // Several symbols may share a name (static ones); accept any of them.
                for (const auto& other : k.symbols.symbols())
                    if (other.name == *name && other.address == value) ok = true;
            }
            if (!ok && ++mismatched <= 5)
                ADD_FAILURE() << *name << ": ksymtab " << std::hex << value << " kallsyms "
                              << (sym ? sym->address : 0);
        }
    }
    EXPECT_GT(checked, 5000u);
    EXPECT_EQ(mismatched, 0u);
}

TEST(LinuxRealKernel, KaslrSlide) {
    REQUIRE_IMAGE();
    Kallsyms s = kernel().symbols;
    const uint64_t slide = 0x1c000000;
    const uint64_t link = *s.link_address("entry_SYSCALL_64");
    s.calibrate("entry_SYSCALL_64", link + slide);
    EXPECT_EQ(s.lookup("init_task"), *s.link_address("init_task") + slide);
    EXPECT_EQ(s.lookup("current_task"), s.link_address("current_task"));
    EXPECT_EQ(s.describe(link + slide + 3), "entry_SYSCALL_64+0x3");
    const uint64_t openat = *s.lookup("__x64_sys_openat");
    EXPECT_EQ(s.describe(openat), "__x64_sys_openat");
}

TEST(LinuxRealKernel, ProfileJsonRoundTrip) {
    REQUIRE_IMAGE();
    const auto& p = kernel().profile;
    const std::string path =
        (std::filesystem::temp_directory_path() / ("nitro-profile-" + p.cache_key() + ".json"))
            .string();
    save_profile(p, path);
    const KernelProfile q = load_profile(path);
    std::filesystem::remove(path);
    EXPECT_EQ(nlohmann::json(q), nlohmann::json(p));
    EXPECT_EQ(q.cache_key(), p.build_id);
    EXPECT_EQ(q.symbols.at("init_task"), p.symbols.at("init_task"));
}

TEST(LinuxRealKernel, StrippedSectionHeadersStillWork) {
    REQUIRE_IMAGE();
    // Without section headers BTF and kallsyms are found by scanning the whole file.
    std::vector<uint8_t> copy = kernel().vmlinux;
    std::memset(copy.data() + 0x28, 0, 8);  // e_shoff
    std::memset(copy.data() + 0x3c, 0, 4);  // e_shnum, e_shstrndx
    const ElfImage elf(copy);
    EXPECT_TRUE(elf.sections().empty());
    const Btf btf = Btf::from_vmlinux(elf);
    EXPECT_EQ(btf.offset_of("task_struct", "pid"), kernel().profile.task_struct.pid.offset);
    const Kallsyms syms = Kallsyms::from_vmlinux(elf);
    EXPECT_EQ(syms.size(), kernel().symbols.size());
    EXPECT_EQ(syms.link_address("init_task"), kernel().symbols.link_address("init_task"));
}

// Not a pass/fail timing assertion (see DESIGN.md: timing lives in benchmarks); it prints the
// cost of a cold profile build so that regressions are visible in the test log.
TEST(LinuxRealKernel, ReportsProfileBuildTime) {
    REQUIRE_IMAGE();
    const auto t0 = std::chrono::steady_clock::now();
    const LoadedKernel k = load_kernel_file(kImage);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "profile build: %.1f ms total (decompress %.1f, BTF+profile %.1f, kallsyms %.1f; "
        "%zu symbols, %u BTF types)\n",
        ms, k.timings.decompress_ms, k.timings.btf_ms, k.timings.kallsyms_ms, k.symbols.size(),
        k.btf.type_count());
    EXPECT_EQ(k.profile.cache_key(), kernel().profile.cache_key());
}

}  // namespace
}  // namespace nitro::linux_os
