// SPDX-License-Identifier: MIT
#include "listener/gdb/target_description.h"

#include <algorithm>
#include <set>

#include "listener/gdb/rsp_codec.h"
#include "nitro/error.h"

namespace nitro::gdb {

namespace {

// Descriptions come from the stub, which is untrusted: everything has a ceiling.
constexpr int kMaxIncludeDepth = 8;
constexpr int kMaxFiles = 64;
constexpr std::size_t kMaxRegisters = 4096;
constexpr int kMaxRegnum = 65535;
constexpr int kMaxBitsize = 8192;
constexpr std::size_t kMaxAnnexLen = 128;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_name_char(char c) {
    return c != '>' && c != '/' && c != '=' && c != '<' && !is_space(c) && c != '"' && c != '\'';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// The five predefined entities and ASCII character references; anything else stays as written.
std::string decode_entities(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        auto semi = s.find(';', i);
        if (semi == std::string_view::npos || semi - i > 8) {
            out += s[i];
            continue;
        }
        std::string_view ent = s.substr(i + 1, semi - i - 1);
        char c = 0;
        if (ent == "lt")
            c = '<';
        else if (ent == "gt")
            c = '>';
        else if (ent == "amp")
            c = '&';
        else if (ent == "quot")
            c = '"';
        else if (ent == "apos")
            c = '\'';
        else if (ent.size() > 1 && ent[0] == '#') {
            // Character references, ASCII only: enough for names and file names.
            bool hex = ent[1] == 'x';
            std::string_view digits = ent.substr(hex ? 2 : 1);
            std::optional<std::uint64_t> v;
            if (hex) {
                v = parse_hex(digits);
            } else if (auto d = parse_decimal(digits)) {
                v = static_cast<std::uint64_t>(*d);
            }
            if (v && *v > 0 && *v < 0x80) c = static_cast<char>(*v);
        }
        if (c == 0) {
            out += s[i];
            continue;
        }
        out += c;
        i = semi;
    }
    return out;
}

std::size_t skip_to(std::string_view xml, std::size_t from, std::string_view end,
                    const char* what) {
    auto at = xml.find(end, from);
    if (at == std::string_view::npos)
        fail("gdb: malformed target description: unterminated {}", what);
    return at + end.size();
}

// <!DOCTYPE ...> may carry an internal subset in brackets, which may itself hold '>'.
std::size_t skip_declaration(std::string_view xml, std::size_t from) {
    int depth = 0;
    for (std::size_t i = from; i < xml.size(); ++i) {
        if (xml[i] == '[')
            ++depth;
        else if (xml[i] == ']')
            --depth;
        else if (xml[i] == '>' && depth <= 0)
            return i + 1;
    }
    fail("gdb: malformed target description: unterminated declaration");
}

std::optional<int> attr_int(const XmlTag& tag, std::string_view key, int max) {
    const std::string* v = tag.attribute(key);
    if (!v) return std::nullopt;
    auto n = parse_decimal(trim(*v));
    if (!n) fail("gdb: target description: bad {}=\"{}\"", key, describe(*v));
    if (*n > max) fail("gdb: target description: {}={} is out of range", key, *n);
    return n;
}

bool valid_annex(std::string_view annex) {
    if (annex.empty() || annex.size() > kMaxAnnexLen) return false;
    return std::all_of(annex.begin(), annex.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

bool is_include(std::string_view tag_name) {
    auto colon = tag_name.find(':');
    return (colon == std::string_view::npos ? tag_name : tag_name.substr(colon + 1)) == "include";
}

class DescriptionBuilder {
  public:
    explicit DescriptionBuilder(const RegisterMap::Fetch& fetch) : fetch_(fetch) {}

    void load(const std::string& annex, int depth) {
        if (depth > kMaxIncludeDepth) fail("gdb: target description includes nest too deep");
        if (!valid_annex(annex))
            fail("gdb: target description names an invalid file '{}'", describe(annex));
        if (!seen_.insert(annex).second)
            fail("gdb: target description includes '{}' twice", describe(annex));
        if (static_cast<int>(seen_.size()) > kMaxFiles)
            fail("gdb: target description spans more than {} files", kMaxFiles);
        std::string xml = fetch_(annex);
        std::string saved_feature = feature_;
        for (const XmlTag& tag : scan_xml_tags(xml)) {
            if (tag.closing) {
                if (tag.name == "feature") feature_.clear();
                continue;
            }
            if (tag.name == "architecture") {
                if (architecture_.empty()) architecture_ = tag.text;
            } else if (tag.name == "feature") {
                const std::string* name = tag.attribute("name");
                feature_ = name ? *name : std::string();
            } else if (is_include(tag.name)) {
                const std::string* href = tag.attribute("href");
                if (!href) fail("gdb: target description: include without href in '{}'", annex);
                load(*href, depth + 1);
            } else if (tag.name == "reg") {
                add_register(tag, annex);
            }
        }
        feature_ = saved_feature;
    }

    RegisterMap finish() {
        map_.finish();
        return std::move(map_);
    }

    std::string architecture_;

  private:
    void add_register(const XmlTag& tag, const std::string& annex) {
        RegisterInfo r;
        const std::string* name = tag.attribute("name");
        if (!name || name->empty())
            fail("gdb: target description: register without a name in '{}'", annex);
        r.name = *name;
        auto bits = attr_int(tag, "bitsize", kMaxBitsize);
        if (!bits || *bits == 0 || *bits % 8)
            fail("gdb: target description: register '{}' has no usable bitsize", describe(r.name));
        r.bitsize = *bits;
        // Without regnum, a register follows the one before it (GDB's rule).
        r.regnum = attr_int(tag, "regnum", kMaxRegnum).value_or(next_regnum_);
        if (r.regnum > kMaxRegnum) fail("gdb: target description: too many register numbers");
        next_regnum_ = r.regnum + 1;
        r.feature = feature_;
        if (const std::string* g = tag.attribute("group")) r.group = *g;
        if (++count_ > kMaxRegisters)
            fail("gdb: target description has more than {} registers", kMaxRegisters);
        map_.add(std::move(r));
    }

    const RegisterMap::Fetch& fetch_;
    RegisterMap map_;
    std::set<std::string> seen_;
    std::string feature_;
    int next_regnum_ = 0;
    std::size_t count_ = 0;
};

}  // namespace

const std::string* XmlTag::attribute(std::string_view key) const {
    for (const auto& [k, v] : attributes)
        if (k == key) return &v;
    return nullptr;
}

std::vector<XmlTag> scan_xml_tags(std::string_view xml) {
    std::vector<XmlTag> tags;
    std::size_t pos = 0;
    auto add_text = [&](std::string_view text) {
        if (!tags.empty() && tags.back().text.empty())
            tags.back().text = decode_entities(trim(text));
    };
    while (pos < xml.size()) {
        std::size_t lt = xml.find('<', pos);
        if (lt == std::string_view::npos) {
            add_text(xml.substr(pos));
            break;
        }
        add_text(xml.substr(pos, lt - pos));
        std::string_view rest = xml.substr(lt);
        if (rest.starts_with("<!--")) {
            pos = skip_to(xml, lt + 4, "-->", "comment");
            continue;
        }
        if (rest.starts_with("<![CDATA[")) {
            pos = skip_to(xml, lt + 9, "]]>", "CDATA section");
            continue;
        }
        if (rest.starts_with("<?")) {
            pos = skip_to(xml, lt + 2, "?>", "processing instruction");
            continue;
        }
        if (rest.starts_with("<!")) {
            pos = skip_declaration(xml, lt + 2);
            continue;
        }
        XmlTag tag;
        std::size_t i = lt + 1;
        auto need = [&](std::size_t at) {
            if (at >= xml.size()) fail("gdb: malformed target description: unterminated tag");
        };
        need(i);
        if (xml[i] == '/') {
            tag.closing = true;
            ++i;
        }
        std::size_t name_start = i;
        while (i < xml.size() && is_name_char(xml[i])) ++i;
        tag.name = xml.substr(name_start, i - name_start);
        if (tag.name.empty()) fail("gdb: malformed target description: tag without a name");
        for (;;) {
            while (i < xml.size() && is_space(xml[i])) ++i;
            need(i);
            if (xml[i] == '>') {
                ++i;
                break;
            }
            if (xml[i] == '/') {
                need(i + 1);
                if (xml[i + 1] != '>')
                    fail("gdb: malformed target description: stray '/' in <{}>",
                         describe(tag.name));
                tag.self_closing = true;
                i += 2;
                break;
            }
            std::size_t key_start = i;
            while (i < xml.size() && is_name_char(xml[i])) ++i;
            if (i == key_start)
                fail("gdb: malformed target description: garbage in <{}>", describe(tag.name));
            std::string key(xml.substr(key_start, i - key_start));
            while (i < xml.size() && is_space(xml[i])) ++i;
            need(i);
            if (xml[i] != '=')
                fail("gdb: malformed target description: attribute {} has no value", describe(key));
            ++i;
            while (i < xml.size() && is_space(xml[i])) ++i;
            need(i);
            char quote = xml[i];
            if (quote != '"' && quote != '\'')
                fail("gdb: malformed target description: unquoted value for {}", describe(key));
            std::size_t close = xml.find(quote, i + 1);
            if (close == std::string_view::npos)
                fail("gdb: malformed target description: unterminated value for {}", describe(key));
            tag.attributes.emplace_back(std::move(key),
                                        decode_entities(xml.substr(i + 1, close - i - 1)));
            i = close + 1;
        }
        tags.push_back(std::move(tag));
        pos = i;
    }
    return tags;
}

RegisterMap RegisterMap::from_target_xml(const Fetch& fetch, const std::string& root) {
    DescriptionBuilder builder(fetch);
    builder.load(root, 0);
    std::string arch = builder.architecture_;
    RegisterMap map = builder.finish();
    map.architecture_ = std::move(arch);
    if (map.empty()) fail("gdb: target description '{}' lists no registers", root);
    return map;
}

RegisterMap RegisterMap::x86_64_fallback() {
    // QEMU's x86-64 gdbstub order (gdb-xml/i386-64bit.xml); used only without qXfer.
    struct Row {
        const char* name;
        int bits;
    };
    static const Row kRows[] = {
        {"rax", 64},     {"rbx", 64},       {"rcx", 64},    {"rdx", 64}, {"rsi", 64},
        {"rdi", 64},     {"rbp", 64},       {"rsp", 64},    {"r8", 64},  {"r9", 64},
        {"r10", 64},     {"r11", 64},       {"r12", 64},    {"r13", 64}, {"r14", 64},
        {"r15", 64},     {"rip", 64},       {"eflags", 32}, {"cs", 32},  {"ss", 32},
        {"ds", 32},      {"es", 32},        {"fs", 32},     {"gs", 32},  {"fs_base", 64},
        {"gs_base", 64}, {"k_gs_base", 64}, {"cr0", 64},    {"cr2", 64}, {"cr3", 64},
        {"cr4", 64},     {"cr8", 64},       {"efer", 64},
    };
    RegisterMap map;
    int n = 0;
    for (const Row& row : kRows) map.add(RegisterInfo{row.name, n++, row.bits, 0, "fallback", {}});
    for (int i = 0; i < 8; ++i)
        map.add(RegisterInfo{fmt::format("st{}", i), n++, 80, 0, "fallback", {}});
    for (const char* name : {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"})
        map.add(RegisterInfo{name, n++, 32, 0, "fallback", {}});
    for (int i = 0; i < 16; ++i)
        map.add(RegisterInfo{fmt::format("xmm{}", i), n++, 128, 0, "fallback", {}});
    map.add(RegisterInfo{"mxcsr", n++, 32, 0, "fallback", {}});
    map.finish();
    map.architecture_ = "i386:x86-64";
    return map;
}

void RegisterMap::add(RegisterInfo reg) { regs_.push_back(std::move(reg)); }

void RegisterMap::finish() {
    // The 'g' packet holds the registers in register-number order, packed without gaps.
    std::stable_sort(regs_.begin(), regs_.end(), [](const RegisterInfo& a, const RegisterInfo& b) {
        return a.regnum < b.regnum;
    });
    by_name_.clear();
    by_number_.clear();
    g_size_ = 0;
    for (std::size_t i = 0; i < regs_.size(); ++i) {
        RegisterInfo& r = regs_[i];
        if (!by_name_.emplace(r.name, i).second)
            fail("gdb: target description defines register '{}' twice", describe(r.name));
        if (!by_number_.emplace(r.regnum, i).second)
            fail("gdb: target description gives number {} to '{}' and '{}'", r.regnum,
                 regs_[by_number_.at(r.regnum)].name, r.name);
        r.offset = g_size_;
        g_size_ += r.size();
    }
}

const RegisterInfo* RegisterMap::find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : &regs_[it->second];
}

const RegisterInfo& RegisterMap::at(std::string_view name) const {
    const RegisterInfo* r = find(name);
    if (!r) fail("gdb: the stub has no register named '{}'", describe(name));
    return *r;
}

const RegisterInfo* RegisterMap::by_number(int regnum) const {
    auto it = by_number_.find(regnum);
    return it == by_number_.end() ? nullptr : &regs_[it->second];
}

std::uint64_t le_to_u64(std::span<const std::uint8_t> bytes) {
    NITRO_ASSERT(bytes.size() <= 8);
    std::uint64_t v = 0;
    for (std::size_t i = bytes.size(); i-- > 0;) v = v << 8 | bytes[i];
    return v;
}

std::vector<std::uint8_t> u64_to_le(std::uint64_t value, std::size_t size) {
    std::vector<std::uint8_t> out(size, 0);
    for (std::size_t i = 0; i < size && i < 8; ++i)
        out[i] = static_cast<std::uint8_t>(value >> (8 * i));
    return out;
}

RegisterFile::RegisterFile(std::shared_ptr<const RegisterMap> map, std::vector<std::uint8_t> bytes,
                           std::vector<bool> known)
    : map_(std::move(map)), bytes_(std::move(bytes)), known_(std::move(known)) {
    NITRO_ASSERT(map_ && bytes_.size() == known_.size());
}

bool RegisterFile::available(std::string_view name) const {
    const RegisterInfo* r = map_->find(name);
    if (!r || r->offset + r->size() > bytes_.size()) return false;
    for (std::size_t i = r->offset; i < r->offset + r->size(); ++i)
        if (!known_[i]) return false;
    return true;
}

std::span<const std::uint8_t> RegisterFile::raw(std::string_view name) const {
    const RegisterInfo& r = map_->at(name);
    if (!available(name)) fail("gdb: register '{}' is not available in the 'g' reply", name);
    return std::span(bytes_).subspan(r.offset, r.size());
}

std::uint64_t RegisterFile::get(std::string_view name) const {
    const RegisterInfo& r = map_->at(name);
    if (r.size() > 8)
        fail("gdb: register '{}' is {} bits wide; read it with raw()", name, r.bitsize);
    return le_to_u64(raw(name));
}

std::optional<std::uint64_t> RegisterFile::try_get(std::string_view name) const {
    const RegisterInfo* r = map_->find(name);
    if (!r || r->size() > 8 || !available(name)) return std::nullopt;
    return le_to_u64(std::span(bytes_).subspan(r->offset, r->size()));
}

}  // namespace nitro::gdb
