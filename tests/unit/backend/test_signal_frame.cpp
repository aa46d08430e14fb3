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

}  // namespace
}  // namespace nitro::linux_os
