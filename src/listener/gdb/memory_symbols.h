// SPDX-License-Identifier: MIT
// The gdb listener's trap symbols from guest memory alone, for a guest whose kernel image nitro
// does not have (a libvirt domain or a QEMU that booted from a disk): the kernel's vmcoreinfo
// note says where its kallsyms tables are and what the KASLR slide is.
#pragma once

#include <vector>

#include "listener/gdb/gdb_listener.h"
#include "os/linux/memory_profile.h"

namespace nitro::gdb {

/// Link addresses of the trap symbols (KernelTrapSymbols) and linux_banner's text, read from the
/// running kernel's kallsyms tables in guest-physical memory, found through its vmcoreinfo note
/// (Linux 6.x exports the tables' addresses there; KERNELOFFSET gives the slide, else _text
/// does). Everything is read from untrusted memory: sizes are capped and the result is checked
/// (the banner must read "Linux version", entry_SYSCALL_64 must lie in the text). Throws
/// nitro::Error saying what is missing.
KernelTrapSymbols trap_symbols_from_memory(const PhysicalMemory& mem,
                                           const std::vector<linux_os::PhysRange>& ranges);

}  // namespace nitro::gdb
