// SPDX-License-Identifier: MIT
// The made-up kernel layout the backend's tests and the synthetic guest share: task_struct's
// pid at 0x10, tgid at 0x14 (side by side, as in every kernel), real_parent at 0x20, comm at
// 0x100, and the current task at per-CPU offset 0x80.
#pragma once

#include <cstdint>

#include "os/linux/btf_profile.h"

namespace nitro::test {

inline linux_os::Field fake_field(std::uint32_t offset, std::uint32_t size) {
    return linux_os::Field{offset, size, true};
}

inline linux_os::KernelProfile fake_task_profile() {
    linux_os::KernelProfile p;
    p.task_struct.pid = fake_field(0x10, 4);
    p.task_struct.tgid = fake_field(0x14, 4);
    p.task_struct.real_parent = fake_field(0x20, 8);
    p.task_struct.comm = fake_field(0x100, 16);
    p.current_task_percpu = 0x80;
    return p;
}

}  // namespace nitro::test
