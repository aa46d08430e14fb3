// SPDX-License-Identifier: MIT
// A call's result at a return that enters a signal handler: read from the signal frame.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "os/linux/signal_frame.h"

namespace nitro::linux_os {
namespace {

// A redirected exit with RAX = 0 (the handler's) and a Stack capture: the address the call
// would have returned to, then a frame whose sigcontext holds rax and rip.
struct RedirectedExit {
    std::string data = std::string(8 + 256, '\0');
    Event ev;
    RedirectedExit(std::uint64_t next, std::uint64_t saved_rip, std::uint64_t saved_rax) {
        std::memcpy(data.data(), &next, 8);
        std::memcpy(data.data() + 8 + kFrameRip, &saved_rip, 8);
        std::memcpy(data.data() + 8 + kFrameRax, &saved_rax, 8);
        ev.direction = Direction::Exit;
        ev.redirected = true;
        ev.regs.rax = 0;
        ev.captures.push_back(Capture{0, CaptureKind::Stack, CaptureStatus::Ok, data, 0});
    }
};

TEST(SignalFrame, ResultOfACallBeforeItsHandler) {
    RedirectedExit x(0x401002, 0x401002, 139);  // wait4 returned 139, then SIGCHLD's handler
    EXPECT_EQ(return_value(x.ev), 139);
}

TEST(SignalFrame, RestartedCallIsErestartsys) {
    RedirectedExit x(0x401002, 0x401000, 0);  // SA_RESTART: the frame returns to the syscall
    EXPECT_EQ(return_value(x.ev), -512);
}

TEST(SignalFrame, OtherRedirectionsKeepRax) {
    RedirectedExit x(0x401002, 0x7777, 5);  // execve's new program, rt_sigreturn: no frame
    x.ev.regs.rax = 7;
    EXPECT_EQ(return_value(x.ev), 7);
    RedirectedExit short_stack(0x401002, 0x401002, 139);
    short_stack.ev.captures[0].data = std::string_view(short_stack.data).substr(0, 100);  // unreadable frame
    short_stack.ev.regs.rax = 0;
    EXPECT_EQ(return_value(short_stack.ev), 0);
    RedirectedExit not_flagged(0x401002, 0x401002, 139);
    not_flagged.ev.redirected = false;
    EXPECT_EQ(return_value(not_flagged.ev), 0);
    RedirectedExit compat(0x401002, 0x401002, 139);  // a 32-bit frame has another layout
    compat.ev.compat = true;
    EXPECT_EQ(return_value(compat.ev), 0);
}

// A 32-bit program's exit into a handler: the plain frame (handlers without SA_SIGINFO) or the
// rt one, told apart by the rt frame's pointers to its siginfo and ucontext.
struct RedirectedExit32 {
    std::string data = std::string(8 + 256, '\0');
    Event ev;
    RedirectedExit32(bool rt, std::uint64_t next, std::uint32_t saved_eip, std::int32_t saved_eax) {
        const std::uint32_t esp = 0xffffd000;
        std::memcpy(data.data(), &next, 8);
        char* frame = data.data() + 8;
        const std::uint32_t sig = 17;
        std::memcpy(frame + 4, &sig, 4);
        if (rt) {
            const std::uint32_t pinfo = esp + 16, puc = esp + 144;
            std::memcpy(frame + 8, &pinfo, 4);
            std::memcpy(frame + 12, &puc, 4);
        } else {
            const std::uint32_t gs = 0x63, fs = 0;  // sigcontext_32 starts there
            std::memcpy(frame + 8, &gs, 4);
            std::memcpy(frame + 12, &fs, 4);
        }
        std::memcpy(frame + (rt ? kRtFrame32Eip : kFrame32Eip), &saved_eip, 4);
        std::memcpy(frame + (rt ? kRtFrame32Eax : kFrame32Eax), &saved_eax, 4);
        ev.direction = Direction::Exit;
        ev.compat = true;
        ev.redirected = true;
        ev.regs.rax = sig;  // a 32-bit handler gets the signal number in eax
        ev.captures.push_back(Capture{0, CaptureKind::Stack, CaptureStatus::Ok, data, 0});
    }
};

TEST(SignalFrame, ThirtyTwoBitFrames) {
    EXPECT_EQ(return_value(RedirectedExit32(false, 0x8049002, 0x8049002, 412).ev), 412);
    EXPECT_EQ(return_value(RedirectedExit32(true, 0x8049002, 0x8049002, 412).ev), 412);
    EXPECT_EQ(return_value(RedirectedExit32(true, 0x8049002, 0x8049002, -4).ev), -4);  // EINTR
    EXPECT_EQ(return_value(RedirectedExit32(false, 0x8049002, 0x8049000, -4).ev), -512);
    EXPECT_EQ(return_value(RedirectedExit32(true, 0x8049002, 0x8049000, -4).ev), -512);
    // Not the call's frame (execve's new program): eax as it is.
    EXPECT_EQ(return_value(RedirectedExit32(true, 0x8049002, 0x1234, 412).ev), 17);
    // A frame cut short: eax as it is.
    RedirectedExit32 cut(true, 0x8049002, 0x8049002, 412);
    cut.ev.captures[0].data = std::string_view(cut.data).substr(0, 8 + 100);
    EXPECT_EQ(return_value(cut.ev), 17);
}

}  // namespace
}  // namespace nitro::linux_os
