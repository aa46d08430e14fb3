// SPDX-License-Identifier: MIT
#include "memory/kernel_address_space.h"

#include "memory/page_transfer.h"

#include <algorithm>
#include <cstring>

namespace nitro {

using memory_detail::kPage;

namespace {

bool is_kernel(GuestVirt va) { return (va.value() >> 63) != 0; }

}  // namespace

KernelAddressSpace::KernelAddressSpace(PhysicalMemory& mem) : mem_(&mem) {}

void KernelAddressSpace::set_roots(const PagingConfig& primary,
                                   const std::optional<PagingConfig>& alternate) {
    primary_ = primary;
    alternate_ = alternate;
    if (primary.mode != learned_mode_) {
        // Another paging mode (a different guest, or a test): nothing learned applies.
        invalidate();
        learned_mode_ = primary.mode;
    }
}

void KernelAddressSpace::invalidate() {
    cache_.fill(CacheEntry{});
    top_.fill(TopEntry{});
}

unsigned KernelAddressSpace::top_index(GuestVirt va) const {
    const unsigned shift = learned_mode_ == PagingMode::Level5 ? 48 : 39;
    return static_cast<unsigned>((va.value() >> shift) & 0x1FF);
}

bool KernelAddressSpace::knows_top_entry(GuestVirt va) const {
    return is_kernel(va) && top_[top_index(va)].confirmed;
}

void KernelAddressSpace::learn_top(GuestVirt va, const PagingConfig& config,
                                   const WalkTrace& trace) {
    if (trace.count == 0 || config.mode != learned_mode_) return;
    const std::uint64_t value = trace.steps[0].entry;
    TopEntry& t = top_[top_index(va)];
    if (t.confirmed) return;
    if (!t.seen || t.value != value) {
        t = TopEntry{value, config.root, true, false};
    } else if (config.root != t.first_root) {
        // Two page-table roots agree: the entry is the kernel's, shared by all processes.
        t.confirmed = true;
    }
}

Result<Translation, MemFault> KernelAddressSpace::walk(GuestVirt va) {
    using R = Result<Translation, MemFault>;
    WalkTrace trace;
    auto remember = [&](const R& r) {
        if (!r.ok() || trace.count == 0) return;
        const Translation& t = r.value();
        const WalkStep& leaf = trace.steps[trace.count - 1];
        CacheEntry& e = cache_[(va.value() >> 12) % kCacheEntries];
        e.vpn = va.value() >> 12;
        e.valid = true;
        e.mode = learned_mode_;
        e.page = memory_detail::page_start(t);
        e.leaf_addr = leaf.entry_addr;
        e.leaf = leaf.entry;
        e.leaf_host = mem_->host_view(e.leaf_addr, 8);
        e.page_host = mem_->host_view(e.page.phys, kPage);
        if (!e.leaf_host || !e.page_host) e.leaf_host = e.page_host = nullptr;
    };
    const TopEntry& top = top_[top_index(va)];
    if (top.confirmed) {
        ++stats_.learned_walks;
        R r = translate_below(*mem_, primary_, va, top.value, &trace);
        if (r.ok()) {
            remember(r);
            return r;
        }
    }
    R r = nitro::translate(*mem_, primary_, va, &trace);
    if (r.ok()) {
        learn_top(va, primary_, trace);
        remember(r);
        return r;
    }
    if (alternate_ && alternate_->root != primary_.root) {
        R alt = nitro::translate(*mem_, *alternate_, va, &trace);
        if (alt.ok()) {
            learn_top(va, *alternate_, trace);
            remember(alt);
            return alt;
        }
    }
    return r;
}

Result<Translation, MemFault> KernelAddressSpace::translate(GuestVirt va) {
    if (!is_kernel(va)) return nitro::translate(*mem_, primary_, va);
    const std::uint64_t vpn = va.value() >> 12;
    CacheEntry& e = cache_[vpn % kCacheEntries];
    if (e.valid && e.vpn == vpn && e.mode == primary_.mode) {
        // Still mapped by the same entry? (A kernel page that was unmapped or remapped since
        // changed its leaf entry.)
        auto now = mem_->read_u64(e.leaf_addr);
        if (now.ok() && *now == e.leaf) {
            ++stats_.hits;
            return memory_detail::within(e.page, va);
        }
        ++stats_.stale;
        e.valid = false;
    } else {
        ++stats_.misses;
    }
    return walk(va);
}

Transfer KernelAddressSpace::read(GuestVirt va, std::span<std::byte> out) {
    Transfer t;
    // The common case first: within one kernel page whose translation is cached, in memory
    // that nitro can see directly.
    if (const std::byte* at = cached(va, out.size())) {
        std::memcpy(out.data(), at, out.size());
        t.done = out.size();
        return t;
    }
    return memory_detail::page_transfer(
        va, out, [this](GuestVirt page) { return translate(page); },
        [this](GuestPhys pa, std::span<std::byte> part) { return mem_->read(pa, part); });
}

}  // namespace nitro
