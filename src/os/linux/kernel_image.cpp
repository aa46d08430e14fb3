// SPDX-License-Identifier: MIT
#include "os/linux/kernel_image.h"

#include <bzlib.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <fstream>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/byte_reader.h"
#include "os/linux/elf_image.h"

namespace nitro::linux_os {
namespace {

// Real-mode header fields (x86 boot protocol).
constexpr uint64_t kSetupSectsAt = 0x1f1;
constexpr uint64_t kHeaderMagicAt = 0x202;
constexpr uint64_t kVersionAt = 0x206;
constexpr uint64_t kPayloadOffsetAt = 0x248;
constexpr uint64_t kPayloadLengthAt = 0x24c;
constexpr uint16_t kPayloadFieldsVersion = 0x0208;

// The kernel's lz4 uses the legacy frame: magic, then blocks of (le32 size, data) that each
// decompress to at most 8 MiB.
constexpr uint32_t kLz4LegacyMagic = 0x184c2102;
constexpr size_t kLz4LegacyBlock = size_t{8} << 20;

// Decoder state may not grow beyond this (xz/lzma dictionaries, zstd windows).
constexpr uint64_t kDecoderMemLimit = uint64_t{256} << 20;

constexpr size_t kMinChunk = size_t{1} << 20;

// Releases decoder state on every exit, including the bound check throwing mid-stream.
template <typename F>
struct Finally {
    F f;
    ~Finally() { f(); }
};
template <typename F>
Finally(F) -> Finally<F>;

[[noreturn]] void fail_bomb(Compression c, size_t max) {
    fail("{} payload decompresses to more than {} bytes; refusing (corrupt or hostile image)",
         to_string(c), max);
}

// Output buffer that grows geometrically but never beyond max+1 bytes, so that producing
// exactly max bytes is allowed and one byte more is detected as a bomb.
class Sink {
  public:
    Sink(Compression c, size_t max, size_t hint) : c_(c), max_(max) {
        if (hint > 0 && hint <= max) buf_.resize(std::min(max, hint) + 1);
    }
    // Makes room for more output; throws if the bound is already reached.
    uint8_t* room(size_t& avail) {
        if (produced_ == buf_.size()) {
            if (produced_ > max_) fail_bomb(c_, max_);
            size_t want = std::max(kMinChunk, buf_.size() * 2);
            buf_.resize(std::min(want, max_ + 1));
        }
        avail = buf_.size() - produced_;
        return buf_.data() + produced_;
    }
    void commit(size_t n) {
        produced_ += n;
        if (produced_ > max_) fail_bomb(c_, max_);
    }
    size_t produced() const { return produced_; }
    std::vector<uint8_t> take() {
        buf_.resize(produced_);
        buf_.shrink_to_fit();
        return std::move(buf_);
    }

  private:
    Compression c_;
    size_t max_;
    size_t produced_ = 0;
    std::vector<uint8_t> buf_;
};

// The kernel build appends the uncompressed size as le32; use it to size the buffer once.
size_t size_hint(std::span<const uint8_t> payload) {
    if (payload.size() < 8) return 0;
    auto v = load_le<uint32_t>(payload, payload.size() - 4);
    return v && *v >= payload.size() ? *v : 0;
}

unsigned clamp_uint(size_t v) { return static_cast<unsigned>(std::min<size_t>(v, UINT_MAX)); }

std::vector<uint8_t> inflate_gzip(std::span<const uint8_t> in, size_t max) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) fail("gzip: cannot initialise zlib");
    Finally end{[&] { inflateEnd(&zs); }};
    Sink sink(Compression::Gzip, max, size_hint(in));
    zs.next_in = const_cast<Bytef*>(in.data());
    zs.avail_in = clamp_uint(in.size());
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        size_t avail = 0;
        zs.next_out = sink.room(avail);
        zs.avail_out = clamp_uint(avail);
        const unsigned before = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        sink.commit(before - zs.avail_out);
        if (rc == Z_BUF_ERROR && zs.avail_out != 0) rc = Z_DATA_ERROR;  // input ran out
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            fail("gzip: corrupt payload ({})", zs.msg ? zs.msg : "truncated stream");
        }
    }
    return sink.take();
}

std::vector<uint8_t> inflate_bzip2(std::span<const uint8_t> in, size_t max) {
    bz_stream bs{};
    if (BZ2_bzDecompressInit(&bs, 0, 0) != BZ_OK) fail("bzip2: cannot initialise libbz2");
    Finally end{[&] { BZ2_bzDecompressEnd(&bs); }};
    Sink sink(Compression::Bzip2, max, size_hint(in));
    bs.next_in = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
    bs.avail_in = clamp_uint(in.size());
    int rc = BZ_OK;
    while (rc != BZ_STREAM_END) {
        size_t avail = 0;
        bs.next_out = reinterpret_cast<char*>(sink.room(avail));
        bs.avail_out = clamp_uint(avail);
        const unsigned before = bs.avail_out;
        const unsigned in_before = bs.avail_in;
        rc = BZ2_bzDecompress(&bs);
        sink.commit(before - bs.avail_out);
        // No input left, none consumed, nothing produced, not at the end: truncated.
        const bool stalled =
            rc == BZ_OK && in_before == 0 && bs.avail_in == 0 && before == bs.avail_out;
        if ((rc != BZ_OK && rc != BZ_STREAM_END) || stalled)
            fail("bzip2: corrupt or truncated payload (libbz2 error {})", rc);
    }
    return sink.take();
}

std::vector<uint8_t> inflate_xz(std::span<const uint8_t> in, size_t max, bool alone) {
    const Compression c = alone ? Compression::Lzma : Compression::Xz;
    lzma_stream ls = LZMA_STREAM_INIT;
    lzma_ret rc = alone ? lzma_alone_decoder(&ls, kDecoderMemLimit)
                        : lzma_stream_decoder(&ls, kDecoderMemLimit, 0);
    if (rc != LZMA_OK) fail("{}: cannot initialise liblzma", to_string(c));
    Finally end{[&] { lzma_end(&ls); }};
    Sink sink(c, max, size_hint(in));
    ls.next_in = in.data();
    ls.avail_in = in.size();
    while (rc != LZMA_STREAM_END) {
        size_t avail = 0;
        ls.next_out = sink.room(avail);
        ls.avail_out = avail;
        // LZMA_FINISH once all input is given: a truncated stream then reports an error
        // instead of waiting for more.
        rc = lzma_code(&ls, LZMA_FINISH);
        sink.commit(avail - ls.avail_out);
        if (rc != LZMA_OK && rc != LZMA_STREAM_END)
            fail("{}: corrupt or truncated payload (liblzma error {})", to_string(c),
                 static_cast<int>(rc));
    }
    return sink.take();
}

std::vector<uint8_t> inflate_zstd(std::span<const uint8_t> in, size_t max) {
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    if (!dctx) fail("zstd: cannot allocate a decompression context");
    Finally end{[&] { ZSTD_freeDCtx(dctx); }};
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 27);
    Sink sink(Compression::Zstd, max, size_hint(in));
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    size_t rc = 1;
    // rc == 0 marks the end of the first frame; whatever follows is the size trailer.
    while (rc != 0) {
        size_t avail = 0;
        uint8_t* out = sink.room(avail);
        ZSTD_outBuffer ob{out, avail, 0};
        const size_t in_before = ib.pos;
        rc = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(rc)) fail("zstd: corrupt payload ({})", ZSTD_getErrorName(rc));
        sink.commit(ob.pos);
        if (rc != 0 && ib.pos == ib.size && ob.pos < avail && in_before == ib.pos)
            fail("zstd: truncated payload");
    }
    return sink.take();
}

std::vector<uint8_t> inflate_lz4_legacy(std::span<const uint8_t> in, size_t max) {
    Sink sink(Compression::Lz4Legacy, max, size_hint(in));
    const size_t max_block_in = static_cast<size_t>(LZ4_compressBound(int{kLz4LegacyBlock}));
    uint64_t pos = 4;  // after the magic
    size_t blocks = 0;
    while (in_bounds(in.size(), pos, 4)) {
        const uint32_t len = *load_le<uint32_t>(in, pos);
        pos += 4;
        if (len == kLz4LegacyMagic) continue;  // concatenated streams
        // The last le32 of a kernel payload is the size trailer, not a block.
        if (pos == in.size() && blocks > 0) break;
        if (len == 0 || len > max_block_in)
            fail("lz4: bad block size {} at offset {:#x}", len, pos - 4);
        if (!in_bounds(in.size(), pos, len))
            fail("lz4: truncated payload (block at {:#x} needs {} bytes)", pos - 4, len);
        // Decode into a block-sized window even near the bound; overshoot is caught by commit.
        size_t avail = 0;
        sink.room(avail);
        if (avail < kLz4LegacyBlock) {
            // room() only grows when full; ask for a fresh window of a full block.
            std::vector<uint8_t> tmp(kLz4LegacyBlock);
            const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos),
                                              reinterpret_cast<char*>(tmp.data()),
                                              static_cast<int>(len), int{kLz4LegacyBlock});
            if (n < 0) fail("lz4: corrupt block at offset {:#x}", pos - 4);
            size_t done = 0;
            while (done < static_cast<size_t>(n)) {
                uint8_t* out = sink.room(avail);
                const size_t k = std::min(avail, static_cast<size_t>(n) - done);
                std::memcpy(out, tmp.data() + done, k);
                sink.commit(k);
                done += k;
            }
        } else {
            uint8_t* out = sink.room(avail);
            const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos),
                                              reinterpret_cast<char*>(out), static_cast<int>(len),
                                              int{kLz4LegacyBlock});
            if (n < 0) fail("lz4: corrupt block at offset {:#x}", pos - 4);
            sink.commit(static_cast<size_t>(n));
        }
        pos += len;
        ++blocks;
    }
    if (blocks == 0) fail("lz4: payload holds no data blocks");
    return sink.take();
}

struct Magic {
    Compression c;
    std::array<uint8_t, 6> bytes;
    size_t len;
};
constexpr std::array<Magic, 8> kMagics{{
    {Compression::Gzip, {0x1f, 0x8b}, 2},
    {Compression::Gzip, {0x1f, 0x9e}, 2},
    {Compression::Bzip2, {'B', 'Z', 'h'}, 3},
    {Compression::Xz, {0xfd, '7', 'z', 'X', 'Z', 0x00}, 6},
    {Compression::Lzma, {0x5d, 0x00, 0x00}, 3},
    {Compression::Lz4Legacy, {0x02, 0x21, 0x4c, 0x18}, 4},
    {Compression::Zstd, {0x28, 0xb5, 0x2f, 0xfd}, 4},
    {Compression::Lzo, {0x89, 'L', 'Z', 'O'}, 4},
}};

Vmlinux checked_elf(std::vector<uint8_t> out, Compression c) {
    if (!ElfImage::looks_like_elf(out))
        fail(
            "kernel image: the {} payload decompressed to {} bytes that are not a 64-bit ELF "
            "vmlinux",
            to_string(c), out.size());
    return Vmlinux{std::move(out), c};
}

}  // namespace

std::string_view to_string(Compression c) {
    switch (c) {
        case Compression::None:
            return "uncompressed";
        case Compression::Gzip:
            return "gzip";
        case Compression::Bzip2:
            return "bzip2";
        case Compression::Xz:
            return "xz";
        case Compression::Lzma:
            return "lzma";
        case Compression::Lz4Legacy:
            return "lz4";
        case Compression::Zstd:
            return "zstd";
        case Compression::Lzo:
            return "lzo";
    }
    return "unknown";
}

std::optional<BootHeader> parse_boot_header(std::span<const uint8_t> image) {
    if (image.size() < kHeaderMagicAt + 4 ||
        std::memcmp(image.data() + kHeaderMagicAt, "HdrS", 4) != 0)
        return std::nullopt;
    BootHeader h;
    h.version = load_le<uint16_t>(image, kVersionAt).value_or(0);
    h.setup_sects = image[kSetupSectsAt];
    const uint64_t sects = h.setup_sects == 0 ? 4 : h.setup_sects;
    h.kernel_offset = (sects + 1) * 512;
    if (h.kernel_offset >= image.size())
        fail("kernel image: truncated bzImage ({} bytes, but the setup code alone is {} bytes)",
             image.size(), h.kernel_offset);
    if (h.version >= kPayloadFieldsVersion) {
        const auto off = load_le<uint32_t>(image, kPayloadOffsetAt);
        const auto len = load_le<uint32_t>(image, kPayloadLengthAt);
        if (!off || !len) fail("kernel image: truncated bzImage header");
        h.payload_offset = h.kernel_offset + *off;
        h.payload_length = *len;
        if (h.payload_length == 0 || !in_bounds(image.size(), h.payload_offset, *len))
            fail(
                "kernel image: truncated bzImage (payload at {:#x}+{:#x} but the file has {:#x} "
                "bytes)",
                h.payload_offset, h.payload_length, image.size());
    }
    return h;
}

Compression detect_compression(std::span<const uint8_t> payload) {
    for (const auto& m : kMagics)
        if (payload.size() >= m.len && std::memcmp(payload.data(), m.bytes.data(), m.len) == 0)
            return m.c;
    if (ElfImage::looks_like_elf(payload)) return Compression::None;
    std::string head;
    for (uint8_t b : payload.first(std::min<size_t>(payload.size(), 8)))
        head += fmt::format("{:02x} ", b);
    fail("kernel image: unknown payload compression (first bytes {})", head);
}

std::vector<uint8_t> decompress(std::span<const uint8_t> payload, Compression c,
                                size_t max_output) {
    switch (c) {
        case Compression::None:
            if (payload.size() > max_output) fail_bomb(c, max_output);
            return {payload.begin(), payload.end()};
        case Compression::Gzip:
            return inflate_gzip(payload, max_output);
        case Compression::Bzip2:
            return inflate_bzip2(payload, max_output);
        case Compression::Xz:
            return inflate_xz(payload, max_output, false);
        case Compression::Lzma:
            return inflate_xz(payload, max_output, true);
        case Compression::Lz4Legacy:
            return inflate_lz4_legacy(payload, max_output);
        case Compression::Zstd:
            return inflate_zstd(payload, max_output);
        case Compression::Lzo:
            fail(
                "kernel image: LZO-compressed kernels are not supported; decompress the "
                "vmlinux yourself (scripts/extract-vmlinux) and pass that");
    }
    fail("kernel image: unknown compression");
}

Vmlinux extract_vmlinux(std::span<const uint8_t> image, size_t max_output) {
    if (ElfImage::looks_like_elf(image)) {
        if (image.size() > max_output) fail_bomb(Compression::None, max_output);
        return Vmlinux{{image.begin(), image.end()}, Compression::None};
    }
    const auto header = parse_boot_header(image);
    if (!header)
        fail("kernel image: neither a bzImage (no \"HdrS\" boot header) nor a vmlinux ELF");
    if (header->payload_length != 0) {
        const auto payload = image.subspan(header->payload_offset, header->payload_length);
        const Compression c = detect_compression(payload);
        log::debug("kernel image: boot protocol {}.{:02}, {} payload of {} bytes at {:#x}",
                   header->version >> 8, header->version & 0xff, to_string(c), payload.size(),
                   header->payload_offset);
        return checked_elf(decompress(payload, c, max_output), c);
    }
    // Boot protocol before 2.08 has no payload fields: look for a compressor magic in the
    // protected-mode part and keep the first candidate that decompresses to an ELF.
    const auto body = image.subspan(header->kernel_offset);
    constexpr int kMaxCandidates = 32;
    int tried = 0;
    std::string last_error = "no compressed payload found";
    for (size_t i = 0; i + 6 <= body.size() && tried < kMaxCandidates; ++i) {
        for (const auto& m : kMagics) {
            if (m.c == Compression::Lzo || std::memcmp(body.data() + i, m.bytes.data(), m.len))
                continue;
            ++tried;
            try {
                return checked_elf(decompress(body.subspan(i), m.c, max_output), m.c);
            } catch (const Error& e) {
                last_error = e.what();
            }
            break;
        }
    }
    fail("kernel image: old boot protocol {:#x} and no decodable payload ({})", header->version,
         last_error);
}

std::vector<uint8_t> read_file(const std::string& path, size_t max_size) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) fail("cannot open {}: {}", path, std::strerror(errno));
    const auto end = f.tellg();
    if (end < 0) fail("cannot read {}", path);
    const auto size = static_cast<size_t>(end);
    if (size > max_size) fail("{} is {} bytes, more than the limit of {}", path, size, max_size);
    std::vector<uint8_t> data(size);
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size)))
        fail("cannot read {}", path);
    return data;
}

}  // namespace nitro::linux_os
