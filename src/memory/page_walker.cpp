// SPDX-License-Identifier: MIT
// x86-64 4- and 5-level page walk (Intel SDM vol. 3, "4-level paging and 5-level paging").
//
// The walk reads one entry per level and never revisits a level, so whatever the guest puts in
// its tables (self-references, cycles, garbage) it ends after at most five reads.
#include <algorithm>
#include <optional>

#include "memory/kernel_address_space.h"
#include "nitro/memory.h"

namespace nitro {

PagingConfig PagingConfig::from_registers(std::uint64_t cr3, std::uint64_t cr4,
                                          std::uint64_t efer) {
    PagingConfig c;
    c.root = x86::pgd_from_cr3(cr3);
    c.mode = x86::paging_mode(cr4);
    c.nxe = (efer & x86::kEferNxe) != 0;
    return c;
}

namespace {

constexpr std::uint64_t kPresent = 1ULL << 0;
constexpr std::uint64_t kWritable = 1ULL << 1;
constexpr std::uint64_t kUser = 1ULL << 2;
constexpr std::uint64_t kPageSize = 1ULL << 7;
constexpr std::uint64_t kXd = 1ULL << 63;
// Bits 51:12 of an entry hold a physical address; the top of the range is narrowed by
// MAXPHYADDR (bits from there to 51 are reserved).
constexpr std::uint64_t kAddrBits = 0x000F'FFFF'FFFF'F000ULL;
// Large-page entries: bit 12 is PAT, the bits between it and the page frame must be zero.
constexpr std::uint64_t kReserved1G = 0x3FFF'E000ULL;  // bits 29:13
constexpr std::uint64_t kReserved2M = 0x001F'E000ULL;  // bits 20:13
constexpr std::uint64_t kFrame1G = 0x000F'FFFF'C000'0000ULL;
constexpr std::uint64_t kFrame2M = 0x000F'FFFF'FFE0'0000ULL;

constexpr std::uint64_t kPage4K = 1ULL << 12;
constexpr std::uint64_t kPage2M = 1ULL << 21;
constexpr std::uint64_t kPage1G = 1ULL << 30;

// The next step of a walk: either another table or the final mapping.
struct Next {
    bool leaf = false;
    GuestPhys addr{};  // next table, or the translated address when leaf
    std::uint64_t page_size = 0;
};

using Step = Result<Next, MemFault>;

// One walk. Each paging level has its own helper so that the level-specific rules (which bits
// are reserved, whether PS means a large page) sit in one place each.
class Walker {
  public:
    Walker(const PhysicalMemory& mem, const PagingConfig& config, GuestVirt va, WalkTrace* trace,
           std::optional<std::uint64_t> top_entry = std::nullopt)
        : mem_(mem), config_(config), va_(va), trace_(trace), top_entry_(top_entry) {
        const unsigned maxphy = std::clamp(config.maxphyaddr, 12u, 52u);
        // Address bits at or above MAXPHYADDR, plus XD when NX is off.
        common_reserved_ = kAddrBits & ~((1ULL << maxphy) - 1);
        if (!config.nxe) common_reserved_ |= kXd;
        if (trace_) *trace_ = WalkTrace{};
    }

    Result<Translation, MemFault> run() {
        if (!x86::is_canonical(va_, config_.mode)) {
            return fault(MemStatus::NonCanonical, kLevelPage, GuestPhys{}, 0);
        }
        GuestPhys table = config_.root;
        Step next = Next{};
        if (config_.mode == PagingMode::Level5) {
            next = pml5(table);
            if (!next) return Result<Translation, MemFault>::error(next.error());
            table = next->addr;
        }
        next = pml4(table);
        if (!next) return Result<Translation, MemFault>::error(next.error());
        next = pdpt(next->addr);
        if (next && !next->leaf) next = pd(next->addr);
        if (next && !next->leaf) next = pt(next->addr);
        if (!next) return Result<Translation, MemFault>::error(next.error());

        Translation t;
        t.phys = next->addr;
        t.page_size = next->page_size;
        t.perms = perms_;
        t.leaf_level = leaf_level_;
        return t;
    }

  private:
    Step pml5(GuestPhys table) { return directory(kLevelPml5, table); }
    Step pml4(GuestPhys table) { return directory(kLevelPml4, table); }

    // A PDPTE maps a 1 GiB page when PS is set.
    Step pdpt(GuestPhys table) {
        std::uint64_t e = 0;
        if (auto f = load(kLevelPdpt, table, e)) return Step::error(*f);
        if (e & kPageSize) return large(kLevelPdpt, e, kReserved1G, kFrame1G, kPage1G);
        return table_of(e);
    }

    // A PDE maps a 2 MiB page when PS is set.
    Step pd(GuestPhys table) {
        std::uint64_t e = 0;
        if (auto f = load(kLevelPd, table, e)) return Step::error(*f);
        if (e & kPageSize) return large(kLevelPd, e, kReserved2M, kFrame2M, kPage2M);
        return table_of(e);
    }

    // A PTE always maps a 4 KiB page; its bit 7 is PAT, not PS.
    Step pt(GuestPhys table) {
        std::uint64_t e = 0;
        if (auto f = load(kLevelPt, table, e)) return Step::error(*f);
        leaf_level_ = kLevelPt;
        return Next{true, GuestPhys((e & kAddrBits) | va_.page_offset(kPage4K)), kPage4K};
    }

    // PML5E and PML4E always reference a table; PS is reserved there.
    Step directory(std::uint8_t level, GuestPhys table) {
        std::uint64_t e = 0;
        if (auto f = load(level, table, e)) return Step::error(*f);
        if (e & kPageSize)
            return Step::error(make_fault(MemStatus::Reserved, level, entry_addr_, e));
        return table_of(e);
    }

    static Step table_of(std::uint64_t e) { return Next{false, GuestPhys(e & kAddrBits), 0}; }

    Step large(std::uint8_t level, std::uint64_t e, std::uint64_t reserved, std::uint64_t frame,
               std::uint64_t size) {
        if (e & reserved)
            return Step::error(make_fault(MemStatus::Reserved, level, entry_addr_, e));
        leaf_level_ = level;
        return Next{true, GuestPhys((e & frame) | va_.page_offset(size)), size};
    }

    // Reads the entry for va_ at `level` of `table`, records it, checks the present and the
    // always-reserved bits, and folds its access rights into perms_. Returns a fault or nothing.
    std::optional<MemFault> load(std::uint8_t level, GuestPhys table, std::uint64_t& e) {
        const unsigned shift = 12 + 9 * (level - 1);
        const std::uint64_t index = (va_.value() >> shift) & 0x1FF;
        entry_addr_ = table + index * 8;
        Result<std::uint64_t, MemStatus> r = std::uint64_t{0};
        if (top_entry_ && level == (config_.mode == PagingMode::Level5 ? kLevelPml5 : kLevelPml4)) {
            // The caller knows the top-level entry (translate_below()): no root to read.
            entry_addr_ = GuestPhys{};
            r = *top_entry_;
        } else {
            r = mem_.read_u64(entry_addr_);
        }
        e = r.ok() ? *r : 0;
        if (trace_ && trace_->count < trace_->steps.size()) {
            trace_->steps[trace_->count++] = WalkStep{level, entry_addr_, e};
        }
        if (!r.ok()) return make_fault(MemStatus::OutOfRange, level, entry_addr_, 0);
        if (!(e & kPresent)) return make_fault(MemStatus::NotPresent, level, entry_addr_, e);
        if (e & common_reserved_) return make_fault(MemStatus::Reserved, level, entry_addr_, e);
        perms_.writable = perms_.writable && (e & kWritable);
        perms_.user = perms_.user && (e & kUser);
        perms_.nx = perms_.nx || (config_.nxe && (e & kXd));
        return std::nullopt;
    }

    MemFault make_fault(MemStatus status, std::uint8_t level, GuestPhys where,
                        std::uint64_t entry) const {
        MemFault f;
        f.status = status;
        f.level = level;
        f.virt = va_;
        f.phys = where;
        f.entry = entry;
        return f;
    }

    Result<Translation, MemFault> fault(MemStatus status, std::uint8_t level, GuestPhys where,
                                        std::uint64_t entry) const {
        return Result<Translation, MemFault>::error(make_fault(status, level, where, entry));
    }

    const PhysicalMemory& mem_;
    const PagingConfig& config_;
    GuestVirt va_;
    WalkTrace* trace_;
    std::optional<std::uint64_t> top_entry_;
    std::uint64_t common_reserved_ = 0;
    GuestPhys entry_addr_{};
    PagePerms perms_{true, true, false};
    std::uint8_t leaf_level_ = kLevelPt;
};

}  // namespace

Result<Translation, MemFault> translate_below(const PhysicalMemory& mem, const PagingConfig& config,
                                              GuestVirt va, std::uint64_t top_entry,
                                              WalkTrace* trace) {
    return Walker(mem, config, va, trace, top_entry).run();
}

Result<Translation, MemFault> translate(const PhysicalMemory& mem, const PagingConfig& config,
                                        GuestVirt va, WalkTrace* trace) {
    return Walker(mem, config, va, trace).run();
}

}  // namespace nitro
