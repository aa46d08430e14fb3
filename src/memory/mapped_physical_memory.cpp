// SPDX-License-Identifier: MIT
// Guest RAM mapped from QEMU's shared memory-backend file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <limits>

#include "nitro/log.h"
#include "nitro/memory.h"

namespace nitro {

static_assert(sizeof(void*) == 8, "guest RAM is mapped whole: nitro needs a 64-bit host");

MappedPhysicalMemory::MappedPhysicalMemory(const Options& options)
    : path_(options.path), writable_(options.writable) {
    const int flags = (options.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    fd_ = ::open(options.path.c_str(), flags);
    if (fd_ < 0) fail_errno(fmt::format("cannot open guest RAM file {}", options.path));

    // From here on, a failure must close the file: the destructor does not run for a
    // constructor that throws.
    try {
        struct stat st {};
        if (::fstat(fd_, &st) != 0) fail_errno(fmt::format("cannot stat {}", options.path));
        if (S_ISDIR(st.st_mode)) {
            fail(
                "{} is a directory: give QEMU's memory-backend-file a mem-path that is a file "
                "(with share=on), and nitro the same file",
                options.path);
        }
        if (!S_ISREG(st.st_mode)) fail("{} is not a regular file", options.path);
        const auto file_size = static_cast<std::uint64_t>(st.st_size);

        const std::uint64_t ram_size = options.ram_size ? options.ram_size : file_size;
        if (ram_size == 0) fail("guest RAM file {} is empty", options.path);
        // Mapping past the end of the file succeeds, but touching those pages raises SIGBUS;
        // refuse up front instead.
        if (file_size < ram_size) {
            fail(
                "guest RAM file {} has {} bytes, less than the RAM size {}: wrong size, or the "
                "file was truncated",
                options.path, file_size, ram_size);
        }

        layout_ = options.below_4g_mem_size
                      ? PcRamLayout::with_below_4g(ram_size, *options.below_4g_mem_size)
                      : PcRamLayout::q35(ram_size);
        layout_.above_4g_start = options.above_4g_start;
        if (layout_.above_4g() > 0) {
            if (layout_.above_4g_start < layout_.below_4g) {
                fail("RAM above 4G would start at {:#x}, inside the {:#x} bytes below it",
                     layout_.above_4g_start, layout_.below_4g);
            }
            if (layout_.above_4g() >
                std::numeric_limits<std::uint64_t>::max() - layout_.above_4g_start) {
                fail("RAM layout of {} does not fit in 64 bits", options.path);
            }
        }

        map_len_ = static_cast<std::size_t>(ram_size);
        const int prot = PROT_READ | (options.writable ? PROT_WRITE : 0);
        void* p = ::mmap(nullptr, map_len_, prot, MAP_SHARED | MAP_NORESERVE, fd_, 0);
        if (p == MAP_FAILED) fail_errno(fmt::format("cannot map guest RAM file {}", options.path));
        base_ = static_cast<std::byte*>(p);
    } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
    }
    log::debug("mapped guest RAM {} ({} bytes, {:#x} below 4G, {})", options.path, layout_.ram_size,
               layout_.below_4g, writable_ ? "read-write" : "read-only");
}

MappedPhysicalMemory::~MappedPhysicalMemory() {
    if (base_) ::munmap(base_, map_len_);
    if (fd_ >= 0) ::close(fd_);
}

MemStatus MappedPhysicalMemory::read(GuestPhys addr, std::span<std::byte> out) const {
    if (out.empty()) return MemStatus::Ok;
    const auto off = layout_.offset_of(addr, out.size());
    if (!off) return MemStatus::OutOfRange;
    std::memcpy(out.data(), base_ + *off, out.size());
    return MemStatus::Ok;
}

const std::byte* MappedPhysicalMemory::host_view(GuestPhys addr, std::size_t len) const {
    const auto off = layout_.offset_of(addr, len);
    return off ? base_ + *off : nullptr;
}

MemStatus MappedPhysicalMemory::write(GuestPhys addr, std::span<const std::byte> data) {
    // Checked here rather than left to the page protection: writing to a PROT_READ mapping
    // would kill nitro with SIGSEGV.
    if (!writable_) return MemStatus::ReadOnly;
    if (data.empty()) return MemStatus::Ok;
    const auto off = layout_.offset_of(addr, data.size());
    if (!off) return MemStatus::OutOfRange;
    std::memcpy(base_ + *off, data.data(), data.size());
    return MemStatus::Ok;
}

bool MappedPhysicalMemory::file_intact() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return false;
    return static_cast<std::uint64_t>(st.st_size) >= map_len_;
}

}  // namespace nitro
