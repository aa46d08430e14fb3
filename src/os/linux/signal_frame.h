// SPDX-License-Identifier: MIT
// A system call's result when its return runs a signal handler. Linux enters the handler with
// RAX = 0 and keeps the interrupted context, the call's result included, in the signal frame it
// pushes on the user stack. On x86-64 (struct rt_sigframe) the stack pointer of the return
// points at the handler's return address, then struct ucontext: 40 bytes of flags, link and
// stack, then struct sigcontext, whose rax is at +104 and rip at +128.
#pragma once

#include <cstdint>
#include <cstring>

#include "nitro/event.h"

namespace nitro::linux_os {

inline constexpr std::size_t kFrameRax = 8 + 40 + 104, kFrameRip = 8 + 40 + 128;

/// The value the call returned: RAX at the exit, except at a redirected exit (Event::redirected)
/// whose Stack capture holds a 64-bit signal frame. A frame whose saved rip is where the call
/// returns holds its result; one whose saved rip is the call instruction itself restarts the
/// call (SA_RESTART): -512, ERESTARTSYS, as strace shows it (which of the kernel's restart codes
/// it was is not kept in the frame). A frame of a 32-bit program is not read.
inline std::int64_t return_value(const Event& ev) {
    if (!ev.redirected || ev.compat) return ev.ret();
    const Capture* c = ev.added_capture(CaptureKind::Stack);
    if (!c || c->data.size() < 8 + kFrameRip + 8) return ev.ret();
    std::uint64_t next = 0, rip = 0, rax = 0;
    std::memcpy(&next, c->data.data(), 8);
    std::memcpy(&rip, c->data.data() + 8 + kFrameRip, 8);
    std::memcpy(&rax, c->data.data() + 8 + kFrameRax, 8);
    if (rip == next) return static_cast<std::int64_t>(rax);
    if (rip == next - 2) return -512;
    return ev.ret();
}

}  // namespace nitro::linux_os
