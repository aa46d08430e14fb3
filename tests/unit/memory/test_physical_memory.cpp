// SPDX-License-Identifier: MIT
// BufferPhysicalMemory, the PC RAM layout and MappedPhysicalMemory over a temporary file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "nitro/memory.h"

namespace nitro {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;
constexpr std::uint64_t k4G = 1ULL << 32;

std::span<std::byte> bytes_of(std::uint64_t& v) {
    return std::as_writable_bytes(std::span<std::uint64_t, 1>(&v, 1));
}

TEST(BufferPhysicalMemory, ReadsAndWritesInRange) {
    BufferPhysicalMemory mem(8192);
    EXPECT_EQ(mem.size(), 8192u);
    EXPECT_EQ(mem.limit(), 8192u);
    std::uint64_t v = 0x1122334455667788;
    EXPECT_EQ(mem.write(GuestPhys(8184), bytes_of(v)), MemStatus::Ok);
    auto r = mem.read_u64(GuestPhys(8184));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 0x1122334455667788u);
    EXPECT_EQ(static_cast<unsigned>(mem.bytes()[8184]), 0x88u);
}

TEST(BufferPhysicalMemory, RejectsOutOfRangeWithoutPartialTransfer) {
    BufferPhysicalMemory mem(4096);
    std::uint64_t v = ~0ULL;
    EXPECT_EQ(mem.read(GuestPhys(4090), bytes_of(v)), MemStatus::OutOfRange);
    EXPECT_EQ(v, ~0ULL);  // nothing copied
    EXPECT_EQ(mem.write(GuestPhys(4090), bytes_of(v)), MemStatus::OutOfRange);
    EXPECT_EQ(static_cast<unsigned>(mem.bytes()[4095]), 0u);
    EXPECT_EQ(mem.read(GuestPhys(4096), bytes_of(v)), MemStatus::OutOfRange);
    // An address near 2^64 must not wrap around into the buffer.
    EXPECT_EQ(mem.read(GuestPhys(~0ULL - 3), bytes_of(v)), MemStatus::OutOfRange);
    EXPECT_EQ(mem.read_u64(GuestPhys(1ULL << 63)).error(), MemStatus::OutOfRange);
    // Empty transfers succeed anywhere.
    EXPECT_EQ(mem.read(GuestPhys(~0ULL), {}), MemStatus::Ok);
}

TEST(PcRamLayout, FollowsQemuDefaults) {
    EXPECT_EQ(PcRamLayout::q35(2 * kGiB).below_4g, 2 * kGiB);
    EXPECT_EQ(PcRamLayout::q35(0xAFF0'0000).below_4g, 0xAFF0'0000u);
    EXPECT_EQ(PcRamLayout::q35(0xB000'0000).below_4g, 0x8000'0000u);
    auto q = PcRamLayout::q35(8 * kGiB);
    EXPECT_EQ(q.below_4g, 2 * kGiB);
    EXPECT_EQ(q.above_4g(), 6 * kGiB);
    EXPECT_EQ(q.limit(), k4G + 6 * kGiB);
    EXPECT_EQ(PcRamLayout::i440fx(3 * kGiB).below_4g, 3 * kGiB);
    EXPECT_EQ(PcRamLayout::i440fx(4 * kGiB).below_4g, 3 * kGiB);
    EXPECT_EQ(PcRamLayout::q35(512 * kMiB).limit(), 512 * kMiB);
    EXPECT_EQ(PcRamLayout::with_below_4g(kMiB, 2 * kMiB).below_4g, kMiB);
}

TEST(PcRamLayout, MapsAddressesToFileOffsets) {
    auto l = PcRamLayout::with_below_4g(3 * kMiB, kMiB);
    EXPECT_EQ(l.offset_of(GuestPhys(0), 8), 0u);
    EXPECT_EQ(l.offset_of(GuestPhys(kMiB - 8), 8), kMiB - 8);
    EXPECT_EQ(l.offset_of(GuestPhys(kMiB - 4), 8), std::nullopt);  // runs into the hole
    EXPECT_EQ(l.offset_of(GuestPhys(kMiB), 1), std::nullopt);
    EXPECT_EQ(l.offset_of(GuestPhys(k4G - 1), 1), std::nullopt);
    EXPECT_EQ(l.offset_of(GuestPhys(k4G), 8), kMiB);
    EXPECT_EQ(l.offset_of(GuestPhys(k4G + 2 * kMiB - 8), 8), 3 * kMiB - 8);
    EXPECT_EQ(l.offset_of(GuestPhys(k4G + 2 * kMiB - 4), 8), std::nullopt);
    EXPECT_EQ(l.offset_of(GuestPhys(k4G + 2 * kMiB), 1), std::nullopt);
    EXPECT_EQ(l.offset_of(GuestPhys(~0ULL), 2), std::nullopt);
    EXPECT_EQ(l.offset_of(GuestPhys(0), ~0ULL), std::nullopt);
}

// A temporary file whose byte at offset i is pattern(i).
class TempRamFile {
  public:
    explicit TempRamFile(std::uint64_t size) {
        path_ = testing::TempDir() + "nitro_ram_XXXXXX";
        fd_ = ::mkstemp(path_.data());
        EXPECT_GE(fd_, 0);
        std::vector<std::byte> buf(size);
        for (std::uint64_t i = 0; i < size; ++i) buf[i] = pattern(i);
        EXPECT_EQ(::pwrite(fd_, buf.data(), buf.size(), 0), static_cast<ssize_t>(size));
    }
    ~TempRamFile() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    static std::byte pattern(std::uint64_t off) {
        return static_cast<std::byte>((off >> 12) * 7 + (off & 0xfff) * 3);
    }
    const std::string& path() const { return path_; }
    int fd() const { return fd_; }
    std::uint64_t pread_u64(std::uint64_t off) const {
        std::uint64_t v = 0;
        EXPECT_EQ(::pread(fd_, &v, 8, static_cast<off_t>(off)), 8);
        return v;
    }

  private:
    std::string path_;
    int fd_ = -1;
};

std::uint64_t expected_u64(std::uint64_t file_off) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | static_cast<std::uint8_t>(TempRamFile::pattern(file_off + i));
    return v;
}

TEST(MappedPhysicalMemory, HonoursTheBelowAndAbove4GSplit) {
    TempRamFile file(3 * kMiB);
    MappedPhysicalMemory::Options o;
    o.path = file.path();
    o.below_4g_mem_size = kMiB;
    MappedPhysicalMemory mem(o);
    EXPECT_EQ(mem.size(), 3 * kMiB);
    EXPECT_EQ(mem.limit(), k4G + 2 * kMiB);
    EXPECT_FALSE(mem.writable());

    struct Case {
        std::uint64_t gpa;
        std::optional<std::uint64_t> file_off;
    };
    const Case cases[] = {
        {0, 0},
        {0x1238, 0x1238},
        {kMiB - 8, kMiB - 8},
        {kMiB - 4, std::nullopt},  // straddles the end of low RAM
        {kMiB, std::nullopt},      // hole
        {3 * kMiB, std::nullopt},  // hole, although the file is that long
        {k4G - 8, std::nullopt},
        {k4G, kMiB},
        {k4G + 0x5678, kMiB + 0x5678},
        {k4G + 2 * kMiB - 8, 3 * kMiB - 8},
        {k4G + 2 * kMiB, std::nullopt},
        {~0ULL - 7, std::nullopt},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(fmt::format("gpa {:#x}", c.gpa));
        auto r = mem.read_u64(GuestPhys(c.gpa));
        if (c.file_off) {
            ASSERT_TRUE(r.ok());
            EXPECT_EQ(*r, expected_u64(*c.file_off));
        } else {
            ASSERT_FALSE(r.ok());
            EXPECT_EQ(r.error(), MemStatus::OutOfRange);
        }
    }
}

TEST(MappedPhysicalMemory, DefaultLayoutPutsSmallRamBelow4G) {
    TempRamFile file(2 * kMiB);
    MappedPhysicalMemory mem({.path = file.path()});
    EXPECT_EQ(mem.layout().below_4g, 2 * kMiB);
    EXPECT_EQ(mem.limit(), 2 * kMiB);
    EXPECT_EQ(*mem.read_u64(GuestPhys(2 * kMiB - 8)), expected_u64(2 * kMiB - 8));
    EXPECT_FALSE(mem.read_u64(GuestPhys(k4G)).ok());
}

TEST(MappedPhysicalMemory, RamSizeSmallerThanFileMapsOnlyRam) {
    TempRamFile file(2 * kMiB);
    MappedPhysicalMemory mem({.path = file.path(), .ram_size = kMiB});
    EXPECT_EQ(mem.size(), kMiB);
    EXPECT_TRUE(mem.read_u64(GuestPhys(kMiB - 8)).ok());
    EXPECT_FALSE(mem.read_u64(GuestPhys(kMiB)).ok());
}

TEST(MappedPhysicalMemory, ReadOnlyMappingRefusesWrites) {
    TempRamFile file(kMiB);
    MappedPhysicalMemory mem({.path = file.path()});
    std::uint64_t v = 0xdeadbeef;
    EXPECT_EQ(mem.write(GuestPhys(0x100), bytes_of(v)), MemStatus::ReadOnly);
    EXPECT_EQ(file.pread_u64(0x100), expected_u64(0x100));
}

TEST(MappedPhysicalMemory, WritableMappingWritesThroughToTheFile) {
    TempRamFile file(3 * kMiB);
    MappedPhysicalMemory mem({.path = file.path(), .below_4g_mem_size = kMiB, .writable = true});
    EXPECT_TRUE(mem.writable());
    std::uint64_t v = 0x0123456789abcdef;
    EXPECT_EQ(mem.write(GuestPhys(k4G + 0x2000), bytes_of(v)), MemStatus::Ok);
    // Shared mapping: the file (i.e. the guest) sees it.
    EXPECT_EQ(file.pread_u64(kMiB + 0x2000), 0x0123456789abcdefu);
    EXPECT_EQ(*mem.read_u64(GuestPhys(k4G + 0x2000)), 0x0123456789abcdefu);
    EXPECT_EQ(mem.write(GuestPhys(kMiB), bytes_of(v)), MemStatus::OutOfRange);
}

TEST(MappedPhysicalMemory, RefusesFilesThatAreTooSmall) {
    TempRamFile file(kMiB);
    // Mapping 2 MiB of a 1 MiB file would SIGBUS on the second half: refused at set-up.
    EXPECT_THROW(MappedPhysicalMemory({.path = file.path(), .ram_size = 2 * kMiB}), Error);
    TempRamFile empty(0);
    EXPECT_THROW(MappedPhysicalMemory({.path = empty.path()}), Error);
    EXPECT_THROW(MappedPhysicalMemory({.path = "/nonexistent/nitro-ram"}), Error);
    EXPECT_THROW(MappedPhysicalMemory({.path = testing::TempDir()}), Error);
}

TEST(MappedPhysicalMemory, RefusesOverlappingLayout) {
    TempRamFile file(3 * kMiB);
    EXPECT_THROW(MappedPhysicalMemory(
                     {.path = file.path(), .below_4g_mem_size = kMiB, .above_4g_start = 4096}),
                 Error);
}

TEST(MappedPhysicalMemory, NoticesTruncation) {
    TempRamFile file(2 * kMiB);
    MappedPhysicalMemory mem({.path = file.path()});
    EXPECT_TRUE(mem.file_intact());
    ASSERT_EQ(::ftruncate(file.fd(), kMiB), 0);
    EXPECT_FALSE(mem.file_intact());  // (and reading past 1 MiB now would raise SIGBUS)
}

}  // namespace
}  // namespace nitro
