// SPDX-License-Identifier: MIT
#include "decode/decode.h"

#include <fmt/format.h>

#include <cstring>

namespace nitro::decode {

namespace {

// The listener accepts at most this many capture rules per call and direction.
constexpr std::size_t kMaxRules = 4;

bool is_error_return(std::int64_t ret) { return ret < 0 && ret >= -4095; }

std::uint64_t reg(const ArgContext& ctx, std::size_t i) {
    // A 32-bit program's arguments are the low halves of the registers; the rest is garbage.
    return ctx.compat ? (ctx.args[i] & 0xffffffffULL) : ctx.args[i];
}

// Captured bytes are only worth printing when some of them were read.
bool usable(const Capture* c) {
    return c != nullptr && !(c->status == CaptureStatus::Fault && c->data.empty());
}

std::string format_cstring(std::uint64_t addr, const Capture* c) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    // strace prints paths whole (they are bounded by PATH_MAX); a cut one ends in "...".
    return quote(c->data, c->data.size(), c->status != CaptureStatus::Ok);
}

std::string format_buffer(std::uint64_t addr, const Capture* c, std::size_t limit) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    return quote(c->data, limit, c->status != CaptureStatus::Ok);
}

std::string format_str_array(std::uint64_t addr, const Capture* c, std::size_t limit,
                             bool summarize) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    // The listener stores the strings NUL-separated, each followed by its NUL unless the copy
    // stopped inside it.
    std::vector<std::string_view> items;
    std::string_view rest = c->data;
    bool last_cut = false;
    while (!rest.empty()) {
        auto nul = rest.find('\0');
        if (nul == std::string_view::npos) {
            items.push_back(rest);
            last_cut = true;
            break;
        }
        items.push_back(rest.substr(0, nul));
        rest.remove_prefix(nul + 1);
    }
    const bool incomplete = c->status != CaptureStatus::Ok;
    if (summarize) {
        // strace shows the environment as its address and size only.
        return fmt::format("{} /* {}{} vars */", format_pointer(addr), items.size(),
                           incomplete ? "+" : "");
    }
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += quote(items[i], limit, last_cut && i + 1 == items.size());
    }
    if (incomplete) out += items.empty() ? "..." : ", ...";
    out += "]";
    return out;
}

std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

std::string format_sockaddr(std::uint64_t addr, const Capture* c, std::size_t limit) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->data.size() < 2) return format_pointer(addr);
    const auto* p = reinterpret_cast<const unsigned char*>(c->data.data());
    const std::size_t n = c->data.size();
    const int family = p[0] | p[1] << 8;
    std::string out = "{sa_family=" + format_enum(FlagTable::Af, family);
    if (family == 1 /* AF_UNIX */) {
        std::string_view path = c->data.substr(2);
        if (!path.empty() && path[0] == '\0') {
            // Abstract socket: the name is all remaining bytes.
            out += ", sun_path=@" + quote(path.substr(1), limit);
        } else {
            auto nul = path.find('\0');
            out += ", sun_path=" + quote(path.substr(0, nul), path.size());
        }
    } else if (family == 2 /* AF_INET */ && n >= 8) {
        out += fmt::format(", sin_port=htons({}), sin_addr=inet_addr(\"{}.{}.{}.{}\")", be16(p + 2),
                           p[4], p[5], p[6], p[7]);
    } else if (family == 10 /* AF_INET6 */ && n >= 24) {
        out += fmt::format(", sin6_port=htons({}), sin6_addr=", be16(p + 2));
        std::string a;
        for (int i = 0; i < 8; ++i) a += fmt::format("{}{:x}", i ? ":" : "", be16(p + 8 + 2 * i));
        out += "\"" + a + "\"";
    } else {
        out += ", ...";
    }
    return out + "}";
}

std::string_view internal_errno_text(int err) {
    switch (err) {
        case 512:
            return "To be restarted if SA_RESTART is set";
        case 513:
            return "To be restarted";
        case 514:
            return "To be restarted if no handler";
        case 515:
            return "Unknown ioctl command";
        case 516:
            return "Interrupted by signal";
        default:
            return {};
    }
}

}  // namespace

void append_quoted(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char ch : s) {
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\v':
                out += "\\v";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (ch >= 0x20 && ch < 0x7f) {
                    out += static_cast<char>(ch);
                } else {
                    fmt::format_to(std::back_inserter(out), "\\x{:02x}", ch);
                }
        }
    }
    out += '"';
}

std::string quote(std::string_view s, std::size_t limit, bool more_follows) {
    std::string out;
    const bool cut = s.size() > limit;
    append_quoted(out, cut ? s.substr(0, limit) : s);
    if (cut || more_follows) out += "...";
    return out;
}

std::string format_pointer(std::uint64_t addr) {
    return addr == 0 ? std::string("NULL") : fmt::format("{:#x}", addr);
}

std::string format_errno(int err) {
    std::string_view name = errno_name(err);
    if (name.empty()) return fmt::format("{}", err);
    std::string_view text = internal_errno_text(err);
    if (text.empty() && err > 0 && err < 512) {
        const char* d = strerrordesc_np(err);  // thread-safe, unlike strerror()
        if (d) text = d;
    }
    if (text.empty()) return std::string(name);
    return fmt::format("{} ({})", name, text);
}

RetText format_return(const SyscallInfo* info, std::int64_t ret, bool compat) {
    RetText r;
    if (info && info->ret == RetKind::Void) {
        r.text = "?";
        return r;
    }
    if (is_error_return(ret)) {
        const int err = static_cast<int>(-ret);
        r.errno_name = std::string(errno_name(err));
        // Calls interrupted for a restart never show their return value to the program.
        r.text = (err >= 512 && err <= 516 ? "? " : "-1 ") + format_errno(err);
        return r;
    }
    if (info && info->ret == RetKind::Ptr) {
        r.text = fmt::format("{:#x}", compat ? static_cast<std::uint64_t>(ret) & 0xffffffffULL
                                             : static_cast<std::uint64_t>(ret));
    } else {
        r.text = fmt::format("{}", ret);
    }
    return r;
}

bool decoded_at_exit(const ArgInfo& arg) {
    return arg.type == ArgType::BufOut || arg.type == ArgType::SockaddrOut ||
           arg.type == ArgType::IovecOut || arg.type == ArgType::StructOut;
}

std::string format_arg(const SyscallInfo& info, std::size_t index, const ArgContext& ctx) {
    if (index >= kMaxSyscallArgs) return "?";
    const std::uint64_t v = reg(ctx, index);
    const ArgInfo a = index < info.nargs ? info.args[index] : ArgInfo{};
    const auto i32 = static_cast<std::int32_t>(ctx.args[index]);
    switch (a.type) {
        case ArgType::Int:
        case ArgType::Fd:
            return fmt::format("{}", i32);
        case ArgType::Uint:
            return fmt::format("{}", static_cast<std::uint32_t>(ctx.args[index]));
        case ArgType::Long:
        case ArgType::Ssize:
            return ctx.compat ? fmt::format("{}", i32)
                              : fmt::format("{}", static_cast<std::int64_t>(v));
        case ArgType::Ulong:
        case ArgType::Size:
            return fmt::format("{}", v);
        case ArgType::Hex:
            return fmt::format("{:#x}", v);
        case ArgType::Dirfd:
            return format_enum(FlagTable::AtFdcwd, i32);
        case ArgType::Cstring:
            return format_cstring(v, ctx.capture);
        case ArgType::BufIn:
            return format_buffer(v, ctx.capture, ctx.string_limit);
        case ArgType::BufOut:
            // strace shows the address of a buffer the call failed to fill.
            if (!ctx.ret || is_error_return(*ctx.ret)) return format_pointer(v);
            return format_buffer(v, ctx.capture, ctx.string_limit);
        case ArgType::Argv:
            return format_str_array(v, ctx.capture, ctx.string_limit, a.name == "envp");
        case ArgType::Sockaddr:
            return format_sockaddr(v, ctx.capture, ctx.string_limit);
        case ArgType::SockaddrOut:
            if (!ctx.ret || is_error_return(*ctx.ret)) return format_pointer(v);
            return format_sockaddr(v, ctx.capture, ctx.string_limit);
        case ArgType::Flags:
            return format_flags(a.table(), v);
        case ArgType::Enum:
            return format_enum(a.table(), i32);
        case ArgType::Ptr:
        case ArgType::IovecIn:
        case ArgType::IovecOut:
        case ArgType::SocklenPtr:
        case ArgType::StructIn:
        case ArgType::StructOut:
            return format_pointer(v);
        case ArgType::None:
            break;
    }
    return fmt::format("{:#x}", v);
}

std::size_t printed_args(const SyscallInfo& info, const std::array<std::uint64_t, 6>& args) {
    // The mode is only read by the kernel with O_CREAT or O_TMPFILE (which includes
    // O_DIRECTORY's bit, so both of its bits are required).
    constexpr std::uint64_t kOCreat = 0100, kOTmpfile = 020200000;
    std::size_t n = info.nargs;
    if (n >= 2 && info.args[n - 1].name == "mode" && info.args[n - 2].type == ArgType::Flags &&
        info.args[n - 2].table() == FlagTable::OpenFlags) {
        const std::uint64_t flags = args[n - 2];
        if (!(flags & kOCreat) && (flags & kOTmpfile) != kOTmpfile) --n;
    }
    return n;
}

CapturePlan capture_plan(const SyscallInfo& info, std::uint32_t max) {
    CapturePlan plan;
    auto add = [](std::vector<CaptureRule>& rules, CaptureRule r) {
        if (rules.size() < kMaxRules) rules.push_back(r);
    };
    for (std::size_t i = 0; i < info.nargs; ++i) {
        const ArgInfo& a = info.args[i];
        const auto arg = static_cast<std::uint8_t>(i);
        const auto len = static_cast<std::uint8_t>(a.length_arg().value_or(0));
        switch (a.type) {
            case ArgType::Cstring:
                add(plan.enter, {arg, CaptureKind::CString, 0, max});
                break;
            case ArgType::Argv:
                add(plan.enter, {arg, CaptureKind::StrArray, 0, max});
                break;
            case ArgType::BufIn:
            case ArgType::Sockaddr:
                if (a.length_arg()) add(plan.enter, {arg, CaptureKind::BufLenArg, len, max});
                break;
            case ArgType::BufOut:
                if (a.length_is_return_value()) {
                    add(plan.exit, {arg, CaptureKind::BufRet, 0, max});
                } else if (a.length_arg()) {
                    add(plan.exit, {arg, CaptureKind::BufLenArg, len, max});
                }
                break;
            case ArgType::SockaddrOut:
                if (a.length_arg()) add(plan.exit, {arg, CaptureKind::BufLenPtr, len, max});
                break;
            default:
                break;
        }
    }
    return plan;
}

}  // namespace nitro::decode
