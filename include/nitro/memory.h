// SPDX-License-Identifier: MIT
/// @file
/// Guest memory access: typed guest addresses, guest-physical memory (QEMU's shared RAM file or
/// an in-memory buffer), the x86-64 page walker and per-process address spaces.
///
/// Guest memory is untrusted input: the guest controls every byte of it, page tables included.
/// Every function here is bounded (a walk visits at most five tables, a string has a hard length
/// cap) and reports garbage as an error value (MemFault); none of the access paths throws.
#pragma once

#include <fmt/format.h>

#include <array>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "nitro/error.h"

namespace nitro {

static_assert(std::endian::native == std::endian::little,
              "guest memory is x86 (little-endian); read_value() copies bytes as they are");

namespace detail {
struct PhysTag {};
struct VirtTag {};
}  // namespace detail

/// A 64-bit guest address of one kind (physical or virtual). The two kinds are distinct types:
/// neither converts to the other, and neither is built implicitly from an integer. Offsets
/// (plain integers) can be added and subtracted; the difference of two addresses of the same
/// kind is an integer. Arithmetic wraps modulo 2^64 like the hardware's.
template <typename Tag>
class GuestAddress {
  public:
    constexpr GuestAddress() = default;
    constexpr explicit GuestAddress(std::uint64_t value) : value_(value) {}

    /// The raw 64-bit value.
    constexpr std::uint64_t value() const { return value_; }
    /// The offset within a page of @p page_size bytes (a power of two; 4 KiB by default).
    constexpr std::uint64_t page_offset(std::uint64_t page_size = 4096) const {
        return value_ & (page_size - 1);
    }
    /// The start of the page of @p page_size bytes (a power of two) that holds this address.
    constexpr GuestAddress page_base(std::uint64_t page_size = 4096) const {
        return GuestAddress(value_ & ~(page_size - 1));
    }

    constexpr GuestAddress operator+(std::uint64_t offset) const {
        return GuestAddress(value_ + offset);
    }
    constexpr GuestAddress operator-(std::uint64_t offset) const {
        return GuestAddress(value_ - offset);
    }
    /// Distance in bytes from @p other to this address (modulo 2^64).
    constexpr std::uint64_t operator-(GuestAddress other) const { return value_ - other.value_; }
    constexpr GuestAddress& operator+=(std::uint64_t offset) {
        value_ += offset;
        return *this;
    }
    constexpr GuestAddress& operator-=(std::uint64_t offset) {
        value_ -= offset;
        return *this;
    }
    constexpr auto operator<=>(const GuestAddress&) const = default;

  private:
    std::uint64_t value_ = 0;
};

/// A guest-physical address.
using GuestPhys = GuestAddress<detail::PhysTag>;
/// A guest-virtual (linear) address.
using GuestVirt = GuestAddress<detail::VirtTag>;

/// Outcome of a guest memory access. `Ok` is the only success.
enum class MemStatus : std::uint8_t {
    Ok = 0,
    OutOfRange,    ///< guest-physical address not backed by RAM (past the end, or in a hole)
    ReadOnly,      ///< write through a read-only view of guest memory
    NotPresent,    ///< a paging-structure entry has its present bit clear
    Reserved,      ///< a paging-structure entry sets a reserved bit (or an address bit at or
                   ///< above MAXPHYADDR)
    NonCanonical,  ///< virtual address not canonical for the paging mode, or a range that wraps
    TooLong,       ///< the requested length is above the hard limit for the operation
};

/// A short lower-case name for @p status ("ok", "out of range", "not present", ...).
std::string_view to_string(MemStatus status);

/// Paging-structure levels, numbered as in the Intel SDM (1 = page table ... 5 = PML5).
/// Level 0 means "the final access to the translated page", not a paging structure.
enum PageLevel : std::uint8_t {
    kLevelPage = 0,
    kLevelPt = 1,
    kLevelPd = 2,
    kLevelPdpt = 3,
    kLevelPml4 = 4,
    kLevelPml5 = 5,
};

/// "PML4", "PDPT", ... ("page" for level 0).
std::string_view level_name(unsigned level);

/// Where and why a guest memory access failed. `level` says which paging structure held the
/// faulting entry (see PageLevel), or 0 when the translated page itself could not be accessed.
/// When a paging-structure table could not be read (an entry points outside RAM), `level` is
/// that table's level, `status` is OutOfRange and `phys` the entry's address.
struct MemFault {
    MemStatus status = MemStatus::Ok;
    std::uint8_t level = kLevelPage;
    GuestVirt virt{};         ///< the virtual address being accessed (0 for physical accesses)
    GuestPhys phys{};         ///< the entry's address (walk faults) or the physical address
    std::uint64_t entry = 0;  ///< the offending paging-structure entry, when there is one

    bool ok() const { return status == MemStatus::Ok; }
};

/// One line such as "not present at PDE 0x1ff8 = 0x0 for 0x7fff0000".
std::string to_string(const MemFault& fault);

/// Result of a multi-byte transfer: how many bytes from the start were transferred before the
/// first fault (all of them when fault.ok()).
struct Transfer {
    std::size_t done = 0;
    MemFault fault;

    bool ok() const { return fault.ok(); }
};

// ---------------------------------------------------------------------------------------------
// Physical memory

/// Guest-physical memory. Reads and writes are all-or-nothing: a range that is not entirely
/// backed by RAM fails with MemStatus::OutOfRange and transfers nothing. Implementations never
/// throw from read() or write().
///
/// Reads race with the running guest: bytes may change while they are copied, so callers must
/// treat them as a snapshot that may be torn across (though not within aligned 8-byte) words.
class PhysicalMemory {
  public:
    virtual ~PhysicalMemory() = default;

    /// Copies out.size() bytes starting at @p addr into @p out.
    virtual MemStatus read(GuestPhys addr, std::span<std::byte> out) const = 0;
    /// Copies @p data to guest memory at @p addr.
    virtual MemStatus write(GuestPhys addr, std::span<const std::byte> data) = 0;
    /// Bytes of RAM (not counting holes).
    virtual std::uint64_t size() const = 0;
    /// One past the highest guest-physical address backed by RAM.
    virtual std::uint64_t limit() const = 0;

    /// Reads a little-endian 64-bit value (a page-table entry, a pointer).
    Result<std::uint64_t, MemStatus> read_u64(GuestPhys addr) const;

    /// Where the bytes [addr, addr + len) are in nitro's own memory, when they are there in one
    /// piece for as long as this object lives (a mapped RAM file, a buffer), for readers that
    /// keep a translation from event to event; nullptr otherwise (then use read()). Reads
    /// through the pointer race with the guest as read() does.
    virtual const std::byte* host_view(GuestPhys addr, std::size_t len) const {
        (void)addr;
        (void)len;
        return nullptr;
    }
};

/// Guest-physical memory held in a host buffer: for tests, and for readers that fetch guest
/// memory some other way (e.g. a gdb stub) and cache it. Guest-physical address N is byte N of
/// the buffer.
class BufferPhysicalMemory final : public PhysicalMemory {
  public:
    /// @p size zero-filled bytes.
    explicit BufferPhysicalMemory(std::size_t size);
    explicit BufferPhysicalMemory(std::vector<std::byte> bytes);

    MemStatus read(GuestPhys addr, std::span<std::byte> out) const override;
    MemStatus write(GuestPhys addr, std::span<const std::byte> data) override;
    const std::byte* host_view(GuestPhys addr, std::size_t len) const override;
    std::uint64_t size() const override { return bytes_.size(); }
    std::uint64_t limit() const override { return bytes_.size(); }

    /// Direct access to the buffer (tests build page tables through it).
    std::span<std::byte> bytes() { return bytes_; }
    std::span<const std::byte> bytes() const { return bytes_; }

  private:
    std::vector<std::byte> bytes_;
};

/// How QEMU's PC machines place one RAM block in the guest-physical address space: the first
/// `below_4g` bytes at guest-physical 0, the rest from `above_4g_start` (4 GiB) upwards. The
/// range between is the PCI/MMIO hole. RAM file offsets are contiguous: guest-physical
/// `above_4g_start + x` is file offset `below_4g + x`.
///
/// Note: QEMU overlays VGA memory and ROMs on 0xA0000-0xFFFFF; reads there return the RAM
/// underneath, which is what the guest kernel sees once it has unmapped the BIOS areas anyway.
struct PcRamLayout {
    std::uint64_t ram_size = 0;                 ///< total RAM bytes (the backend's size=)
    std::uint64_t below_4g = 0;                 ///< bytes of RAM mapped at guest-physical 0
    std::uint64_t above_4g_start = 1ULL << 32;  ///< where the rest starts

    /// Layout of the q35 machine without max-ram-below-4g: 2 GiB below 4G when RAM is at least
    /// 2.75 GiB (0xB0000000), else all RAM below 4G.
    static PcRamLayout q35(std::uint64_t ram_size);
    /// Layout of the pc (i440fx) machine of current versions without max-ram-below-4g: 3 GiB
    /// below 4G when RAM is at least 3.5 GiB (0xE0000000), else all RAM below 4G.
    static PcRamLayout i440fx(std::uint64_t ram_size);
    /// An explicit split (QEMU's -machine max-ram-below-4g, or a test). @p below_4g is capped at
    /// @p ram_size.
    static PcRamLayout with_below_4g(std::uint64_t ram_size, std::uint64_t below_4g);

    std::uint64_t above_4g() const { return ram_size - below_4g; }
    /// The RAM (file) offset of [addr, addr + len), or nothing when any byte of the range is not
    /// RAM. Never overflows.
    std::optional<std::uint64_t> offset_of(GuestPhys addr, std::uint64_t len) const;
    /// One past the highest guest-physical address backed by RAM.
    std::uint64_t limit() const;
};

/// Guest RAM mapped from the file of QEMU's shared memory backend
/// (`-object memory-backend-file,id=ram,mem-path=FILE,share=on,size=N -machine memory-backend=ram`
/// or libvirt's `<memoryBacking><source type='file'/><access mode='shared'/>`).
///
/// The file must be a regular file (not the mem-path *directory* form, where QEMU creates and
/// unlinks its own file) that is at least `layout.ram_size` bytes long; this is checked when the
/// file is mapped, because touching a mapped page beyond the end of a file raises SIGBUS. If
/// another process truncates the file later, accesses past the new end still raise SIGBUS: nitro
/// does not catch it. file_intact() re-checks the size cheaply, e.g. after the VM stopped.
/// (Unlinking the file is harmless: the mapping keeps it alive.)
class MappedPhysicalMemory final : public PhysicalMemory {
  public:
    struct Options {
        std::string path;                                  ///< the backend's mem-path (a file)
        std::uint64_t ram_size = 0;                        ///< total RAM; 0 = the file's size
        std::optional<std::uint64_t> below_4g_mem_size{};  ///< default: PcRamLayout::q35()
        std::uint64_t above_4g_start = 1ULL << 32;
        bool writable = false;  ///< map read-write (file opened O_RDWR)
    };

    /// Opens and maps the file. Throws nitro::Error (set-up time) when it cannot.
    explicit MappedPhysicalMemory(const Options& options);
    ~MappedPhysicalMemory() override;
    MappedPhysicalMemory(const MappedPhysicalMemory&) = delete;
    MappedPhysicalMemory& operator=(const MappedPhysicalMemory&) = delete;

    MemStatus read(GuestPhys addr, std::span<std::byte> out) const override;
    /// Fails with MemStatus::ReadOnly unless opened with Options::writable.
    MemStatus write(GuestPhys addr, std::span<const std::byte> data) override;
    const std::byte* host_view(GuestPhys addr, std::size_t len) const override;
    std::uint64_t size() const override { return layout_.ram_size; }
    std::uint64_t limit() const override { return layout_.limit(); }

    const PcRamLayout& layout() const { return layout_; }
    bool writable() const { return writable_; }
    /// The file as it was given (Options::path).
    const std::string& path() const { return path_; }
    /// Whether the file is still at least as large as the mapping (see the class comment).
    bool file_intact() const;

  private:
    PcRamLayout layout_;
    std::string path_;
    int fd_ = -1;
    std::byte* base_ = nullptr;
    std::size_t map_len_ = 0;
    bool writable_ = false;
};

// ---------------------------------------------------------------------------------------------
// x86-64 paging

/// 4-level (48-bit virtual addresses) or 5-level (57-bit, CR4.LA57) paging.
enum class PagingMode : std::uint8_t { Level4 = 4, Level5 = 5 };

namespace x86 {
inline constexpr std::uint64_t kCr4Pcide = 1ULL << 17;  ///< CR4.PCIDE: low CR3 bits are a PCID
inline constexpr std::uint64_t kCr4La57 = 1ULL << 12;   ///< CR4.LA57: 5-level paging
inline constexpr std::uint64_t kEferNxe = 1ULL << 11;   ///< IA32_EFER.NXE: bit 63 is XD

/// The paging mode selected by CR4.LA57.
constexpr PagingMode paging_mode(std::uint64_t cr4) {
    return (cr4 & kCr4La57) ? PagingMode::Level5 : PagingMode::Level4;
}
/// The top-level table a CR3 value points at: bits 51:12. The low 12 bits (PCID, or PWT/PCD)
/// and the high bits (63 "no flush" in a MOV-to-CR3 operand, 62:61 LAM) are dropped.
constexpr GuestPhys pgd_from_cr3(std::uint64_t cr3) {
    return GuestPhys(cr3 & 0x000F'FFFF'FFFF'F000ULL);
}
/// The PCID in CR3 when CR4.PCIDE is set, else 0.
constexpr std::uint16_t pcid_from_cr3(std::uint64_t cr3, std::uint64_t cr4) {
    return (cr4 & kCr4Pcide) ? static_cast<std::uint16_t>(cr3 & 0xFFF) : 0;
}
/// Linux kernel page-table isolation (KPTI/PTI) gives each process two top-level tables in one
/// 8 KiB-aligned pair: the kernel's at the even page, the user one 4 KiB above it. CR3 holds the
/// user one while in user mode. This returns the kernel table from either CR3 value, so kernel
/// addresses can be walked from a user-mode event.
/// Only meaningful when the guest runs with KPTI: without it the table is merely 4 KiB-aligned
/// and clearing bit 12 would point at an unrelated page.
constexpr GuestPhys kpti_kernel_pgd(std::uint64_t cr3) {
    return GuestPhys(pgd_from_cr3(cr3).value() & ~0x1FFFULL);
}
/// The user-mode table of a KPTI pair, from either CR3 value (see kpti_kernel_pgd()).
constexpr GuestPhys kpti_user_pgd(std::uint64_t cr3) {
    return GuestPhys(kpti_kernel_pgd(cr3).value() | 0x1000ULL);
}
/// Whether @p va is canonical for @p mode (bits 63..47, or 63..56, all equal).
constexpr bool is_canonical(GuestVirt va, PagingMode mode) {
    const unsigned bits = mode == PagingMode::Level5 ? 57 : 48;
    const auto v = static_cast<std::int64_t>(va.value());
    const int shift = 64 - static_cast<int>(bits);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(v) << shift) >> shift == v;
}
}  // namespace x86

/// What a walk needs besides the virtual address: the root table and the CPU's paging controls.
struct PagingConfig {
    GuestPhys root{};  ///< top-level table (PML4, or PML5 in 5-level mode)
    PagingMode mode = PagingMode::Level4;
    /// CPUID.80000008H:EAX[7:0]. Entry address bits at or above it are reserved. The default,
    /// 52, is the architectural maximum and therefore the most lenient (QEMU's TCG CPUs use 40;
    /// KVM guests usually see the host's value).
    unsigned maxphyaddr = 52;
    bool nxe = true;  ///< IA32_EFER.NXE; when clear, bit 63 of an entry is reserved

    /// From raw register values: the root from CR3 (PCID and flag bits masked), the mode from
    /// CR4.LA57, NXE from EFER.
    static PagingConfig from_registers(std::uint64_t cr3, std::uint64_t cr4,
                                       std::uint64_t efer = x86::kEferNxe);
};

/// Access rights of a translation, combined over all levels as the CPU does: writable and user
/// only if every level allows it, no-execute if any level sets XD.
struct PagePerms {
    bool writable = false;
    bool user = false;
    bool nx = false;
};

/// A successful translation.
struct Translation {
    GuestPhys phys{};             ///< the physical address of the requested byte
    std::uint64_t page_size = 0;  ///< 4 KiB, 2 MiB or 1 GiB
    PagePerms perms;
    std::uint8_t leaf_level =
        kLevelPt;  ///< level of the mapping entry (1 = PTE, 2 = PDE, 3 = PDPTE)
};

/// One paging-structure entry visited by a walk.
struct WalkStep {
    std::uint8_t level = 0;   ///< see PageLevel
    GuestPhys entry_addr{};   ///< where the entry is
    std::uint64_t entry = 0;  ///< its value (0 when it could not be read)
};

/// The entries a walk visited, top level first: enough to see why a translation came out as it
/// did. A walk visits at most five entries.
struct WalkTrace {
    std::array<WalkStep, 5> steps{};
    std::uint8_t count = 0;

    std::span<const WalkStep> visited() const { return {steps.data(), count}; }
    /// One line per visited entry, e.g. "PML4 0x1000[0x0] = 0x2003".
    std::string to_string() const;
};

/// Translates @p va through the page tables at @p config.root. Visits at most one entry per
/// level (so it terminates whatever the tables contain, loops included) and does not check
/// access rights (they are reported in Translation::perms). The translated address need not be
/// RAM (it may be MMIO); only the paging structures must be. When @p trace is given it receives
/// every entry visited, also on failure.
Result<Translation, MemFault> translate(const PhysicalMemory& mem, const PagingConfig& config,
                                        GuestVirt va, WalkTrace* trace = nullptr);

// ---------------------------------------------------------------------------------------------
// Address spaces

/// How read_cstring() stopped.
enum class StringEnd : std::uint8_t {
    Terminated,  ///< found the NUL (not part of text)
    Truncated,   ///< reached the length limit first
    Faulted,     ///< hit unreadable memory first; text holds what came before
};

/// A NUL-terminated string read from the guest.
struct CString {
    std::string text;
    StringEnd end = StringEnd::Terminated;
    MemFault fault;  ///< set when end == Faulted
};

/// A process's virtual address space: physical memory seen through one set of page tables.
///
/// Translations are cached per 4 KiB virtual page in a small direct-mapped cache. The cache is
/// not coherent with the guest: call invalidate() whenever the guest may have run since the
/// last access (in practice once per event), or after changing page tables yourself. Writes go
/// through guest read-only mappings, as a debugger's would.
///
/// Not thread-safe; use one AddressSpace per thread.
class AddressSpace {
  public:
    /// Hard cap on read_cstring() lengths, whatever the caller asks for.
    static constexpr std::size_t kMaxStringLen = 1 << 20;
    /// Hard cap on read_bytes() lengths.
    static constexpr std::size_t kMaxReadLen = 64 << 20;
    /// Entries in the translation cache.
    static constexpr std::size_t kCacheEntries = 64;

    AddressSpace(PhysicalMemory& mem, const PagingConfig& config);
    /// Shorthand for AddressSpace(mem, PagingConfig::from_registers(cr3, cr4)).
    AddressSpace(PhysicalMemory& mem, std::uint64_t cr3, std::uint64_t cr4);

    /// Switches to other page tables (another process, or the KPTI kernel tables); invalidates.
    void set_config(const PagingConfig& config);
    const PagingConfig& config() const { return config_; }
    PhysicalMemory& physical() const { return *mem_; }

    /// Forgets all cached translations (O(1): bumps the generation).
    void invalidate() { ++generation_; }
    /// Incremented by every invalidate(); cached translations from older generations are unused.
    std::uint64_t generation() const { return generation_; }

    /// Translates @p va, using and filling the cache.
    Result<Translation, MemFault> translate(GuestVirt va);

    /// Reads out.size() bytes from @p va, crossing pages as needed. On a fault, the bytes before
    /// it have been read and Transfer::done says how many.
    Transfer read(GuestVirt va, std::span<std::byte> out);
    /// Writes @p data at @p va; on a fault the bytes before it have been written.
    Transfer write(GuestVirt va, std::span<const std::byte> data);

    /// Reads a trivially copyable value (little-endian, unaligned allowed).
    template <typename T>
    Result<T, MemFault> read_value(GuestVirt va) {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        auto t = read(va, std::as_writable_bytes(std::span<T, 1>(&value, 1)));
        if (!t.ok()) return Result<T, MemFault>::error(t.fault);
        return value;
    }
    Result<std::uint8_t, MemFault> read_u8(GuestVirt va) { return read_value<std::uint8_t>(va); }
    Result<std::uint16_t, MemFault> read_u16(GuestVirt va) { return read_value<std::uint16_t>(va); }
    Result<std::uint32_t, MemFault> read_u32(GuestVirt va) { return read_value<std::uint32_t>(va); }
    Result<std::uint64_t, MemFault> read_u64(GuestVirt va) { return read_value<std::uint64_t>(va); }
    /// Reads a guest pointer.
    Result<GuestVirt, MemFault> read_ptr(GuestVirt va);

    /// Reads @p len bytes into a new vector; fails with MemStatus::TooLong above kMaxReadLen
    /// and with the fault when any byte is unreadable.
    Result<std::vector<std::byte>, MemFault> read_bytes(GuestVirt va, std::size_t len);

    /// Reads a NUL-terminated string of at most min(@p max_len, kMaxStringLen) bytes (the NUL
    /// not counted), stopping at the first unreadable byte.
    CString read_cstring(GuestVirt va, std::size_t max_len);

    /// Cache statistics (for benchmarks and tests).
    struct CacheStats {
        std::uint64_t hits = 0;
        std::uint64_t misses = 0;
    };
    const CacheStats& cache_stats() const { return stats_; }

  private:
    /// Splits an access into page-sized pieces, translating each; op moves one piece.
    template <typename Span, typename PageOp>
    Transfer transfer(GuestVirt va, Span buf, PageOp op);
    struct CacheEntry {
        std::uint64_t vpn = 0;         ///< virtual page number (va >> 12)
        std::uint64_t generation = 0;  ///< 0 = never filled (generation_ starts at 1)
        Translation page;              ///< the translation of the page's first byte
    };

    PhysicalMemory* mem_;
    PagingConfig config_;
    std::uint64_t generation_ = 1;
    CacheStats stats_;
    std::array<CacheEntry, kCacheEntries> cache_{};
};

}  // namespace nitro

/// Guest addresses format as 0x-prefixed hex by default; an explicit integer format spec
/// (e.g. "{:016x}") formats the raw value.
template <typename Tag>
struct fmt::formatter<nitro::GuestAddress<Tag>> : fmt::formatter<std::uint64_t> {
    bool plain = true;

    constexpr auto parse(fmt::format_parse_context& ctx) {
        auto it = ctx.begin();
        plain = (it == ctx.end() || *it == '}');
        if (plain) return it;
        return fmt::formatter<std::uint64_t>::parse(ctx);
    }
    template <typename FormatContext>
    auto format(const nitro::GuestAddress<Tag>& a, FormatContext& ctx) const {
        if (plain) return fmt::format_to(ctx.out(), "{:#x}", a.value());
        return fmt::formatter<std::uint64_t>::format(a.value(), ctx);
    }
};

template <>
struct fmt::formatter<nitro::MemStatus> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(nitro::MemStatus s, FormatContext& ctx) const {
        return fmt::formatter<std::string_view>::format(nitro::to_string(s), ctx);
    }
};
