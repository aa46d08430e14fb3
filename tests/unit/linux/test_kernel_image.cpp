// SPDX-License-Identifier: MIT
// Kernel image parsing and decompression on synthetic bzImages, including hostile ones.
#include <bzlib.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <string>
#include <vector>

#include "nitro/error.h"
#include "os/linux/elf_image.h"
#include "os/linux/kernel_image.h"

namespace nitro::linux_os {
namespace {

using Bytes = std::vector<uint8_t>;

void put32(Bytes& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
void put16(Bytes& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

// A minimal ELF64 header followed by a recognisable pattern.
Bytes fake_vmlinux(size_t size, bool zeros = false) {
    Bytes b(size);
    if (!zeros)
        for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>((i * 7) ^ (i >> 9));
    Elf64_Ehdr h{};
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_EXEC;
    h.e_machine = EM_X86_64;
    h.e_version = EV_CURRENT;
    h.e_ehsize = sizeof h;
    std::memcpy(b.data(), &h, sizeof h);
    return b;
}

Bytes gzip(const Bytes& in) {
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    Bytes out(deflateBound(&zs, in.size()) + 64);
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

Bytes bzip2(const Bytes& in) {
    Bytes out(in.size() + in.size() / 100 + 1024);
    auto len = static_cast<unsigned>(out.size());
    EXPECT_EQ(BZ2_bzBuffToBuffCompress(reinterpret_cast<char*>(out.data()), &len,
                                       const_cast<char*>(reinterpret_cast<const char*>(in.data())),
                                       static_cast<unsigned>(in.size()), 1, 0, 0),
              BZ_OK);
    out.resize(len);
    return out;
}

Bytes xz(const Bytes& in) {
    Bytes out(lzma_stream_buffer_bound(in.size()));
    size_t pos = 0;
    EXPECT_EQ(lzma_easy_buffer_encode(0, LZMA_CHECK_CRC32, nullptr, in.data(), in.size(),
                                      out.data(), &pos, out.size()),
              LZMA_OK);
    out.resize(pos);
    return out;
}

Bytes lzma_alone(const Bytes& in) {
    lzma_options_lzma opt;
    lzma_lzma_preset(&opt, 0);
    lzma_stream ls = LZMA_STREAM_INIT;
    EXPECT_EQ(lzma_alone_encoder(&ls, &opt), LZMA_OK);
    Bytes out(in.size() + in.size() / 2 + 4096);
    ls.next_in = in.data();
    ls.avail_in = in.size();
    ls.next_out = out.data();
    ls.avail_out = out.size();
    EXPECT_EQ(lzma_code(&ls, LZMA_FINISH), LZMA_STREAM_END);
    out.resize(out.size() - ls.avail_out);
    lzma_end(&ls);
    return out;
}

Bytes zstd(const Bytes& in) {
    Bytes out(ZSTD_compressBound(in.size()));
    const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 1);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

// The kernel's lz4: legacy frame, 8 MiB blocks.
Bytes lz4_legacy(const Bytes& in) {
    constexpr size_t kBlock = size_t{8} << 20;
    Bytes out(4);
    put32(out, 0, 0x184c2102);
    for (size_t off = 0; off < in.size(); off += kBlock) {
        const int n = static_cast<int>(std::min(kBlock, in.size() - off));
        Bytes blk(static_cast<size_t>(LZ4_compressBound(n)));
        const int c = LZ4_compress_default(reinterpret_cast<const char*>(in.data() + off),
                                           reinterpret_cast<char*>(blk.data()), n,
                                           static_cast<int>(blk.size()));
        EXPECT_GT(c, 0);
        const size_t at = out.size();
        out.resize(at + 4 + static_cast<size_t>(c));
        put32(out, at, static_cast<uint32_t>(c));
        std::memcpy(out.data() + at + 4, blk.data(), static_cast<size_t>(c));
    }
    return out;
}

Bytes compress(Compression c, const Bytes& in) {
    switch (c) {
        case Compression::Gzip:
            return gzip(in);
        case Compression::Bzip2:
            return bzip2(in);
        case Compression::Xz:
            return xz(in);
        case Compression::Lzma:
            return lzma_alone(in);
        case Compression::Lz4Legacy:
            return lz4_legacy(in);
        case Compression::Zstd:
            return zstd(in);
        default:
            ADD_FAILURE() << "no compressor";
            return {};
    }
}

// A bzImage as the boot protocol 2.15 lays it out: 1 setup sector after the boot sector,
// payload 0x100 bytes into the protected-mode part, followed by the le32 uncompressed size.
Bytes fake_bzimage(const Bytes& compressed, uint32_t uncompressed_size) {
    constexpr size_t kKernelAt = 2 * 512;
    constexpr uint32_t kPayloadRel = 0x100;
    Bytes img(kKernelAt + kPayloadRel);
    img[0x1f1] = 1;
    put16(img, 0x1fe, 0xaa55);
    std::memcpy(img.data() + 0x202, "HdrS", 4);
    put16(img, 0x206, 0x020f);
    put32(img, 0x248, kPayloadRel);
    put32(img, 0x24c, static_cast<uint32_t>(compressed.size() + 4));
    img.insert(img.end(), compressed.begin(), compressed.end());
    img.resize(img.size() + 4);
    put32(img, img.size() - 4, uncompressed_size);
    img.resize(img.size() + 300, 0xcc);  // trailing setup data / signature area
    return img;
}

class LinuxCompressor : public ::testing::TestWithParam<Compression> {};

TEST_P(LinuxCompressor, RoundTripsThroughBzImage) {
    // lz4 needs more than one 8 MiB block to exercise the block loop.
    const size_t size = GetParam() == Compression::Lz4Legacy ? (size_t{9} << 20) + 12345
                                                             : (size_t{1} << 20) + 12345;
    const Bytes vmlinux = fake_vmlinux(size);
    const Bytes payload = compress(GetParam(), vmlinux);
    EXPECT_EQ(detect_compression(payload), GetParam());
    const Bytes img = fake_bzimage(payload, static_cast<uint32_t>(vmlinux.size()));
    const auto hdr = parse_boot_header(img);
    ASSERT_TRUE(hdr);
    EXPECT_EQ(hdr->version, 0x020f);
    EXPECT_EQ(hdr->kernel_offset, 1024u);
    const auto out = extract_vmlinux(img);
    EXPECT_EQ(out.compression, GetParam());
    EXPECT_TRUE(out.elf == vmlinux);
}

TEST_P(LinuxCompressor, BoundStopsDecompressionBombs) {
    const Bytes zeros = fake_vmlinux(size_t{4} << 20, true);
    const Bytes payload = compress(GetParam(), zeros);
    ASSERT_LT(payload.size(), zeros.size() / 2);
    try {
        decompress(payload, GetParam(), size_t{1} << 20);
        FAIL() << "expected the 1 MiB bound to trip";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("more than 1048576 bytes"), std::string::npos)
            << e.what();
    }
    // Exactly at the bound is fine.
    EXPECT_EQ(decompress(payload, GetParam(), zeros.size()).size(), zeros.size());
}

TEST_P(LinuxCompressor, TruncatedPayloadIsAnError) {
    const Bytes vmlinux = fake_vmlinux(size_t{1} << 20);
    Bytes payload = compress(GetParam(), vmlinux);
    payload.resize(payload.size() / 2);
    EXPECT_THROW(decompress(payload, GetParam()), Error);
}

TEST_P(LinuxCompressor, CorruptPayloadIsAnErrorNotACrash) {
    const Bytes vmlinux = fake_vmlinux(size_t{256} << 10);
    const Bytes good = compress(GetParam(), vmlinux);
    // Flip bytes all over the stream (not the magic); every outcome but a crash is fine, and
    // a "success" must still respect the bound.
    for (size_t step = 0; step < 24; ++step) {
        Bytes bad = good;
        for (size_t i = 8 + step; i < bad.size(); i += 97 + step) bad[i] ^= 0x5a;
        try {
            auto out = decompress(bad, GetParam(), size_t{2} << 20);
            EXPECT_LE(out.size(), size_t{2} << 20);
        } catch (const Error&) {
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Every, LinuxCompressor,
                         ::testing::Values(Compression::Gzip, Compression::Bzip2, Compression::Xz,
                                           Compression::Lzma, Compression::Lz4Legacy,
                                           Compression::Zstd),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(LinuxKernelImage, AcceptsPlainVmlinux) {
    const Bytes vmlinux = fake_vmlinux(4096);
    const auto out = extract_vmlinux(vmlinux);
    EXPECT_EQ(out.compression, Compression::None);
    EXPECT_TRUE(out.elf == vmlinux);
}

TEST(LinuxKernelImage, RejectsWrongMagic) {
    Bytes img = fake_bzimage(gzip(fake_vmlinux(4096)), 4096);
    std::memcpy(img.data() + 0x202, "HdrX", 4);
    EXPECT_FALSE(parse_boot_header(img));
    try {
        extract_vmlinux(img);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("neither a bzImage"), std::string::npos);
    }
}

TEST(LinuxKernelImage, RejectsTruncatedImages) {
    const Bytes img = fake_bzimage(gzip(fake_vmlinux(size_t{64} << 10)), 64 << 10);
    // Cut anywhere: in the real-mode header, in the setup code, in the payload.
    for (size_t len : {size_t{0}, size_t{16}, size_t{0x204}, size_t{0x240}, size_t{600},
                       size_t{1024}, size_t{1300}, img.size() / 2, img.size() - 305}) {
        Bytes cut(img.begin(), img.begin() + static_cast<long>(len));
        EXPECT_THROW(extract_vmlinux(cut), Error) << "length " << len;
    }
}

TEST(LinuxKernelImage, RejectsPayloadFieldsPointingOutside) {
    Bytes img = fake_bzimage(gzip(fake_vmlinux(4096)), 4096);
    put32(img, 0x248, 0xfffffff0);
    EXPECT_THROW(parse_boot_header(img), Error);
    put32(img, 0x248, 0x100);
    put32(img, 0x24c, 0xffffffff);
    EXPECT_THROW(parse_boot_header(img), Error);
    put32(img, 0x24c, 0);
    EXPECT_THROW(parse_boot_header(img), Error);
}

TEST(LinuxKernelImage, RejectsUnknownCompressionAndNonElfPayload) {
    Bytes junk(4096, 0x42);
    EXPECT_THROW(extract_vmlinux(fake_bzimage(junk, 4096)), Error);
    Bytes not_elf(8192, 0x11);
    try {
        extract_vmlinux(fake_bzimage(gzip(not_elf), 8192));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not a 64-bit ELF"), std::string::npos) << e.what();
    }
}

TEST(LinuxKernelImage, Lz4LegacyRejectsBadBlockSizes) {
    Bytes payload = lz4_legacy(fake_vmlinux(size_t{1} << 20));
    Bytes huge = payload;
    put32(huge, 4, 0x7fffffff);
    EXPECT_THROW(decompress(huge, Compression::Lz4Legacy), Error);
    Bytes zero = payload;
    put32(zero, 4, 0);
    EXPECT_THROW(decompress(zero, Compression::Lz4Legacy), Error);
    Bytes only_magic(payload.begin(), payload.begin() + 4);
    EXPECT_THROW(decompress(only_magic, Compression::Lz4Legacy), Error);
}

TEST(LinuxKernelImage, ElfReaderSurvivesGarbageHeaders) {
    Bytes b = fake_vmlinux(4096);
    auto* h = reinterpret_cast<Elf64_Ehdr*>(b.data());
    h->e_shoff = 0xfffffffffffff000ULL;
    h->e_shnum = 0xffff;
    h->e_shentsize = sizeof(Elf64_Shdr);
    h->e_phoff = 4000;
    h->e_phnum = 100;
    h->e_phentsize = sizeof(Elf64_Phdr);
    ElfImage elf(b);
    EXPECT_TRUE(elf.sections().empty());
    EXPECT_TRUE(elf.segments().empty());
    EXPECT_EQ(elf.find_section(".BTF"), nullptr);
    EXPECT_FALSE(elf.at_vaddr(0xffffffff81000000ULL, 1));
    EXPECT_EQ(elf.build_id(), "");
    Bytes elf32 = b;
    elf32[EI_CLASS] = ELFCLASS32;
    EXPECT_THROW(ElfImage{elf32}, Error);
}

}  // namespace
}  // namespace nitro::linux_os
