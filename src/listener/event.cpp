// SPDX-License-Identifier: MIT
#include "nitro/event.h"
#include "nitro/listener.h"

namespace nitro {

std::string_view to_string(EventType t) {
    switch (t) {
        case EventType::Syscall: return "syscall";
        case EventType::Sysenter: return "sysenter";
        case EventType::Int80: return "int80";
    }
    return "unknown";
}

std::string_view to_string(Direction d) { return d == Direction::Enter ? "enter" : "exit"; }

std::string_view to_string(ExitInsn e) {
    switch (e) {
        case ExitInsn::None: return "none";
        case ExitInsn::Sysret: return "sysret";
        case ExitInsn::Sysexit: return "sysexit";
        case ExitInsn::Iret: return "iret";
    }
    return "unknown";
}

const char* to_string(EndReason r) {
    switch (r) {
        case EndReason::None: return "running";
        case EndReason::Stopped: return "stopped";
        case EndReason::QemuExited: return "QEMU exited";
        case EndReason::QemuDied: return "QEMU disappeared";
        case EndReason::EndOfRecording: return "end of recording";
    }
    return "?";
}

}  // namespace nitro
