// SPDX-License-Identifier: MIT
// Kernel symbols without System.map: the kallsyms tables the kernel embeds in .rodata
// (CONFIG_KALLSYMS), or the ELF .symtab when the vmlinux still has one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nitro::linux_os {

class ElfImage;

struct KernelSymbol {
    std::string name;
    char type = '?';       // nm-style: T/t text, D/d data, R/r rodata, B/b bss, A/a absolute
    uint64_t address = 0;  // link-time address (absolute symbols: their value, e.g. per-CPU offset)

    // Absolute symbols (per-CPU offsets with CONFIG_KALLSYMS_ABSOLUTE_PERCPU) do not move with
    // KASLR.
    bool absolute() const { return type == 'A' || type == 'a'; }
};

// Where the tables were found, as offsets into the scanned buffer (diagnostics and tests).
struct KallsymsLayout {
    uint64_t addresses = 0;  // kallsyms_offsets (base-relative) or kallsyms_addresses
    uint64_t relative_base_at = 0;
    uint64_t num_syms_at = 0;
    uint64_t names = 0;
    uint64_t markers = 0;
    uint64_t token_table = 0;
    uint64_t token_index = 0;
    uint32_t num_syms = 0;
    uint64_t relative_base = 0;
    bool base_relative = false;
    bool absolute_percpu = false;
};

class Kallsyms {
  public:
    Kallsyms() = default;
    // Takes any symbol list (e.g. a parsed System.map); sorts it by address.
    explicit Kallsyms(std::vector<KernelSymbol> symbols);
    // The name index points into symbols_, so copies rebuild it.
    Kallsyms(const Kallsyms& other);
    Kallsyms& operator=(const Kallsyms& other);
    Kallsyms(Kallsyms&&) noexcept = default;
    Kallsyms& operator=(Kallsyms&&) noexcept = default;

    // Locates and decodes the kallsyms tables inside `region` (normally .rodata of a stripped
    // vmlinux, or the whole file). `region_vaddr` is the link address of region[0] (any value
    // congruent modulo 8 works): the tables are 8-byte aligned in the kernel's address space.
    // Throws nitro::Error when no consistent set of tables is found. With `keep`, only the
    // symbols whose name it accepts are kept (all are still decoded and checked): much cheaper
    // when a handful of names is all that is needed.
    static Kallsyms from_tables(std::span<const uint8_t> region, uint64_t region_vaddr = 0,
                                KallsymsLayout* layout = nullptr,
                                const std::function<bool(std::string_view)>& keep = {});
    static Kallsyms from_elf_symtab(const ElfImage& elf);
    // .symtab if present, else the kallsyms tables in .rodata, else anywhere in the file.
    static Kallsyms from_vmlinux(const ElfImage& elf);

    size_t size() const { return symbols_.size(); }
    bool empty() const { return symbols_.empty(); }
    const std::vector<KernelSymbol>& symbols() const { return symbols_; }

    // First symbol of that name (lowest address), or nullptr.
    const KernelSymbol* find(std::string_view name) const;
    std::optional<uint64_t> link_address(std::string_view name) const;
    // Runtime address: link address plus the KASLR slide (absolute symbols are not slid).
    std::optional<uint64_t> lookup(std::string_view name) const;

    int64_t slide() const { return slide_; }
    void set_slide(int64_t slide) { slide_ = slide; }
    // Derives the slide from the runtime address of one known symbol, stores and returns it.
    // Throws nitro::Error if the symbol is unknown, absolute, or the slide is not page-aligned.
    int64_t calibrate(std::string_view name, uint64_t runtime_address);

    struct Location {
        const KernelSymbol* symbol = nullptr;
        uint64_t offset = 0;
    };
    // Nearest non-absolute symbol at or below a runtime address; nullopt outside the kernel
    // image's symbol range.
    std::optional<Location> symbolize(uint64_t runtime_address) const;
    // "name+0x1f" or "0xffff..." when unknown.
    std::string describe(uint64_t runtime_address) const;

  private:
    void index();

    std::vector<KernelSymbol> symbols_;  // by address
    // Name -> first (lowest-address) symbol of that name; views into symbols_.
    std::unordered_map<std::string_view, uint32_t> by_name_;
    std::vector<uint32_t> relocatable_;  // indices of non-absolute symbols, by address
    uint64_t end_ = 0;                   // link address past which symbolize() gives up
    int64_t slide_ = 0;
};

}  // namespace nitro::linux_os
