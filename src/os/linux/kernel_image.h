// SPDX-License-Identifier: MIT
// Kernel image (bzImage) -> vmlinux ELF: boot-protocol header and payload decompression.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nitro::linux_os {

// Large enough for any distribution vmlinux (Debian's is ~55 MiB), small enough that a
// decompression bomb cannot take the host down.
inline constexpr size_t kDefaultMaxVmlinuxSize = size_t{512} << 20;

enum class Compression { None, Gzip, Bzip2, Xz, Lzma, Lz4Legacy, Zstd, Lzo };

std::string_view to_string(Compression c);

// The parts of the x86 boot protocol's real-mode header we need (Documentation/x86/boot.rst).
struct BootHeader {
    uint16_t version = 0;        // e.g. 0x020f
    uint8_t setup_sects = 0;     // as stored; 0 means 4
    uint64_t kernel_offset = 0;  // file offset of the protected-mode kernel
    // File offset and length of the compressed payload (boot protocol >= 2.08), or 0/0.
    uint64_t payload_offset = 0;
    uint32_t payload_length = 0;
};

// nullopt when the buffer carries no "HdrS" header (not a bzImage); throws nitro::Error when
// it does but the header is inconsistent with the file (truncated, offsets out of range).
std::optional<BootHeader> parse_boot_header(std::span<const uint8_t> image);

// Guesses the compressor from the payload's leading magic.
Compression detect_compression(std::span<const uint8_t> payload);

// Decompresses one stream; trailing bytes after the end of the stream (the kernel appends the
// uncompressed size) are ignored. Throws nitro::Error on corrupt input or when the output
// would exceed max_output bytes.
std::vector<uint8_t> decompress(std::span<const uint8_t> payload, Compression c,
                                size_t max_output = kDefaultMaxVmlinuxSize);

struct Vmlinux {
    std::vector<uint8_t> elf;
    Compression compression = Compression::None;
};

// Accepts a bzImage or a plain vmlinux ELF and returns the vmlinux ELF bytes.
Vmlinux extract_vmlinux(std::span<const uint8_t> image, size_t max_output = kDefaultMaxVmlinuxSize);

// Reads a whole file, refusing files larger than max_size.
std::vector<uint8_t> read_file(const std::string& path, size_t max_size = size_t{1} << 30);

}  // namespace nitro::linux_os
