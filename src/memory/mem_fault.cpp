// SPDX-License-Identifier: MIT
// Names and one-line descriptions of memory faults and walk traces.
#include <fmt/format.h>

#include "nitro/memory.h"

namespace nitro {

std::string_view to_string(MemStatus status) {
    switch (status) {
        case MemStatus::Ok:
            return "ok";
        case MemStatus::OutOfRange:
            return "out of range";
        case MemStatus::ReadOnly:
            return "read-only";
        case MemStatus::NotPresent:
            return "not present";
        case MemStatus::Reserved:
            return "reserved bit set";
        case MemStatus::NonCanonical:
            return "non-canonical";
        case MemStatus::TooLong:
            return "too long";
    }
    return "unknown";
}

std::string_view level_name(unsigned level) {
    switch (level) {
        case kLevelPage:
            return "page";
        case kLevelPt:
            return "PTE";
        case kLevelPd:
            return "PDE";
        case kLevelPdpt:
            return "PDPTE";
        case kLevelPml4:
            return "PML4E";
        case kLevelPml5:
            return "PML5E";
    }
    return "?";
}

std::string to_string(const MemFault& fault) {
    if (fault.ok()) return "ok";
    if (fault.level == kLevelPage) {
        return fmt::format("{} at physical {} for virtual {}", fault.status, fault.phys,
                           fault.virt);
    }
    return fmt::format("{} at {} {} = {:#x} for virtual {}", fault.status, level_name(fault.level),
                       fault.phys, fault.entry, fault.virt);
}

std::string WalkTrace::to_string() const {
    std::string out;
    for (const WalkStep& s : visited()) {
        if (!out.empty()) out += '\n';
        fmt::format_to(std::back_inserter(out), "{}[{:#x}] @{} = {:#x}", level_name(s.level),
                       s.entry_addr.page_offset() / 8, s.entry_addr, s.entry);
    }
    return out;
}

}  // namespace nitro
