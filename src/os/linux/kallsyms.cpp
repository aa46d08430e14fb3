// SPDX-License-Identifier: MIT
//
// The kallsyms tables, as scripts/kallsyms emits them into .rodata (every label 8-aligned):
//
//   up to 6.3:  offsets|addresses, relative_base, num_syms, names, markers, [seqs_of_names
//               (6.2, 6.3; u32 or 3-byte big-endian entries; also in stable backports, e.g.
//               Debian 6.1)], token_table, token_index
//   6.4 on:     num_syms, names, markers, token_table, token_index, offsets|addresses,
//               relative_base, seqs_of_names
//
// names: per symbol a ULEB128 length (1 or 2 bytes) and that many token bytes; each token
// byte expands to token_table[token_index[byte]]; the first expanded char is the nm type.
// markers: u32 offset into names of every 256th symbol. With CONFIG_KALLSYMS_BASE_RELATIVE
// offsets are int32; with CONFIG_KALLSYMS_ABSOLUTE_PERCPU non-negative ones are absolute
// values and negative ones mean relative_base - 1 - offset, otherwise relative_base + (u32).
//
// No symbol tells us where the tables are in a stripped image, so we find token_index by its
// shape (256 strictly increasing u16 starting at 0 that split the bytes just before it into
// 256 NUL-terminated strings), then walk outwards, checking every step against the others
// (markers must agree with the decoded name lengths, addresses must be sorted).
#include "os/linux/kallsyms.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/byte_reader.h"
#include "os/linux/elf_image.h"

namespace nitro::linux_os {
namespace {

constexpr uint32_t kMaxSymbols = 1u << 22;
constexpr uint32_t kMaxEntryLen = 0x3fff;  // two-byte ULEB128
constexpr size_t kMaxNameLen = 1024;       // KSYM_NAME_LEN is 512 since 6.1
constexpr size_t kMaxTokenLen = 256;
constexpr uint64_t kMinEntryBytes = 2;  // length byte + at least one token

struct TokenTables {
    uint64_t table = 0;  // offset of kallsyms_token_table
    uint64_t index = 0;  // offset of kallsyms_token_index
    std::array<uint16_t, 256> idx{};
};

struct Markers {
    uint64_t at = 0;
    uint32_t count = 0;
};

class Decoder {
  public:
    Decoder(std::span<const uint8_t> b, uint64_t vaddr,
            const std::function<bool(std::string_view)>& keep)
        : b_(b), base_(vaddr & 7), keep_(keep) {}

    Kallsyms run(KallsymsLayout* layout_out);

  private:
    bool aligned(uint64_t off) const { return ((base_ + off) & 7) == 0; }
    // Largest aligned offset <= off, or nullopt below the buffer start.
    std::optional<uint64_t> align_down(uint64_t off) const {
        const uint64_t a = (base_ + off) & ~uint64_t{7};
        if (a < base_) return std::nullopt;
        return a - base_;
    }
    uint32_t u32(uint64_t off) const { return load_le<uint32_t>(b_, off).value_or(0xffffffff); }

    std::vector<TokenTables> find_token_tables() const;
    bool tokens_end_at(uint64_t t, const TokenTables& tt) const;
    std::optional<Markers> markers_ending_at(uint64_t end) const;
    bool names_fit(uint64_t start, uint32_t n, const Markers& m) const;
    bool try_names(const TokenTables& tt, const Markers& m, uint32_t lo, uint32_t hi,
                   KallsymsLayout& out) const;
    bool try_addresses(const TokenTables& tt, KallsymsLayout& l) const;
    bool decode_addresses(KallsymsLayout& l, std::vector<uint64_t>& addrs) const;
    std::vector<KernelSymbol> expand(const TokenTables& tt, const KallsymsLayout& l) const;

    std::span<const uint8_t> b_;
    uint64_t base_;
    const std::function<bool(std::string_view)>& keep_;
};

std::vector<TokenTables> Decoder::find_token_tables() const {
    std::vector<TokenTables> out;
    uint64_t p = 0;
    while (p < b_.size() && !aligned(p)) ++p;
    for (; in_bounds(b_.size(), p, 512); p += 8) {
        const uint8_t* q = b_.data() + p;
        if (q[0] != 0 || q[1] != 0) continue;  // idx[0] == 0
        TokenTables tt;
        tt.index = p;
        bool ok = true;
        for (int i = 1; i < 256 && ok; ++i) {
            tt.idx[i] = load_le_unchecked<uint16_t>(q + 2 * i);
            ok = tt.idx[i] > tt.idx[i - 1] &&
                 static_cast<size_t>(tt.idx[i] - tt.idx[i - 1]) <= kMaxTokenLen + 1;
        }
        if (!ok) continue;
        // The token strings end right before token_index (plus < 8 bytes of alignment).
        const uint64_t last = tt.idx[255];
        if (p < last + 1) continue;
        auto t = align_down(p - last - 1);
        for (; t && p - *t <= last + kMaxTokenLen + 9;
             t = *t >= 8 ? align_down(*t - 8) : std::nullopt) {
            if (tokens_end_at(*t, tt)) {
                tt.table = *t;
                out.push_back(tt);
                break;
            }
        }
    }
    return out;
}

bool Decoder::tokens_end_at(uint64_t t, const TokenTables& tt) const {
    const uint64_t p = tt.index;
    // Every slot of a real table holds a token (a used character or a frequent pair); a run
    // of empty strings is some other u16 table that happens to count up from 0.
    int empty = 0;
    for (int i = 0; i < 255; ++i) empty += tt.idx[i + 1] - tt.idx[i] == 1;
    if (empty > 128) return false;
    for (int i = 0; i < 256; ++i) {
        const uint64_t start = t + tt.idx[i];
        uint64_t end;  // offset of the terminating NUL
        if (i < 255) {
            end = t + tt.idx[i + 1] - 1;
        } else {
            end = start;
            while (end < p && b_[end] != 0) ++end;
            if (end >= p) return false;
        }
        if (end >= p || b_[end] != 0) return false;
        for (uint64_t k = start; k < end; ++k)
            if (b_[k] < 0x21 || b_[k] > 0x7e) return false;
        if (i == 255) {
            if (end - start > kMaxTokenLen || p - (end + 1) >= 8) return false;
            for (uint64_t k = end + 1; k < p; ++k)
                if (b_[k] != 0) return false;
        }
    }
    return true;
}

std::optional<Markers> Decoder::markers_ending_at(uint64_t end) const {
    if (end < 4 || end > b_.size()) return std::nullopt;
    uint64_t pos = end - 4;
    uint32_t v = u32(pos);
    uint32_t count = 1;
    while (v != 0) {
        if (pos < 4 || count > kMaxSymbols / 256) return std::nullopt;
        const uint32_t prev = u32(pos - 4);
        if (prev >= v || v - prev < 256 * kMinEntryBytes || v - prev > 256 * (kMaxEntryLen + 2))
            return std::nullopt;
        pos -= 4;
        v = prev;
        ++count;
    }
    if (!aligned(pos)) return std::nullopt;
    return Markers{pos, count};
}

// Walks the length prefixes of n entries from `start`; they must agree with every marker and
// end within alignment padding of the markers table.
bool Decoder::names_fit(uint64_t start, uint32_t n, const Markers& m) const {
    uint64_t pos = start;
    const uint64_t end = m.at;
    for (uint32_t i = 0; i < n; ++i) {
        if ((i & 0xff) == 0 && pos - start != u32(m.at + 4 * uint64_t{i >> 8})) return false;
        if (pos >= end) return false;
        uint32_t len = b_[pos++];
        if (len & 0x80) {
            if (pos >= end) return false;
            len = (len & 0x7f) | (uint32_t{b_[pos++]} << 7);
        }
        if (len == 0 || len > kMaxEntryLen || end - pos < len) return false;
        pos += len;
    }
    if (end - pos >= 8) return false;
    for (; pos < end; ++pos)
        if (b_[pos] != 0) return false;
    return true;
}

bool Decoder::try_names(const TokenTables& tt, const Markers& m, uint32_t lo, uint32_t hi,
                        KallsymsLayout& out) const {
    const uint32_t last_marker = u32(m.at + 4 * uint64_t{m.count - 1});
    const uint32_t tail_max = hi - 256 * (m.count - 1);  // symbols after the last marker
    // names + last_marker + (at least one entry) <= markers
    if (m.at < uint64_t{last_marker} + kMinEntryBytes + 8) return false;
    const uint64_t hi_start = m.at - last_marker - kMinEntryBytes;
    const uint64_t span = uint64_t{tail_max} * (kMaxEntryLen + 2) + 8;
    const uint64_t lo_start = hi_start > span + 8 ? hi_start - span : 8;
    for (auto s = align_down(hi_start); s && *s >= lo_start;
         s = *s >= 8 ? align_down(*s - 8) : std::nullopt) {
        const uint32_t n = u32(*s - 8);
        if (n < lo || n > hi || u32(*s - 4) != 0) continue;
        if (!names_fit(*s, n, m)) continue;
        out.num_syms = n;
        out.num_syms_at = *s - 8;
        out.names = *s;
        out.markers = m.at;
        out.token_table = tt.table;
        out.token_index = tt.index;
        return true;
    }
    return false;
}

bool Decoder::decode_addresses(KallsymsLayout& l, std::vector<uint64_t>& addrs) const {
    const uint64_t n = l.num_syms;
    addrs.assign(n, 0);
    if (l.base_relative) {
        if (!in_bounds(b_.size(), l.addresses, 4 * n)) return false;
        auto rb = load_le<uint64_t>(b_, l.relative_base_at);
        if (!rb || *rb == 0) return false;
        l.relative_base = *rb;
        l.absolute_percpu = false;
        for (uint64_t i = 0; i < n; ++i)
            if (static_cast<int32_t>(load_le_unchecked<uint32_t>(b_.data() + l.addresses + 4 * i)) <
                0)
                l.absolute_percpu = true;
        for (uint64_t i = 0; i < n; ++i) {
            const auto off =
                static_cast<int32_t>(load_le_unchecked<uint32_t>(b_.data() + l.addresses + 4 * i));
            if (!l.absolute_percpu)
                addrs[i] = l.relative_base + static_cast<uint32_t>(off);
            else if (off >= 0)
                addrs[i] = static_cast<uint64_t>(off);
            else
                addrs[i] = l.relative_base - 1 - static_cast<uint64_t>(int64_t{off});
        }
    } else {
        if (!in_bounds(b_.size(), l.addresses, 8 * n)) return false;
        for (uint64_t i = 0; i < n; ++i)
            addrs[i] = load_le_unchecked<uint64_t>(b_.data() + l.addresses + 8 * i);
    }
    // scripts/kallsyms sorts by address: the right table decodes to a sorted list.
    uint64_t unsorted = 0;
    for (uint64_t i = 1; i < n; ++i) unsorted += addrs[i] < addrs[i - 1];
    return unsorted <= n / 1000;
}

bool Decoder::try_addresses(const TokenTables& tt, KallsymsLayout& l) const {
    const uint64_t n = l.num_syms;
    const uint64_t rel_bytes = (4 * n + 7) & ~uint64_t{7};
    const uint64_t after_index = tt.index + 512;  // token_index is 256 u16, 8-aligned
    struct Candidate {
        bool relative;
        uint64_t table;
        uint64_t base_at;
    };
    std::vector<Candidate> candidates;
    // Before num_syms (up to 6.3) ...
    if (l.num_syms_at >= 8 + rel_bytes)
        candidates.push_back({true, l.num_syms_at - 8 - rel_bytes, l.num_syms_at - 8});
    if (l.num_syms_at >= 8 * n) candidates.push_back({false, l.num_syms_at - 8 * n, 0});
    // ... or after token_index (6.4 on).
    candidates.push_back({true, after_index, after_index + rel_bytes});
    candidates.push_back({false, after_index, 0});
    std::vector<uint64_t> addrs;
    for (const auto& c : candidates) {
        KallsymsLayout t = l;
        t.base_relative = c.relative;
        t.addresses = c.table;
        t.relative_base_at = c.base_at;
        if (decode_addresses(t, addrs)) {
            l = t;
            return true;
        }
    }
    return false;
}

std::vector<KernelSymbol> Decoder::expand(const TokenTables& tt, const KallsymsLayout& l) const {
    std::vector<uint64_t> addrs;
    KallsymsLayout tmp = l;
    if (!decode_addresses(tmp, addrs)) fail("kallsyms: address table vanished");  // cannot happen
    // Token strings were validated in tokens_end_at(); cache them.
    std::array<std::string_view, 256> tokens;
    for (int i = 0; i < 256; ++i)
        tokens[i] = load_cstring(b_, tt.table + tt.idx[i], kMaxTokenLen).value_or("");
    std::vector<KernelSymbol> out;
    out.reserve(l.num_syms);
    uint64_t pos = l.names;
    std::string buf;
    for (uint32_t i = 0; i < l.num_syms; ++i) {
        // names_fit() already proved every length is in bounds.
        uint32_t len = b_[pos++];
        if (len & 0x80) len = (len & 0x7f) | (uint32_t{b_[pos++]} << 7);
        buf.clear();
        for (uint32_t k = 0; k < len && buf.size() <= kMaxNameLen; ++k)
            buf.append(tokens[b_[pos + k]]);
        pos += len;
        if (buf.size() < 2) continue;  // a type char and at least one name char
        if (buf.size() > kMaxNameLen + 1) buf.resize(kMaxNameLen + 1);
        if (keep_ && !keep_(std::string_view(buf).substr(1))) continue;
        out.push_back(KernelSymbol{buf.substr(1), buf[0], addrs[i]});
    }
    return out;
}

Kallsyms Decoder::run(KallsymsLayout* layout_out) {
    const auto tables = find_token_tables();
    if (tables.empty()) fail("kallsyms: no kallsyms_token_table/kallsyms_token_index found");
    KallsymsLayout l;
    auto accept = [&](const TokenTables& tt, const Markers& m, uint32_t lo, uint32_t hi) {
        return try_names(tt, m, lo, hi, l) && try_addresses(tt, l);
    };
    for (const auto& tt : tables) {
        const TokenTables* found = nullptr;
        // Markers directly before token_table (up to 6.1, and 6.4 on).
        for (uint64_t pad : {0, 4}) {
            if (found || tt.table < pad || (pad && u32(tt.table - pad) != 0)) continue;
            if (auto m = markers_ending_at(tt.table - pad))
                if (accept(tt, *m, 256 * (m->count - 1) + 1, 256 * m->count)) found = &tt;
        }
        // seqs_of_names in between (6.2/6.3 and stable backports such as Debian's 6.1): a
        // permutation of 0..n-1 as u32 or, later, 3-byte big-endian entries. Its length is one
        // more than its largest element, which gives us n exactly.
        for (const int width : {3, 4}) {
            for (uint64_t pad = 0; pad < 8 && !found && pad <= tt.table; ++pad) {
                if (pad && b_[tt.table - pad] != 0) break;  // padding is zeros
                const uint64_t end = tt.table - pad;
                uint32_t max = 0;
                for (uint32_t k = 1; k <= kMaxSymbols && end >= uint64_t{k} * width; ++k) {
                    const uint64_t at = end - uint64_t{k} * width;
                    const uint32_t v = width == 4 ? u32(at)
                                                  : (uint32_t{b_[at]} << 16) |
                                                        (uint32_t{b_[at + 1]} << 8) | b_[at + 2];
                    if (v >= kMaxSymbols) break;
                    max = std::max(max, v);
                    if (k != max + 1 || !aligned(at)) continue;
                    for (uint64_t mpad : {0, 4}) {
                        if (at < mpad || (mpad && u32(at - mpad) != 0)) continue;
                        auto m = markers_ending_at(at - mpad);
                        if (m && m->count == (k + 255) / 256 && accept(tt, *m, k, k)) {
                            found = &tt;
                            break;
                        }
                    }
                    if (found) break;
                }
            }
            if (found) break;
        }
        if (found) {
            if (layout_out) *layout_out = l;
            return Kallsyms(expand(*found, l));
        }
    }
    fail(
        "kallsyms: found {} token table candidate(s) but no consistent names/markers/addresses "
        "around them",
        tables.size());
}

char symtab_type(const ElfSymbol& s, const ElfImage& elf) {
    const unsigned bind = ELF64_ST_BIND(s.info);
    char c = '?';
    if (s.shndx == SHN_ABS) {
        c = 'a';
    } else if (s.shndx == SHN_UNDEF) {
        c = 'u';
    } else if (s.shndx < elf.sections().size()) {
        const auto& sec = elf.sections()[s.shndx];
        if (sec.name == ".data..percpu")
            c = 'a';  // like kallsyms with CONFIG_KALLSYMS_ABSOLUTE_PERCPU: not slid
        else if (sec.flags & SHF_EXECINSTR)
            c = 't';
        else if (sec.type == SHT_NOBITS)
            c = 'b';
        else if (sec.flags & SHF_WRITE)
            c = 'd';
        else
            c = 'r';
    }
    if (bind == STB_WEAK) return c == 't' ? 'W' : 'V';
    if (bind == STB_GLOBAL && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return c;
}

}  // namespace

Kallsyms::Kallsyms(std::vector<KernelSymbol> symbols) : symbols_(std::move(symbols)) {
    if (symbols_.size() > kMaxSymbols) fail("kallsyms: too many symbols ({})", symbols_.size());
    auto by_address = [](const auto& a, const auto& b) { return a.address < b.address; };
    // kallsyms tables are sorted already; only other sources need the sort.
    if (!std::is_sorted(symbols_.begin(), symbols_.end(), by_address))
        std::stable_sort(symbols_.begin(), symbols_.end(), by_address);
    relocatable_.clear();
    for (uint32_t i = 0; i < symbols_.size(); ++i)
        if (!symbols_[i].absolute() && symbols_[i].type != 'u' && symbols_[i].type != 'U')
            relocatable_.push_back(i);
    index();
    if (const auto* e = find("_end"); e && !e->absolute())
        end_ = e->address;
    else if (!relocatable_.empty())
        end_ = symbols_[relocatable_.back()].address + 0x1000;
}

Kallsyms::Kallsyms(const Kallsyms& other)
    : symbols_(other.symbols_),
      relocatable_(other.relocatable_),
      end_(other.end_),
      slide_(other.slide_) {
    index();
}

Kallsyms& Kallsyms::operator=(const Kallsyms& other) {
    if (this != &other) {
        symbols_ = other.symbols_;
        relocatable_ = other.relocatable_;
        end_ = other.end_;
        slide_ = other.slide_;
        index();
    }
    return *this;
}

void Kallsyms::index() {
    by_name_.clear();
    by_name_.reserve(symbols_.size());
    // In address order, so the first insertion of a name is its lowest address.
    for (uint32_t i = 0; i < symbols_.size(); ++i) by_name_.emplace(symbols_[i].name, i);
}

Kallsyms Kallsyms::from_tables(std::span<const uint8_t> region, uint64_t region_vaddr,
                               KallsymsLayout* layout,
                               const std::function<bool(std::string_view)>& keep) {
    return Decoder(region, region_vaddr, keep).run(layout);
}

Kallsyms Kallsyms::from_elf_symtab(const ElfImage& elf) {
    std::vector<KernelSymbol> out;
    for (const auto& s : elf.symtab()) {
        const unsigned type = ELF64_ST_TYPE(s.info);
        if (type == STT_SECTION || type == STT_FILE || s.shndx == SHN_UNDEF) continue;
        out.push_back(KernelSymbol{s.name, symtab_type(s, elf), s.value});
    }
    if (out.empty()) fail("kallsyms: the ELF .symtab holds no usable symbols");
    return Kallsyms(std::move(out));
}

Kallsyms Kallsyms::from_vmlinux(const ElfImage& elf) {
    if (elf.has_symtab()) {
        try {
            return from_elf_symtab(elf);
        } catch (const Error& e) {
            log::debug("{}; trying the kallsyms tables", e.what());
        }
    }
    std::string first_error;
    if (const auto* rodata = elf.find_section(".rodata")) {
        try {
            return from_tables(elf.section_data(*rodata), rodata->addr);
        } catch (const Error& e) {
            first_error = e.what();
            log::debug("{} in .rodata; scanning the whole file", e.what());
        }
    }
    try {
        return from_tables(elf.bytes(), 0);
    } catch (const Error& e) {
        fail("no kernel symbols: the vmlinux has no .symtab and {} (is CONFIG_KALLSYMS set?)",
             first_error.empty() ? e.what() : first_error);
    }
}

const KernelSymbol* Kallsyms::find(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &symbols_[it->second];
}

std::optional<uint64_t> Kallsyms::link_address(std::string_view name) const {
    const auto* s = find(name);
    if (!s) return std::nullopt;
    return s->address;
}

std::optional<uint64_t> Kallsyms::lookup(std::string_view name) const {
    const auto* s = find(name);
    if (!s) return std::nullopt;
    return s->absolute() ? s->address : s->address + static_cast<uint64_t>(slide_);
}

int64_t Kallsyms::calibrate(std::string_view name, uint64_t runtime_address) {
    const auto* s = find(name);
    if (!s) fail("kallsyms: cannot derive the KASLR slide: no symbol '{}'", name);
    if (s->absolute())
        fail("kallsyms: cannot derive the KASLR slide from absolute symbol '{}'", name);
    const auto slide = static_cast<int64_t>(runtime_address - s->address);
    if (slide % 0x1000 != 0)
        fail(
            "kallsyms: runtime address {:#x} of '{}' (link {:#x}) gives a slide {:#x} that is "
            "not page-aligned; wrong symbol or address",
            runtime_address, name, s->address, slide);
    slide_ = slide;
    return slide;
}

std::optional<Kallsyms::Location> Kallsyms::symbolize(uint64_t runtime_address) const {
    if (relocatable_.empty()) return std::nullopt;
    const uint64_t link = runtime_address - static_cast<uint64_t>(slide_);
    if (link < symbols_[relocatable_.front()].address || link >= end_) return std::nullopt;
    auto it = std::upper_bound(relocatable_.begin(), relocatable_.end(), link,
                               [&](uint64_t a, uint32_t i) { return a < symbols_[i].address; });
    const auto& s = symbols_[*std::prev(it)];
    return Location{&s, link - s.address};
}

std::string Kallsyms::describe(uint64_t runtime_address) const {
    auto loc = symbolize(runtime_address);
    if (!loc) return fmt::format("{:#x}", runtime_address);
    if (loc->offset == 0) return loc->symbol->name;
    return fmt::format("{}+{:#x}", loc->symbol->name, loc->offset);
}

}  // namespace nitro::linux_os
