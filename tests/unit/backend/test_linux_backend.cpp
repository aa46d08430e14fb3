// SPDX-License-Identifier: MIT
// The Linux backend against synthetic guest memory: hand-built page tables, a per-CPU area and
// task_structs at made-up offsets, with and without KPTI, and garbage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include <set>

#include "nitro/syscall_table.h"
#include "os/linux/backend.h"
#include "os/linux/pairing.h"
#include "fake_task_profile.h"
#include "page_table_builder.h"

namespace nitro::linux_os {
namespace {

using test::PageTableBuilder;

constexpr std::uint64_t kPercpu = 0xffff888000010000ULL;
constexpr std::uint64_t kTask = 0xffff888000020000ULL;
constexpr std::uint64_t kParent = 0xffff888000030000ULL;
constexpr std::uint64_t kUserString = 0x400000ULL;
constexpr std::uint64_t kCurrentTask = 0x80;
// The kernel's tables are the even page of an 8 KiB-aligned pair, as with KPTI.
constexpr std::uint64_t kKernelRoot = 0x200000;

KernelProfile fake_profile() { return test::fake_task_profile(); }

class LinuxBackendTest : public ::testing::Test {
  protected:
    void SetUp() override {
        mem_ = std::make_shared<BufferPhysicalMemory>(4 << 20);
        pt_ = std::make_unique<PageTableBuilder>(*mem_, GuestPhys(kKernelRoot),
                                                 GuestPhys(0x300000));
        PageTableBuilder& pt = *pt_;
        pt.map(GuestVirt(kPercpu), GuestPhys(0x10000));
        pt.map(GuestVirt(kTask), GuestPhys(0x20000));
        pt.map(GuestVirt(kParent), GuestPhys(0x30000));
        pt.map(GuestVirt(kUserString), GuestPhys(0x40000));
        poke(0x10000 + kCurrentTask, kTask);
        write_task(0x20000, 231, 231, "cat", kParent);
        write_task(0x30000, 1, 1, "init", kParent);
        backend_ = std::make_unique<LinuxBackend>(profile_, mem_);
    }

    void poke(std::uint64_t pa, std::uint64_t v) {
        ASSERT_EQ(mem_->write(GuestPhys(pa), std::as_bytes(std::span(&v, 1))), MemStatus::Ok);
    }
    void poke_bytes(std::uint64_t pa, std::string_view s) {
        ASSERT_EQ(mem_->write(GuestPhys(pa), std::as_bytes(std::span(s.data(), s.size()))),
                  MemStatus::Ok);
    }
    void write_task(std::uint64_t pa, std::int32_t pid, std::int32_t tgid, const char* comm,
                    std::uint64_t parent) {
        std::uint64_t ids = static_cast<std::uint32_t>(pid) |
                            static_cast<std::uint64_t>(static_cast<std::uint32_t>(tgid)) << 32;
        poke(pa + 0x10, ids);
        poke(pa + 0x20, parent);
        char name[16] = {};
        std::strncpy(name, comm, sizeof name);
        poke_bytes(pa + 0x100, std::string_view(name, sizeof name));
    }

    // An event in user mode: GS holds the user value, KERNEL_GS_BASE the per-CPU base.
    Event event(Direction dir, std::uint64_t nr, std::uint64_t cr3 = kKernelRoot) {
        Event e;
        e.direction = dir;
        e.nr = nr;
        e.seq = ++seq_;
        e.sregs.cr3 = cr3;
        e.sregs.efer = x86::kEferNxe;
        e.sregs.gs_base = 0;
        e.sregs.kernel_gs_base = kPercpu;
        return e;
    }
    Event exit_of(const Event& entry, std::uint64_t rax) {
        Event e = event(Direction::Exit, entry.nr, entry.sregs.cr3);
        e.entry_vcpu = entry.vcpu;
        e.entry_seq = entry.seq;
        e.args = entry.args;
        e.regs.rax = rax;
        return e;
    }

    KernelProfile profile_ = fake_profile();
    std::shared_ptr<BufferPhysicalMemory> mem_;
    std::unique_ptr<LinuxBackend> backend_;
    std::unique_ptr<PageTableBuilder> pt_;
    std::uint64_t seq_ = 0;
    std::string test_capture_;
};

TEST_F(LinuxBackendTest, ReadsTheCurrentProcess) {
    Syscall sc = backend_->process_event(event(Direction::Enter, 39 /* getpid */));
    EXPECT_EQ(sc.name, "getpid");
    EXPECT_EQ(sc.full_name, "__x64_sys_getpid");
    ASSERT_TRUE(sc.process.valid) << sc.process.error;
    EXPECT_EQ(sc.process.pid, 231);
    EXPECT_EQ(sc.process.tid, 231);
    EXPECT_EQ(sc.process.name, "cat");
    EXPECT_EQ(sc.process.ppid, 1);
    EXPECT_EQ(sc.process.descriptor, kTask);
}

TEST_F(LinuxBackendTest, KernelModeGsBaseAlsoWorks) {
    Event e = event(Direction::Enter, 39);
    std::swap(e.sregs.gs_base, e.sregs.kernel_gs_base);
    EXPECT_EQ(backend_->process_event(e).process.name, "cat");
}

TEST_F(LinuxBackendTest, KptiUserCr3FallsBackToKernelTables) {
    // The user half (bit 12 set) is an empty table: nothing of the kernel is mapped there.
    Syscall sc = backend_->process_event(event(Direction::Enter, 39, kKernelRoot | 0x1000));
    ASSERT_TRUE(sc.process.valid) << sc.process.error;
    EXPECT_EQ(sc.process.pid, 231);
}

TEST_F(LinuxBackendTest, ExecRenamesTheCachedProcess) {
    EXPECT_EQ(backend_->process_event(event(Direction::Enter, 39)).process.name, "cat");
    write_task(0x20000, 231, 231, "ls", kParent);
    EXPECT_EQ(backend_->process_event(event(Direction::Enter, 39)).process.name, "ls");
}

TEST_F(LinuxBackendTest, GarbageGivesAnInvalidProcessNotACrash) {
    Event e = event(Direction::Enter, 39);
    e.sregs.kernel_gs_base = 0x1234;  // no kernel address in either GS register
    Syscall sc = backend_->process_event(e);
    EXPECT_FALSE(sc.process.valid);
    EXPECT_FALSE(sc.process.error.empty());

    poke(0x10000 + kCurrentTask, 0xffff888000abc000ULL);  // current task not mapped
    sc = backend_->process_event(event(Direction::Enter, 39));
    EXPECT_FALSE(sc.process.valid);

    poke(0x10000 + kCurrentTask, kTask);
    poke(0x20000 + 0x20, 0xdead000000000000ULL);  // parent pointer into nowhere
    write_task(0x20000, 5, 5, "x", 0xffff888000abc000ULL);
    sc = backend_->process_event(event(Direction::Enter, 39));
    EXPECT_TRUE(sc.process.valid);
    EXPECT_EQ(sc.process.ppid, 0);
}

TEST_F(LinuxBackendTest, JoinsExitWithEntryArguments) {
    Event in = event(Direction::Enter, 257 /* openat */);
    in.args = {static_cast<std::uint64_t>(-100), 0x7ffc0000, 0, 0, 0, 0};
    std::string path = "/proc/cpuinfo";
    in.captures.push_back({1, CaptureKind::CString, CaptureStatus::Ok, path});
    Syscall enter = backend_->process_event(in);
    ASSERT_EQ(enter.args.size(), 3u);  // no mode without O_CREAT
    EXPECT_EQ(enter.args[1].text, "\"/proc/cpuinfo\"");
    EXPECT_FALSE(enter.ret);
    EXPECT_EQ(backend_->pending_entries(), 1u);

    Syscall exit = backend_->process_event(exit_of(in, 3));
    ASSERT_EQ(exit.args.size(), 3u);
    EXPECT_EQ(exit.args[1].text, "\"/proc/cpuinfo\"");
    EXPECT_EQ(exit.ret, 3);
    EXPECT_EQ(exit.ret_text, "3");
    EXPECT_EQ(backend_->pending_entries(), 0u);

    Event in2 = event(Direction::Enter, 257);
    in2.args = in.args;
    backend_->process_event(in2);
    Syscall fail = backend_->process_event(exit_of(in2, static_cast<std::uint64_t>(-2)));
    EXPECT_EQ(fail.errno_name, "ENOENT");
    EXPECT_EQ(fail.ret_text, "-1 ENOENT (No such file or directory)");
}

TEST_F(LinuxBackendTest, PathNotCapturedAtEntryIsReadAtExit) {
    poke_bytes(0x40000, std::string_view("/tmp/x\0", 7));
    // The program has not touched the page yet: not present at the entry (neither the plugin
    // nor the backend can read it); the kernel faults it in during the call.
    const std::uint64_t pte = pt_->entry(GuestVirt(kUserString), 1);
    pt_->set_entry(GuestVirt(kUserString), 1, 0);
    Event in = event(Direction::Enter, 87 /* unlink */);
    in.args = {kUserString, 0, 0, 0, 0, 0};
    EXPECT_EQ(backend_->process_event(in).args[0].text, "0x400000");
    pt_->set_entry(GuestVirt(kUserString), 1, pte);
    EXPECT_EQ(backend_->process_event(exit_of(in, 0)).args[0].text, "\"/tmp/x\"");
}

TEST_F(LinuxBackendTest, UnknownNumberIsRaw) {
    Event e = event(Direction::Enter, 999);
    e.args = {1, 2, 3, 4, 5, 0xffffffffffffffffULL};
    Syscall sc = backend_->process_event(e);
    EXPECT_FALSE(sc.known);
    EXPECT_EQ(sc.name, "syscall_999");
    ASSERT_EQ(sc.args.size(), 6u);
    EXPECT_EQ(sc.args[5].text, "0xffffffffffffffff");
}

TEST_F(LinuxBackendTest, PendingEntriesAreBounded) {
    for (std::size_t i = 0; i < LinuxBackend::kMaxPendingEntries + 10; ++i) {
        backend_->process_event(event(Direction::Enter, 39));
    }
    EXPECT_EQ(backend_->pending_entries(), LinuxBackend::kMaxPendingEntries);
    // exit_group never returns: nothing is kept for it.
    Event eg = event(Direction::Enter, 231);
    EXPECT_FALSE(backend_->process_event(eg).returns);
    EXPECT_EQ(backend_->pending_entries(), LinuxBackend::kMaxPendingEntries);
}

TEST_F(LinuxBackendTest, ReusedTaskStructShowsTheNewProcess) {
    EXPECT_EQ(backend_->process_event(event(Direction::Enter, 39)).process.pid, 231);
    // The task exited and its task_struct was reused for another process, same parent.
    write_task(0x20000, 400, 400, "sshd", kParent);
    Syscall sc = backend_->process_event(event(Direction::Enter, 39));
    EXPECT_EQ(sc.process.pid, 400);
    EXPECT_EQ(sc.process.name, "sshd");
    EXPECT_EQ(sc.process.ppid, 1);
}

TEST_F(LinuxBackendTest, ReparentedTaskShowsItsNewParent) {
    EXPECT_EQ(backend_->process_event(event(Direction::Enter, 39)).process.ppid, 1);
    // The parent exits; the task is reparented to a subreaper (same pid, same name).
    constexpr std::uint64_t kReaper = 0xffff888000050000ULL;
    pt_->map(GuestVirt(kReaper), GuestPhys(0x50000));
    write_task(0x50000, 77, 77, "systemd", kParent);
    poke(0x20000 + 0x20, kReaper);
    EXPECT_EQ(backend_->process_event(event(Direction::Enter, 39)).process.ppid, 77);
}

TEST_F(LinuxBackendTest, ProcessOfAnEventWhosePageTablesWereFreed) {
    // A second process: its own top-level table with the kernel half copied, as pgd_alloc does.
    constexpr std::uint64_t kOtherRoot = 0x280000;
    for (unsigned i = 0; i < 512; ++i) {
        std::uint64_t e = 0;
        if (i >= 256) {
            ASSERT_EQ(mem_->read(GuestPhys(kKernelRoot + i * 8),
                                 std::as_writable_bytes(std::span(&e, 1))),
                      MemStatus::Ok);
        }
        poke(kOtherRoot + i * 8, e);
    }
    EXPECT_TRUE(backend_->process_event(event(Direction::Enter, 39)).process.valid);
    Event late = event(Direction::Enter, 231 /* exit_group */, kOtherRoot);
    late.context = kTask;  // the listener read the current task at the event
    EXPECT_TRUE(backend_->process_event(late).process.valid);
    // The process exits; by the time its last event is decoded (asynchronous mode) the kernel
    // has freed its page tables and reused the page.
    for (unsigned i = 0; i < 512; ++i) poke(kOtherRoot + i * 8, 0x0123456789abcdefULL);
    late.seq = ++seq_;
    Syscall sc = backend_->process_event(late);
    ASSERT_TRUE(sc.process.valid) << sc.process.error;
    EXPECT_EQ(sc.process.pid, 231);
    EXPECT_EQ(sc.process.name, "cat");
}

// What a listener copies of the current task at the event (Listener::set_context_fields with
// ProcessReader::context_fields()): pid and tgid, comm, real_parent.
void add_task_fields(Event& e, std::int32_t pid, std::int32_t tgid, const char* comm,
                     std::uint64_t parent, std::uint8_t fields = 3) {
    char name[16] = {};
    std::memcpy(name, comm, std::min(std::strlen(comm), sizeof name));
    std::string bytes(32, '\0');
    std::memcpy(bytes.data(), &pid, 4);
    std::memcpy(bytes.data() + 4, &tgid, 4);
    std::memcpy(bytes.data() + 8, name, 16);
    std::memcpy(bytes.data() + 24, &parent, 8);
    e.capture_storage.assign(bytes.begin(), bytes.end());
    e.captures = {Capture{0, CaptureKind::Context, CaptureStatus::Ok,
                          std::string_view(e.capture_storage.data(), bytes.size()), fields}};
}

TEST_F(LinuxBackendTest, ContextFieldsArePidTgidCommAndParent) {
    ProcessReader reader(*mem_, profile_);
    auto f = reader.context_fields();
    ASSERT_EQ(f.size(), 3u);  // pid and tgid adjacent: one field
    EXPECT_EQ(f[0].offset, 0x10u);
    EXPECT_EQ(f[0].len, 8u);
    EXPECT_EQ(f[1].offset, 0x100u);
    EXPECT_EQ(f[1].len, 16u);
    EXPECT_EQ(f[2].offset, 0x20u);
    EXPECT_EQ(f[2].len, 8u);
    KernelProfile split = profile_;
    split.task_struct.tgid.offset = 0x18;
    EXPECT_EQ(ProcessReader(*mem_, split).context_fields().size(), 4u);
}

TEST_F(LinuxBackendTest, TheTaskAsTheListenerCopiedItAtTheEvent) {
    // By the time nitro handles the event, the task has executed another program.
    write_task(0x20000, 231, 231, "ls", kParent);
    Event e = event(Direction::Enter, 39);
    e.context = kTask;
    // A capture of other fields than asked (another layout, a cut copy) is not used: the task
    // is read now.
    add_task_fields(e, 231, 230, "sh", kParent, 4);
    EXPECT_EQ(backend_->process_event(e).process.name, "ls");
    add_task_fields(e, 231, 230, "sh", kParent);
    e.captures[0].data = e.captures[0].data.substr(0, 24);
    EXPECT_EQ(backend_->process_event(e).process.name, "ls");
    add_task_fields(e, 231, 230, "sh", kParent);
    e.captures[0].status = CaptureStatus::Partial;
    EXPECT_EQ(backend_->process_event(e).process.name, "ls");

    add_task_fields(e, 231, 230, "sh", kParent);
    Syscall sc = backend_->process_event(e);
    ASSERT_TRUE(sc.process.valid) << sc.process.error;
    EXPECT_EQ(sc.process.name, "sh");
    EXPECT_EQ(sc.process.tid, 231);
    EXPECT_EQ(sc.process.pid, 230);
    EXPECT_EQ(sc.process.ppid, 1);  // the parent's pid through the copied parent pointer
    EXPECT_EQ(sc.process.descriptor, kTask);
}

TEST(LinuxFacts, RenamingCallsAreExecPrctlAndTheWrites) {
    for (Abi abi : {Abi::X86_64, Abi::I386}) {
        std::set<std::string> names;
        for (std::uint64_t nr : renaming_calls(abi)) {
            const SyscallInfo* info = lookup_syscall(abi, nr);
            ASSERT_NE(info, nullptr) << nr;
            names.insert(std::string(info->name));
        }
        EXPECT_EQ(names, (std::set<std::string>{"execve", "execveat", "prctl", "write", "writev",
                                                "pwrite64", "pwritev", "pwritev2"}));
    }
}

TEST_F(LinuxBackendTest, TheLastCopyHoldsForTheEventsBetween) {
    // The listener copies the fields where they may have changed; the events between carry
    // none, and are the task's as last copied, not as it is in memory by now.
    Event first = event(Direction::Enter, 39);
    first.context = kTask;
    add_task_fields(first, 231, 231, "sh", kParent);
    EXPECT_EQ(backend_->process_event(first).process.name, "sh");
    write_task(0x20000, 231, 231, "ls", kParent);  // it executes another program later
    Event between = event(Direction::Enter, 39);
    between.context = kTask;
    EXPECT_EQ(backend_->process_event(between).process.name, "sh");
    // A copy that failed: the last one may be stale too; the task is read from memory, also
    // at the next event without a copy.
    Event failed = event(Direction::Enter, 39);
    failed.context = kTask;
    add_task_fields(failed, 0, 0, "", 0);
    failed.captures[0].status = CaptureStatus::Fault;
    failed.captures[0].data = {};
    EXPECT_EQ(backend_->process_event(failed).process.name, "ls");
    EXPECT_EQ(backend_->process_event(between).process.name, "ls");
    // A task never copied is read from memory.
    pt_->map(GuestVirt(kTask + 0x8000), GuestPhys(0x28000));
    write_task(0x28000, 300, 300, "cron", kParent);
    Event other = event(Direction::Enter, 39);
    other.context = kTask + 0x8000;
    EXPECT_EQ(backend_->process_event(other).process.name, "cron");
}

TEST_F(LinuxBackendTest, UserMemoryIsReadThroughEachEventsCr3) {
    // Two processes with different pages at the same user address: a path read at the exit
    // comes from the process of the event, not from the translation of the one before.
    PageTableBuilder other(*mem_, GuestPhys(0x380000), GuestPhys(0x390000));
    other.map(GuestVirt(kPercpu), GuestPhys(0x10000));
    other.map(GuestVirt(kTask), GuestPhys(0x20000));
    other.map(GuestVirt(kParent), GuestPhys(0x30000));
    other.map(GuestVirt(kUserString), GuestPhys(0x60000));
    poke_bytes(0x40000, std::string_view("/first\0", 7));
    poke_bytes(0x60000, std::string_view("/second\0", 8));
    for (std::uint64_t cr3 : {kKernelRoot, std::uint64_t{0x380000}, kKernelRoot}) {
        Event in = event(Direction::Enter, 87 /* unlink */, cr3);
        in.args = {kUserString, 0, 0, 0, 0, 0};
        Syscall sc = backend_->process_event(in);
        EXPECT_EQ(sc.args[0].text, cr3 == kKernelRoot ? "\"/first\"" : "\"/second\"");
    }
}

TEST_F(LinuxBackendTest, OldestPendingEntryIsForgottenFirst) {
    // write's buffer is only captured at its entry: a paired exit shows it, an exit whose entry
    // was forgotten shows the address.
    auto write_entry = [&] {
        Event in = event(Direction::Enter, 1 /* write */);
        in.args = {1, 0x7ffc0000, 5, 0, 0, 0};
        test_capture_ = "hello";
        in.captures.push_back({1, CaptureKind::BufLenArg, CaptureStatus::Ok, test_capture_});
        return in;
    };
    const Event oldest = write_entry();
    backend_->process_event(oldest);
    Event newest;
    for (std::size_t i = 0; i < LinuxBackend::kMaxPendingEntries; ++i) {
        newest = write_entry();
        backend_->process_event(newest);
    }
    EXPECT_EQ(backend_->process_event(exit_of(newest, 5)).args[1].text, "\"hello\"");
    EXPECT_EQ(backend_->process_event(exit_of(oldest, 5)).args[1].text, "0x7ffc0000");
}

// A capture held in the event's own storage, so that copies of the event keep it.
void add_capture(Event& e, std::uint8_t arg, CaptureKind kind, std::string_view bytes) {
    e.capture_storage.assign(bytes.begin(), bytes.end());
    e.captures = {{arg, kind, CaptureStatus::Ok,
                   std::string_view(e.capture_storage.data(), e.capture_storage.size())}};
}

TEST_F(LinuxBackendTest, ReusedSyscallGivesWhatANewOneGives) {
    // The same stream through process_event (a new Syscall each time) and process_event_into
    // (one Syscall reused): identical results, whatever the previous event left in it.
    LinuxBackend other(fake_profile(), mem_);
    std::vector<Event> stream;
    std::string path = "/etc/ld.so.cache";
    std::string data = "0123456789abcdef0123456789abcdef0123456789";
    Event open = event(Direction::Enter, 257);
    open.args = {static_cast<std::uint64_t>(-100), 0x7ffc0000, 02000000, 0, 0, 0};
    add_capture(open, 1, CaptureKind::CString, path);
    Event read = event(Direction::Enter, 0);
    read.args = {3, 0x7ffc1000, 4096, 0, 0, 0};
    Event read_exit = exit_of(read, data.size());
    add_capture(read_exit, 1, CaptureKind::BufRet, data);
    Event unknown = event(Direction::Enter, 999);
    unknown.args = {1, 2, 3, 4, 5, 6};
    Event unpaired = exit_of(event(Direction::Enter, 2), static_cast<std::uint64_t>(-13));
    unpaired.unpaired = true;
    stream = {open, exit_of(open, 3), read, read_exit, unknown, event(Direction::Enter, 231),
              unpaired, open, exit_of(open, static_cast<std::uint64_t>(-2))};
    Syscall reused;
    for (const Event& e : stream) {
        Syscall fresh = backend_->process_event(e);
        other.process_event_into(e, reused);
        EXPECT_EQ(reused.name, fresh.name);
        EXPECT_EQ(reused.full_name, fresh.full_name);
        EXPECT_EQ(reused.known, fresh.known);
        EXPECT_EQ(reused.returns, fresh.returns);
        EXPECT_EQ(reused.process.name, fresh.process.name);
        EXPECT_EQ(reused.process.pid, fresh.process.pid);
        EXPECT_EQ(reused.process.ppid, fresh.process.ppid);
        EXPECT_EQ(reused.ret, fresh.ret);
        EXPECT_EQ(reused.ret_text, fresh.ret_text);
        EXPECT_EQ(reused.errno_name, fresh.errno_name);
        ASSERT_EQ(reused.args.size(), fresh.args.size()) << fresh.name;
        for (std::size_t i = 0; i < fresh.args.size(); ++i) {
            EXPECT_EQ(reused.args[i].name, fresh.args[i].name);
            EXPECT_EQ(reused.args[i].value, fresh.args[i].value);
            EXPECT_EQ(reused.args[i].text, fresh.args[i].text) << fresh.name << " arg " << i;
        }
    }
    EXPECT_EQ(other.stats().events, backend_->stats().events);
    EXPECT_EQ(other.stats().decode_errors, backend_->stats().decode_errors);
}

}  // namespace
}  // namespace nitro::linux_os
