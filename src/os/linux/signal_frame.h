// SPDX-License-Identifier: MIT
// A system call's result when its return runs a signal handler. Linux enters the handler with
// RAX = 0 and keeps the interrupted context, the call's result included, in the signal frame it
// pushes on the user stack. On x86-64 (struct rt_sigframe) the stack pointer of the return
// points at the handler's return address, then struct ucontext: 40 bytes of flags, link and
// stack, then struct sigcontext, whose rax is at +104 and rip at +128.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "nitro/event.h"

namespace nitro::linux_os {

inline constexpr std::size_t kFrameRax = 8 + 40 + 104, kFrameRip = 8 + 40 + 128;

/// A 32-bit program's frames (arch/x86/ia32): the plain one (struct sigframe_ia32: return
/// address, signal number, then struct sigcontext_32) for handlers without SA_SIGINFO, and the
/// rt one (struct rt_sigframe_ia32: return address, signal number, pointers to its siginfo at
/// +16 and to its ucontext at +144, whose sigcontext_32 starts 20 bytes in). In
/// sigcontext_32, eax is at +44 and eip at +56.
inline constexpr std::size_t kFrame32Eax = 8 + 44, kFrame32Eip = 8 + 56;
inline constexpr std::size_t kRtFrame32Eax = 164 + 44, kRtFrame32Eip = 164 + 56;

namespace detail {
// The result the frame holds, or -512 (ERESTARTSYS) when its saved instruction pointer is the
// call instruction (SA_RESTART); nothing when it points elsewhere (not the call's frame).
inline std::optional<std::int64_t> frame_result(std::uint64_t next, std::uint64_t saved_ip,
                                                std::int64_t saved_result) {
    if (saved_ip == next) return saved_result;
    if (saved_ip == next - 2) return -512;  // syscall and int 0x80 are two bytes
    return std::nullopt;
}
template <typename T>
T load(std::string_view bytes, std::size_t at) {
    T v;
    std::memcpy(&v, bytes.data() + at, sizeof v);
    return v;
}
}  // namespace detail

/// The value the call returned: RAX at the exit, except at a redirected exit (Event::redirected)
/// whose Stack capture holds a signal frame. A frame whose saved rip is where the call returns
/// holds its result; one whose saved rip is the call instruction itself restarts the call
/// (SA_RESTART): -512, ERESTARTSYS, as strace shows it (which of the kernel's restart codes it
/// was is not kept in the frame). A 32-bit program's frame is told plain or rt by its
/// pointers: an rt frame's ucontext pointer is 128 bytes past its siginfo pointer.
inline std::int64_t return_value(const Event& ev) {
    if (!ev.redirected) return ev.ret();
    const Capture* c = ev.added_capture(CaptureKind::Stack);
    if (!c || c->data.size() < 8) return ev.ret();
    const auto next = detail::load<std::uint64_t>(c->data, 0);
    const std::string_view f = c->data.substr(8);  // the frame, at the user stack pointer
    std::optional<std::int64_t> r;
    if (!ev.compat) {
        if (f.size() < kFrameRip + 8) return ev.ret();
        r = detail::frame_result(next, detail::load<std::uint64_t>(f, kFrameRip),
                                 detail::load<std::int64_t>(f, kFrameRax));
    } else if (f.size() >= kRtFrame32Eip + 4 &&
               detail::load<std::uint32_t>(f, 12) - detail::load<std::uint32_t>(f, 8) == 128) {
        r = detail::frame_result(next, detail::load<std::uint32_t>(f, kRtFrame32Eip),
                                 detail::load<std::int32_t>(f, kRtFrame32Eax));
    } else if (f.size() >= kFrame32Eip + 4) {
        r = detail::frame_result(next, detail::load<std::uint32_t>(f, kFrame32Eip),
                                 detail::load<std::int32_t>(f, kFrame32Eax));
    }
    return r.value_or(ev.ret());
}

}  // namespace nitro::linux_os
