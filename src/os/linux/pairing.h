// SPDX-License-Identifier: MIT
// Linux facts the listeners need to pair each system call's exit with its entry when the
// calling thread's identity (address space, TLS bases) changes or a new task returns.
#pragma once

#include "nitro/listener.h"

namespace nitro::linux_os {

inline PairingHints pairing_hints(Abi abi) {
    if (abi == Abi::I386) {
        return {.rekey = {11 /* execve */, 358 /* execveat */, 243 /* set_thread_area */},
                .fork = {2 /* fork */, 120 /* clone */, 190 /* vfork */, 435 /* clone3 */},
                .noreturn = {1 /* exit */, 252 /* exit_group */}};
    }
    return {.rekey = {59 /* execve */, 322 /* execveat */, 158 /* arch_prctl */},
            .fork = {56 /* clone */, 57 /* fork */, 58 /* vfork */, 435 /* clone3 */},
            .noreturn = {60 /* exit */, 231 /* exit_group */}};
}

/// Gives the listener Linux's hints for both ABIs.
inline void set_linux_pairing_hints(Listener& listener) {
    for (Abi abi : {Abi::X86_64, Abi::I386}) listener.set_pairing_hints(abi, pairing_hints(abi));
}

/// Calls that may rename the calling task or another (Listener::set_context_refresh): exec
/// (a new name, and a new pid for a thread that executes), prctl(PR_SET_NAME), and the writes
/// that can reach /proc/PID/comm.
inline std::vector<uint64_t> renaming_calls(Abi abi) {
    if (abi == Abi::I386) {
        return {11 /* execve */, 358 /* execveat */, 172 /* prctl */, 4 /* write */,
                146 /* writev */, 181 /* pwrite64 */, 334 /* pwritev */, 379 /* pwritev2 */};
    }
    return {59 /* execve */, 322 /* execveat */, 157 /* prctl */, 1 /* write */,
            20 /* writev */, 18 /* pwrite64 */, 296 /* pwritev */, 328 /* pwritev2 */};
}

}  // namespace nitro::linux_os
