// SPDX-License-Identifier: MIT
// Virtual-address reads and writes through a cached page walk.
#include <algorithm>
#include <array>
#include <cstring>

#include "memory/page_transfer.h"
#include "nitro/memory.h"

namespace nitro {

using memory_detail::advance;
using memory_detail::kPage;
using memory_detail::page_fault;
using memory_detail::wrap_fault;

AddressSpace::AddressSpace(PhysicalMemory& mem, const PagingConfig& config)
    : mem_(&mem), config_(config) {}

AddressSpace::AddressSpace(PhysicalMemory& mem, std::uint64_t cr3, std::uint64_t cr4)
    : AddressSpace(mem, PagingConfig::from_registers(cr3, cr4)) {}

void AddressSpace::set_config(const PagingConfig& config) {
    config_ = config;
    invalidate();
}

Result<Translation, MemFault> AddressSpace::translate(GuestVirt va) {
    const std::uint64_t vpn = va.value() >> 12;
    CacheEntry& e = cache_[vpn % kCacheEntries];
    if (e.generation == generation_ && e.vpn == vpn) {
        ++stats_.hits;
        return memory_detail::within(e.page, va);
    }
    ++stats_.misses;
    auto r = nitro::translate(*mem_, config_, va);
    // Faults are not cached: they are rare on the paths that matter, and a fault the guest
    // is about to fix (demand paging) should not stick.
    if (r.ok()) {
        e.vpn = vpn;
        e.generation = generation_;
        e.page = memory_detail::page_start(*r);
    }
    return r;
}

template <typename Span, typename PageOp>
Transfer AddressSpace::transfer(GuestVirt va, Span buf, PageOp op) {
    return memory_detail::page_transfer(
        va, buf, [this](GuestVirt page) { return translate(page); }, op);
}

Transfer AddressSpace::read(GuestVirt va, std::span<std::byte> out) {
    return transfer(
        va, out, [this](GuestPhys pa, std::span<std::byte> part) { return mem_->read(pa, part); });
}

Transfer AddressSpace::write(GuestVirt va, std::span<const std::byte> data) {
    return transfer(va, data, [this](GuestPhys pa, std::span<const std::byte> part) {
        return mem_->write(pa, part);
    });
}

Result<GuestVirt, MemFault> AddressSpace::read_ptr(GuestVirt va) {
    auto r = read_u64(va);
    if (!r) return Result<GuestVirt, MemFault>::error(r.error());
    return GuestVirt(*r);
}

Result<std::vector<std::byte>, MemFault> AddressSpace::read_bytes(GuestVirt va, std::size_t len) {
    using R = Result<std::vector<std::byte>, MemFault>;
    // Checked before allocating: len comes from guest-controlled values (a syscall's count).
    if (len > kMaxReadLen) return R::error(page_fault(MemStatus::TooLong, va, GuestPhys{}));
    std::vector<std::byte> out(len);
    auto t = read(va, out);
    if (!t.ok()) return R::error(t.fault);
    return out;
}

CString AddressSpace::read_cstring(GuestVirt va, std::size_t max_len) {
    const std::size_t limit = std::min(max_len, kMaxStringLen);
    CString s;
    // Scan one byte beyond the limit: a string of exactly `limit` bytes is then reported as
    // terminated rather than truncated.
    const std::size_t budget = limit + 1;
    std::array<char, kPage> buf;
    std::size_t scanned = 0;
    while (scanned < budget) {
        const auto cur = advance(va, scanned);
        MemFault fault;
        std::size_t chunk = 0;
        if (!cur) {
            fault = wrap_fault(va, scanned);
        } else {
            chunk = std::min<std::uint64_t>(budget - scanned, kPage - cur->page_offset());
            auto tr = translate(*cur);
            if (!tr) {
                fault = tr.error();
            } else if (MemStatus st = mem_->read(
                           tr->phys, std::as_writable_bytes(std::span(buf.data(), chunk)));
                       st != MemStatus::Ok) {
                fault = page_fault(st, *cur, tr->phys);
            }
        }
        if (!fault.ok()) {
            if (s.text.size() >= limit) {
                s.end = StringEnd::Truncated;
            } else {
                s.end = StringEnd::Faulted;
                s.fault = fault;
            }
            return s;
        }
        const void* nul = std::memchr(buf.data(), 0, chunk);
        const std::size_t len =
            nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - buf.data()) : chunk;
        s.text.append(buf.data(), std::min(len, limit - s.text.size()));
        if (nul) {
            s.end = StringEnd::Terminated;
            return s;
        }
        scanned += chunk;
    }
    s.end = StringEnd::Truncated;
    return s;
}

}  // namespace nitro
