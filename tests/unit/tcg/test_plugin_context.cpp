// SPDX-License-Identifier: MIT
// The context word and its fields (Listener::set_context_word, set_context_fields): what the
// plugin copies of the current task at each event, with the plugin's own code on a fake QEMU
// (fake_qemu.h) and the real listener. Through QEMU's memory reads, and from the RAM file
// through the linear map the backend gives (set_context_linear_map), hostile addresses included.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "../guest_bytes.h"
#include "fake_qemu.h"
#include "ram_file.h"
#include "listener/tcg/tcg_listener.h"

namespace nitro::tcg {
namespace {

using test_bytes::le32;
using test_bytes::le64;

constexpr uint64_t kCurrentTask = 0x2c0;  // per-CPU offset of the current task pointer
constexpr uint32_t kPid = 0x10, kComm = 0x20, kParent = 0x40;
constexpr uint64_t kGetpid = 39;

struct Plugin {
    fake::FakeQemu qemu;
    std::unique_ptr<TcgListener> listener;
    Plugin() {
        listener = std::make_unique<TcgListener>(qemu.ctl_path(), TcgOptions{});
        EXPECT_TRUE(listener->set_context_word(kCurrentTask));
        EXPECT_TRUE(listener->set_context_fields({{kPid, 8}, {kComm, 16}, {kParent, 8}}));
        qemu.translate();
    }
};
Plugin& plugin() {
    static Plugin p;
    return p;
}

uint64_t kernel_gs() { return fake::fake_cpu().truth[NITRO_REG_K_GS_BASE]; }

// Runs the fake vCPU as a task: its address space, TLS base and current task (the word at the
// per-CPU offset). The vCPU's own address space and TLS base come back when it goes.
class RunAs {
  public:
    explicit RunAs(Plugin& p)
        : p_(p), cr3_(fake::fake_cpu().truth[NITRO_REG_CR3]), fs_(fake::fake_cpu().truth[NITRO_REG_FS_BASE]) {}
    ~RunAs() { set(cr3_, fs_); }
    void operator()(uint64_t task, uint64_t cr3, uint64_t fs) {
        set(cr3, fs);
        p_.qemu.map(kernel_gs() + kCurrentTask, le64(task));
    }

  private:
    static void set(uint64_t cr3, uint64_t fs) {
        auto& cpu = fake::fake_cpu();
        cpu.truth[NITRO_REG_CR3] = cr3;
        cpu.truth[NITRO_REG_FS_BASE] = fs;
        cpu.sync();
    }
    Plugin& p_;
    uint64_t cr3_, fs_;
};

// A task_struct's first bytes with the three fields where the test puts them.
std::string task_bytes(int32_t pid, int32_t tgid, const std::string& comm, uint64_t parent) {
    std::string t(0x48, '\0');
    t.replace(kPid, 8, le32(static_cast<uint32_t>(pid)) + le32(static_cast<uint32_t>(tgid)));
    t.replace(kComm, comm.size(), comm);
    t.replace(kParent, 8, le64(parent));
    return t;
}

Event next_event() {
    Event ev;
    EXPECT_EQ(plugin().listener->next(ev, std::chrono::seconds(2)), Listener::Status::Event);
    return ev;
}

const Capture* context_capture(const Event& ev) { return ev.added_capture(CaptureKind::Context); }

// The comm field of a Context capture of the test's fields.
std::string comm_of(const Capture& c) {
    std::string comm(c.data.substr(8, 16));
    return comm.substr(0, comm.find('\0'));
}

constexpr uint64_t kPrctl = 157;

// Without the RAM file's linear map the plugin copies the fields through QEMU at every event,
// as they are then.
TEST(PluginContext, ThroughQemuEveryEventCarriesTheFieldsAsTheyWere) {
    auto& p = plugin();
    const uint64_t task = 0xffff888001234000ULL;
    p.qemu.unmap_all();
    p.qemu.map(kernel_gs() + kCurrentTask, le64(task));
    p.qemu.map(task, task_bytes(7, 7, "before", 0xffff888000555000ULL));
    p.qemu.enter(kGetpid, {0, 0, 0, 0, 0, 0});
    // An exec renames the task while the call runs: the exit sees the new name.
    p.qemu.map(task, task_bytes(7, 7, "after", 0xffff888000555000ULL));
    p.qemu.leave(7);

    Event entry = next_event(), exit = next_event();
    ASSERT_EQ(entry.context, task);
    const Capture* c = context_capture(entry);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->status, CaptureStatus::Ok);
    EXPECT_EQ(c->field, 3);
    ASSERT_EQ(c->data.size(), 32u);
    EXPECT_EQ(c->data.substr(0, 8), le32(7) + le32(7));
    EXPECT_EQ(comm_of(*c), "before");
    EXPECT_EQ(c->data.substr(24, 8), le64(0xffff888000555000ULL));
    EXPECT_EQ(entry.capture(0), nullptr);  // not an argument's capture
    ASSERT_NE(context_capture(exit), nullptr);
    EXPECT_EQ(comm_of(*context_capture(exit)), "after");
}

// A copy that fails is marked, so that nobody keeps using an older one.
TEST(PluginContext, UnreadableTaskGivesTheWordAndAFailedCopy) {
    auto& p = plugin();
    const uint64_t task = 0xffff888007770000ULL;
    p.qemu.unmap_all();
    p.qemu.map(kernel_gs() + kCurrentTask, le64(task));
    p.qemu.call(kGetpid, {0, 0, 0, 0, 0, 0}, 7);
    for (const Event& e : {next_event(), next_event()}) {
        EXPECT_EQ(e.context, task);
        const Capture* c = context_capture(e);
        ASSERT_NE(c, nullptr);
        EXPECT_EQ(c->status, CaptureStatus::Fault);
        EXPECT_EQ(c->data.size(), 0u);
    }
}

// A vfork child shares its waiting parent's thread key (address space and TLS): its returns
// to user mode, here from an interrupt with the vfork's result still in rax, must not end the
// parent's vfork. The current task (the context word) tells them apart; the parent's own
// return ends it.
TEST(PluginContext, AVforkChildsReturnsDoNotEndItsParentsVfork) {
    auto& p = plugin();
    constexpr uint64_t kVfork = 58, kParent = 0xffff888000100000ULL, kChild = 0xffff888000200000ULL;
    p.listener->set_pairing_hints(Abi::X86_64, {.rekey = {}, .fork = {kVfork}, .noreturn = {}});
    p.qemu.map(kernel_gs() + kCurrentTask, le64(kParent));
    p.qemu.enter(kVfork, {0, 0, 0, 0, 0, 0});
    const Event entry = next_event();
    ASSERT_EQ(entry.context, kParent);
    // The child: its first return (0, through iret as Linux's ret_from_fork returns), then an
    // interrupt's return to its code.
    p.qemu.map(kernel_gs() + kCurrentTask, le64(kChild));
    p.qemu.interrupt_return(0, fake::kSyscallAddress + 2);
    p.qemu.interrupt_return(777, 0x401234);
    // The parent's return.
    p.qemu.map(kernel_gs() + kCurrentTask, le64(kParent));
    p.qemu.leave(1234);
    const Event exit = next_event();
    EXPECT_EQ(exit.direction, Direction::Exit);
    EXPECT_EQ(exit.entry_seq, entry.seq);
    EXPECT_EQ(exit.regs.rax, 1234u);
    EXPECT_EQ(exit.context, kParent);
}

// vfork and execve in the child (busybox's and posix_spawn's way to start a program): the child
// enters execve under the thread key it shares with its waiting parent; the exec releases the
// parent, whose vfork returns under that key, often before the child's execve returns in the
// new image (new address space, no TLS base yet). Each return must end its own task's call:
// seen with xargs running cat, the parent's return ended the child's execve (reported
// returning the child's pid) and the vfork was paired with a later call.
TEST(PluginContext, AVforkChildsExecveAndItsParentsVforkEachEndTheirOwnCall) {
    auto& p = plugin();
    constexpr uint64_t kVfork = 58, kExecve = 59, kWait4 = 61;
    constexpr uint64_t kParent = 0xffff888000500000ULL, kChild = 0xffff888000600000ULL;
    p.listener->set_pairing_hints(Abi::X86_64,
                                  {.rekey = {kExecve}, .fork = {kVfork}, .noreturn = {}});
    RunAs run_as(p);
    for (bool parent_first : {true, false}) {
        SCOPED_TRACE(parent_first ? "the parent returns first" : "the child returns first");
        run_as(kParent, 0x7c7c000, 0x7f0000002000);
        p.qemu.enter(kVfork, {0, 0, 0, 0, 0, 0});
        const Event vfork = next_event();
        run_as(kChild, 0x7c7c000, 0x7f0000002000);  // the parent's address space and TLS
        p.qemu.interrupt_return(0, fake::kSyscallAddress + 2);  // its first return: vfork's 0
        p.qemu.enter(kExecve, {0x500000, 0x500100, 0x500200, 0, 0, 0});
        const Event execve = next_event();
        ASSERT_EQ(execve.context, kChild);
        Event wait4;
        // The parent's return, then its next call (wait4) under the same key, entered while
        // the child's execve may still be pending.
        auto parent_returns = [&] {
            run_as(kParent, 0x7c7c000, 0x7f0000002000);
            p.qemu.leave(91);
            const Event exit = next_event();
            EXPECT_EQ(exit.entry_seq, vfork.seq);
            EXPECT_EQ(exit.regs.rax, 91u);
            EXPECT_EQ(exit.context, kParent);
            p.qemu.enter(kWait4, {91, 0, 0, 0, 0, 0});
            wait4 = next_event();
        };
        if (parent_first) parent_returns();
        run_as(kChild, 0x8d8d000, 0);  // the new image
        p.qemu.interrupt_return(0, 0x401000);  // Linux returns from execve through iret
        const Event exit = next_event();
        EXPECT_EQ(exit.entry_seq, execve.seq);
        EXPECT_EQ(exit.regs.rax, 0u);
        EXPECT_EQ(exit.context, kChild);
        if (!parent_first) parent_returns();
        run_as(kParent, 0x7c7c000, 0x7f0000002000);
        p.qemu.leave(91);
        const Event wait4_exit = next_event();
        EXPECT_EQ(wait4_exit.entry_seq, wait4.seq);
        EXPECT_EQ(wait4_exit.context, kParent);
    }
}

// The same with execve alone traced (nitro trace -e execve): the parent's untraced calls still
// enter the pairing table, and its next call must not take the place of the child's execve.
TEST(PluginContext, WithOnlyExecveTracedTheChildsExecveStillEnds) {
    auto& p = plugin();
    constexpr uint64_t kVfork = 58, kExecve = 59, kWait4 = 61;
    constexpr uint64_t kParent = 0xffff888000700000ULL, kChild = 0xffff888000800000ULL;
    p.listener->set_pairing_hints(Abi::X86_64,
                                  {.rekey = {kExecve}, .fork = {kVfork}, .noreturn = {}});
    p.listener->add_syscall_filter(Abi::X86_64, kExecve);
    RunAs run_as(p);
    run_as(kParent, 0x9e9e000, 0x7f0000003000);
    p.qemu.enter(kVfork, {0, 0, 0, 0, 0, 0});
    run_as(kChild, 0x9e9e000, 0x7f0000003000);
    p.qemu.interrupt_return(0, fake::kSyscallAddress + 2);
    p.qemu.enter(kExecve, {0x500000, 0x500100, 0x500200, 0, 0, 0});
    const Event execve = next_event();
    ASSERT_EQ(execve.direction, Direction::Enter);
    run_as(kParent, 0x9e9e000, 0x7f0000003000);
    p.qemu.leave(93);
    p.qemu.enter(kWait4, {93, 0, 0, 0, 0, 0});
    run_as(kChild, 0xafaf000, 0);
    p.qemu.interrupt_return(0, 0x401000);
    const Event exit = next_event();
    EXPECT_EQ(exit.direction, Direction::Exit);
    EXPECT_EQ(exit.entry_seq, execve.seq);
    EXPECT_EQ(exit.regs.rax, 0u);
    EXPECT_EQ(exit.context, kChild);
    run_as(kParent, 0x9e9e000, 0x7f0000003000);
    p.qemu.leave(93);  // wait4's return: not traced
    Event none;
    EXPECT_EQ(p.listener->next(none, std::chrono::milliseconds(50)), Listener::Status::Timeout);
    p.listener->clear_syscall_filter();
}

// Returns whose thread key matches no entry pair by vCPU or as an exec's (arch_prctl changed
// the TLS base; a new image has none yet) only with an entry of their own task: an interrupt's
// return in one fresh program (TLS base still 0) does not end another's arch_prctl. Seen with
// smp 2: two static programs started by strace, one's arch_prctl reported returning the
// other's heap address.
TEST(PluginContext, AFreshProgramsInterruptReturnDoesNotEndAnothersArchPrctl) {
    auto& p = plugin();
    constexpr uint64_t kArchPrctl = 158, kA = 0xffff888000300000ULL, kB = 0xffff888000400000ULL;
    p.listener->set_pairing_hints(Abi::X86_64, {.rekey = {kArchPrctl}, .fork = {}, .noreturn = {}});
    RunAs run_as(p);
    run_as(kB, 0x5a5a000, 0);
    p.qemu.enter(kArchPrctl, {0x1002, 0x7f0000001000, 0, 0, 0, 0});  // ARCH_SET_FS
    const Event entry = next_event();
    run_as(kA, 0x6b6b000, 0);
    p.qemu.interrupt_return(0x2d002d40, 0x401234);
    run_as(kB, 0x5a5a000, 0x7f0000001000);
    p.qemu.leave(0);
    const Event exit = next_event();
    EXPECT_EQ(exit.entry_seq, entry.seq);
    EXPECT_EQ(exit.regs.rax, 0u);
    EXPECT_EQ(exit.context, kB);
}

TEST(PluginContext, TooManyOrTooLongFieldsAreRefused) {
    auto& p = plugin();
    EXPECT_FALSE(p.listener->set_context_fields({{0, 8}, {8, 8}, {16, 8}, {24, 8}, {32, 8}}));
    EXPECT_FALSE(p.listener->set_context_fields({{0, 33}}));
    EXPECT_FALSE(p.listener->set_context_fields({{0, 32}, {32, 32}, {64, 8}}));
    EXPECT_FALSE(p.listener->set_context_fields({{0, 0}}));
}

constexpr size_t kRamSize = 1 << 20;
constexpr uint64_t kLinearBase = 0xffff888000000000ULL;  // the direct map: guest-physical 0
constexpr uint64_t kWordPhys = 0x8000;

// The RAM file with the linear map given to the plugin (for the rest of the process: the
// tests above run first). QEMU's reads see the word (the plugin checks the word against them)
// but no task: what an event carries of a task can only come from the RAM file.
RamFile& ram_linear_map() {
    static RamFile* ram = [] {
        auto* r = new RamFile(kRamSize);
        auto& p = plugin();
        p.listener->set_context_in_ram(0, kernel_gs(), r->path(), kWordPhys);
        p.listener->set_context_linear_map(kLinearBase, kRamSize);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!p.listener->producer_stats().ram_file_mapped &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_TRUE(p.listener->producer_stats().ram_file_mapped);
        unlink(r->path().c_str());  // mapped by both: the name is not needed any more
        return r;
    }();
    return *ram;
}

// The current task is the one at task_phys in the RAM file.
void run_task(uint64_t task_phys) {
    const uint64_t task = kLinearBase + task_phys;
    ram_linear_map().put(kWordPhys, le64(task));
    plugin().qemu.unmap_all();
    plugin().qemu.map(kernel_gs() + kCurrentTask, le64(task));
}

TEST(PluginContext, FieldsFromTheRamFileThroughTheLinearMap) {
    auto& p = plugin();
    RamFile& ram = ram_linear_map();
    ram.put(0x40000, task_bytes(31, 30, "from-ram", kLinearBase + 0x50000));
    run_task(0x40000);
    p.qemu.call(kGetpid, {0, 0, 0, 0, 0, 0}, 30);
    Event entry = next_event();
    next_event();
    ASSERT_EQ(entry.context, kLinearBase + 0x40000);
    const Capture* c = context_capture(entry);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->data.substr(0, 8), le32(31) + le32(30));
    EXPECT_EQ(comm_of(*c), "from-ram");

    // Hostile words: a task whose fields run past the end of RAM, one below the linear map,
    // one whose offsets wrap around: the word, and a failed copy.
    for (uint64_t bad : std::initializer_list<uint64_t>{kLinearBase + kRamSize - 0x20,
                                                        kLinearBase - 0x1000, ~0ULL - 0x10}) {
        ram.put(kWordPhys, le64(bad));
        p.qemu.map(kernel_gs() + kCurrentTask, le64(bad));
        p.qemu.call(kGetpid, {0, 0, 0, 0, 0, 0}, 30);
        Event e = next_event();
        next_event();
        EXPECT_EQ(e.context, bad);
        ASSERT_NE(context_capture(e), nullptr) << std::hex << bad;
        EXPECT_EQ(context_capture(e)->status, CaptureStatus::Fault);
    }
}

// A getpid; the name in its entry's copy of the task ("" without a copy). The exit is read too.
std::string getpid_entry_copy(uint64_t ret) {
    plugin().qemu.call(kGetpid, {0, 0, 0, 0, 0, 0}, ret);
    Event entry = next_event();
    next_event();
    const Capture* c = context_capture(entry);
    return c ? comm_of(*c) : "";
}

// From the RAM file, the fields are copied where they may have changed: at a task switch, at
// the return of a call that may rename the task, when the pid at the task's address changed
// (a new task in an exited one's memory), and now and then; not at the events between.
TEST(PluginContext, FromTheRamFileOnlyWhereTheyMayHaveChanged) {
    auto& p = plugin();
    RamFile& ram = ram_linear_map();
    p.listener->set_context_refresh(Abi::X86_64, {kPrctl});
    ram.put(0x60000, task_bytes(7, 7, "before", kLinearBase + 0x50000));
    ram.put(0x68000, task_bytes(8, 8, "other", kLinearBase + 0x50000));
    run_task(0x60000);

    p.qemu.call(kGetpid, {0, 0, 0, 0, 0, 0}, 7);
    Event entry = next_event(), exit = next_event();
    ASSERT_NE(context_capture(entry), nullptr);
    EXPECT_EQ(comm_of(*context_capture(entry)), "before");
    EXPECT_EQ(exit.context, kLinearBase + 0x60000);
    EXPECT_EQ(context_capture(exit), nullptr);  // the same task, nothing that renames it

    // prctl(PR_SET_NAME) renames the task: its return carries the new name, its entry nothing.
    p.qemu.enter(kPrctl, {15, 0, 0, 0, 0, 0});
    ram.put(0x60000, task_bytes(7, 7, "after", kLinearBase + 0x50000));
    p.qemu.leave(0);
    entry = next_event();
    exit = next_event();
    EXPECT_EQ(context_capture(entry), nullptr);
    ASSERT_NE(context_capture(exit), nullptr);
    EXPECT_EQ(comm_of(*context_capture(exit)), "after");

    // Another task runs: its first event carries its fields, and so does the first one when
    // the first task is back.
    run_task(0x68000);
    EXPECT_EQ(getpid_entry_copy(8), "other");
    run_task(0x60000);
    EXPECT_EQ(getpid_entry_copy(7), "after");
    EXPECT_EQ(getpid_entry_copy(7), "");

    // The task exits and a new one takes over its memory: the same word, another pid.
    ram.put(0x60000, task_bytes(9, 9, "newcomer", kLinearBase + 0x50000));
    EXPECT_EQ(getpid_entry_copy(9), "newcomer");

    // And now and then without a reason: a name written from outside shows within
    // NITRO_CONTEXT_FIELDS_REFRESH events.
    ram.put(0x60000, task_bytes(9, 9, "renamed", kLinearBase + 0x50000));
    int copies = 0;
    std::string last;
    for (unsigned i = 0; i < NITRO_CONTEXT_FIELDS_REFRESH / 2; ++i) {  // two events each
        p.qemu.call(kGetpid, {0, 0, 0, 0, 0, 0}, 9);
        for (const Event& e : {next_event(), next_event()}) {
            if (const Capture* x = context_capture(e)) {
                ++copies;
                last = comm_of(*x);
            }
        }
    }
    EXPECT_EQ(copies, 1);
    EXPECT_EQ(last, "renamed");
}

}  // namespace
}  // namespace nitro::tcg
