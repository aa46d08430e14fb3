// SPDX-License-Identifier: MIT
// What the virtual-address spaces (AddressSpace, KernelAddressSpace) share: their page loop
// (a transfer is cut at page boundaries, each page translated and then read or written; it
// stops at the first fault) and the translations they keep per page.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>

#include "nitro/memory.h"

namespace nitro::memory_detail {

inline constexpr std::uint64_t kPage = 4096;

inline MemFault page_fault(MemStatus status, GuestVirt va, GuestPhys pa) {
    MemFault f;
    f.status = status;
    f.level = kLevelPage;
    f.virt = va;
    f.phys = pa;
    return f;
}

// The virtual address `done` bytes after `va`, or nothing when that wraps past 2^64 (the
// hardware would fault there too; silently continuing at 0 would read unrelated memory).
inline std::optional<GuestVirt> advance(GuestVirt va, std::uint64_t done) {
    const std::uint64_t a = va.value() + done;
    if (a < va.value()) return std::nullopt;
    return GuestVirt(a);
}

inline MemFault wrap_fault(GuestVirt va, std::uint64_t done) {
    return page_fault(MemStatus::NonCanonical, va + done, GuestPhys{});
}

// A translation kept for a page: that of its first byte.
inline Translation page_start(const Translation& t) {
    Translation first = t;
    first.phys = t.phys.page_base();
    return first;
}

// The translation of va from the one kept for its page (page_start).
inline Translation within(const Translation& page, GuestVirt va) {
    Translation t = page;
    t.phys = page.phys + va.page_offset();
    return t;
}

// translate(GuestVirt) -> Result<Translation, MemFault>; op(GuestPhys, part of buf) -> MemStatus.
template <typename Span, typename Translate, typename PageOp>
Transfer page_transfer(GuestVirt va, Span buf, Translate&& translate, PageOp&& op) {
    Transfer t;
    while (t.done < buf.size()) {
        const auto cur = advance(va, t.done);
        if (!cur) {
            t.fault = wrap_fault(va, t.done);
            return t;
        }
        auto tr = translate(*cur);
        if (!tr) {
            t.fault = tr.error();
            return t;
        }
        const std::size_t chunk =
            std::min<std::uint64_t>(buf.size() - t.done, kPage - cur->page_offset());
        const MemStatus s = op(tr->phys, buf.subspan(t.done, chunk));
        if (s != MemStatus::Ok) {
            t.fault = page_fault(s, *cur, tr->phys);
            return t;
        }
        t.done += chunk;
    }
    return t;
}

}  // namespace nitro::memory_detail
