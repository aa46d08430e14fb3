// SPDX-License-Identifier: MIT
// The gdb listener's pieces: instruction decoding at the trap points, KASLR candidates, captures
// from guest memory, pairing of returns with entries, partial memory reads and single-thread
// resumes against the scripted stub, and one whole attach / event / disappearing-stub run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>

#include "fake_stub.h"
#include "scripted_session.h"
#include "listener/gdb/gdb_listener.h"
#include "listener/gdb/memory_symbols.h"
#include "listener/gdb/rsp_codec.h"
#include "nitro/error.h"

namespace nitro::gdb {
namespace {

using namespace std::chrono_literals;
using testing::error_of;
using testing::FakeStub;
using testing::kSupported;
using testing::script_handshake;
using testing::start;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::uint8_t> bytes(std::initializer_list<int> b) {
    std::vector<std::uint8_t> v;
    for (int x : b) v.push_back(static_cast<std::uint8_t>(x));
    return v;
}

// --- decoding at the trap points -------------------------------------------------------------

TEST(TrapDecoding, LengthsOfEntryInstructions) {
    EXPECT_EQ(simple_insn_length(bytes({0xf3, 0x0f, 0x1e, 0xfa})), 4u);  // endbr64
    EXPECT_EQ(simple_insn_length(bytes({0x0f, 0x01, 0xf8, 0x41})), 3u);  // swapgs
    EXPECT_EQ(simple_insn_length(bytes({0x6a, 0xff})), 2u);              // push $-1
    EXPECT_EQ(simple_insn_length(bytes({0x41, 0x57})), 2u);              // push %r15
    EXPECT_EQ(simple_insn_length(bytes({0x0f, 0x1f, 0x44, 0x00, 0x00})), 5u);
    EXPECT_EQ(simple_insn_length(bytes({0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0})), 9u);
    EXPECT_EQ(simple_insn_length(bytes({0xe9, 1, 2, 3, 4})), std::nullopt);  // jmp: not simple
    EXPECT_EQ(simple_insn_length(bytes({0x6a})), std::nullopt);              // truncated
    EXPECT_EQ(simple_insn_length(bytes({0x0f, 0x1f, 0x84, 0})), std::nullopt);
    EXPECT_EQ(simple_insn_length({}), std::nullopt);
    // verw mds_verw_sel(%rip) (CLEAR_CPU_BUFFERS with the mitigation on)
    EXPECT_EQ(simple_insn_length(bytes({0x0f, 0x00, 0x2d, 1, 2, 3, 4})), 7u);
    EXPECT_EQ(simple_insn_length(bytes({0x0f, 0x00, 0x2d, 1, 2, 3})), std::nullopt);
    // Return instructions never have a "next" the listener could stop at in the kernel.
    EXPECT_EQ(simple_insn_length(bytes({0x48, 0x0f, 0x07})), std::nullopt);  // sysretq
    EXPECT_EQ(simple_insn_length(bytes({0x0f, 0x07})), std::nullopt);        // sysretl
    EXPECT_EQ(simple_insn_length(bytes({0x48, 0xcf})), std::nullopt);        // iretq
}

TEST(TrapDecoding, FindsSysretAfterSwapgsAndTheJumpOverVerw) {
    // Linux 6.1.192's entry_SYSRETQ_unsafe_stack: swapgs; jmp +7; verw ...; sysretq
    auto q = bytes({0x0f, 0x01, 0xf8, 0xeb, 0x07, 0x0f, 0x00, 0x2d, 0x19, 0xfe, 0xff, 0xff, 0x48,
                    0x0f, 0x07});
    EXPECT_EQ(find_sysret(q, 0x1000, true), 0x100cu);
    EXPECT_EQ(find_sysret(q, 0x1000, false), std::nullopt);  // that is a sysretq
    // The exit trap goes after the swapgs (the jump), where interrupts are still off.
    auto path = find_sysret_path(q, 0x1000, true);
    ASSERT_TRUE(path);
    EXPECT_EQ(path->after_swapgs, 0x1003u);
    EXPECT_EQ(path->sysret, 0x100cu);
    // Older kernels: swapgs right before sysretq; nothing in between.
    auto bare = find_sysret_path(bytes({0x90, 0x0f, 0x01, 0xf8, 0x48, 0x0f, 0x07}), 0x10, true);
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->after_swapgs, 0x14u);
    EXPECT_EQ(bare->sysret, 0x14u);
    // With the mitigation on, the jump is patched into a nop and verw runs.
    auto patched = bytes({0x0f, 0x01, 0xf8, 0x66, 0x90, 0x0f, 0x00, 0x2d, 1, 2, 3, 4, 0x0f, 0x07});
    EXPECT_EQ(find_sysret(patched, 0x2000, false), 0x200cu);
    // A sysretl not preceded by swapgs is not it; nor are two of them.
    EXPECT_EQ(find_sysret(bytes({0x90, 0x0f, 0x07}), 0, false), std::nullopt);
    auto twice = bytes({0x0f, 0x01, 0xf8, 0x0f, 0x07, 0x0f, 0x01, 0xf8, 0x0f, 0x07});
    EXPECT_THAT(error_of([&] { find_sysret(twice, 0, false); }), HasSubstr("two sysretl"));
    // A jump out of the buffer, or a truncated buffer, finds nothing (no out-of-bounds read).
    EXPECT_EQ(find_sysret(bytes({0x0f, 0x01, 0xf8, 0xeb, 0x7f}), 0, true), std::nullopt);
    EXPECT_EQ(find_sysret(bytes({0x0f, 0x01, 0xf8, 0xeb, 0x80}), 0, true), std::nullopt);
    EXPECT_EQ(find_sysret(bytes({0x0f, 0x01, 0xf8, 0x48, 0x0f}), 0, true), std::nullopt);
}

TEST(TrapDecoding, FindUniquePattern) {
    auto code = bytes({0x90, 0x48, 0xcf, 0x90});
    EXPECT_EQ(find_unique(code, 0x10, bytes({0x48, 0xcf}), 1), 0x12u);
    EXPECT_EQ(find_unique(code, 0x10, bytes({0x0f, 0x07}), 0), std::nullopt);
    auto two = bytes({0x48, 0xcf, 0x48, 0xcf});
    EXPECT_THAT(error_of([&] { find_unique(two, 0, bytes({0x48, 0xcf}), 0); }),
                HasSubstr("twice"));
}

TEST(Kaslr, CandidatesAreAlignedInsideTheImageRegionHintFirst) {
    const std::uint64_t text = 0xffffffff81000000, etext = 0xffffffff81e00000;
    auto all = kaslr_candidates(text, etext, std::nullopt);
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.front(), -0x1000000);  // the kernel at the region's start
    for (auto s : all) {
        EXPECT_EQ(s % (2 << 20), 0);
        EXPECT_GE(text + static_cast<std::uint64_t>(s), 0xffffffff80000000);
        EXPECT_LE(etext + static_cast<std::uint64_t>(s), 0xffffffffc0000000);
    }
    EXPECT_EQ(all.size(), 506u);  // from -16 MiB to 1 GiB - etext, in 2 MiB steps
    // A runtime address inside the text puts the slides that contain it first.
    auto hinted = kaslr_candidates(text, etext, 0xffffffff91c00080);
    EXPECT_EQ(hinted.size(), all.size());
    EXPECT_EQ(hinted.front(), 0x10000000);
    for (std::size_t i = 0; i < 7; ++i) {
        std::uint64_t lo = text + static_cast<std::uint64_t>(hinted[i]);
        std::uint64_t hi = etext + static_cast<std::uint64_t>(hinted[i]);
        EXPECT_TRUE(0xffffffff91c00080 >= lo && 0xffffffff91c00080 < hi) << i;
    }
    EXPECT_TRUE(kaslr_candidates(0x1000, 0x2000, std::nullopt).empty());  // not a kernel
}

// --- captures --------------------------------------------------------------------------------

// Guest memory: a few mapped ranges; everything else faults.
class FakeMemory : public GuestReader {
  public:
    void map(std::uint64_t at, std::vector<std::uint8_t> data) { ranges_[at] = std::move(data); }
    void map(std::uint64_t at, const std::string& s, bool nul = true) {
        std::vector<std::uint8_t> d(s.begin(), s.end());
        if (nul) d.push_back(0);
        map(at, d);
    }
    std::size_t read(std::uint64_t va, std::span<std::uint8_t> out) override {
        std::size_t done = 0;
        while (done < out.size()) {
            std::uint64_t a = va + done;
            auto it = ranges_.upper_bound(a);
            if (it == ranges_.begin()) break;
            --it;
            if (a >= it->first + it->second.size()) break;
            std::size_t off = a - it->first;
            std::size_t n = std::min(out.size() - done, it->second.size() - off);
            std::memcpy(out.data() + done, it->second.data() + off, n);
            done += n;
        }
        return done;
    }

  private:
    std::map<std::uint64_t, std::vector<std::uint8_t>> ranges_;
};

TEST(Captures, StringsBuffersAndFaults) {
    FakeMemory mem;
    mem.map(0x1000, "/proc/cpuinfo");
    mem.map(0x2000, "0123456789");
    mem.map(0x3000, "unterminated", false);  // then unmapped memory
    Event ev;
    ev.args = {0x1000, 0x2000, 4, 0x3000, 0, 0xdead0000};
    std::vector<CaptureRule> rules = {{0, CaptureKind::CString},
                                      {1, CaptureKind::BufLenArg, 2},
                                      {3, CaptureKind::CString},
                                      {5, CaptureKind::CString}};
    capture_arguments(mem, rules, ev);
    ASSERT_EQ(ev.captures.size(), 4u);
    EXPECT_EQ(ev.captures[0].data, "/proc/cpuinfo");
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Ok);
    EXPECT_EQ(ev.captures[1].data, "0123");
    EXPECT_EQ(ev.captures[1].status, CaptureStatus::Ok);
    EXPECT_EQ(ev.captures[2].data, "unterminated");
    EXPECT_EQ(ev.captures[2].status, CaptureStatus::Partial);
    EXPECT_EQ(ev.captures[3].data, "");
    EXPECT_EQ(ev.captures[3].status, CaptureStatus::Fault);

    // Bounds: a long string is truncated at max; a NULL pointer is a fault.
    ev.args = {0x2000, 0, 0, 0, 0, 0};
    capture_arguments(mem, {{0, CaptureKind::CString, 0, 4}, {1, CaptureKind::CString}}, ev);
    ASSERT_EQ(ev.captures.size(), 2u);
    EXPECT_EQ(ev.captures[0].data, "0123");
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Truncated);
    EXPECT_EQ(ev.captures[1].status, CaptureStatus::Fault);
}

// StackAt: bytes at the stack pointer + 8 x len_arg (rt_sigreturn's frame), whatever the
// argument registers hold.
TEST(Captures, BytesAtTheStackPointer) {
    FakeMemory mem;
    mem.map(0x7000 + 296, std::string("\x02\x40\0\0\0\0\0\0", 8), false);
    Event ev;
    ev.regs.rsp = 0x7000;
    ev.args = {0xdead0000, 0, 0, 0, 0, 0};
    capture_arguments(mem, {{0, CaptureKind::StackAt, 37, 8}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].kind, CaptureKind::StackAt);
    EXPECT_EQ(ev.captures[0].data, std::string("\x02\x40\0\0\0\0\0\0", 8));
    EXPECT_TRUE(capture_rule_valid({0, CaptureKind::StackAt, 200, 8}));
    EXPECT_FALSE(capture_rule_valid({0, CaptureKind::BufLenArg, 6, 8}));
}

TEST(Captures, ReturnValueBuffersOnlyAtExitsAndCompatPointers) {
    FakeMemory mem;
    mem.map(0x5000, "hello world", false);
    Event ev;
    ev.direction = Direction::Enter;
    ev.args = {0x5000, 0, 0, 0, 0, 0};
    ev.regs.rax = 5;
    capture_arguments(mem, {{0, CaptureKind::BufRet}}, ev);
    EXPECT_TRUE(ev.captures.empty());
    ev.direction = Direction::Exit;
    capture_arguments(mem, {{0, CaptureKind::BufRet}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].data, "hello");
    ev.regs.rax = static_cast<std::uint64_t>(-14);  // -EFAULT: nothing to copy
    capture_arguments(mem, {{0, CaptureKind::BufRet}}, ev);
    EXPECT_TRUE(ev.captures.empty());

    // 32-bit: the upper half of a register is not part of the pointer.
    ev.compat = true;
    ev.direction = Direction::Enter;
    ev.args = {0xffffffff00005000, 0xffffffff00000003, 0, 0, 0, 0};
    capture_arguments(mem, {{0, CaptureKind::BufLenArg, 1}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].data, "hel");
}

// The buffers of an iovec array, in the plugin's layout: per entry a 4-byte length, a status
// byte, 3 padding bytes and the bytes padded to 8; at an exit no more than the return value.
TEST(Captures, IovecBuffers) {
    FakeMemory mem;
    mem.map(0x1000, "one two\n", false);
    std::vector<std::uint8_t> arr(48, 0);
    const std::uint64_t fields[6] = {0x1000, 4, 0x1004, 4, 0x9000, 3};  // the last unreadable
    std::memcpy(arr.data(), fields, sizeof fields);
    mem.map(0x5000, arr);
    Event ev;
    ev.direction = Direction::Enter;
    ev.args = {3, 0x5000, 3, 0, 0, 0};
    capture_arguments(mem, {{1, CaptureKind::IovecData, 2, 256}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].kind, CaptureKind::IovecData);
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Ok);
    const std::string want = std::string("\x04\0\0\0\0\0\0\0one \0\0\0\0", 16) +
                             std::string("\x04\0\0\0\0\0\0\0two\n\0\0\0\0", 16) +
                             std::string("\0\0\0\0\x01\0\0\0", 8);
    EXPECT_EQ(ev.captures[0].data, want);
    // At the exit (readv): 6 bytes were transferred.
    ev.direction = Direction::Exit;
    ev.regs.rax = 6;
    capture_arguments(mem, {{1, CaptureKind::IovecData, 2, 256}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].data.substr(16, 10), std::string("\x02\0\0\0\0\0\0\0tw", 10));
    // An unreadable array; more entries than are captured.
    ev.direction = Direction::Enter;
    ev.args = {3, 0x7000, 3, 0, 0, 0};
    capture_arguments(mem, {{1, CaptureKind::IovecData, 2, 256}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Fault);
    ev.args = {3, 0x5000, 1000000, 0, 0, 0};
    capture_arguments(mem, {{1, CaptureKind::IovecData, 2, 256}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Partial);  // the array ends after 3
}

TEST(Captures, StringArraysStopAtNullAndAtTheBound) {
    FakeMemory mem;
    std::vector<std::uint8_t> argv(24, 0);
    std::uint64_t p0 = 0x7000, p1 = 0x7100;
    std::memcpy(argv.data(), &p0, 8);
    std::memcpy(argv.data() + 8, &p1, 8);
    mem.map(0x6000, argv);
    mem.map(0x7000, "ls");
    mem.map(0x7100, "-l");
    Event ev;
    ev.args = {0x6000, 0, 0, 0, 0, 0};
    capture_arguments(mem, {{0, CaptureKind::StrArray}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].data, std::string_view("ls\0-l\0", 6));
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Ok);
    capture_arguments(mem, {{0, CaptureKind::StrArray, 0, 4}}, ev);
    ASSERT_EQ(ev.captures.size(), 1u);
    EXPECT_EQ(ev.captures[0].status, CaptureStatus::Truncated);
    EXPECT_LE(ev.captures[0].data.size(), 4u);
}

// --- pairing ---------------------------------------------------------------------------------

PendingCalls::Entry entry(std::uint64_t cr3, std::uint64_t fs, unsigned vcpu, std::uint64_t seq,
                          bool rekey = false) {
    PendingCalls::Entry e;
    e.key = PendingCalls::key_of(cr3, fs, 0);
    e.vcpu = vcpu;
    e.seq = seq;
    e.rekey = rekey;
    e.traced = true;
    return e;
}

TEST(PendingCalls, PairsByThreadIgnoringPcidAndKptiBits) {
    PendingCalls p;
    p.put(entry(0x1000, 0x7f00, 0, 1));
    p.put(entry(0x1000, 0x7f80, 1, 1));  // another thread of the same process
    // The return comes on the other vCPU, with the KPTI user bit and a PCID in cr3.
    auto e = p.take(PendingCalls::key_of(0x1000 | 0x1000 | 0x5, 0x7f00, 0));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->vcpu, 0u);
    EXPECT_FALSE(p.take(PendingCalls::key_of(0x1000, 0x7f00, 0)));  // once only
    EXPECT_EQ(p.size(), 1u);
    // A thread's next entry replaces one that never returned.
    p.put(entry(0x1000, 0x7f80, 0, 9));
    EXPECT_EQ(p.size(), 1u);
    EXPECT_EQ(p.take(PendingCalls::key_of(0x1000, 0x7f80, 0))->seq, 9u);
}

TEST(PendingCalls, BoundedWithTheOldestEvicted) {
    PendingCalls p(3);
    for (std::uint64_t i = 0; i < 5; ++i) p.put(entry(0x2000 * (i + 1), 0, 0, i));
    EXPECT_EQ(p.size(), 3u);
    EXPECT_FALSE(p.take(PendingCalls::key_of(0x2000, 0, 0)));
    EXPECT_FALSE(p.take(PendingCalls::key_of(0x4000, 0, 0)));
    EXPECT_TRUE(p.take(PendingCalls::key_of(0x6000, 0, 0)));
    EXPECT_TRUE(p.take(PendingCalls::key_of(0xa000, 0, 0)));
}

TEST(PendingCalls, RekeyFallbacks) {
    PendingCalls p;
    p.put(entry(0x4000, 0x10, 0, 1, true));  // execve in address space 0x4000
    p.put(entry(0x8000, 0x20, 1, 1, true));  // another on vCPU 1
    p.put(entry(0x9000, 0x30, 1, 2));        // not identity-changing
    // A fresh image (TLS bases zero) in a new address space: the one from this vCPU.
    auto e = p.take_rekey(0xa000, true, 1);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->key.cr3, 0x8000u);
    // Not fresh and another address space: no guess.
    EXPECT_FALSE(p.take_rekey(0xb000, false, 0));
    // Same address space (arch_prctl changed fs): found whatever the vCPU.
    EXPECT_EQ(p.take_rekey(0x4000, false, 1)->seq, 1u);
    EXPECT_FALSE(p.take_rekey(0x9000, true, 1));
    // take_exact checks vCPU and seq.
    p.put(entry(0xc000, 0, 2, 7));
    EXPECT_FALSE(p.take_exact(PendingCalls::key_of(0xc000, 0, 0), 2, 6));
    EXPECT_TRUE(p.take_exact(PendingCalls::key_of(0xc000, 0, 0), 2, 7));
}

// --- protocol additions ----------------------------------------------------------------------

TEST(GdbClientAdditions, PartialMemoryReadsStopAtTheFirstBadPage) {
    FakeStub stub;
    script_handshake(stub);
    // 8 bytes across a page boundary: two requests; the second page is unmapped.
    stub.expect("m1ffc,4").reply("01020304").expect("m2000,4").reply("E14");
    // A short reply ends the read too.
    stub.expect("m3000,8").reply("aabb");
    auto client = start(stub);
    std::uint8_t buf[8] = {};
    EXPECT_EQ(client->read_memory_some(0x1ffc, buf), 4u);
    EXPECT_EQ(buf[3], 0x04);
    EXPECT_EQ(client->read_memory_some(0x3000, buf), 2u);
    EXPECT_EQ(buf[1], 0xbb);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClientAdditions, MalformedOrOversizedMemoryRepliesAreErrors) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("m1000,2").reply("abc");      // odd length
    stub.expect("m1000,2").reply("zz11");     // not hex
    stub.expect("m1000,2").reply("11223344"); // more than asked
    stub.expect("m1000,2").hang_up();         // gone
    auto client = start(stub);
    std::uint8_t buf[2];
    EXPECT_THAT(error_of([&] { client->read_memory_some(0x1000, buf); }), HasSubstr("malformed"));
    EXPECT_THAT(error_of([&] { client->read_memory_some(0x1000, buf); }), HasSubstr("malformed"));
    EXPECT_THAT(error_of([&] { client->read_memory_some(0x1000, buf); }), HasSubstr("oversized"));
    EXPECT_THAT(error_of([&] { client->read_memory_some(0x1000, buf); }), HasSubstr("closed"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClientAdditions, ResumesOneThread) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("vCont;c:p1.2").reply("T05thread:p01.02;");
    auto client = start(stub);
    client->resume_thread(ThreadId{1, 2});
    auto stop = client->wait_for_stop(1s);
    ASSERT_TRUE(stop);
    EXPECT_EQ(stop->thread, (ThreadId{1, 2}));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbClientAdditions, ResumingOneThreadNeedsVcont) {
    FakeStub stub;
    script_handshake(stub, {.vcont = false});
    auto client = start(stub);
    EXPECT_THAT(error_of([&] { client->resume_thread(ThreadId{1, 1}); }), HasSubstr("vCont"));
    EXPECT_THAT(stub.finish(), IsEmpty());
}

// QEMU 10 keeps acknowledgements on, sends "W00" when the guest powers off and closes at once:
// the exit must still be seen, although our '+' for it cannot be sent any more.
TEST(GdbClientAdditions, TheExitReplyOfAStubThatClosesAtOnceIsDelivered) {
    FakeStub stub;
    script_handshake(stub, {.offer_no_ack = false});
    stub.expect("vCont;c").send_raw("$W00#b7").hang_up();
    auto client = start(stub);
    client->resume();
    std::this_thread::sleep_for(100ms);  // the stub is gone before we read its last packet
    auto stop = client->wait_for_stop(1s);
    ASSERT_TRUE(stop);
    EXPECT_TRUE(stop->is_exit());
    EXPECT_EQ(stop->kind, StopReply::Kind::Exited);
    stub.finish();
}

// --- trap symbols from guest memory (no kernel image) -----------------------------------------

// Memory holding one vmcoreinfo page with this text at 1 MiB.
std::unique_ptr<BufferPhysicalMemory> memory_with_vmcoreinfo(const std::string& text) {
    std::vector<std::byte> bytes(4 << 20);
    std::memcpy(bytes.data() + (1 << 20), text.data(), text.size());
    return std::make_unique<BufferPhysicalMemory>(std::move(bytes));
}

TEST(TrapSymbolsFromMemory, HostileOrMissingNotesAreClearErrors) {
    const std::vector<linux_os::PhysRange> all = {{0, 4 << 20}};
    // Nothing there.
    BufferPhysicalMemory empty(4 << 20);
    EXPECT_THAT(error_of([&] { trap_symbols_from_memory(empty, all); }),
                HasSubstr("no vmcoreinfo note"));
    // A note without kallsyms.
    auto bare = memory_with_vmcoreinfo("OSRELEASE=6.1.0-test\nKERNELOFFSET=24400000\n");
    EXPECT_THAT(error_of([&] { trap_symbols_from_memory(*bare, all); }),
                HasSubstr("does not say where its kallsyms tables are"));
    // Tables outside RAM, a symbol count of zero, a region far too large: refused, no crash.
    const std::string head = "OSRELEASE=6.1.0-test\nKERNELOFFSET=0\nNUMBER(phys_base)=0\n";
    auto outside = memory_with_vmcoreinfo(head + "SYMBOL(kallsyms_num_syms)=ffffffff9f000000\n" +
                                          "SYMBOL(kallsyms_names)=ffffffff9f000100\n");
    EXPECT_THAT(error_of([&] { trap_symbols_from_memory(*outside, all); }),
                HasSubstr("not readable"));
    auto zero = memory_with_vmcoreinfo(head + "SYMBOL(kallsyms_num_syms)=ffffffff80200000\n" +
                                       "SYMBOL(kallsyms_names)=ffffffff80200100\n");
    EXPECT_THAT(error_of([&] { trap_symbols_from_memory(*zero, all); }),
                HasSubstr("not readable"));
    auto huge = memory_with_vmcoreinfo(head + "SYMBOL(kallsyms_num_syms)=ffffffff80200000\n" +
                                       "SYMBOL(kallsyms_names)=ffffffffa0000000\n");
    std::uint32_t n = 1000;
    ASSERT_EQ(huge->write(GuestPhys(0x200000), std::as_bytes(std::span(&n, 1))), MemStatus::Ok);
    EXPECT_THAT(error_of([&] { trap_symbols_from_memory(*huge, all); }),
                HasSubstr("implausibly large"));
    // Garbage tables of a plausible size: the kallsyms decoder refuses them.
    auto garbage = memory_with_vmcoreinfo(head + "SYMBOL(kallsyms_num_syms)=ffffffff80200000\n" +
                                          "SYMBOL(kallsyms_names)=ffffffff80200100\n");
    ASSERT_EQ(garbage->write(GuestPhys(0x200000), std::as_bytes(std::span(&n, 1))), MemStatus::Ok);
    EXPECT_NE(error_of([&] { trap_symbols_from_memory(*garbage, all); }), "(no error)");
}

// --- the listener against a scripted QEMU ----------------------------------------------------

constexpr std::int64_t kSlide = 0x10000000;
constexpr std::uint64_t kEntry = 0xffffffff81c00080 + kSlide;
constexpr std::uint64_t kSysretq = 0xffffffff81c00227 + kSlide;
constexpr std::uint64_t kSysretqTrap = 0xffffffff81c0021e + kSlide;  // the jmp after swapgs
constexpr std::uint64_t kIret = 0xffffffff81c01199 + kSlide;
constexpr std::uint64_t kRestore = 0xffffffff81c010d0 + kSlide;
constexpr std::uint64_t kIretTrap = kRestore + 0x9e;  // after its swapgs
const std::string kBanner = "Linux version 6.1.0-test";

KernelTrapSymbols symbols() {
    KernelTrapSymbols s;
    s.banner = kBanner;
    s.link = {{"_text", 0xffffffff81000000},
              {"_etext", 0xffffffff81e00000},
              {"linux_banner", 0xffffffff82000000},
              {"entry_SYSCALL_64", 0xffffffff81c00080},
              {"entry_SYSRETQ_unsafe_stack", 0xffffffff81c0021b},
              {"entry_SYSRETQ_end", 0xffffffff81c0022a},
              {"native_irq_return_iret", 0xffffffff81c01199},
              {"swapgs_restore_regs_and_return_to_usermode", 0xffffffff81c010d0}};
    return s;
}

// A 'g' reply of the test description with these registers set.
std::string g_with(const std::map<std::string, std::uint64_t>& values) {
    auto files = testing::x86_64_description();
    RegisterMap map = RegisterMap::from_target_xml([&](const std::string& a) { return files[a]; });
    std::vector<std::uint8_t> b(map.g_size(), 0);
    for (const auto& [name, v] : values) {
        const RegisterInfo& r = map.at(name);
        for (std::size_t i = 0; i < r.size() && i < 8; ++i)
            b[r.offset + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    return hex_encode(b);
}

std::string hex_of(const std::string& s) {
    return hex_encode(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

// The attach and the trap placement, scripted: stop reason (which also clears stale
// breakpoints), vCPUs, kernel search (the first candidate slide from rip is the right one: the
// banner is there); then the sysretq window (window_hex), the return-to-user path after its
// swapgs, the first instruction at each trap (the sysret trap at sysret_trap: sysret_hex), and
// every vCPU continues.
void script_attach(FakeStub& stub, const std::map<std::string, std::uint64_t>& kernel_mode,
                   const std::string& window_hex, std::uint64_t sysret_trap,
                   const std::string& sysret_hex) {
    stub.expect("?").reply("T05thread:p01.01;");
    stub.expect("qfThreadInfo").reply("mp01.01").expect("qsThreadInfo").reply("l");
    stub.expect("Hgp1.1").reply("OK").expect("g").reply(g_with(kernel_mode));
    stub.expect(fmt::format("m{:x},{:x}", 0xffffffff82000000 + kSlide, kBanner.size()))
        .reply(hex_of(kBanner));
    stub.expect("g").reply(g_with(kernel_mode));
    stub.expect(fmt::format("m{:x},f", 0xffffffff81c0021b + kSlide)).reply(window_hex);
    std::string restore(0xc9 * 2, '9');  // nops (0x99 is not an opcode we look for)
    restore.replace(0x9b * 2, 10, "0f01f8eb07");  // swapgs; jmp +7
    stub.expect(fmt::format("m{:x},c9", kRestore)).reply(restore);
    stub.expect(fmt::format("m{:x},10", kEntry)).reply("0f01f865488924251400000000000000");
    stub.expect(fmt::format("m{:x},10", sysret_trap)).reply(sysret_hex);
    stub.expect(fmt::format("m{:x},10", kIretTrap)).reply("eb070f002d00000000");
    for (std::uint64_t a : {kEntry, sysret_trap, kIretTrap})
        stub.expect(fmt::format("Z1,{:x},1", a)).reply("OK");
    stub.expect("vCont;c");
}

// The vCPU registers at the attach: stopped in the kernel at the syscall entry.
const std::map<std::string, std::uint64_t> kKernelMode = {
    {"rip", kEntry}, {"cs", 0x10}, {"cr0", 0x80050033}, {"cr3", 0x10234000},
    {"cr4", 0x3506f0}, {"efer", 0xd01}};

TEST(GdbListenerScripted, AttachesTrapsAnEntryAndEndsWhenTheStubDisappears) {
    FakeStub stub;
    script_handshake(stub);
    script_attach(stub, kKernelMode, "0f01f8eb070f002d19feffff480f07", kSysretqTrap,
                  "eb070f002d19feffff480f07");
    // A getpid(2) entry on vCPU 1.
    stub.reply("T05thread:p01.01;");
    auto user = std::map<std::string, std::uint64_t>{
        {"rip", kEntry}, {"rax", 39},      {"rdi", 0x11}, {"rsi", 0x22},   {"cs", 0x10},
        {"cr0", 0x80050033}, {"cr3", 0x5000}, {"efer", 0xd01}, {"fs_base", 0x7f00}};
    stub.expect("g").reply(g_with(user));
    // Step over: our breakpoint out, a temporary one on the next instruction, only this vCPU.
    stub.expect(fmt::format("z1,{:x},1", kEntry)).reply("OK");
    stub.expect(fmt::format("Z1,{:x},1", kEntry + 3)).reply("OK");
    stub.expect("vCont;c:p1.1").reply("T05thread:p01.01;");
    stub.expect(fmt::format("z1,{:x},1", kEntry + 3)).reply("OK");
    stub.expect(fmt::format("Z1,{:x},1", kEntry)).reply("OK");
    stub.expect("p10").reply(hex_encode(u64_to_le(kEntry + 3, 8)));
    stub.expect("vCont;c");
    // Its exit through the return-to-user path: the iret frame says user mode.
    stub.reply("T05thread:p01.01;");
    auto ret = user;
    ret["rip"] = kIretTrap;
    ret["rax"] = 1234;
    ret["rsp"] = 0xffffc90000010fd8;
    stub.expect("g").reply(g_with(ret));
    std::string frame = hex_encode(u64_to_le(0x401000, 8)) + hex_encode(u64_to_le(0x33, 8));
    stub.expect("mffffc90000010fd8,10").reply(frame);
    // Stepping over a jump is setting rip to its target: no extra stop.
    stub.expect("P10=" + hex_encode(u64_to_le(kIretTrap + 9, 8))).reply("OK");
    stub.expect("vCont;c");
    // The return of a call that entered before we attached: an unpaired sysret exit. The vCPU
    // leaves the trap (the jump over verw) by rip = the sysretq: no breakpoint is taken out and
    // nothing runs with a trap missing.
    stub.reply("T05thread:p01.01;");
    auto sysret = user;
    sysret["rip"] = kSysretqTrap;
    sysret["rax"] = 7;
    sysret["rcx"] = 0x401234;
    stub.expect("g").reply(g_with(sysret));
    stub.expect("P10=" + hex_encode(u64_to_le(kSysretq, 8))).reply("OK");
    stub.expect("vCont;c");
    // Then QEMU goes away without a word.
    stub.pause(50ms).hang_up();

    auto client = start(stub);
    GdbListener listener(std::move(client), symbols());
    EXPECT_EQ(listener.gdb_stats().kaslr_slide, kSlide);
    EXPECT_EQ(listener.gdb_stats().breakpoints, 3u);
    EXPECT_TRUE(listener.gdb_stats().memory_through_stub);
    ASSERT_EQ(listener.traps().size(), 3u);
    EXPECT_EQ(listener.traps()[1].address, kSysretqTrap);
    EXPECT_EQ(listener.traps()[1].jump, kSysretq);
    EXPECT_EQ(listener.traps()[1].next, std::nullopt);
    EXPECT_EQ(listener.traps()[2].address, kIretTrap);
    EXPECT_EQ(listener.traps()[2].jump, kIretTrap + 9);

    Event ev;
    ASSERT_EQ(listener.next(ev, 1000ms), Listener::Status::Event);
    EXPECT_EQ(ev.direction, Direction::Enter);
    EXPECT_EQ(ev.type, EventType::Syscall);
    EXPECT_FALSE(ev.compat);
    EXPECT_EQ(ev.nr, 39u);
    EXPECT_EQ(ev.args[0], 0x11u);
    EXPECT_EQ(ev.args[1], 0x22u);
    EXPECT_EQ(ev.vcpu, 0u);
    EXPECT_EQ(ev.seq, 1u);
    EXPECT_EQ(ev.sregs.cr3, 0x5000u);
    EXPECT_EQ(ev.sregs.fs_base, 0x7f00u);

    ASSERT_EQ(listener.next(ev, 1000ms), Listener::Status::Event);
    EXPECT_EQ(ev.direction, Direction::Exit);
    EXPECT_EQ(ev.exit_insn, ExitInsn::Iret);
    EXPECT_EQ(ev.nr, 39u);
    EXPECT_EQ(ev.ret(), 1234);
    EXPECT_EQ(ev.entry_vcpu, 0u);
    EXPECT_EQ(ev.entry_seq, 1u);
    EXPECT_EQ(ev.seq, 2u);
    EXPECT_FALSE(ev.unpaired);

    ASSERT_EQ(listener.next(ev, 1000ms), Listener::Status::Event);
    EXPECT_EQ(ev.direction, Direction::Exit);
    EXPECT_EQ(ev.exit_insn, ExitInsn::Sysret);
    EXPECT_TRUE(ev.unpaired);
    EXPECT_EQ(ev.ret(), 7);
    EXPECT_EQ(ev.regs.rip, kSysretqTrap);

    EXPECT_EQ(listener.next(ev, 2000ms), Listener::Status::End);
    EXPECT_EQ(listener.end_reason(), EndReason::QemuDied);
    EXPECT_THAT(listener.error(), HasSubstr("closed"));
    EXPECT_EQ(listener.stats().events, 3u);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

// A kernel whose swapgs comes right before its sysretq: the trap is on the sysretq, and the
// vCPU leaves it with one single step (QEMU steps with interrupts masked), never with a
// temporary breakpoint at the user return address while the trap is out.
TEST(GdbListenerScripted, ASysretWithNothingBeforeItIsSingleStepped) {
    FakeStub stub;
    script_handshake(stub);
    const std::uint64_t sysretq = 0xffffffff81c0021e + kSlide;  // swapgs at 0x21b
    script_attach(stub, kKernelMode, "0f01f8480f07cccccccccccccccccc", sysretq, "480f07cc");
    // A sysret exit (of a call from before the attach).
    stub.reply("T05thread:p01.01;");
    auto at_sysret = std::map<std::string, std::uint64_t>{
        {"rip", sysretq}, {"rax", 5}, {"rcx", 0x401234}, {"cs", 0x10}, {"cr0", 0x80050033},
        {"cr3", 0x5000}, {"efer", 0xd01}, {"fs_base", 0x7f00}};
    stub.expect("g").reply(g_with(at_sysret));
    // One step of this vCPU only; it moved (to the user return address), so steps are used
    // from now on; then every vCPU runs.
    stub.expect("g").reply(g_with(at_sysret));
    stub.expect("vCont;s:p1.1").reply("T05thread:p01.01;");
    auto after = at_sysret;
    after["rip"] = 0x401234;
    after["cs"] = 0x33;
    stub.expect("g").reply(g_with(after));
    stub.expect("vCont;c");
    stub.pause(50ms).hang_up();

    auto client = start(stub);
    GdbListener listener(std::move(client), symbols());
    ASSERT_EQ(listener.traps().size(), 3u);
    EXPECT_EQ(listener.traps()[1].address, sysretq);
    EXPECT_EQ(listener.traps()[1].jump, std::nullopt);
    EXPECT_EQ(listener.traps()[1].next, std::nullopt);
    Event ev;
    ASSERT_EQ(listener.next(ev, 1000ms), Listener::Status::Event);
    EXPECT_EQ(ev.direction, Direction::Exit);
    EXPECT_EQ(ev.exit_insn, ExitInsn::Sysret);
    EXPECT_EQ(ev.ret(), 5);
    EXPECT_EQ(listener.next(ev, 2000ms), Listener::Status::End);
    EXPECT_EQ(listener.gdb_stats().steps, 1u);
    EXPECT_THAT(stub.finish(), IsEmpty());
}

TEST(GdbListenerScripted, AStubThatStallsIsAnErrorNotAHang) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("?").pause(400ms);  // never answers in time
    auto client = start(stub, 150ms);
    EXPECT_THAT(error_of([&] { GdbListener l(std::move(client), symbols()); }),
                HasSubstr("no reply"));
    stub.finish();
}

TEST(GdbListenerScripted, AKernelThatNeverAppearsIsAClearError) {
    FakeStub stub;
    script_handshake(stub);
    stub.expect("?").reply("T05thread:p01.01;");
    stub.expect("qfThreadInfo").reply("mp01.01").expect("qsThreadInfo").reply("l");
    // Real mode (firmware): not looked at; the guest is let run and looked at again.
    stub.expect("Hgp1.1").reply("OK").expect("g").reply(g_with({{"rip", 0xfff0}}));
    stub.expect("vCont;c").reply("W00");
    auto client = start(stub, 500ms);
    EXPECT_THAT(error_of([&] { GdbListener l(std::move(client), symbols()); }),
                HasSubstr("ended before its kernel started"));
    stub.finish();
}

}  // namespace
}  // namespace nitro::gdb
