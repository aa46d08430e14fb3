// SPDX-License-Identifier: MIT
#include "os/linux/isf_profile.h"

#include <algorithm>
#include <array>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/kernel_image.h"

namespace nitro::linux_os {
namespace {

using Json = nlohmann::json;

constexpr int kMaxDepth = 16;  // type references and anonymous-member nesting
constexpr std::string_view kBannerPrefix = "Linux version ";

const Json* child(const Json& j, std::string_view key) {
    if (!j.is_object()) return nullptr;
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}

std::optional<uint64_t> unsigned_of(const Json* j) {
    if (!j || !j->is_number_integer()) return std::nullopt;
    if (j->is_number_unsigned()) return j->get<uint64_t>();
    const auto v = j->get<int64_t>();
    if (v < 0) return std::nullopt;
    return static_cast<uint64_t>(v);
}

std::string release_of(std::string_view banner) {
    if (!banner.starts_with(kBannerPrefix)) return {};
    banner.remove_prefix(kBannerPrefix.size());
    return std::string(banner.substr(0, banner.find(' ')));
}

// RFC 4648 base64 (ISF constant_data), bounded; nullopt on malformed input.
std::optional<std::string> base64_decode(std::string_view in, size_t max_out) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        const int v = value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
            if (out.size() > max_out) return std::nullopt;
        }
    }
    return out;
}

// Layout lookups over the ISF's user_types and base_types.
class Isf {
  public:
    explicit Isf(const Json& j) : j_(j) {
        user_ = child(j, "user_types");
        base_ = child(j, "base_types");
        enums_ = child(j, "enums");
        symbols_ = child(j, "symbols");
        if (!user_ || !user_->is_object() || !base_ || !base_->is_object() || !symbols_ ||
            !symbols_->is_object())
            fail("ISF: not a Volatility 3 symbol table (no user_types, base_types or symbols)");
    }

    const Json* user_type(std::string_view name) const {
        const Json* t = child(*user_, name);
        return t && t->is_object() ? t : nullptr;
    }

    std::optional<uint64_t> size_of(std::string_view name) const {
        if (const Json* t = user_type(name)) return unsigned_of(child(*t, "size"));
        if (const Json* b = child(*base_, name)) return unsigned_of(child(*b, "size"));
        return std::nullopt;
    }

    // Size of a type reference ({"kind": ..., "name"/"subtype"/"count"}).
    std::optional<uint64_t> ref_size(const Json& ref, int depth) const {
        if (depth > kMaxDepth || !ref.is_object()) return std::nullopt;
        const Json* kind = child(ref, "kind");
        if (!kind || !kind->is_string()) return std::nullopt;
        const auto k = kind->get<std::string>();
        const Json* name = child(ref, "name");
        const std::string n = name && name->is_string() ? name->get<std::string>() : "";
        if (k == "base") {
            const Json* b = child(*base_, n);
            return b ? unsigned_of(child(*b, "size")) : std::nullopt;
        }
        if (k == "pointer") {
            const Json* p = child(*base_, "pointer");
            return p ? unsigned_of(child(*p, "size")) : std::optional<uint64_t>(8);
        }
        if (k == "struct" || k == "union" || k == "class") {
            const Json* t = user_type(n);
            return t ? unsigned_of(child(*t, "size")) : std::nullopt;
        }
        if (k == "enum") {
            const Json* e = enums_ ? child(*enums_, n) : nullptr;
            return e ? unsigned_of(child(*e, "size")) : std::nullopt;
        }
        if (k == "array") {
            const auto count = unsigned_of(child(ref, "count"));
            const Json* sub = child(ref, "subtype");
            if (!count || !sub || *count > (1u << 24)) return std::nullopt;
            const auto elem = ref_size(*sub, depth + 1);
            if (!elem || *elem > (1u << 24)) return std::nullopt;
            return *count * *elem;
        }
        if (k == "bitfield") {
            const Json* t = child(ref, "type");
            return t ? ref_size(*t, depth + 1) : std::nullopt;
        }
        return std::nullopt;
    }

    std::optional<MemberInfo> member(std::string_view type, std::string_view name,
                                     int depth = 0) const {
        if (depth > kMaxDepth) return std::nullopt;
        const Json* t = user_type(type);
        const Json* fields = t ? child(*t, "fields") : nullptr;
        if (!fields || !fields->is_object()) return std::nullopt;
        if (const Json* f = child(*fields, name); f && f->is_object()) return info(*f);
        // Members of anonymous structs/unions: dwarf2json marks them "anonymous" and names
        // them (and their types) "unnamed_...".
        for (const auto& [fname, f] : fields->items()) {
            if (!f.is_object()) continue;
            const Json* anon = child(f, "anonymous");
            const Json* ref = child(f, "type");
            const Json* tname = ref ? child(*ref, "name") : nullptr;
            const bool anonymous =
                (anon && anon->is_boolean() && anon->get<bool>()) || fname.starts_with("unnamed_");
            if (!anonymous || !tname || !tname->is_string()) continue;
            const auto off = unsigned_of(child(f, "offset"));
            if (!off) continue;
            if (auto m = member(tname->get<std::string>(), name, depth + 1)) {
                m->bit_offset += *off * 8;
                return m;
            }
        }
        return std::nullopt;
    }

    std::optional<uint64_t> symbol_address(std::string_view name) const {
        const Json* s = child(*symbols_, name);
        return s ? unsigned_of(child(*s, "address")) : std::nullopt;
    }

    std::string banner() const {
        const Json* s = child(*symbols_, "linux_banner");
        const Json* data = s ? child(*s, "constant_data") : nullptr;
        if (!data || !data->is_string()) return {};
        auto text = base64_decode(data->get<std::string>(), 1024);
        if (!text) return {};
        std::string b = text->substr(0, text->find('\0'));
        while (!b.empty() && b.back() == '\n') b.pop_back();
        return b.starts_with(kBannerPrefix) ? b : std::string();
    }

  private:
    std::optional<MemberInfo> info(const Json& f) const {
        const auto off = unsigned_of(child(f, "offset"));
        const Json* ref = child(f, "type");
        if (!off || !ref || *off > (1u << 24)) return std::nullopt;
        MemberInfo m;
        m.bit_offset = *off * 8;
        const Json* kind = child(*ref, "kind");
        if (kind && kind->is_string() && kind->get<std::string>() == "bitfield") {
            const auto pos = unsigned_of(child(*ref, "bit_position"));
            const auto len = unsigned_of(child(*ref, "bit_length"));
            if (!pos || !len || *len == 0 || *len > 64 || *pos > 64) return std::nullopt;
            m.bit_offset += *pos;
            m.bit_size = static_cast<uint32_t>(*len);
        }
        m.size = ref_size(*ref, 0).value_or(0);
        return m;
    }

    const Json& j_;
    const Json* user_ = nullptr;
    const Json* base_ = nullptr;
    const Json* enums_ = nullptr;
    const Json* symbols_ = nullptr;
};

// Default sizes of the members an offsets file may give as a bare offset.
uint32_t default_size(std::string_view type, std::string_view member) {
    static const std::array<std::pair<std::string_view, uint32_t>, 15> kSizes = {{
        {"task_struct.pid", 4},
        {"task_struct.tgid", 4},
        {"task_struct.comm", 16},
        {"task_struct.flags", 4},
        {"task_struct.exit_state", 4},
        {"task_struct.tasks", 16},
        {"task_struct.children", 16},
        {"task_struct.sibling", 16},
        {"task_struct.thread_group", 16},
        {"task_struct.thread_node", 16},
        {"signal_struct.thread_head", 16},
        {"file.f_path", 16},
        {"dentry.d_name", 16},
        {"qstr.len", 4},
        {"list_head.next", 8},
    }};
    const std::string key = std::string(type) + "." + std::string(member);
    for (const auto& [k, v] : kSizes)
        if (k == key) return v;
    return 8;  // pointers and unsigned long
}

uint64_t parse_address(const Json& j, const std::string& what) {
    if (auto v = unsigned_of(&j)) return *v;
    if (j.is_string()) {
        const auto s = j.get<std::string>();
        size_t used = 0;
        uint64_t v = 0;
        try {
            v = std::stoull(s, &used, 0);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != 0 && used == s.size()) return v;
    }
    fail("offsets: {} must be a number or a \"0x...\" string", what);
}

}  // namespace

KernelProfile profile_from_isf(const Json& j) {
    const Isf isf(j);
    KernelProfile p;
    LayoutLookup lookup;
    lookup.source = "ISF";
    lookup.size_of = [&](std::string_view type) { return isf.size_of(type); };
    lookup.member = [&](std::string_view type, std::string_view name) {
        return isf.member(type, name);
    };
    // ISF files made for other tools may lack a struct nitro only uses for extras (pt_regs,
    // dentry); what process tracing needs is checked by validate_profile().
    lookup.lenient = true;
    fill_layouts(p, lookup);

    if (auto ct = isf.symbol_address("current_task")) {
        p.current_task_percpu = *ct;
        p.current_task_source = "current_task";
    } else if (auto hot = isf.symbol_address("pcpu_hot")) {
        auto m = isf.member("pcpu_hot", "current_task");
        if (!m || m->is_bitfield()) fail("ISF: pcpu_hot has no member current_task");
        p.current_task_percpu = *hot + m->offset();
        p.current_task_source = "pcpu_hot.current_task";
    } else {
        fail("ISF: no symbol current_task or pcpu_hot (the per-CPU current task)");
    }
    for (const char* name : profile_symbol_names())
        if (auto a = isf.symbol_address(name)) p.symbols[name] = *a;
    if (p.symbols.count("current_task")) p.symbols.erase("current_task");
    p.banner = isf.banner();
    p.release = release_of(p.banner);
    validate_profile(p);
    return p;
}

KernelProfile profile_from_offsets(const Json& j) {
    if (!j.is_object()) fail("offsets: not a JSON object");
    const Json* version = child(j, "nitro_offsets");
    if (!version || !version->is_number_integer() || version->get<int64_t>() != 1)
        fail("offsets: \"nitro_offsets\" must be 1");
    KernelProfile p;
    LayoutLookup lookup;
    lookup.source = "offsets";
    lookup.lenient = true;
    // Struct sizes: given, or the end of the furthest member given.
    lookup.size_of = [&](std::string_view type) -> std::optional<uint64_t> {
        const Json* t = child(j, type);
        if (!t || !t->is_object()) return std::nullopt;
        if (const Json* s = child(*t, "size"))
            return parse_address(*s, std::string(type) + ".size");
        uint64_t end = 0;
        for (const auto& [name, v] : t->items()) {
            const std::string what = std::string(type) + "." + name;
            const uint64_t off = v.is_object() ? parse_address(v.value("offset", Json()), what)
                                               : parse_address(v, what);
            const uint64_t size = v.is_object() && v.contains("size")
                                      ? parse_address(v["size"], what + ".size")
                                      : default_size(type, name);
            if (off > (1u << 20) || size > (1u << 20)) fail("offsets: {} is implausible", what);
            end = std::max(end, off + size);
        }
        return end ? std::optional<uint64_t>(end) : std::nullopt;
    };
    lookup.member = [&](std::string_view type, std::string_view name) -> std::optional<MemberInfo> {
        const Json* t = child(j, type);
        const Json* v = t ? child(*t, name) : nullptr;
        if (!v || name == "size") return std::nullopt;
        const std::string what = std::string(type) + "." + std::string(name);
        MemberInfo m;
        if (v->is_object()) {
            const Json* off = child(*v, "offset");
            if (!off) fail("offsets: {} has no \"offset\"", what);
            m.bit_offset = parse_address(*off, what) * 8;
            const Json* size = child(*v, "size");
            m.size = size ? parse_address(*size, what + ".size") : default_size(type, name);
        } else {
            m.bit_offset = parse_address(*v, what) * 8;
            m.size = default_size(type, name);
        }
        if (m.bit_offset / 8 > (1u << 20) || m.size > (1u << 20))
            fail("offsets: {} is implausible", what);
        return m;
    };
    fill_layouts(p, lookup);
    // Generic x86-64 pt_regs (the ptrace ABI) and list_head, when not given.
    if (!p.pt_regs.size) {
        const auto r = [](uint32_t slot) { return Field{slot * 8, 8, true}; };
        auto& g = p.pt_regs;
        g = {21 * 8, r(15), r(10), r(14), r(13), r(12), r(7),
             r(9),   r(8),  r(16), r(17), r(18), r(19), r(20)};
    }
    if (!p.list_head.next.valid) p.list_head = {{0, 8, true}, {8, 8, true}};
    const Json* ct = child(j, "current_task");
    if (!ct) fail("offsets: \"current_task\" (per-CPU offset of the current task) is required");
    p.current_task_percpu = parse_address(*ct, "current_task");
    p.current_task_source = "offsets";
    if (const Json* syms = child(j, "symbols"); syms && syms->is_object())
        for (const auto& [name, v] : syms->items()) p.symbols[name] = parse_address(v, name);
    if (const Json* r = child(j, "release"); r && r->is_string()) p.release = r->get<std::string>();
    if (const Json* b = child(j, "build_id"); b && b->is_string())
        p.build_id = b->get<std::string>();
    validate_profile(p);
    return p;
}

KernelProfile load_profile_file(const std::string& path) {
    try {
        std::vector<uint8_t> bytes = read_file(path, kMaxProfileFileSize);
        static constexpr uint8_t kXz[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
        if (bytes.size() >= sizeof kXz && std::equal(kXz, kXz + sizeof kXz, bytes.begin()))
            bytes = decompress(bytes, Compression::Xz, kMaxProfileFileSize);
        Json j;
        try {
            j = Json::parse(bytes.begin(), bytes.end());
        } catch (const Json::exception& e) {
            fail("not valid JSON ({})", e.what());
        }
        if (!j.is_object()) fail("not a JSON object");
        if (j.contains("user_types") || j.contains("base_types")) return profile_from_isf(j);
        if (j.contains("nitro_offsets")) return profile_from_offsets(j);
        if (j.contains("current_task_percpu")) {
            KernelProfile p = profile_from_json(j);
            validate_profile(p);
            return p;
        }
        fail(
            "not a kernel profile: expected a Volatility 3 ISF (user_types, symbols), nitro "
            "offsets (\"nitro_offsets\": 1) or a nitro profile");
    } catch (const Error& e) {
        fail("{}: {}", path, e.what());
    }
}

}  // namespace nitro::linux_os
