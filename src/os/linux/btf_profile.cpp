// SPDX-License-Identifier: MIT
#include "os/linux/btf_profile.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/byte_reader.h"
#include "os/linux/elf_image.h"
#include "os/linux/kallsyms.h"

namespace nitro::linux_os {
namespace {

constexpr uint16_t kBtfMagic = 0xeb9f;
constexpr uint32_t kBtfHeaderLen = 24;
constexpr int kMaxTypeDepth = 32;  // typedef/const chains and anonymous-member nesting
constexpr size_t kMaxBannerLen = 512;

// libbpf reports parse problems through a global print hook; route them to our log instead
// of stderr, once per process.
int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    char buf[512];
    int n = std::vsnprintf(buf, sizeof buf, format, args);
    std::string_view msg(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    log::debug("{}", msg);
    return n;
}

void install_libbpf_print() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(libbpf_print); });
}

// Checks the header before handing bytes to libbpf, so garbage gets a precise message.
std::optional<uint64_t> btf_blob_size(std::span<const uint8_t> b, uint64_t at) {
    const auto magic = load_le<uint16_t>(b, at);
    if (!magic || *magic != kBtfMagic || !in_bounds(b.size(), at, kBtfHeaderLen)) return {};
    if (b[at + 2] != 1) return {};  // version
    const uint32_t hdr_len = *load_le<uint32_t>(b, at + 4);
    const uint32_t type_off = *load_le<uint32_t>(b, at + 8);
    const uint32_t type_len = *load_le<uint32_t>(b, at + 12);
    const uint32_t str_off = *load_le<uint32_t>(b, at + 16);
    const uint32_t str_len = *load_le<uint32_t>(b, at + 20);
    if (hdr_len < kBtfHeaderLen || hdr_len > 4096 || type_len == 0 || str_len == 0) return {};
    const uint64_t end = std::max(uint64_t{type_off} + type_len, uint64_t{str_off} + str_len);
    if (!in_bounds(b.size(), at, hdr_len + end)) return {};
    return hdr_len + end;
}

const btf_type* type_at(const struct btf* b, uint32_t id) {
    return btf__type_by_id(b, id);  // NULL for out-of-range ids
}

// Follows typedef/const/volatile/restrict/type_tag to the underlying type id.
std::optional<uint32_t> skip_modifiers(const struct btf* b, uint32_t id) {
    for (int i = 0; i < kMaxTypeDepth; ++i) {
        const auto* t = type_at(b, id);
        if (!t) return std::nullopt;
        if (!btf_is_mod(t) && !btf_is_typedef(t)) return id;
        id = t->type;
    }
    return std::nullopt;
}

std::string_view name_of(const struct btf* b, uint32_t name_off) {
    const char* n = btf__name_by_offset(b, name_off);
    return n ? std::string_view(n) : std::string_view();
}

uint64_t fnv1a64(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

}  // namespace

// --- Btf -------------------------------------------------------------------------------------

Btf Btf::from_bytes(std::span<const uint8_t> raw) {
    install_libbpf_print();
    if (raw.size() < kBtfHeaderLen) fail("BTF: blob of {} bytes is too small", raw.size());
    if (*load_le<uint16_t>(raw, 0) != kBtfMagic)
        fail("BTF: bad magic {:#06x} (expected 0xeb9f)", *load_le<uint16_t>(raw, 0));
    if (raw.size() > UINT32_MAX) fail("BTF: blob of {} bytes is too large", raw.size());
    errno = 0;
    struct btf* b = btf__new(raw.data(), static_cast<uint32_t>(raw.size()));
    if (!b) {
        const int err = errno ? errno : EINVAL;
        fail(
            "BTF: libbpf rejected the type information ({}); the image is corrupt or its BTF "
            "format is newer than libbpf {}.{}",
            std::strerror(err), libbpf_major_version(), libbpf_minor_version());
    }
    return Btf(b);
}

std::span<const uint8_t> Btf::locate(const ElfImage& elf) {
    if (const auto* s = elf.find_section(".BTF")) {
        auto data = elf.section_data(*s);
        if (!data.empty()) return data;
    }
    // No section headers: look for the header. 0xeb9f version 1 flags 0, in file byte order.
    const auto bytes = elf.bytes();
    static constexpr uint8_t kPattern[] = {0x9f, 0xeb, 0x01, 0x00};
    for (size_t i = 0; i + sizeof kPattern <= bytes.size();) {
        const void* hit = std::memchr(bytes.data() + i, kPattern[0], bytes.size() - i);
        if (!hit) break;
        i = static_cast<size_t>(static_cast<const uint8_t*>(hit) - bytes.data());
        if (i + sizeof kPattern <= bytes.size() &&
            std::memcmp(bytes.data() + i, kPattern, sizeof kPattern) == 0)
            if (auto size = btf_blob_size(bytes, i); size && *size > 4096)
                return bytes.subspan(i, *size);
        ++i;
    }
    fail(
        "BTF: the vmlinux carries no .BTF section and no BTF blob (kernel built without "
        "CONFIG_DEBUG_INFO_BTF?)");
}

Btf Btf::from_vmlinux(const ElfImage& elf) { return from_bytes(locate(elf)); }

Btf::Btf(Btf&& other) noexcept : btf_(std::exchange(other.btf_, nullptr)) {}

Btf& Btf::operator=(Btf&& other) noexcept {
    if (this != &other) {
        btf__free(btf_);
        btf_ = std::exchange(other.btf_, nullptr);
    }
    return *this;
}

Btf::~Btf() { btf__free(btf_); }

uint32_t Btf::type_count() const { return btf__type_cnt(btf_); }

std::optional<uint32_t> Btf::find_composite(std::string_view name) const {
    const std::string n(name);
    for (auto kind : {BTF_KIND_STRUCT, BTF_KIND_UNION}) {
        const int id = btf__find_by_name_kind(btf_, n.c_str(), kind);
        if (id > 0) return static_cast<uint32_t>(id);
    }
    return std::nullopt;
}

uint64_t Btf::size_of(std::string_view type_name) const {
    auto id = find_composite(type_name);
    if (!id) {
        const int any = btf__find_by_name(btf_, std::string(type_name).c_str());
        if (any > 0) id = static_cast<uint32_t>(any);
    }
    if (!id) fail("BTF: no type named '{}'", type_name);
    const int64_t size = btf__resolve_size(btf_, *id);
    if (size < 0)
        fail("BTF: cannot resolve the size of '{}' (corrupt type information)", type_name);
    return static_cast<uint64_t>(size);
}

std::optional<MemberInfo> Btf::find_in(uint32_t type_id, std::string_view member_name,
                                       int depth) const {
    if (depth > kMaxTypeDepth) return std::nullopt;
    const auto* t = type_at(btf_, type_id);
    if (!t || !btf_is_composite(t)) return std::nullopt;
    const auto* members = btf_members(t);
    const uint16_t n = btf_vlen(t);
    for (uint32_t i = 0; i < n; ++i) {
        const auto name = name_of(btf_, members[i].name_off);
        const uint64_t bit_off = btf_member_bit_offset(t, i);
        if (!name.empty() && name == member_name) {
            MemberInfo m;
            m.bit_offset = bit_off;
            m.bit_size = btf_member_bitfield_size(t, i);
            m.type_id = members[i].type;
            const int64_t size = btf__resolve_size(btf_, members[i].type);
            m.size = size < 0 ? 0 : static_cast<uint64_t>(size);
            return m;
        }
        if (name.empty()) {
            // Anonymous struct/union: its members belong to the enclosing type.
            auto inner = skip_modifiers(btf_, members[i].type);
            if (!inner) continue;
            if (auto m = find_in(*inner, member_name, depth + 1)) {
                m->bit_offset += bit_off;
                return m;
            }
        }
    }
    return std::nullopt;
}

std::optional<MemberInfo> Btf::find_member(std::string_view type_name,
                                           std::string_view member_name) const {
    auto id = find_composite(type_name);
    if (!id) return std::nullopt;
    return find_in(*id, member_name, 0);
}

MemberInfo Btf::member(std::string_view type_name, std::string_view member_name) const {
    if (!find_composite(type_name)) fail("BTF: no struct or union named '{}'", type_name);
    auto m = find_member(type_name, member_name);
    if (!m) fail("BTF: struct {} has no member '{}'", type_name, member_name);
    return *m;
}

uint64_t Btf::offset_of(std::string_view type_name, std::string_view member_name) const {
    const auto m = member(type_name, member_name);
    if (m.is_bitfield() || m.bit_offset % 8 != 0)
        fail("BTF: {}.{} is a bitfield ({} bits at bit {}); it has no byte offset", type_name,
             member_name, m.bit_size, m.bit_offset);
    return m.offset();
}

MemberInfo Btf::member_path(std::string_view path) const {
    const auto dot = path.find('.');
    if (dot == std::string_view::npos || dot == 0)
        fail("BTF: member path '{}' must look like 'type.member[.member...]'", path);
    const auto type_name = path.substr(0, dot);
    auto id = find_composite(type_name);
    if (!id) fail("BTF: no struct or union named '{}' (in path '{}')", type_name, path);
    MemberInfo acc;
    std::string_view rest = path.substr(dot + 1);
    std::string_view where = type_name;
    while (true) {
        const auto next = rest.find('.');
        const auto name = rest.substr(0, next);
        if (name.empty()) fail("BTF: empty member name in path '{}'", path);
        auto m = find_in(*id, name, 0);
        if (!m) fail("BTF: {} has no member '{}' (in path '{}')", where, name, path);
        const uint64_t base = acc.bit_offset;
        acc = *m;
        acc.bit_offset += base;
        if (next == std::string_view::npos) return acc;
        auto inner = skip_modifiers(btf_, m->type_id);
        const auto* t = inner ? type_at(btf_, *inner) : nullptr;
        if (!t || !btf_is_composite(t))
            fail(
                "BTF: '{}' in path '{}' is not an embedded struct or union (pointers are not "
                "followed)",
                name, path);
        id = *inner;
        where = name;
        rest = rest.substr(next + 1);
    }
}

std::optional<uint64_t> Btf::percpu_offset(std::string_view var_name) const {
    const int sec = btf__find_by_name_kind(btf_, ".data..percpu", BTF_KIND_DATASEC);
    if (sec <= 0) return std::nullopt;
    const auto* t = type_at(btf_, static_cast<uint32_t>(sec));
    if (!t) return std::nullopt;
    const auto* vars = btf_var_secinfos(t);
    const uint16_t n = btf_vlen(t);
    for (uint32_t i = 0; i < n; ++i) {
        const auto* v = type_at(btf_, vars[i].type);
        if (!v || !btf_is_var(v)) continue;
        if (name_of(btf_, v->name_off) == var_name) return vars[i].offset;
    }
    return std::nullopt;
}

// --- KernelProfile -----------------------------------------------------------------------------

namespace {

// One list of every Field with its BTF struct/member name, shared by build, to_json and
// from_json so that they cannot drift apart.
template <typename Profile, typename F>
void for_each_field(Profile& p, F&& f) {
    auto& t = p.task_struct;
    f("task_struct", "pid", t.pid, true);
    f("task_struct", "tgid", t.tgid, true);
    f("task_struct", "comm", t.comm, true);
    f("task_struct", "mm", t.mm, true);
    f("task_struct", "active_mm", t.active_mm, true);
    f("task_struct", "real_parent", t.real_parent, true);
    f("task_struct", "parent", t.parent, true);
    f("task_struct", "tasks", t.tasks, true);
    f("task_struct", "children", t.children, true);
    f("task_struct", "sibling", t.sibling, true);
    f("task_struct", "thread_group", t.thread_group, false);
    f("task_struct", "thread_node", t.thread_node, false);
    f("task_struct", "signal", t.signal, true);
    f("task_struct", "flags", t.flags, true);
    f("task_struct", "exit_state", t.exit_state, true);
    f("task_struct", "stack", t.stack, true);
    f("signal_struct", "thread_head", p.signal_struct.thread_head, false);
    f("list_head", "next", p.list_head.next, true);
    f("list_head", "prev", p.list_head.prev, true);
    f("mm_struct", "pgd", p.mm_struct.pgd, true);
    f("mm_struct", "exe_file", p.mm_struct.exe_file, true);
    f("mm_struct", "arg_start", p.mm_struct.arg_start, true);
    f("mm_struct", "arg_end", p.mm_struct.arg_end, true);
    f("file", "f_path", p.file.f_path, true);
    f("path", "dentry", p.path.dentry, true);
    f("path", "mnt", p.path.mnt, true);
    f("dentry", "d_name", p.dentry.d_name, true);
    f("dentry", "d_parent", p.dentry.d_parent, true);
    f("qstr", "name", p.qstr.name, true);
    f("qstr", "len", p.qstr.len, true);
    f("mount", "mnt", p.mount.mnt, false);
    f("mount", "mnt_parent", p.mount.mnt_parent, false);
    f("mount", "mnt_mountpoint", p.mount.mnt_mountpoint, false);
    f("vfsmount", "mnt_root", p.vfsmount.mnt_root, false);
    auto& r = p.pt_regs;
    f("pt_regs", "orig_ax", r.orig_ax, true);
    f("pt_regs", "ax", r.ax, true);
    f("pt_regs", "di", r.di, true);
    f("pt_regs", "si", r.si, true);
    f("pt_regs", "dx", r.dx, true);
    f("pt_regs", "r10", r.r10, true);
    f("pt_regs", "r8", r.r8, true);
    f("pt_regs", "r9", r.r9, true);
    f("pt_regs", "ip", r.ip, true);
    f("pt_regs", "cs", r.cs, true);
    f("pt_regs", "flags", r.flags, true);
    f("pt_regs", "sp", r.sp, true);
    f("pt_regs", "ss", r.ss, true);
}

template <typename Profile, typename F>
void for_each_size(Profile& p, F&& f) {
    f("task_struct", p.task_struct.size);
    f("mm_struct", p.mm_struct.size);
    f("pt_regs", p.pt_regs.size);
}

// Symbols worth keeping in the profile: the backend needs them at run time, and one of them
// calibrates the KASLR slide.
constexpr const char* kProfileSymbols[] = {
    "_text",
    "_etext",
    "init_task",
    "linux_banner",
    "entry_SYSCALL_64",
    "entry_SYSCALL_64_after_hwframe",
    "entry_SYSCALL_compat",
    "entry_SYSENTER_compat",
    "entry_INT80_compat",   // until the 2023 int80 hardening...
    "asm_int80_emulation",  // ...which replaced it (also in 6.1 stable, e.g. Debian 6.1.192)
    "swapgs_restore_regs_and_return_to_usermode",
    "__per_cpu_offset",
    "current_task",
    "pcpu_hot",
    "sys_call_table",
    "ia32_sys_call_table",
    "x32_sys_call_table",
    "__x64_sys_openat",
};

constexpr std::string_view kBannerPrefix = "Linux version ";

std::string release_of(std::string_view banner) {
    if (banner.substr(0, kBannerPrefix.size()) != kBannerPrefix) return {};
    banner.remove_prefix(kBannerPrefix.size());
    return std::string(banner.substr(0, banner.find(' ')));
}

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

uint64_t parse_hex(const nlohmann::json& j) {
    const auto s = j.get<std::string>();
    size_t used = 0;
    uint64_t v = 0;
    try {
        v = std::stoull(s, &used, 16);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != s.size()) fail("profile JSON: '{}' is not a hex address", s);
    return v;
}

}  // namespace

std::string KernelProfile::cache_key() const {
    auto safe = [](const std::string& s) {
        if (s.empty() || s.size() > 128) return false;
        for (char c : s)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        return true;
    };
    if (safe(build_id)) return build_id;
    if (safe(btf_sha256)) return "btf-" + btf_sha256;
    return fmt::format("banner-{:016x}", fnv1a64(banner));
}

void validate_profile(const KernelProfile& p) {
    auto size_of = [&](std::string_view type) -> uint64_t {
        if (type == "task_struct") return p.task_struct.size;
        if (type == "mm_struct") return p.mm_struct.size;
        if (type == "pt_regs") return p.pt_regs.size;
        return 1u << 20;  // structs whose size the profile does not keep
    };
    for_each_size(p, [&](const char* type, const uint32_t& size) {
        if (size > (1u << 20)) fail("profile: implausible size {} of struct {}", size, type);
    });
    for_each_field(p, [&](const char* type, const char* name, const Field& f, bool) {
        if (!f.valid) return;
        const uint64_t limit = size_of(type);
        if (f.size == 0 || uint64_t{f.offset} + f.size > limit)
            fail("profile: {}.{} (offset {}, size {}) does not fit in its struct ({} bytes)", type,
                 name, f.offset, f.size, limit);
    });
    const auto& t = p.task_struct;
    for (const Field* f : {&t.pid, &t.tgid, &t.comm, &t.real_parent})
        if (!f->valid) fail("profile: task_struct.pid, tgid, comm and real_parent are required");
    if (t.pid.size != 4 || t.tgid.size != 4)
        fail("profile: task_struct.pid/tgid must be 4 bytes (pid_t), not {}/{}", t.pid.size,
             t.tgid.size);
    if (t.comm.size < 8 || t.comm.size > 64)
        fail("profile: task_struct.comm of {} bytes is implausible (TASK_COMM_LEN is 16)",
             t.comm.size);
    // The per-CPU area is a few hundred KiB; an offset beyond 16 MiB cannot be right.
    if (p.current_task_percpu == 0 || p.current_task_percpu >= (1u << 24))
        fail("profile: per-CPU offset {:#x} of the current task is implausible",
             p.current_task_percpu);
}

std::string find_banner(const ElfImage& elf, const Kallsyms* symbols) {
    if (symbols)
        if (auto addr = symbols->link_address("linux_banner"))
            if (auto s = elf.cstring_at(*addr, kMaxBannerLen); s && s->starts_with(kBannerPrefix)) {
                while (!s->empty() && s->back() == '\n') s->pop_back();
                return *s;
            }
    // Without symbols: there may be several copies (6.1 keeps one without the build number
    // from the first link pass); prefer the one that has "#<digits>", like /proc/version.
    auto region = elf.section_data(".rodata");
    if (region.empty()) region = elf.bytes();
    const std::string_view text(reinterpret_cast<const char*>(region.data()), region.size());
    std::string best;
    for (size_t at = text.find(kBannerPrefix); at != std::string_view::npos;
         at = text.find(kBannerPrefix, at + 1)) {
        auto s = load_cstring(region, at, kMaxBannerLen);
        if (!s || s->size() <= kBannerPrefix.size() || s->back() != '\n') continue;
        std::string candidate(*s);
        candidate.pop_back();
        const auto hash = candidate.find(" #");
        const bool numbered = hash != std::string::npos && hash + 2 < candidate.size() &&
                              candidate[hash + 2] >= '0' && candidate[hash + 2] <= '9';
        if (best.empty() || numbered) best = candidate;
        if (numbered) break;
    }
    return best;
}

std::span<const char* const> profile_symbol_names() { return kProfileSymbols; }

void fill_layouts(KernelProfile& p, const LayoutLookup& l) {
    for_each_size(p, [&](const char* type, uint32_t& size) {
        const auto s = l.size_of(type);
        if (!s && l.lenient) {
            size = 0;
            return;
        }
        if (!s) fail("{}: no type named '{}'", l.source, type);
        if (*s == 0 || *s > (1u << 20))
            fail("{}: implausible size {} of struct {}", l.source, *s, type);
        size = static_cast<uint32_t>(*s);
    });
    for_each_field(p, [&](const char* type, const char* name, Field& f, bool required) {
        auto m = l.member(type, name);
        if (!m) {
            if (required && !l.lenient)
                fail("{}: struct {} has no member '{}'; this kernel is not supported yet", l.source,
                     type, name);
            f = Field{};
            return;
        }
        if (m->is_bitfield() || m->bit_offset % 8 != 0)
            fail("{}: {}.{} is a bitfield; nitro needs it byte-addressable", l.source, type, name);
        if (m->offset() > UINT32_MAX || m->size > UINT32_MAX)
            fail("{}: {}.{} has an implausible offset/size", l.source, type, name);
        f = Field{static_cast<uint32_t>(m->offset()), static_cast<uint32_t>(m->size), true};
    });
}

KernelProfile build_profile(const Btf& btf, const ElfImage* elf, const Kallsyms* symbols) {
    KernelProfile p;
    LayoutLookup lookup;
    lookup.source = "BTF";
    lookup.size_of = [&](std::string_view type) -> std::optional<uint64_t> {
        try {
            return btf.size_of(type);
        } catch (const Error&) {
            return std::nullopt;
        }
    };
    lookup.member = [&](std::string_view type, std::string_view name) {
        return btf.find_member(type, name);
    };
    fill_layouts(p, lookup);

    if (auto off = btf.percpu_offset("current_task")) {
        p.current_task_percpu = *off;
        p.current_task_source = "current_task";
    } else if (auto hot = btf.percpu_offset("pcpu_hot")) {
        p.current_task_percpu = *hot + btf.offset_of("pcpu_hot", "current_task");
        p.current_task_source = "pcpu_hot.current_task";
    } else {
        fail("BTF: no per-CPU variable current_task or pcpu_hot in .data..percpu");
    }

    if (symbols)
        for (const char* name : kProfileSymbols)
            if (auto a = symbols->link_address(name)) p.symbols[name] = *a;
    if (elf) {
        p.build_id = elf->build_id();
        p.banner = find_banner(*elf, symbols);
        p.release = release_of(p.banner);
    }
    return p;
}

void to_json(nlohmann::json& j, const Field& f) {
    if (!f.valid) {
        j = nullptr;
        return;
    }
    j = nlohmann::json{{"offset", f.offset}, {"size", f.size}};
}

void from_json(const nlohmann::json& j, Field& f) {
    if (j.is_null()) {
        f = Field{};
        return;
    }
    f = Field{j.at("offset").get<uint32_t>(), j.at("size").get<uint32_t>(), true};
}

void to_json(nlohmann::json& j, const KernelProfile& p) {
    j = nlohmann::json::object();
    j["format"] = KernelProfile::kFormatVersion;
    j["banner"] = p.banner;
    j["release"] = p.release;
    j["build_id"] = p.build_id;
    if (!p.btf_sha256.empty()) j["btf_sha256"] = p.btf_sha256;
    for_each_size(p, [&](const char* type, const uint32_t& size) { j[type]["size"] = size; });
    for_each_field(
        p, [&](const char* type, const char* name, const Field& f, bool) { j[type][name] = f; });
    j["current_task_percpu"] = hex(p.current_task_percpu);
    j["current_task_source"] = p.current_task_source;
    auto& syms = j["symbols"] = nlohmann::json::object();
    for (const auto& [name, addr] : p.symbols) syms[name] = hex(addr);
}

void from_json(const nlohmann::json& j, KernelProfile& p) {
    const int format = j.at("format").get<int>();
    if (format != KernelProfile::kFormatVersion)
        fail("profile JSON: format {} is not the supported {}", format,
             KernelProfile::kFormatVersion);
    p.banner = j.at("banner").get<std::string>();
    p.release = j.at("release").get<std::string>();
    p.build_id = j.at("build_id").get<std::string>();
    p.btf_sha256 = j.value("btf_sha256", std::string());
    for_each_size(
        p, [&](const char* type, uint32_t& size) { size = j.at(type).at("size").get<uint32_t>(); });
    for_each_field(p, [&](const char* type, const char* name, Field& f, bool required) {
        // An optional field added since a profile was cached is simply unknown there.
        if (!required && !(j.contains(type) && j.at(type).contains(name))) {
            f = Field{};
            return;
        }
        f = j.at(type).at(name).get<Field>();
        if (required && !f.valid) fail("profile JSON: required field {}.{} is null", type, name);
    });
    p.current_task_percpu = parse_hex(j.at("current_task_percpu"));
    p.current_task_source = j.at("current_task_source").get<std::string>();
    p.symbols.clear();
    for (const auto& [name, addr] : j.at("symbols").items()) p.symbols[name] = parse_hex(addr);
}

KernelProfile profile_from_json(const nlohmann::json& j) {
    try {
        return j.get<KernelProfile>();
    } catch (const nlohmann::json::exception& e) {
        fail("profile JSON: malformed kernel profile ({})", e.what());
    }
}

}  // namespace nitro::linux_os
