// SPDX-License-Identifier: MIT
// The plugin's captures of what system calls point to (iovec buffers, struct msghdr, struct
// mmsghdr arrays), with the plugin's own code on a fake QEMU (fake_qemu.h) and the real
// listener: guest memory laid out by the test, hostile counts and lengths included, and the
// captured bytes decoded as nitro prints them. Nothing but the captures is given to the
// decoder (no guest memory), so the text shows what the plugin copied at the event.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "decode/decode.h"
#include "../guest_bytes.h"
#include "fake_qemu.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/syscall_table.h"

namespace nitro::tcg {
namespace {

using test_bytes::le32;
using test_bytes::le64;
using test_bytes::msghdr64;
const std::string kInet = std::string("\x02\x00\x15\x4f\x7f\x00\x00\x01", 8) + std::string(8, '\0');

const SyscallInfo& call_info(std::string_view name) {
    for (const auto& info : syscall_table(Abi::X86_64)) {
        if (info.name == name) return info;
    }
    throw std::runtime_error("no such call");
}

// The plugin, a listener, and the capture rules nitro's decoders ask for.
struct Plugin {
    fake::FakeQemu qemu;
    std::unique_ptr<TcgListener> listener;
    Plugin() {
        listener = std::make_unique<TcgListener>(qemu.ctl_path(), TcgOptions{});
        for (const char* name : {"writev", "readv", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "clone3", "rt_sigreturn"}) {
            const SyscallInfo& info = call_info(name);
            auto plan = decode::capture_plan(info);
            if (!plan.enter.empty()) listener->set_captures(Abi::X86_64, info.nr, Direction::Enter, plan.enter);
            if (!plan.exit.empty()) listener->set_captures(Abi::X86_64, info.nr, Direction::Exit, plan.exit);
        }
        qemu.translate();
    }
};
Plugin& plugin() {
    static Plugin p;
    return p;
}

// The next event from the plugin.
Event next_event() {
    Event ev;
    EXPECT_EQ(plugin().listener->next(ev, std::chrono::seconds(2)), Listener::Status::Event);
    return ev;
}

// Argument arg of the call, decoded from the event's captures alone.
std::string decoded(const char* name, const Event& ev, unsigned arg, std::string_view entry_text = {}) {
    decode::ArgContext ctx;
    ctx.args = ev.args;
    ctx.stack_pointer = ev.regs.rsp;
    if (ev.direction == Direction::Exit) ctx.ret = static_cast<int64_t>(ev.regs.rax);
    ctx.capture = ev.capture(arg);
    ctx.iovec_data = ev.iovec_data(arg);
    ctx.event_captures = &ev.captures;
    ctx.entry_text = entry_text;
    return decode::format_arg(call_info(name), arg, ctx);
}

// The next call's argument arg as nitro shows it at the entry and at the exit (which reads
// the entry's text for in/out values such as "msg_namelen=20 => 16").
struct InOut {
    std::string in, out;
};
InOut next_call_text(const char* name, unsigned arg) {
    const Event entry = next_event();
    const Event exit = next_event();
    InOut t;
    t.in = decoded(name, entry, arg);
    t.out = decoded(name, exit, arg, t.in);
    return t;
}

TEST(PluginCaptures, WritevBuffersAsTheyWereAtTheCall) {
    auto& p = plugin();
    p.qemu.map(0x1000, "one two\n");
    // Three buffers, the last one unmapped.
    p.qemu.map(0x5000, le64(0x1000) + le64(4) + le64(0x1004) + le64(4) + le64(0x9000) + le64(3));
    p.qemu.enter(20, {3, 0x5000, 3, 0, 0, 0});
    p.qemu.map(0x1000, "xxxxxxxx");  // changed right after the call entered
    p.qemu.leave(11);
    const Event entry = next_event();
    next_event();
    ASSERT_NE(entry.iovec_data(1), nullptr);
    EXPECT_EQ(decoded("writev", entry, 1),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"two\\n\", iov_len=4}, "
              "{iov_base=0x9000, iov_len=3}]");
}

TEST(PluginCaptures, AbsurdIovecCountsStopAtTheArrayAndTheBound) {
    auto& p = plugin();
    p.qemu.map(0x1000, "one two\n");
    // 2 readable entries at the end of a page; the next page is not mapped.
    p.qemu.map(0xafe0, le64(0x1000) + le64(4) + le64(0x1004) + le64(4));
    p.qemu.call(20, {3, 0xafe0, uint64_t{1} << 40, 0, 0, 0}, static_cast<uint64_t>(-22));
    const Event entry = next_event();
    next_event();
    const Capture* data = entry.iovec_data(1);
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(data->status, CaptureStatus::Partial);
    EXPECT_EQ(decoded("writev", entry, 1),
              "[{iov_base=\"one \", iov_len=4}, {iov_base=\"two\\n\", iov_len=4}, ...]");
    // A buffer longer than the 256 bytes kept of each, and an absurd length.
    p.qemu.map(0x2000, std::string(4096, 'a'));
    p.qemu.map(0x5000, le64(0x2000) + le64(~uint64_t{0} >> 1));
    p.qemu.call(20, {3, 0x5000, 1, 0, 0, 0}, static_cast<uint64_t>(-22));
    const Event big = next_event();
    next_event();
    ASSERT_NE(big.iovec_data(1), nullptr);
    EXPECT_LE(big.iovec_data(1)->data.size(), 8u + 256u);
    EXPECT_NE(decoded("writev", big, 1).find("\"aaaa"), std::string::npos);
}

// clone3 creating a thread: the TID the kernel wrote at parent_tid, copied when the call
// returned (the thread's end clears it again), and a pidfd; an address that is not mapped.
// A return into a signal handler: the entry's own address (not QEMU's block start), the exit
// flagged, and the top of the user stack with the address the call would have returned to.
TEST(PluginCaptures, RedirectedReturnCarriesTheStack) {
    auto& p = plugin();
    p.qemu.map(0x7fff0000, std::string("frame...") + std::string(248, 'f'));
    p.qemu.enter(61, {static_cast<uint64_t>(-1), 0, 0, 0, 0, 0});
    p.qemu.leave_to(0, 0x405000, 0x7fff0000);  // the handler, RAX = 0
    const Event entry = next_event();
    const Event exit = next_event();
    EXPECT_EQ(entry.regs.rip, fake::kSyscallAddress);
    EXPECT_FALSE(entry.redirected);
    EXPECT_TRUE(exit.redirected);
    const Capture* stack = nullptr;
    for (const auto& c : exit.captures) {
        if (c.kind == CaptureKind::Stack) stack = &c;
    }
    ASSERT_NE(stack, nullptr);
    EXPECT_EQ(stack->data.substr(0, 8), le64(fake::kSyscallAddress + 2));
    EXPECT_EQ(stack->data.substr(8, 8), "frame...");
    EXPECT_EQ(stack->data.size(), 8u + 256u);
    EXPECT_EQ(exit.capture(0), nullptr);  // not an argument's capture
    // A return after the syscall: no flag, no stack.
    p.qemu.call(39, {0, 0, 0, 0, 0, 0}, 5);
    next_event();
    const Event plain = next_event();
    EXPECT_FALSE(plain.redirected);
    EXPECT_TRUE(plain.captures.empty());
}

// The same code run at another address (QEMU shares the translation of a physical page mapped
// elsewhere in another process, as the vDSO or a shared library under ASLR): the entry's address
// is where it runs now, and a return after it is not taken for a redirection.
TEST(PluginCaptures, SharedCodeAtAnotherAddress) {
    auto& p = plugin();
    const uint64_t shift = 0x7f0000000000ULL - 0x400000ULL;
    p.qemu.run_code_at(shift);
    p.qemu.call(39, {0, 0, 0, 0, 0, 0}, 5);
    const Event entry = next_event();
    const Event exit = next_event();
    p.qemu.run_code_at(0);
    EXPECT_EQ(entry.regs.rip, fake::kSyscallAddress + shift);
    EXPECT_FALSE(exit.redirected);
    EXPECT_EQ(exit.added_capture(CaptureKind::Stack), nullptr);
}

TEST(PluginCaptures, Clone3TidAsTheCallWroteIt) {
    auto& p = plugin();
    std::string ca(88, '\0');
    ca.replace(0, 8, le64(0x00100000 | 0x1000));  // CLONE_PARENT_SETTID|CLONE_PIDFD
    ca.replace(8, 8, le64(0x41000));
    ca.replace(24, 8, le64(0x42000));
    ca.replace(32, 8, le64(17));
    p.qemu.map(0x40000, ca);
    p.qemu.map(0x41000, le32(0));
    p.qemu.map(0x42000, le32(0));
    p.qemu.enter(435, {0x40000, 88, 0, 0, 0, 0});
    p.qemu.map(0x41000, le32(3));     // what the kernel wrote
    p.qemu.map(0x42000, le32(1234));
    p.qemu.leave(1234);
    p.qemu.map(0x42000, le32(0));     // the thread ended
    const Event entry = next_event();
    const Event exit = next_event();
    ASSERT_NE(exit.deref(0, 3), nullptr);
    EXPECT_EQ(exit.deref(0, 3)->data, le32(1234));
    const std::string in = decoded("clone3", entry, 0);
    EXPECT_EQ(in, "{flags=CLONE_PIDFD|CLONE_PARENT_SETTID, pidfd=0x41000, parent_tid=0x42000, "
                  "exit_signal=SIGCHLD, stack=NULL, stack_size=0}");
    EXPECT_EQ(decoded("clone3", exit, 0, in), in + " => {pidfd=[3], parent_tid=[1234]}");

    // parent_tid pointing nowhere: the plugin's capture says so, and nitro prints the address.
    ca.replace(24, 8, le64(0xdead0000));
    p.qemu.map(0x40000, ca);
    p.qemu.call(435, {0x40000, 88, 0, 0, 0, 0}, 1235);
    const Event e2 = next_event();
    const Event x2 = next_event();
    ASSERT_NE(x2.deref(0, 3), nullptr);
    EXPECT_EQ(x2.deref(0, 3)->status, CaptureStatus::Fault);
    const std::string in2 = decoded("clone3", e2, 0);
    EXPECT_EQ(decoded("clone3", x2, 0, in2), in2 + " => {pidfd=[3], parent_tid=0xdead0000}");
}

// rt_sigreturn's mask, at the stack pointer + 296 (the frame's uc_sigmask), copied at the entry:
// the handler's frame is gone (reused stack) by the time a late consumer decodes it.
TEST(PluginCaptures, RtSigreturnsMaskFromTheFrameAtTheStackPointer) {
    auto& p = plugin();
    const uint64_t sp = fake::fake_cpu().truth[NITRO_REG_RSP];
    p.qemu.map(sp + 296, le64((1ULL << 1) | (1ULL << 14)));  // SIGINT, SIGTERM
    p.qemu.enter(15, {0, 0, 0, 0, 0, 0});
    p.qemu.map(sp + 296, le64(0));
    p.qemu.leave(0);
    const Event entry = next_event();
    next_event();
    EXPECT_EQ(decoded("rt_sigreturn", entry, 0), "{mask=[INT TERM]}");
    // A stack pointer into nothing: the frame's address.
    p.qemu.unmap_all();
    p.qemu.call(15, {0, 0, 0, 0, 0, 0}, 0);
    const Event unreadable = next_event();
    next_event();
    EXPECT_EQ(decoded("rt_sigreturn", unreadable, 0), fmt::format("{:#x}", sp));
}

TEST(PluginCaptures, ReadvShowsWhatTheCallRead) {
    auto& p = plugin();
    p.qemu.map(0x5000, le64(0x1000) + le64(4) + le64(0x1004) + le64(16));
    p.qemu.enter(19, {3, 0x5000, 2, 0, 0, 0});
    p.qemu.map(0x1000, "hello, world....");  // what the call read
    p.qemu.leave(6);
    next_event();
    const Event exit = next_event();
    EXPECT_EQ(decoded("readv", exit, 1),
              "[{iov_base=\"hell\", iov_len=4}, {iov_base=\"o,\", iov_len=16}]");
}

TEST(PluginCaptures, SendmsgWithAnAbsurdNameLength) {
    auto& p = plugin();
    p.qemu.map(0x1000, "hello msg\n");
    p.qemu.map(0x3000, kInet + std::string(300, 'z'));
    p.qemu.map(0x2000, le64(0x1000) + le64(6) + le64(0x1006) + le64(4));
    p.qemu.map(0x6000, msghdr64(0x3000, 0xffffffff, 0x2000, 2, 0, 0, 0));
    p.qemu.call(46, {3, 0x6000, 0, 0, 0, 0}, 10);
    const Event entry = next_event();
    next_event();
    const Capture* c = entry.capture(1);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->kind, CaptureKind::Msghdr);
    // The structure, at most 128 bytes of the address, the array, two buffers, no control data.
    EXPECT_LE(c->data.size(), (8u + 56u) + (8u + 128u) + (8u + 32u) + 2 * (8u + 8u) + 8u);
    EXPECT_EQ(decoded("sendmsg", entry, 1),
              "{msg_name={sa_family=AF_INET, sin_port=htons(5455), sin_addr=inet_addr(\"127.0.0.1\")}, "
              "msg_namelen=4294967295, msg_iov=[{iov_base=\"hello \", iov_len=6}, "
              "{iov_base=\"msg\\n\", iov_len=4}], msg_iovlen=2, msg_controllen=0, msg_flags=0}");
    // An unreadable structure.
    p.qemu.call(46, {3, 0x7000, 0, 0, 0, 0}, static_cast<uint64_t>(-14));
    const Event bad = next_event();
    next_event();
    EXPECT_EQ(decoded("sendmsg", bad, 1), "0x7000");
}

// Control messages are copied with the structure (after its buffers): a descriptor passed
// with SCM_RIGHTS shows as it was at the call.
TEST(PluginCaptures, SendmsgControlMessages) {
    auto& p = plugin();
    p.qemu.map(0x61000, "fd");
    p.qemu.map(0x62000, le64(0x61000) + le64(2));
    const std::string rights = le64(20) + le32(1) + le32(1) + le32(7) + le32(0);
    p.qemu.map(0x63000, rights);
    p.qemu.map(0x64000, msghdr64(0, 0, 0x62000, 1, 0x63000, rights.size(), 0));
    p.qemu.enter(46, {3, 0x64000, 0, 0, 0, 0});
    p.qemu.map(0x63000, std::string(rights.size(), '\0'));  // reused right after the call
    p.qemu.leave(2);
    const Event entry = next_event();
    next_event();
    EXPECT_EQ(decoded("sendmsg", entry, 1),
              "{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"fd\", iov_len=2}], msg_iovlen=1, "
              "msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[7]}], "
              "msg_controllen=24, msg_flags=0}");
    // An absurd control length: the first 512 bytes are kept, the rest is "...".
    p.qemu.map(0x63000, rights + std::string(4096, '\0'));
    p.qemu.map(0x64000, msghdr64(0, 0, 0x62000, 1, 0x63000, uint64_t{1} << 40, 0));
    p.qemu.call(46, {3, 0x64000, 0, 0, 0, 0}, static_cast<uint64_t>(-105));
    const Event big = next_event();
    next_event();
    const std::string text = decoded("sendmsg", big, 1);
    EXPECT_NE(text.find("msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[7]}, "),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("msg_controllen=1099511627776"), std::string::npos) << text;
}

TEST(PluginCaptures, RecvmsgAtTheExitWithTheLengthGoingIn) {
    auto& p = plugin();
    p.qemu.map(0x2000, le64(0x1000) + le64(4) + le64(0x1004) + le64(16));
    p.qemu.map(0x6000, msghdr64(0x3000, 20, 0x2000, 2, 0, 0, 0));
    p.qemu.enter(47, {3, 0x6000, 0, 0, 0, 0});
    // The call fills in the address, its length, the buffers and the flags.
    p.qemu.map(0x3000, kInet);
    p.qemu.map(0x1000, "hello msg\n");
    p.qemu.map(0x6000, msghdr64(0x3000, 16, 0x2000, 2, 0, 0, 0x20));
    p.qemu.leave(8);
    const InOut t = next_call_text("recvmsg", 1);
    EXPECT_EQ(t.in, "{msg_namelen=20}");
    EXPECT_EQ(t.out,
              "{msg_name={sa_family=AF_INET, sin_port=htons(5455), sin_addr=inet_addr(\"127.0.0.1\")}, "
              "msg_namelen=20 => 16, msg_iov=[{iov_base=\"hell\", iov_len=4}, "
              "{iov_base=\"o ms\", iov_len=16}], msg_iovlen=2, msg_controllen=0, msg_flags=MSG_TRUNC}");
}

TEST(PluginCaptures, SendmmsgMessagesUpToTheReturnValue) {
    auto& p = plugin();
    p.qemu.map(0x1000, "firstsecondthird");
    p.qemu.map(0x2000, le64(0x1000) + le64(5));
    p.qemu.map(0x2100, le64(0x1005) + le64(6));
    p.qemu.map(0x2200, le64(0x100b) + le64(5));
    p.qemu.map(0x5000, msghdr64(0, 0, 0x2000, 1, 0, 0, 0) + le32(5) + le32(0) +
                           msghdr64(0, 0, 0x2100, 1, 0, 0, 0) + le32(6) + le32(0) +
                           msghdr64(0, 0, 0x2200, 1, 0, 0, 0) + le32(0) + le32(0));
    p.qemu.call(307, {3, 0x5000, 1000, 0, 0, 0}, 2);  // two of the messages were sent
    next_event();
    const Event exit = next_event();
    const std::string text = decoded("sendmmsg", exit, 1);
    EXPECT_EQ(text,
              "[{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"first\", iov_len=5}], "
              "msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=5}, {msg_hdr={msg_name=NULL, "
              "msg_namelen=0, msg_iov=[{iov_base=\"second\", iov_len=6}], msg_iovlen=1, "
              "msg_controllen=0, msg_flags=0}, msg_len=6}]");
}

// recvmmsg: the room for each sender's address as it went in, the messages as the call left
// them (up to the return value), whatever the program does with its buffers afterwards.
TEST(PluginCaptures, RecvmmsgMessagesAsReceived) {
    auto& p = plugin();
    p.qemu.map(0x51000, le64(0x50000) + le64(8));
    p.qemu.map(0x51100, le64(0x50008) + le64(8));
    p.qemu.map(0x53000, std::string(16, '\0'));
    auto array = [](std::uint32_t namelen, std::uint32_t len0, std::uint32_t len1) {
        return msghdr64(0x53000, namelen, 0x51000, 1, 0, 0, 0) + le32(len0) + le32(0) +
               msghdr64(0, 0, 0x51100, 1, 0, 0, 0) + le32(len1) + le32(0);
    };
    p.qemu.map(0x55000, array(20, 0, 0));
    p.qemu.enter(299, {3, 0x55000, 2, 0x10000, 0, 0});
    p.qemu.map(0x50000, "reply A.reply B.");  // what the call received
    p.qemu.map(0x53000, kInet);
    p.qemu.map(0x55000, array(16, 7, 7));
    p.qemu.leave(2);
    p.qemu.map(0x50000, "xxxxxxxxxxxxxxxx");  // reused by the program
    const InOut t = next_call_text("recvmmsg", 1);
    EXPECT_EQ(t.in, "[{msg_hdr={msg_namelen=20}}, {msg_hdr={msg_namelen=0}}]");
    EXPECT_EQ(t.out,
              "[{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5455), "
              "sin_addr=inet_addr(\"127.0.0.1\")}, msg_namelen=20 => 16, msg_iov=[{iov_base=\"reply A\", "
              "iov_len=8}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=7}, "
              "{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base=\"reply B\", iov_len=8}], "
              "msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=7}]");
}

}  // namespace
}  // namespace nitro::tcg
