// SPDX-License-Identifier: MIT
// Listing all tasks from init_task on hand-built kernel memory (page tables, task_structs and
// their lists), including hostile lists: cycles, unreadable links, user addresses, floods; and
// the KASLR slide from a kernel mapping seen through an event's CR3.
#include <gtest/gtest.h>

#include <cstring>

#include "../memory/page_table_builder.h"
#include "os/linux/memory_profile.h"
#include "os/linux/task_list.h"

namespace nitro::linux_os {
namespace {

using nitro::test::k2M;
using nitro::test::PageTableBuilder;

constexpr uint64_t kKernelVa = 0xffff888000000000ULL;  // the direct map
constexpr uint64_t kKernelPa = 4 << 20;
constexpr uint32_t kPid = 0x10, kTgid = 0x14, kComm = 0x100, kTasks = 0x200, kGroup = 0x300;

KernelProfile profile() {
    KernelProfile p;
    auto f = [](uint32_t off, uint32_t size) { return Field{off, size, true}; };
    p.task_struct.size = 0x1000;
    p.task_struct.pid = f(kPid, 4);
    p.task_struct.tgid = f(kTgid, 4);
    p.task_struct.comm = f(kComm, 16);
    p.task_struct.tasks = f(kTasks, 16);
    p.task_struct.thread_group = f(kGroup, 16);
    p.list_head = {f(0, 8), f(8, 8)};
    return p;
}

class TaskListTest : public ::testing::Test {
  protected:
    TaskListTest() : mem_(16 << 20), pt_(mem_, GuestPhys(1 << 20)) {
        pt_.map(GuestVirt(kKernelVa), GuestPhys(kKernelPa), k2M);
    }
    static uint64_t task(int slot) { return kKernelVa + uint64_t(slot) * 0x1000; }
    void put64(uint64_t va, uint64_t v) {
        std::memcpy(mem_.bytes().data() + kKernelPa + (va - kKernelVa), &v, 8);
    }
    void make_task(int slot, int32_t pid, int32_t tgid, const char* comm) {
        const uint64_t t = task(slot);
        std::memcpy(mem_.bytes().data() + kKernelPa + (t - kKernelVa) + kPid, &pid, 4);
        std::memcpy(mem_.bytes().data() + kKernelPa + (t - kKernelVa) + kTgid, &tgid, 4);
        std::strncpy(
            reinterpret_cast<char*>(mem_.bytes().data()) + kKernelPa + (t - kKernelVa) + kComm,
            comm, 16);
        ring(kGroup, {slot});  // no other threads
    }
    // Links the slots' list_heads at `field` into one circular list.
    void ring(uint32_t field, std::vector<int> slots) {
        for (size_t i = 0; i < slots.size(); ++i) {
            const uint64_t node = task(slots[i]) + field;
            const uint64_t next = task(slots[(i + 1) % slots.size()]) + field;
            const uint64_t prev = task(slots[(i + slots.size() - 1) % slots.size()]) + field;
            put64(node, next);
            put64(node + 8, prev);
        }
    }
    void standard_guest() {
        make_task(0, 0, 0, "swapper/0");
        make_task(1, 1, 1, "init");
        make_task(2, 3, 3, "sh");
        make_task(3, 7, 7, "test_open");
        make_task(4, 9, 9, "kworker/0:1");
        make_task(5, 4, 3, "sh-thread");
        ring(kTasks, {0, 1, 2, 3, 4});
        ring(kGroup, {2, 5});
    }
    TaskList list(TaskListOptions o = {}) {
        AddressSpace as(mem_, pt_.config());
        return list_tasks(as, profile_, task(0), o);
    }

    BufferPhysicalMemory mem_;
    PageTableBuilder pt_;
    KernelProfile profile_ = profile();
};

TEST_F(TaskListTest, ProcessesAndThreadsFromInitTask) {
    standard_guest();
    const TaskList l = list();
    EXPECT_FALSE(l.corrupt) << l.error;
    EXPECT_FALSE(l.truncated);
    ASSERT_EQ(l.tasks.size(), 6u);
    EXPECT_EQ(l.tasks[0].comm, "swapper/0");
    EXPECT_EQ(l.tasks[3].comm, "test_open");
    EXPECT_EQ(l.tasks[3].pid, 7);
    EXPECT_EQ(l.tasks[5].comm, "sh-thread");
    EXPECT_EQ(l.tasks[5].pid, 4);
    EXPECT_EQ(l.tasks[5].tgid, 3);
    EXPECT_EQ(l.tasks[5].task, task(5));
    TaskListOptions leaders;
    leaders.threads = false;
    EXPECT_EQ(list(leaders).tasks.size(), 5u);
}

// Since Linux 6.6 a process's threads, the leader included, are on signal->thread_head,
// linked through task_struct.thread_node (thread_group is gone).
TEST_F(TaskListTest, ThreadsFromTheSignalStructSince66) {
    constexpr uint32_t kNode = 0x400, kSignal = 0x500, kHead = 0x10;
    profile_.task_struct.thread_group = {};
    profile_.task_struct.thread_node = Field{kNode, 16, true};
    profile_.task_struct.signal = Field{kSignal, 8, true};
    profile_.signal_struct.thread_head = Field{kHead, 16, true};
    standard_guest();
    // One signal_struct per process (slot 20 + leader), its thread list through thread_node.
    auto threads = [&](int leader, std::vector<int> members) {
        const uint64_t head = task(20 + leader) + kHead;
        std::vector<uint64_t> nodes{head};
        for (int m : members) {
            put64(task(m) + kSignal, task(20 + leader));
            nodes.push_back(task(m) + kNode);
        }
        for (size_t i = 0; i < nodes.size(); ++i) {
            put64(nodes[i], nodes[(i + 1) % nodes.size()]);
            put64(nodes[i] + 8, nodes[(i + nodes.size() - 1) % nodes.size()]);
        }
    };
    threads(0, {0});
    threads(1, {1});
    threads(2, {2, 5});
    threads(3, {3});
    threads(4, {4});
    TaskList l = list();
    EXPECT_FALSE(l.corrupt) << l.error;
    ASSERT_EQ(l.tasks.size(), 6u);
    EXPECT_EQ(l.tasks[5].comm, "sh-thread");
    EXPECT_EQ(l.tasks[5].tgid, 3);

    // A signal pointer that is not a kernel address stops the walk, reported.
    put64(task(3) + kSignal, 0x1000);
    l = list();
    EXPECT_TRUE(l.corrupt);
    EXPECT_NE(l.error.find("signal"), std::string::npos) << l.error;
    // A thread list that loops without coming back to its head is cut, not followed forever.
    threads(3, {3});
    put64(task(5) + kNode, task(2) + kNode);  // sh -> sh-thread -> sh -> ...
    l = list();
    EXPECT_TRUE(l.corrupt);
    EXPECT_NE(l.error.find("cycle"), std::string::npos) << l.error;
}

TEST_F(TaskListTest, CycleThatMissesTheHeadStops) {
    standard_guest();
    put64(task(3) + kTasks, task(2) + kTasks);  // test_open -> sh -> test_open -> ...
    const TaskList l = list();
    EXPECT_TRUE(l.corrupt);
    EXPECT_NE(l.error.find("cycle"), std::string::npos) << l.error;
    EXPECT_EQ(l.tasks.size(), 4u);  // swapper, init, sh, test_open, each once
}

TEST_F(TaskListTest, UnreadableAndUserLinksStop) {
    standard_guest();
    put64(task(1) + kTasks, kKernelVa + (8 << 20));  // not mapped
    TaskList l = list();
    EXPECT_TRUE(l.corrupt);
    EXPECT_EQ(l.tasks.size(), 2u);
    put64(task(1) + kTasks, 0x7fff00001000ULL);  // a user address
    l = list();
    EXPECT_TRUE(l.corrupt);
    EXPECT_NE(l.error.find("not a kernel address"), std::string::npos) << l.error;
    // The task_struct itself unreadable: the link points at a node whose task is unmapped.
    put64(task(1) + kTasks, kKernelVa + k2M - 8);  // task would straddle the mapping's end
    l = list();
    EXPECT_TRUE(l.corrupt);
}

TEST_F(TaskListTest, BoundedByMaxTasks) {
    // 400 processes in one list, and every thread list pointing into the process list: the
    // walk ends at its limits.
    make_task(0, 0, 0, "swapper/0");
    std::vector<int> all = {0};
    for (int i = 1; i < 400; ++i) {
        make_task(i, i, i, "p");
        all.push_back(i);
    }
    ring(kTasks, all);
    TaskListOptions o;
    o.max_tasks = 100;
    TaskList l = list(o);
    EXPECT_TRUE(l.truncated);
    EXPECT_EQ(l.tasks.size(), 100u);
    for (int i = 0; i < 400; ++i) put64(task(i) + kGroup, task((i + 1) % 400) + kTasks);
    o.max_tasks = 1000;
    l = list(o);
    // Thread lists now lead to garbage "tasks" (misplaced list nodes): whatever is listed,
    // the walk stays within its bounds and says the lists are broken.
    EXPECT_GE(l.tasks.size(), 400u);
    EXPECT_LE(l.tasks.size(), 1000u);
    EXPECT_TRUE(l.corrupt || l.truncated);
}

TEST(LinuxLocateKernel, SlideFromTheKernelMappingOfAnEvent) {
    BufferPhysicalMemory mem(16 << 20);
    PageTableBuilder pt(mem, GuestPhys(1 << 20));
    constexpr uint64_t kSlide = 0x2a00000;
    constexpr uint64_t kText = 0xffffffff81000000ULL;
    constexpr uint64_t kTextPa = 8 << 20;
    pt.map(GuestVirt(kText + kSlide), GuestPhys(kTextPa), k2M);
    KernelProfile p = profile();
    p.symbols["_text"] = kText;
    p.symbols["init_task"] = kText + 0x10000;
    const int32_t zero = 0;
    std::memcpy(mem.bytes().data() + kTextPa + 0x10000 + kPid, &zero, 4);
    std::strcpy(reinterpret_cast<char*>(mem.bytes().data()) + kTextPa + 0x10000 + kComm,
                "swapper/0");
    Event ev;
    ev.sregs.cr3 = pt.root().value();
    ev.sregs.cr4 = 0;
    ev.sregs.efer = x86::kEferNxe;
    KernelLocation loc = locate_kernel(mem, p, std::nullopt, &ev);
    EXPECT_TRUE(loc.slide_known);
    EXPECT_EQ(loc.slide, static_cast<int64_t>(kSlide));
    EXPECT_EQ(loc.slide_source, "kernel mapping");
    EXPECT_EQ(loc.init_task, kText + 0x10000 + kSlide);
    EXPECT_TRUE(loc.init_task_verified);
    // Without the event nothing is known.
    EXPECT_FALSE(locate_kernel(mem, p, std::nullopt, nullptr).slide_known);
    // A different "init_task" fails the check.
    std::strcpy(reinterpret_cast<char*>(mem.bytes().data()) + kTextPa + 0x10000 + kComm, "evil");
    EXPECT_FALSE(locate_kernel(mem, p, std::nullopt, &ev).init_task_verified);
}

}  // namespace
}  // namespace nitro::linux_os
