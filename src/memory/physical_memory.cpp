// SPDX-License-Identifier: MIT
// The PhysicalMemory helpers, the in-memory implementation and the PC RAM layout.
#include <algorithm>
#include <cstring>

#include "nitro/memory.h"

namespace nitro {

Result<std::uint64_t, MemStatus> PhysicalMemory::read_u64(GuestPhys addr) const {
    std::uint64_t v = 0;
    MemStatus s = read(addr, std::as_writable_bytes(std::span<std::uint64_t, 1>(&v, 1)));
    if (s != MemStatus::Ok) return Result<std::uint64_t, MemStatus>::error(s);
    return v;
}

BufferPhysicalMemory::BufferPhysicalMemory(std::size_t size) : bytes_(size) {}

BufferPhysicalMemory::BufferPhysicalMemory(std::vector<std::byte> bytes)
    : bytes_(std::move(bytes)) {}

namespace {
// Written as a subtraction so that an address near 2^64 cannot wrap into range.
bool in_buffer(std::uint64_t addr, std::size_t len, std::size_t size) {
    return addr <= size && len <= size - addr;
}
}  // namespace

MemStatus BufferPhysicalMemory::read(GuestPhys addr, std::span<std::byte> out) const {
    if (out.empty()) return MemStatus::Ok;
    if (!in_buffer(addr.value(), out.size(), bytes_.size())) return MemStatus::OutOfRange;
    std::memcpy(out.data(), bytes_.data() + addr.value(), out.size());
    return MemStatus::Ok;
}

const std::byte* BufferPhysicalMemory::host_view(GuestPhys addr, std::size_t len) const {
    if (!in_buffer(addr.value(), len, bytes_.size())) return nullptr;
    return bytes_.data() + addr.value();
}

MemStatus BufferPhysicalMemory::write(GuestPhys addr, std::span<const std::byte> data) {
    if (data.empty()) return MemStatus::Ok;
    if (!in_buffer(addr.value(), data.size(), bytes_.size())) return MemStatus::OutOfRange;
    std::memcpy(bytes_.data() + addr.value(), data.data(), data.size());
    return MemStatus::Ok;
}

// QEMU hw/i386/pc_q35.c: with gigabyte alignment (all current machine types) RAM of 2.75 GiB
// or more is split at 2 GiB so that 1 GiB guest pages stay 1 GiB aligned on the host.
PcRamLayout PcRamLayout::q35(std::uint64_t ram_size) {
    return with_below_4g(ram_size, ram_size >= 0xB000'0000ULL ? 0x8000'0000ULL : ram_size);
}

// QEMU hw/i386/pc_piix.c: max-ram-below-4g defaults to 3.5 GiB, lowered to 3 GiB for
// gigabyte alignment when RAM does not fit below it.
PcRamLayout PcRamLayout::i440fx(std::uint64_t ram_size) {
    return with_below_4g(ram_size, ram_size >= 0xE000'0000ULL ? 0xC000'0000ULL : ram_size);
}

PcRamLayout PcRamLayout::with_below_4g(std::uint64_t ram_size, std::uint64_t below_4g) {
    PcRamLayout l;
    l.ram_size = ram_size;
    l.below_4g = std::min(below_4g, ram_size);
    return l;
}

std::optional<std::uint64_t> PcRamLayout::offset_of(GuestPhys addr, std::uint64_t len) const {
    const std::uint64_t a = addr.value();
    if (a < below_4g && len <= below_4g - a) return a;
    const std::uint64_t above = above_4g();
    if (a >= above_4g_start && a - above_4g_start < above && len <= above - (a - above_4g_start)) {
        return below_4g + (a - above_4g_start);
    }
    return std::nullopt;
}

std::uint64_t PcRamLayout::limit() const {
    return above_4g() > 0 ? above_4g_start + above_4g() : below_4g;
}

}  // namespace nitro
