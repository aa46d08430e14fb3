// SPDX-License-Identifier: MIT
// Guest memory read by the plugin in the RAM file through the guest's own page tables
// (Listener::set_guest_ram), with the plugin's own code on a fake QEMU (fake_qemu.h) and the
// real listener: page tables built by the test in a RAM file (4 KiB, 2 MiB and 1 GiB pages,
// 4 and 5 levels), what is left to QEMU (non-present entries, tables outside RAM, non-canonical
// addresses), and the periodic comparison with QEMU's read that turns the walks off.
//
// The fake QEMU's own memory (what qemu_plugin_read_memory_vaddr reads) holds other bytes than
// the RAM file where a test needs to tell which of the two a capture came from.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "../guest_bytes.h"
#include "decode/decode.h"
#include "fake_qemu.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/syscall_table.h"
#include "ram_file.h"

namespace nitro::tcg {
namespace {

using test_bytes::le64;

constexpr size_t kRamSize = 64 << 20;
constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kLarge = 0x80;
constexpr uint64_t kTable = kPresent | kWritable | kUser;
constexpr uint64_t kOpenat = 257, kWrite = 1;
constexpr uint64_t kPrimerPage = 0x7f00000f0000;

const SyscallInfo& call_info(std::string_view name) {
    for (const auto& info : syscall_table(Abi::X86_64)) {
        if (info.name == name) return info;
    }
    throw std::runtime_error("no such call");
}

// Page tables in the RAM file, rooted at the fake vCPU's cr3 (4 levels unless five).
class PageTables {
public:
    explicit PageTables(RamFile& ram, uint64_t root) : ram_(ram), root_(root & ~0xfffULL) {}
    // Maps the 4 KiB page at va to phys.
    void map_4k(uint64_t va, uint64_t phys) { set(va, 1, phys | kTable); }
    // Maps the 2 MiB page at va to phys (2 MiB aligned).
    void map_2m(uint64_t va, uint64_t phys) { set(va, 2, phys | kTable | kLarge); }
    // Maps the 1 GiB page at va to phys (1 GiB aligned).
    void map_1g(uint64_t va, uint64_t phys) { set(va, 3, phys | kTable | kLarge); }
    // Writes a raw entry at a level (1: page table) for va, the tables above made as needed.
    void set(uint64_t va, int level, uint64_t entry) {
        uint64_t table = root_;
        for (int l = levels_; l > level; l--) table = next_table(table, index(va, l));
        ram_.put(table + index(va, level) * 8, le64(entry));
    }
    void use_five_levels() { levels_ = 5; }

private:
    static uint64_t index(uint64_t va, int level) { return (va >> (12 + 9 * (level - 1))) & 511; }
    // The table an entry points to, allocated (zeroed) on first use.
    uint64_t next_table(uint64_t table, uint64_t idx) {
        const uint64_t at = table + idx * 8;
        auto it = made_.find(at);
        if (it != made_.end()) return it->second;
        const uint64_t fresh = next_free_;
        next_free_ += 0x1000;
        ram_.put(fresh, std::string(4096, '\0'));
        ram_.put(at, le64(fresh | kTable));
        made_[at] = fresh;
        return fresh;
    }

    RamFile& ram_;
    uint64_t root_;
    int levels_ = 4;
    uint64_t next_free_ = 0x100000;  // tables from 1 MiB on
    std::map<uint64_t, uint64_t> made_;
};

// The plugin with openat's and write's captures, its guest RAM in a file, long-mode paging.
struct Plugin {
    fake::FakeQemu qemu;
    RamFile ram{kRamSize};
    std::unique_ptr<TcgListener> listener;
    std::unique_ptr<PageTables> tables;
    Plugin() {
        auto& cpu = fake::fake_cpu();
        qemu.set(NITRO_REG_CR0, 0x80050033);  // PG, WP, NE, ET, MP, PE
        qemu.set(NITRO_REG_CR4, 0x3506f0);    // PAE and friends, 4-level paging
        qemu.set(NITRO_REG_EFER, 0xd01);      // SCE, LME, LMA, NXE
        // cr3 with a PCID in its low bits, which the walk ignores.
        qemu.set(NITRO_REG_CR3, cpu.truth[NITRO_REG_CR3] | 0x5);
        tables = std::make_unique<PageTables>(ram, cpu.truth[NITRO_REG_CR3]);
        listener = std::make_unique<TcgListener>(qemu.ctl_path(), TcgOptions{});
        for (const char* name : {"openat", "write"}) {
            const SyscallInfo& info = call_info(name);
            auto plan = decode::capture_plan(info);
            listener->set_captures(Abi::X86_64, info.nr, Direction::Enter, plan.enter);
        }
        listener->set_guest_ram(ram.path(), kRamSize);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!listener->producer_stats().ram_file_mapped && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_TRUE(listener->producer_stats().ram_file_mapped);
        qemu.translate();
        // The plugin compares its first read from the RAM file with QEMU's (and every 1024th
        // after): one that agrees, so that the tests' reads are not compared.
        tables->map_4k(kPrimerPage, 0x70000);
        ram.put(0x70000, std::string("/primer\0", 8));
        qemu.map(kPrimerPage, std::string("/primer\0", 8));
        qemu.call(kOpenat, {3, kPrimerPage, 0, 0, 0, 0}, 0);
        Event ev;
        for (int i = 0; i < 2; i++) EXPECT_EQ(listener->next(ev, std::chrono::seconds(2)), Listener::Status::Event);
        EXPECT_EQ(listener->producer_stats().walked_reads, 1u);
    }
};
Plugin& plugin() {
    static Plugin p;
    return p;
}

// The bytes the entry of a call captured of argument 1 (status Fault: "<fault>").
std::string captured(uint64_t nr, uint64_t addr, uint64_t len = 0) {
    auto& p = plugin();
    p.qemu.call(nr, {3, addr, len, 0, 0, 0}, 0);
    Event entry, exit;
    EXPECT_EQ(p.listener->next(entry, std::chrono::seconds(2)), Listener::Status::Event);
    EXPECT_EQ(p.listener->next(exit, std::chrono::seconds(2)), Listener::Status::Event);
    const Capture* c = entry.capture(1);
    if (!c) return "<none>";
    if (c->status == CaptureStatus::Fault) return "<fault>";
    return std::string(c->data);
}
std::string path_at(uint64_t va) { return captured(kOpenat, va); }

constexpr uint64_t kUserPage = 0x7f0000001000;
TEST(PluginRamWalk, CapturesComeFromTheRamFileThroughThePageTables) {
    auto& p = plugin();
    p.tables->map_4k(kUserPage, 0x10000);
    // The RAM file and QEMU's memory have different strings.
    p.ram.put(0x10000 + 0x10, std::string("/from/ram\0", 10));
    p.qemu.map(kUserPage + 0x10, std::string("/from/qemu\0", 11));
    const auto before = p.listener->producer_stats();
    EXPECT_EQ(path_at(kUserPage + 0x10), "/from/ram");
    const auto after = p.listener->producer_stats();
    EXPECT_EQ(after.ram_walk_mismatches, 0u);
    EXPECT_EQ(after.memory_reads - before.memory_reads, 1u);
    EXPECT_EQ(after.walked_reads - before.walked_reads, 1u);
}

TEST(PluginRamWalk, LargePagesAndBuffersAcrossPages) {
    auto& p = plugin();
    // A 2 MiB page at 4 MiB and a 1 GiB page at 0 (RAM from its start).
    p.tables->map_2m(0x7f0000400000, 0x400000);
    p.ram.put(0x400000 + 0x12345, std::string("/two/megabytes\0", 15));
    EXPECT_EQ(path_at(0x7f0000400000 + 0x12345), "/two/megabytes");
    p.tables->map_1g(0x7f8000000000, 0);
    p.ram.put(0x2345678, std::string("/one/gigabyte\0", 14));
    EXPECT_EQ(path_at(0x7f8000000000 + 0x2345678), "/one/gigabyte");

    // A buffer over two virtual pages whose physical pages are apart.
    p.tables->map_4k(0x7f0000010000, 0x20000);
    p.tables->map_4k(0x7f0000011000, 0x50000);
    p.ram.put(0x20000 + 0xffa, "012345");
    p.ram.put(0x50000, "6789ab");
    EXPECT_EQ(captured(kWrite, 0x7f0000010ffa, 12), "0123456789ab");
}

TEST(PluginRamWalk, WhatTheWalkCannotReadIsLeftToQemu) {
    auto& p = plugin();
    // Not present in the page table, a page table outside RAM, a page outside RAM: QEMU's
    // memory, which has the string, answers.
    p.tables->set(0x7f0000020000, 1, 0x30000 | kUser);  // present bit clear
    p.qemu.map(0x7f0000020000, std::string("/not/present\0", 13));
    EXPECT_EQ(path_at(0x7f0000020000), "/not/present");
    p.tables->set(0x7f4000000000, 2, (8ULL << 30) | kTable);  // a page table at 8 GiB
    p.qemu.map(0x7f4000000000, std::string("/table/outside\0", 15));
    EXPECT_EQ(path_at(0x7f4000000000), "/table/outside");
    p.tables->map_4k(0x7f0000021000, 0xfff000ULL << 12);  // a page far beyond RAM
    p.qemu.map(0x7f0000021000, std::string("/page/outside\0", 14));
    EXPECT_EQ(path_at(0x7f0000021000), "/page/outside");
    // Non-canonical: neither reads it.
    EXPECT_EQ(path_at(0x8000000000001000), "<fault>");
    // A page-table loop (a PML4 entry pointing at the PML4 itself) ends after four levels.
    const uint64_t root = fake::fake_cpu().truth[NITRO_REG_CR3] & ~0xfffULL;
    p.tables->set(0x7e8000000000, 4, root | kTable);
    EXPECT_NO_FATAL_FAILURE(path_at(0x7e8000000000));
    EXPECT_EQ(p.listener->producer_stats().ram_walk_mismatches, 0u);
}

// Five-level paging (CR4.LA57), which the plugin looks at every 256 reads.
TEST(PluginRamWalk, FiveLevels) {
    auto& p = plugin();
    p.tables->map_4k(kUserPage, 0x10000);
    p.qemu.set(NITRO_REG_CR4, 0x3506f0 | 1u << 12);
    for (int i = 0; i < 256; i++) path_at(kUserPage + 0x10);  // reads until the plugin looks
    // A fresh root: the 4-level tables' PML4 becomes the 5-level tables' top.
    p.tables->use_five_levels();
    p.tables->map_4k(0xff00000000001000, 0x60000);  // kernel half of a 57-bit space
    p.ram.put(0x60000 + 8, std::string("/fifty/seven\0", 13));
    EXPECT_EQ(path_at(0xff00000000001008), "/fifty/seven");
    // Back to four levels for the test after this one, once the plugin has looked again.
    p.qemu.set(NITRO_REG_CR4, 0x3506f0);
    for (int i = 0; i < 256; i++) path_at(0x7f0000021000);
    p.ram.put(0x10000 + 0x10, std::string("/four/again\0", 12));
    EXPECT_EQ(path_at(kUserPage + 0x10), "/four/again");
}

// A read that disagrees with QEMU's turns the walks off for the vCPU, counted; that read and
// the ones after it are QEMU's.
TEST(PluginRamWalk, ADisagreementTurnsTheWalksOff) {
    auto& p = plugin();
    p.tables->map_4k(kUserPage, 0x10000);
    p.ram.put(0x10000 + 0x10, std::string("/from/ram\0", 10));
    p.qemu.map(kUserPage + 0x10, std::string("/from/qemu\0", 11));
    std::string got;
    for (int i = 0; i < 1100 && p.listener->producer_stats().ram_walk_mismatches == 0; i++) {
        got = path_at(kUserPage + 0x10);
        if (p.listener->producer_stats().ram_walk_mismatches == 0) {
            ASSERT_EQ(got, "/from/ram") << i;
        }
    }
    EXPECT_EQ(p.listener->producer_stats().ram_walk_mismatches, 1u);
    EXPECT_EQ(got, "/from/qemu");
    EXPECT_EQ(path_at(kUserPage + 0x10), "/from/qemu");
}

}  // namespace
}  // namespace nitro::tcg
