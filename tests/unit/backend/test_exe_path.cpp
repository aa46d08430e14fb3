// SPDX-License-Identifier: MIT
// The executable's path of a process (Process::exe): task->mm->exe_file, its dentries up to the
// root of their mount and on from where that mount is mounted, in synthetic guest memory with
// made-up structure offsets; cycles, absurd names, kernel threads, and in asynchronous mode the
// address space as it was at the event.
#include <gtest/gtest.h>

#include <cstring>

#include "os/linux/backend.h"
#include "os/linux/process.h"
#include "fake_task_profile.h"
#include "page_table_builder.h"

namespace nitro::linux_os {
namespace {

using test::PageTableBuilder;

constexpr std::uint64_t kPercpu = 0xffff888000010000ULL;
constexpr std::uint64_t kTask = 0xffff888000020000ULL;
constexpr std::uint64_t kObjects = 0xffff888000040000ULL;  // mm, files, dentries, mounts, names
constexpr std::uint64_t kObjectsPhys = 0x40000;
constexpr std::uint64_t kCurrentTask = 0x80;
constexpr std::uint64_t kRoot = 0x200000;

// Offsets: task_struct pid 0x10, tgid 0x14, real_parent 0x20, mm 0x28, comm 0x100;
// mm_struct exe_file 0x40; file f_path 0x10 (path: mnt 0, dentry 8); dentry d_parent 0x18,
// d_name 0x20 (qstr: len 4, name 8); mount mnt_parent 0x10, mnt_mountpoint 0x18, mnt 0x20
// (vfsmount: mnt_root 0).
KernelProfile profile(bool mounts = true) {
    using test::fake_field;
    KernelProfile p = test::fake_task_profile();
    p.task_struct.mm = fake_field(0x28, 8);
    p.mm_struct.exe_file = fake_field(0x40, 8);
    p.file.f_path = fake_field(0x10, 16);
    p.path.mnt = fake_field(0, 8);
    p.path.dentry = fake_field(8, 8);
    p.dentry.d_parent = fake_field(0x18, 8);
    p.dentry.d_name = fake_field(0x20, 16);
    p.qstr.len = fake_field(4, 4);
    p.qstr.name = fake_field(8, 8);
    if (mounts) {
        p.mount.mnt_parent = fake_field(0x10, 8);
        p.mount.mnt_mountpoint = fake_field(0x18, 8);
        p.mount.mnt = fake_field(0x20, 32);
        p.vfsmount.mnt_root = fake_field(0, 8);
    }
    return p;
}

class ExePathTest : public ::testing::Test {
  protected:
    void SetUp() override {
        mem_ = std::make_shared<BufferPhysicalMemory>(4 << 20);
        pt_ = std::make_unique<PageTableBuilder>(*mem_, GuestPhys(kRoot), GuestPhys(0x300000));
        pt_->map(GuestVirt(kPercpu), GuestPhys(0x10000));
        pt_->map(GuestVirt(kTask), GuestPhys(0x20000));
        for (std::uint64_t i = 0; i < 16; ++i) {
            pt_->map(GuestVirt(kObjects + i * 0x1000), GuestPhys(kObjectsPhys + i * 0x1000));
        }
        poke(kPercpu + kCurrentTask, kTask);
        poke(kTask + 0x10, 231ULL | 230ULL << 32);
        poke_bytes(kTask + 0x100, std::string("t\0", 2));
        // The root mount, / on it, /tmp and /tmp/m; a tmpfs mounted on /tmp/m holding t.
        root_mount_ = mount(0, 0, 0);
        root_ = dentry("", 0);
        set_mount_root(root_mount_, root_);
        const std::uint64_t tmp = dentry("tmp", root_), m = dentry("m", tmp);
        tmpfs_root_ = dentry("", 0);
        tmpfs_ = mount(tmpfs_root_, root_mount_, m);
        t_ = dentry("t", tmpfs_root_);
        busybox_ = dentry("busybox", dentry("bin", root_));
    }

    void poke(std::uint64_t va, std::uint64_t v) { poke_bytes(va, std::string_view(reinterpret_cast<const char*>(&v), 8)); }
    void poke_bytes(std::uint64_t va, std::string_view s) {
        ASSERT_EQ(mem_->write(GuestPhys(phys(va)), std::as_bytes(std::span(s.data(), s.size()))), MemStatus::Ok);
    }
    static std::uint64_t phys(std::uint64_t va) {
        if (va >= kObjects) return kObjectsPhys + (va - kObjects);
        if (va >= kTask) return 0x20000 + (va - kTask);
        return 0x10000 + (va - kPercpu);
    }
    std::uint64_t alloc(std::size_t size) {
        const std::uint64_t at = next_;
        next_ += (size + 15) & ~std::size_t{15};
        return at;
    }
    // A dentry named name under parent (0: its own parent, a root).
    std::uint64_t dentry(const std::string& name, std::uint64_t parent) {
        const std::uint64_t d = alloc(0x40), n = alloc(name.size() + 1);
        poke_bytes(n, name);
        poke(d + 0x18, parent ? parent : d);
        poke(d + 0x20, static_cast<std::uint64_t>(name.size()) << 32);  // hash 0, len
        poke(d + 0x28, n);
        return d;
    }
    // A struct mount; returns the address of its vfsmount (what a path points to).
    std::uint64_t mount(std::uint64_t root, std::uint64_t parent_vfsmount, std::uint64_t mountpoint) {
        const std::uint64_t m = alloc(0x60);
        poke(m + 0x10, parent_vfsmount ? parent_vfsmount - 0x20 : m);
        poke(m + 0x18, mountpoint);
        poke(m + 0x20, root);
        return m + 0x20;
    }
    void set_mount_root(std::uint64_t vfsmount, std::uint64_t root) { poke(vfsmount, root); }
    // An mm whose executable is dentry on vfsmount; the task's mm unless not current.
    std::uint64_t set_exe(std::uint64_t dentry_at, std::uint64_t vfsmount, bool current = true) {
        const std::uint64_t file = alloc(0x40), mm = alloc(0x80);
        poke(file + 0x10, vfsmount);
        poke(file + 0x18, dentry_at);
        poke(mm + 0x40, file);
        if (current) poke(kTask + 0x28, mm);
        return mm;
    }
    std::string exe(bool mounts = true) {
        KernelProfile p = profile(mounts);
        LinuxBackend backend(p, mem_);
        return backend.process_event(event()).process.exe;
    }
    Event event() {
        Event e;
        e.direction = Direction::Enter;
        e.nr = 39;
        e.sregs.cr3 = kRoot;
        e.sregs.efer = x86::kEferNxe;
        e.sregs.kernel_gs_base = kPercpu;
        return e;
    }
    // The task's fields as a listener copies them at the event, its mm included.
    static void add_copy(Event& e, std::uint64_t mm, std::int32_t tgid = 230, char name = 't') {
        std::string b(40, '\0');
        const std::int32_t pid = 231;
        std::memcpy(b.data(), &pid, 4);
        std::memcpy(b.data() + 4, &tgid, 4);
        b[8] = name;
        std::memcpy(b.data() + 32, &mm, 8);
        e.context = kTask;
        e.capture_storage.assign(b.begin(), b.end());
        e.captures = {Capture{0, CaptureKind::Context, CaptureStatus::Ok,
                              std::string_view(e.capture_storage.data(), b.size()), 4}};
    }

    std::shared_ptr<BufferPhysicalMemory> mem_;
    std::unique_ptr<PageTableBuilder> pt_;
    std::uint64_t next_ = kObjects;
    std::uint64_t root_mount_ = 0, root_ = 0, tmpfs_ = 0, tmpfs_root_ = 0, t_ = 0, busybox_ = 0;
};

TEST_F(ExePathTest, PathOnTheRootMount) {
    set_exe(busybox_, root_mount_);
    EXPECT_EQ(exe(), "/bin/busybox");
}

TEST_F(ExePathTest, PathAcrossAMount) {
    set_exe(t_, tmpfs_);
    EXPECT_EQ(exe(), "/tmp/m/t");
    // A profile without struct mount stops at the root of the file's own mount.
    EXPECT_EQ(exe(false), "/t");
}

TEST_F(ExePathTest, KernelThreadsHaveNone) {
    poke(kTask + 0x28, 0);
    EXPECT_EQ(exe(), "");
}

TEST_F(ExePathTest, HostileDentriesAndMountsGiveNothing) {
    // Two dentries each other's parent: a cycle, cut off after kMaxPathSteps steps.
    const std::uint64_t a = dentry("a", 0), b = dentry("b", a);
    poke(a + 0x18, b);
    set_exe(b, root_mount_);
    EXPECT_EQ(exe(), "");
    // A name longer than any file name, and a name pointer to nowhere.
    const std::uint64_t long_name = dentry("x", root_);
    poke(long_name + 0x20, 100000ULL << 32);
    set_exe(long_name, root_mount_);
    EXPECT_EQ(exe(), "");
    const std::uint64_t nowhere = dentry("y", root_);
    poke(nowhere + 0x28, 0xffff888077770000ULL);
    set_exe(nowhere, root_mount_);
    EXPECT_EQ(exe(), "");
    // Two mounts each mounted on the other's root.
    const std::uint64_t r1 = dentry("", 0), r2 = dentry("", 0);
    const std::uint64_t m1 = mount(r1, 0, 0), m2 = mount(r2, m1, r1);
    poke(m1 - 0x20 + 0x10, m2 - 0x20);
    poke(m1 - 0x20 + 0x18, r2);
    set_exe(dentry("z", r2), m2);
    EXPECT_EQ(exe(), "");
    // An mm or exe_file pointer to unmapped memory.
    poke(kTask + 0x28, 0xffff888066660000ULL);
    EXPECT_EQ(exe(), "");
}

// Asynchronous mode: the listener copied the task's mm at the event; by the time the event is
// handled the task may have executed another program (a new mm) or ended.
TEST_F(ExePathTest, TheAddressSpaceAsItWasAtTheEvent) {
    KernelProfile p = profile();
    LinuxBackend backend(p, mem_);
    const std::uint64_t before = set_exe(busybox_, root_mount_);
    set_exe(t_, tmpfs_);  // the exec: the task's mm now runs /tmp/m/t
    Event e = event();
    add_copy(e, before);
    EXPECT_EQ(backend.process_event(e).process.exe, "/bin/busybox");
    // The old address space ends (exe_file dropped): what was seen of it holds (for an event
    // of the task under another name, so that the path is looked up again)...
    poke(before + 0x40, 0);
    Event again = event();
    add_copy(again, before, 230, 'u');
    EXPECT_EQ(backend.process_event(again).process.exe, "/bin/busybox");
    // ...for the same process only: another process's address space at that address (reused
    // memory) that ended before nitro saw it alive is unknown, not /bin/busybox.
    Event other = event();
    add_copy(other, before, 400);
    EXPECT_EQ(backend.process_event(other).process.exe, "");
    // A kernel thread's copy (mm 0).
    Event kthread = event();
    add_copy(kthread, 0, 401);
    EXPECT_EQ(backend.process_event(kthread).process.exe, "");
}

TEST(ExePathFacts, TheListenerCopiesTheMmWithTheTaskWhenThereIsRoom) {
    BufferPhysicalMemory mem(1 << 20);
    KernelProfile p = profile();
    auto f = ProcessReader(mem, p).context_fields();
    ASSERT_EQ(f.size(), 4u);
    EXPECT_EQ(f[3].offset, 0x28u);
    EXPECT_EQ(f[3].len, 8u);
    p.task_struct.tgid.offset = 0x18;  // pid and tgid apart: four fields without the mm
    EXPECT_EQ(ProcessReader(mem, p).context_fields().size(), 4u);
}

}  // namespace
}  // namespace nitro::linux_os
