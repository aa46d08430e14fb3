// SPDX-License-Identifier: MIT
#include "os/linux/elf_image.h"

#include <elf.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstring>

#include "nitro/error.h"
#include "os/linux/byte_reader.h"

namespace nitro::linux_os {
namespace {

// Caps that keep a hostile header from making us allocate or loop without end.
constexpr uint32_t kMaxSections = 65536;
constexpr uint32_t kMaxSegments = 4096;
constexpr size_t kMaxSectionName = 256;
constexpr size_t kMaxSymbolName = 4096;

template <typename T>
T field(std::span<const uint8_t> b, uint64_t off) {
    auto v = load_le<T>(b, off);
    if (!v) fail("ELF: header field at offset {:#x} is outside the file", off);
    return *v;
}

}  // namespace

bool ElfImage::looks_like_elf(std::span<const uint8_t> b) {
    return b.size() >= sizeof(Elf64_Ehdr) && std::memcmp(b.data(), ELFMAG, SELFMAG) == 0 &&
           b[EI_CLASS] == ELFCLASS64 && b[EI_DATA] == ELFDATA2LSB;
}

ElfImage::ElfImage(std::span<const uint8_t> bytes) : bytes_(bytes) {
    if (bytes.size() >= SELFMAG && std::memcmp(bytes.data(), ELFMAG, SELFMAG) == 0 &&
        !looks_like_elf(bytes))
        fail("ELF: only 64-bit little-endian files are supported");
    if (!looks_like_elf(bytes)) fail("ELF: not an ELF file (bad magic or truncated header)");

    machine_ = field<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_machine));
    const auto phoff = field<uint64_t>(bytes, offsetof(Elf64_Ehdr, e_phoff));
    const auto shoff = field<uint64_t>(bytes, offsetof(Elf64_Ehdr, e_shoff));
    const auto phentsize = field<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_phentsize));
    const auto phnum = field<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_phnum));
    const auto shentsize = field<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_shentsize));
    uint32_t shnum = field<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_shnum));
    uint32_t shstrndx = field<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_shstrndx));

    if (phnum != 0 && phentsize >= sizeof(Elf64_Phdr) && phnum <= kMaxSegments &&
        in_bounds(bytes.size(), phoff, uint64_t{phnum} * phentsize)) {
        for (uint32_t i = 0; i < phnum; ++i) {
            const uint64_t p = phoff + uint64_t{i} * phentsize;
            ElfSegment seg;
            seg.type = field<uint32_t>(bytes, p + offsetof(Elf64_Phdr, p_type));
            seg.offset = field<uint64_t>(bytes, p + offsetof(Elf64_Phdr, p_offset));
            seg.vaddr = field<uint64_t>(bytes, p + offsetof(Elf64_Phdr, p_vaddr));
            seg.filesz = field<uint64_t>(bytes, p + offsetof(Elf64_Phdr, p_filesz));
            seg.memsz = field<uint64_t>(bytes, p + offsetof(Elf64_Phdr, p_memsz));
            if (!in_bounds(bytes.size(), seg.offset, seg.filesz)) continue;
            segments_.push_back(seg);
        }
    }

    // Section headers are optional (strip can drop them); a garbled table is ignored rather
    // than fatal so that the scanning fallbacks can still work on the raw bytes.
    if (shoff == 0 || shentsize < sizeof(Elf64_Shdr)) return;
    if (shnum == 0 && in_bounds(bytes.size(), shoff, sizeof(Elf64_Shdr)))
        shnum =
            static_cast<uint32_t>(field<uint64_t>(bytes, shoff + offsetof(Elf64_Shdr, sh_size)));
    if (shnum > kMaxSections || !in_bounds(bytes.size(), shoff, uint64_t{shnum} * shentsize))
        return;
    if (shstrndx == SHN_XINDEX)
        shstrndx = field<uint32_t>(bytes, shoff + offsetof(Elf64_Shdr, sh_link));

    std::vector<ElfSection> raw(shnum);
    std::vector<uint32_t> name_off(shnum);
    for (uint32_t i = 0; i < shnum; ++i) {
        const uint64_t p = shoff + uint64_t{i} * shentsize;
        name_off[i] = field<uint32_t>(bytes, p + offsetof(Elf64_Shdr, sh_name));
        raw[i].type = field<uint32_t>(bytes, p + offsetof(Elf64_Shdr, sh_type));
        raw[i].flags = field<uint64_t>(bytes, p + offsetof(Elf64_Shdr, sh_flags));
        raw[i].addr = field<uint64_t>(bytes, p + offsetof(Elf64_Shdr, sh_addr));
        raw[i].offset = field<uint64_t>(bytes, p + offsetof(Elf64_Shdr, sh_offset));
        raw[i].size = field<uint64_t>(bytes, p + offsetof(Elf64_Shdr, sh_size));
        raw[i].link = field<uint32_t>(bytes, p + offsetof(Elf64_Shdr, sh_link));
        raw[i].entsize = field<uint64_t>(bytes, p + offsetof(Elf64_Shdr, sh_entsize));
    }
    std::span<const uint8_t> strtab;
    if (shstrndx < shnum && raw[shstrndx].type == SHT_STRTAB &&
        in_bounds(bytes.size(), raw[shstrndx].offset, raw[shstrndx].size))
        strtab = bytes.subspan(raw[shstrndx].offset, raw[shstrndx].size);
    for (uint32_t i = 0; i < shnum; ++i) {
        if (auto n = load_cstring(strtab, name_off[i], kMaxSectionName)) raw[i].name = *n;
        // Keep the index stable (sh_link refers to it) but blank out sections whose file
        // range is bogus, so nobody reads them.
        if (raw[i].type != SHT_NOBITS && !in_bounds(bytes.size(), raw[i].offset, raw[i].size)) {
            raw[i].type = SHT_NULL;
            raw[i].size = 0;
        }
    }
    sections_ = std::move(raw);
}

const ElfSection* ElfImage::find_section(std::string_view name) const {
    for (const auto& s : sections_)
        if (s.type != SHT_NULL && s.name == name) return &s;
    return nullptr;
}

std::span<const uint8_t> ElfImage::section_data(const ElfSection& s) const {
    if (s.type == SHT_NOBITS || s.type == SHT_NULL) return {};
    if (!in_bounds(bytes_.size(), s.offset, s.size)) return {};
    return bytes_.subspan(s.offset, s.size);
}

std::span<const uint8_t> ElfImage::section_data(std::string_view name) const {
    const auto* s = find_section(name);
    return s ? section_data(*s) : std::span<const uint8_t>{};
}

std::span<const uint8_t> ElfImage::tail_at_vaddr(uint64_t vaddr) const {
    for (const auto& s : sections_) {
        if (!(s.flags & SHF_ALLOC) || s.type == SHT_NOBITS || s.type == SHT_NULL) continue;
        if (vaddr < s.addr || vaddr - s.addr >= s.size) continue;
        return bytes_.subspan(s.offset + (vaddr - s.addr), s.size - (vaddr - s.addr));
    }
    for (const auto& g : segments_) {
        if (g.type != PT_LOAD) continue;
        if (vaddr < g.vaddr || vaddr - g.vaddr >= g.filesz) continue;
        return bytes_.subspan(g.offset + (vaddr - g.vaddr), g.filesz - (vaddr - g.vaddr));
    }
    return {};
}

std::optional<std::span<const uint8_t>> ElfImage::at_vaddr(uint64_t vaddr, uint64_t len) const {
    auto tail = tail_at_vaddr(vaddr);
    if (tail.size() < len || tail.empty()) return std::nullopt;
    return tail.first(len);
}

std::optional<std::string> ElfImage::cstring_at(uint64_t vaddr, size_t max_len) const {
    if (auto s = load_cstring(tail_at_vaddr(vaddr), 0, max_len)) return std::string(*s);
    return std::nullopt;
}

std::string ElfImage::build_id() const {
    auto scan = [](std::span<const uint8_t> notes) -> std::string {
        uint64_t off = 0;
        while (in_bounds(notes.size(), off, 12)) {
            const auto namesz = *load_le<uint32_t>(notes, off);
            const auto descsz = *load_le<uint32_t>(notes, off + 4);
            const auto type = *load_le<uint32_t>(notes, off + 8);
            const uint64_t name_at = off + 12;
            const uint64_t desc_at = name_at + ((uint64_t{namesz} + 3) & ~uint64_t{3});
            const uint64_t next = desc_at + ((uint64_t{descsz} + 3) & ~uint64_t{3});
            if (!in_bounds(notes.size(), name_at, namesz) ||
                !in_bounds(notes.size(), desc_at, descsz))
                break;
            if (type == NT_GNU_BUILD_ID && namesz == 4 &&
                std::memcmp(notes.data() + name_at, "GNU", 4) == 0 && descsz > 0 && descsz <= 64) {
                std::string hex;
                for (uint32_t i = 0; i < descsz; ++i)
                    hex += fmt::format("{:02x}", notes[desc_at + i]);
                return hex;
            }
            off = next;
        }
        return {};
    };
    for (const auto& s : sections_)
        if (s.type == SHT_NOTE)
            if (auto id = scan(section_data(s)); !id.empty()) return id;
    for (const auto& g : segments_)
        if (g.type == PT_NOTE)
            if (auto id = scan(bytes_.subspan(g.offset, g.filesz)); !id.empty()) return id;
    return {};
}

std::vector<ElfSymbol> ElfImage::symtab() const {
    std::vector<ElfSymbol> out;
    const auto* sym = find_section(".symtab");
    if (!sym || sym->link >= sections_.size()) return out;
    const auto data = section_data(*sym);
    const auto strs = section_data(sections_[sym->link]);
    const uint64_t count = data.size() / sizeof(Elf64_Sym);
    out.reserve(count);
    for (uint64_t i = 1; i < count; ++i) {
        const uint64_t p = i * sizeof(Elf64_Sym);
        ElfSymbol s;
        const auto name = *load_le<uint32_t>(data, p + offsetof(Elf64_Sym, st_name));
        s.info = data[p + offsetof(Elf64_Sym, st_info)];
        s.shndx = *load_le<uint16_t>(data, p + offsetof(Elf64_Sym, st_shndx));
        s.value = *load_le<uint64_t>(data, p + offsetof(Elf64_Sym, st_value));
        s.size = *load_le<uint64_t>(data, p + offsetof(Elf64_Sym, st_size));
        auto n = load_cstring(strs, name, kMaxSymbolName);
        if (!n || n->empty()) continue;
        s.name = *n;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace nitro::linux_os
