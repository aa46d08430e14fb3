// SPDX-License-Identifier: MIT
// A minimal, bounds-checked reader for 64-bit little-endian ELF files (the vmlinux inside a
// kernel image). Only what the profile needs: sections, program headers, notes, .symtab.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nitro::linux_os {

struct ElfSection {
    std::string name;
    uint32_t type = 0;
    uint64_t flags = 0;
    uint64_t addr = 0;
    uint64_t offset = 0;
    uint64_t size = 0;
    uint32_t link = 0;
    uint64_t entsize = 0;
};

struct ElfSegment {
    uint32_t type = 0;
    uint64_t offset = 0;
    uint64_t vaddr = 0;
    uint64_t filesz = 0;
    uint64_t memsz = 0;
};

struct ElfSymbol {
    std::string name;
    uint64_t value = 0;
    uint64_t size = 0;
    uint8_t info = 0;
    uint16_t shndx = 0;
};

// Views a buffer the caller keeps alive. Throws nitro::Error when the headers are not a sane
// ELF64 LE file; section/segment entries pointing outside the file are dropped, not trusted.
class ElfImage {
  public:
    explicit ElfImage(std::span<const uint8_t> bytes);

    static bool looks_like_elf(std::span<const uint8_t> bytes);

    std::span<const uint8_t> bytes() const { return bytes_; }
    uint16_t machine() const { return machine_; }
    const std::vector<ElfSection>& sections() const { return sections_; }
    const std::vector<ElfSegment>& segments() const { return segments_; }

    const ElfSection* find_section(std::string_view name) const;
    // Contents of a section; empty for NOBITS or missing sections.
    std::span<const uint8_t> section_data(const ElfSection& s) const;
    std::span<const uint8_t> section_data(std::string_view name) const;

    // File bytes backing [vaddr, vaddr+len) according to the section headers (preferred, as
    // they are finer) or the PT_LOAD segments; nullopt when not fully backed by the file.
    std::optional<std::span<const uint8_t>> at_vaddr(uint64_t vaddr, uint64_t len) const;
    // Everything the file holds from vaddr to the end of its section/segment (maybe empty).
    std::span<const uint8_t> tail_at_vaddr(uint64_t vaddr) const;
    // NUL-terminated string at a link-time address, at most max_len bytes.
    std::optional<std::string> cstring_at(uint64_t vaddr, size_t max_len = 4096) const;

    // NT_GNU_BUILD_ID as lower-case hex, empty if absent.
    std::string build_id() const;
    bool has_symtab() const { return find_section(".symtab") != nullptr; }
    std::vector<ElfSymbol> symtab() const;

  private:
    std::span<const uint8_t> bytes_;
    uint16_t machine_ = 0;
    std::vector<ElfSection> sections_;
    std::vector<ElfSegment> segments_;
};

}  // namespace nitro::linux_os
