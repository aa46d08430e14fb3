// SPDX-License-Identifier: MIT
#include "decode/decode.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <functional>

namespace nitro::decode {

namespace {

// The listener accepts at most this many capture rules per call and direction.
constexpr std::size_t kMaxRules = 4;
// struct iovec entries captured and printed per call (strace prints up to -s of them).
constexpr std::size_t kMaxIov = 16;
// Bytes of one iovec buffer read for printing (the printed part is string_limit of them).
constexpr std::size_t kIovBytes = 256;
// Chunk of a C-string read through MemoryReader (reads never span an unreadable page).
constexpr std::size_t kStringChunk = 64;
// struct msghdr (x86-64, and a 32-bit program's), the bytes of msg_name read, struct mmsghdr
// (a msghdr and the unsigned msg_len, padded) and the messages of an array decoded.
constexpr std::uint32_t kMsghdr64 = 56, kMsghdr32 = 28, kMsgNameBytes = 128;
// Bytes of msg_control kept (ring_abi.h NITRO_MSG_CONTROL_CAPTURE).
constexpr std::uint32_t kMsgControlBytes = 512;
constexpr std::uint32_t kMmsghdr64 = 64, kMmsghdr32 = 32;
constexpr std::size_t kMaxMmsg = 8;
// Descriptors of an SCM_RIGHTS message shown (strace's default string limit, in elements);
// also the struct pollfd entries of poll shown and captured.
constexpr std::size_t kMaxFdsShown = 32;
constexpr std::uint32_t kPollfdSize = 8;
// struct epoll_event (packed on x86: 12 bytes), and the events of epoll_wait shown and kept.
constexpr std::uint32_t kEpollEventSize = 12;
constexpr std::size_t kMaxEpollEvents = 32;
// Bytes of a descriptor set kept (FD_SETSIZE bits).
constexpr std::uint32_t kFdSetBytes = 128;
// CPU sets are copied up to 1024 CPUs (glibc's cpu_set_t); larger sets show their first 1024.
constexpr std::uint32_t kCpuSetBytes = 128;
// rt_sigreturn (x86-64): uc_sigmask's offset in struct ucontext (uc_flags, uc_link, a 24-byte
// stack_t, a 256-byte struct sigcontext), which starts at the stack pointer at the call.
constexpr std::uint64_t kSigreturnMaskOffset = 296;
constexpr std::uint64_t kRebootCmdRestart2 = 0xa1b2c3d4;

bool is_error_return(std::int64_t ret) { return ret < 0 && ret >= -4095; }

std::uint64_t reg(const ArgContext& ctx, std::size_t i) {
    // A 32-bit program's arguments are the low halves of the registers; the rest is garbage.
    return ctx.compat ? (ctx.args[i] & 0xffffffffULL) : ctx.args[i];
}

// fmt's "{}" and "{:#x}" of one integer, without fmt's format-string machinery: arguments are
// decoded for every event.
template <typename Int>
std::string dec(Int v) {
    char buf[24];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
std::string hex_prefixed(std::uint64_t v) {
    char buf[24] = {'0', 'x'};
    return std::string(buf, std::to_chars(buf + 2, buf + sizeof buf, v, 16).ptr);
}

// C's "%#x": 0 prints "0", anything else 0x-prefixed.
std::string hex(std::uint64_t v) { return v == 0 ? std::string("0") : hex_prefixed(v); }

// Little-endian loads from captured bytes; the caller checks the size.
std::uint64_t le(std::string_view d, std::size_t off, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(d[off + i])) << (8 * i);
    }
    return v;
}
std::uint64_t u64(std::string_view d, std::size_t off) { return le(d, off, 8); }
std::uint32_t u32(std::string_view d, std::size_t off) {
    return static_cast<std::uint32_t>(le(d, off, 4));
}
std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

// The fields of a struct msghdr (bytes of kMsghdr64, or kMsghdr32 for a 32-bit program), and
// msg_len when the bytes are those of a struct mmsghdr.
struct MsghdrFields {
    std::uint64_t name = 0, namelen = 0, iov = 0, iovlen = 0, control = 0, controllen = 0;
    std::uint32_t flags = 0, msg_len = 0;
};
MsghdrFields msghdr_fields(std::string_view d, bool compat) {
    MsghdrFields f;
    if (d.size() < (compat ? kMsghdr32 : kMsghdr64)) return f;
    if (compat) {
        f = {u32(d, 0), u32(d, 4), u32(d, 8), u32(d, 12), u32(d, 16), u32(d, 20), u32(d, 24)};
    } else {
        f = {u64(d, 0), u32(d, 8), u64(d, 16), u64(d, 24), u64(d, 32), u64(d, 40), u32(d, 48)};
    }
    if (d.size() >= (compat ? kMmsghdr32 : kMmsghdr64)) f.msg_len = u32(d, compat ? kMsghdr32 : kMsghdr64);
    return f;
}

// Entry i of a struct iovec array (two pointer-sized fields; 4 bytes each in a 32-bit
// program); the caller checks that the bytes hold it.
struct IovecEntry {
    std::uint64_t base, len;
};
constexpr std::size_t iovec_size(bool compat) { return compat ? 8 : 16; }
IovecEntry iovec_entry(std::string_view d, std::size_t i, bool compat) {
    if (compat) return {u32(d, i * 8), u32(d, i * 8 + 4)};
    return {u64(d, i * 16), u64(d, i * 16 + 8)};
}

// The event's capture of argument arg of this kind (and Deref field), else nullptr.
const Capture* find_capture(const ArgContext& ctx, std::size_t arg, CaptureKind kind, std::uint8_t field = 0) {
    if (!ctx.event_captures) return nullptr;
    for (const auto& e : *ctx.event_captures) {
        if (e.arg == arg && e.kind == kind && e.field == field) return &e;
    }
    return nullptr;
}

// Captured bytes are only worth printing when some of them were read.
bool usable(const Capture* c) {
    return c != nullptr && !(c->status == CaptureStatus::Fault && c->data.empty());
}

// A fixed-size char array (utsname's fields, an interface name) up to its NUL, quoted.
std::string quote_char_array(std::string_view field, std::size_t limit) {
    return quote(field.substr(0, field.find('\0')), limit);
}

// ---------------------------------------------------------------------------------------------
// Reads through MemoryReader, with the listener's capture semantics (bounds, status).

struct Fetched {
    std::string data;
    CaptureStatus status = CaptureStatus::Fault;
};

Fetched fetch_buffer(const MemoryReader& m, std::uint64_t addr, std::uint64_t want,
                     std::uint32_t max) {
    Fetched f;
    const std::size_t n = want > max ? max : static_cast<std::size_t>(want);
    f.data.resize(n);
    const std::size_t got = n ? m.read(addr, f.data.data(), n) : 0;
    f.data.resize(got > n ? n : got);
    if (f.data.size() < n) {
        f.status = f.data.empty() ? CaptureStatus::Fault : CaptureStatus::Partial;
    } else {
        f.status = want > max ? CaptureStatus::Truncated : CaptureStatus::Ok;
    }
    return f;
}

// Appends a NUL-terminated string at addr (without its NUL) to out, at most max bytes in all.
CaptureStatus append_cstring(const MemoryReader& m, std::uint64_t addr, std::string& out,
                             std::size_t max) {
    std::size_t len = 0;
    char chunk[kStringChunk];
    while (out.size() < max) {
        const std::uint64_t a = addr + len;
        std::size_t n = kStringChunk - static_cast<std::size_t>(a % kStringChunk);
        n = std::min(n, max - out.size());
        const std::size_t got = m.read(a, chunk, n);
        const void* nul = std::memchr(chunk, 0, std::min(got, n));
        if (nul) {
            out.append(chunk, static_cast<const char*>(nul) - chunk);
            return CaptureStatus::Ok;
        }
        out.append(chunk, std::min(got, n));
        len += std::min(got, n);
        if (got < n) return len ? CaptureStatus::Partial : CaptureStatus::Fault;
    }
    return CaptureStatus::Truncated;
}

Fetched fetch_cstring(const MemoryReader& m, std::uint64_t addr, std::uint32_t max) {
    Fetched f;
    f.status = append_cstring(m, addr, f.data, max);
    return f;
}

// NUL-separated strings, as the listener stores a StrArray capture.
Fetched fetch_str_array(const MemoryReader& m, std::uint64_t addr, bool compat,
                        std::uint32_t max) {
    Fetched f;
    f.status = CaptureStatus::Ok;
    const std::size_t psize = compat ? 4 : 8;
    for (std::size_t i = 0; i < 256; ++i) {
        char raw[8] = {};
        if (m.read(addr + i * psize, raw, psize) < psize) {
            f.status = i ? CaptureStatus::Partial : CaptureStatus::Fault;
            return f;
        }
        const std::uint64_t p = le(std::string_view(raw, psize), 0, psize);
        if (p == 0) return f;
        if (f.data.size() >= max) {
            f.status = CaptureStatus::Truncated;
            return f;
        }
        const CaptureStatus st = append_cstring(m, p, f.data, max);
        if (st != CaptureStatus::Ok) {
            f.status = st == CaptureStatus::Fault ? CaptureStatus::Partial : st;
            return f;
        }
        f.data += '\0';
    }
    f.status = CaptureStatus::Truncated;
    return f;
}

// Sections as the listener's IovecData and Msghdr captures hold them: per section a 4-byte
// length, a status byte, 3 padding bytes, the bytes padded to 8.
void append_section(std::string& out, const Fetched& f) {
    const auto n = static_cast<std::uint32_t>(f.data.size());
    char h[8] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                 static_cast<char>(n >> 24), static_cast<char>(f.status), 0, 0, 0};
    out.append(h, 8);
    out += f.data;
    out.append((8 - n % 8) % 8, '\0');
}

// A struct msghdr and what it points to, in the layout of a Msghdr capture (see
// include/nitro/event.h): the structure, the address at msg_name, the iovec array, the first
// per_entry bytes of each of its first kMaxIov buffers (total: at most that many in all, the
// bytes a recvmsg transferred; ~0: no limit). in_array: a struct mmsghdr, whose msg_len bounds
// the buffers instead.
Fetched fetch_msghdr(const MemoryReader& m, std::uint64_t addr, bool compat, std::uint64_t total,
                     std::uint32_t per_entry, bool in_array = false) {
    Fetched out;
    const std::uint32_t struct_size = in_array ? (compat ? kMmsghdr32 : kMmsghdr64)
                                               : (compat ? kMsghdr32 : kMsghdr64);
    const Fetched hdr = fetch_buffer(m, addr, struct_size, struct_size);
    if (hdr.status != CaptureStatus::Ok) return out;  // Fault
    out.status = CaptureStatus::Ok;
    append_section(out.data, hdr);
    const MsghdrFields f = msghdr_fields(hdr.data, compat);
    if (in_array) total = f.msg_len;
    append_section(out.data, f.name ? fetch_buffer(m, f.name, std::min<std::uint64_t>(f.namelen, kMsgNameBytes), kMsgNameBytes)
                                    : Fetched{{}, CaptureStatus::Ok});
    const std::size_t esize = iovec_size(compat);
    const std::uint64_t count = std::min<std::uint64_t>(f.iovlen, kMaxIov);
    const Fetched array = f.iov ? fetch_buffer(m, f.iov, count * esize, kMaxIov * 16) : Fetched{{}, CaptureStatus::Ok};
    append_section(out.data, array);
    for (std::size_t i = 0; i < array.data.size() / esize; ++i) {
        const auto [base, whole] = iovec_entry(array.data, i, compat);
        const std::uint64_t len = std::min(whole, total);
        total -= len;
        append_section(out.data, base ? fetch_buffer(m, base, len, per_entry)
                                      : Fetched{{}, len ? CaptureStatus::Fault : CaptureStatus::Ok});
    }
    // Control messages after every buffer's section, as the plugin does (not in arrays).
    if (!in_array && array.data.size() / esize == count) {
        const std::uint64_t want = f.control ? std::min<std::uint64_t>(f.controllen, kMsgControlBytes) : 0;
        append_section(out.data, want ? fetch_buffer(m, f.control, want, kMsgControlBytes)
                                      : Fetched{{}, CaptureStatus::Ok});
    }
    if (f.iovlen > kMaxIov) out.status = CaptureStatus::Truncated;
    return out;
}

// The first count (at most kMaxMmsg) struct mmsghdr of an array, each as fetch_msghdr, its
// buffers bounded by its msg_len.
Fetched fetch_mmsghdr(const MemoryReader& m, std::uint64_t addr, std::uint64_t count, bool compat,
                      std::uint32_t per_entry) {
    Fetched out;
    const std::uint32_t size = compat ? kMmsghdr32 : kMmsghdr64;
    for (std::uint64_t i = 0; i < count && i < kMaxMmsg; ++i) {
        const Fetched f = fetch_msghdr(m, addr + i * size, compat, 0, per_entry, true);
        if (f.status == CaptureStatus::Fault) break;
        out.data += f.data;
        out.status = CaptureStatus::Ok;
    }
    return out;
}

// The bytes behind one argument: the listener's capture when there is one, else a read of
// guest memory with the same semantics, else nothing.
class Source {
  public:
    explicit Source(const ArgContext& ctx) : ctx_(ctx), capture_(ctx.capture) {}
    /// Reads in place of another capture of the event (or none): e.g. one of another argument.
    Source(const ArgContext& ctx, const Capture* capture) : ctx_(ctx), capture_(capture) {}

    const Capture* cstring(std::uint64_t addr) {
        if (capture_ || !ctx_.memory || addr == 0) return capture_;
        return own(fetch_cstring(*ctx_.memory, addr, kCaptureMax));
    }
    const Capture* buffer(std::uint64_t addr, std::uint64_t want, std::uint32_t max) {
        if (capture_ || !ctx_.memory || addr == 0) return capture_;
        return own(fetch_buffer(*ctx_.memory, addr, want, max));
    }
    const Capture* str_array(std::uint64_t addr) {
        if (capture_ || !ctx_.memory || addr == 0) return capture_;
        return own(fetch_str_array(*ctx_.memory, addr, ctx_.compat, kCaptureMax));
    }
    const Capture* msghdr(std::uint64_t addr, std::uint64_t total, std::uint32_t per_entry) {
        if (capture_ || !ctx_.memory || addr == 0) return capture_;
        return own(fetch_msghdr(*ctx_.memory, addr, ctx_.compat, total, per_entry));
    }
    const Capture* mmsghdr(std::uint64_t addr, std::uint64_t count, std::uint32_t per_entry) {
        if (capture_ || !ctx_.memory || addr == 0) return capture_;
        return own(fetch_mmsghdr(*ctx_.memory, addr, count, ctx_.compat, per_entry));
    }
    // A buffer whose length is the socklen_t at lenptr (read now).
    const Capture* buffer_len_ptr(std::uint64_t addr, std::uint64_t lenptr, std::uint32_t max) {
        if (capture_ || !ctx_.memory || addr == 0 || lenptr == 0) return capture_;
        char raw[4];
        if (ctx_.memory->read(lenptr, raw, 4) < 4) return nullptr;
        return buffer(addr, u32(std::string_view(raw, 4), 0), max);
    }

  private:
    const Capture* own(Fetched f) {
        fetched_ = std::move(f);
        local_ = Capture{0, CaptureKind::BufFixed, fetched_.status, fetched_.data};
        return &local_;
    }
    const ArgContext& ctx_;
    const Capture* capture_;
    Fetched fetched_;
    Capture local_{};
};

// ---------------------------------------------------------------------------------------------
// Printers.

std::string format_cstring(std::uint64_t addr, const Capture* c) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    // strace prints paths whole (they are bounded by PATH_MAX); a cut one ends in "...".
    return quote(c->data, c->data.size(), c->status != CaptureStatus::Ok);
}

std::string format_buffer(std::uint64_t addr, const Capture* c, std::size_t limit,
                          bool force_hex = false) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    return quote(c->data, limit, c->status != CaptureStatus::Ok, force_hex);
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

std::string format_sockaddr(std::uint64_t addr, const Capture* c) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->data.size() < 2) return format_pointer(addr);
    const auto* p = reinterpret_cast<const unsigned char*>(c->data.data());
    const std::size_t n = c->data.size();
    const int family = p[0] | p[1] << 8;
    std::string name = format_enum(FlagTable::Af, family);
    if (name == dec(family)) name = fmt::format("{:#x} /* AF_??? */", family);
    std::string out = "{sa_family=" + name;
    if (family == 1 /* AF_UNIX */) {
        std::string_view path = c->data.substr(2);
        if (path.empty()) {
            // An unnamed socket (accept's peer): the family only.
        } else if (path[0] == '\0') {
            // Abstract socket: the name is all remaining bytes.
            out += ", sun_path=@" + quote(path.substr(1), path.size());
        } else {
            auto nul = path.find('\0');
            out += ", sun_path=" + quote(path.substr(0, nul), path.size());
        }
    } else if (family == 2 /* AF_INET */ && n >= 8) {
        out += fmt::format(", sin_port=htons({}), sin_addr=inet_addr(\"{}.{}.{}.{}\")", be16(p + 2),
                           p[4], p[5], p[6], p[7]);
    } else if (family == 10 /* AF_INET6 */ && n >= 24) {
        char text[INET6_ADDRSTRLEN] = {};
        inet_ntop(AF_INET6, p + 8, text, sizeof text);
        out += fmt::format(
            ", sin6_port=htons({}), sin6_flowinfo=htonl({}), inet_pton(AF_INET6, \"{}\", "
            "&sin6_addr)",
            be16(p + 2), static_cast<std::uint32_t>(be16(p + 4)) << 16 | be16(p + 6), text);
        if (n >= 28) out += fmt::format(", sin6_scope_id={}", u32(c->data, 24));
    } else if (family == 16 /* AF_NETLINK */ && n >= 12) {
        // nl_groups as C's %#08x: "00000000", "0x000011"
        const std::uint32_t groups = u32(c->data, 8);
        out += fmt::format(", nl_pid={}, nl_groups={}", u32(c->data, 4),
                           groups ? fmt::format("{:#08x}", groups) : std::string("00000000"));
    } else {
        out += ", ...";
    }
    return out + "}";
}

// A file's mode as stat and mknod show it: "S_IFREG|0644", "S_IFDIR|S_ISVTX|0777", "0755"
// (strace's symbolic form).
std::string format_mode(std::uint64_t mode) {
    const std::uint64_t type = mode & 0170000;
    std::string t;
    switch (type) {
        case 0: break;
        case 0010000: t = "S_IFIFO"; break;
        case 0020000: t = "S_IFCHR"; break;
        case 0040000: t = "S_IFDIR"; break;
        case 0060000: t = "S_IFBLK"; break;
        case 0100000: t = "S_IFREG"; break;
        case 0120000: t = "S_IFLNK"; break;
        case 0140000: t = "S_IFSOCK"; break;
        default: return fmt::format("{:#o}", mode);
    }
    if (mode & ~static_cast<std::uint64_t>(0177777)) return fmt::format("{:#o}", mode);
    std::string out = t.empty() ? t : t + "|";
    if (mode & 04000) out += "S_ISUID|";
    if (mode & 02000) out += "S_ISGID|";
    if (mode & 01000) out += "S_ISVTX|";
    return out + fmt::format("{:#03o}", mode & 0777);
}

// Unknown values of these tables print as strace's printxval does: "0x7 /* SIG_??? */".
std::string format_value(FlagTable table, std::int64_t v) {
    if (table == FlagTable::Signal) return format_signal(v);
    std::string s = format_enum(table, v);
    if (s != dec(v)) return s;
    const char* unknown = nullptr;
    switch (table) {
        case FlagTable::Af: unknown = "AF_???"; break;
        case FlagTable::SigprocmaskHow: unknown = "SIG_???"; break;
        case FlagTable::Whence: unknown = "SEEK_???"; break;
        case FlagTable::FcntlCmd: unknown = "F_???"; break;
        case FlagTable::ArchPrctlCode: unknown = "ARCH_???"; break;
        case FlagTable::RlimitResource: unknown = "RLIMIT_???"; break;
        case FlagTable::SocketLevel: unknown = "SOL_???"; break;
        case FlagTable::ScmType: unknown = "SCM_???"; break;
        case FlagTable::PtraceRequest: unknown = "PTRACE_???"; break;
        case FlagTable::PrctlOption: unknown = "PR_???"; break;
        case FlagTable::EpollCtlOp: unknown = "EPOLL_CTL_???"; break;
        case FlagTable::NetlinkProtocol: unknown = "NETLINK_???"; break;
        case FlagTable::RebootMagic1:
        case FlagTable::RebootMagic2: unknown = "LINUX_REBOOT_MAGIC_???"; break;
        case FlagTable::RebootCmd: unknown = "LINUX_REBOOT_CMD_???"; break;
        case FlagTable::PrioWhich: unknown = "PRIO_???"; break;
        case FlagTable::IoprioWho: unknown = "IOPRIO_WHO_???"; break;
        case FlagTable::TcflshQueue:
        case FlagTable::TcxoncAction: unknown = "TC???"; break;
        default: return s;
    }
    return fmt::format("{:#x} /* {} */", static_cast<std::uint32_t>(v), unknown);
}

// A device number as strace prints it, "makedev(0x1, 0x3)": C's %#x, which prints 0 as "0".
std::string format_makedev(std::uint64_t major, std::uint64_t minor) {
    auto hex_c = [](std::uint64_t v) { return v ? fmt::format("{:#x}", v) : std::string("0"); };
    return "makedev(" + hex_c(major) + ", " + hex_c(minor) + ")";
}

std::string format_stat(std::string_view d) {
    if (d.size() < 56) return {};
    const std::uint32_t mode = u32(d, 24);
    std::string out = "{st_mode=" + format_mode(mode);
    const std::uint32_t type = mode & 0170000;
    if (type == 0020000 || type == 0060000) {
        const std::uint64_t dev = u64(d, 40);
        const std::uint64_t major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffULL);
        const std::uint64_t minor = (dev & 0xff) | ((dev >> 12) & ~0xffULL);
        out += ", st_rdev=" + format_makedev(major, minor);
    } else {
        out += fmt::format(", st_size={}", static_cast<std::int64_t>(u64(d, 48)));
    }
    return out + ", ...}";
}

std::string format_statx(std::string_view d) {
    if (d.size() < 48) return {};
    return fmt::format("{{stx_mask={}, stx_attributes={}, stx_mode={}, stx_size={}, ...}}",
                       format_flags(FlagTable::StatxMask, u32(d, 0)),
                       format_flags(FlagTable::StatxAttrs, u64(d, 8)),
                       format_mode(le(d, 28, 2)), u64(d, 40));
}

std::string format_open_how(std::string_view d, std::uint64_t size) {
    if (size < 24 || d.size() < 24) return {};
    const std::uint64_t flags = u64(d, 0), mode = u64(d, 8);
    std::string out = "{flags=" + format_flags(FlagTable::OpenFlags, flags);
    if ((flags & 0100) || (flags & 020000000) || mode) out += fmt::format(", mode={:#03o}", mode);
    return out + ", resolve=" + format_flags(FlagTable::ResolveFlags, u64(d, 16)) + "}";
}

// struct epoll_event as strace prints it: "{events=EPOLLIN, data={u32=4, u64=4}}".
std::string format_epoll_event(std::string_view d) {
    if (d.size() < kEpollEventSize) return {};
    const std::uint64_t data = u64(d, 4);
    return "{events=" + format_flags(FlagTable::EpollEvents, u32(d, 0)) + fmt::format(
               ", data={{u32={}, u64={}}}}}", static_cast<std::uint32_t>(data), data);
}

constexpr std::uint64_t kClonePidfd = 0x1000, kCloneParentSettid = 0x00100000;

// An int the call wrote at addr, as strace prints it: "[N]"; the address when unreadable.
std::string format_int_at(std::uint64_t addr, const Capture* c) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault || c->data.size() < 4) return format_pointer(addr);
    return "[" + dec(static_cast<std::int32_t>(u32(c->data, 0))) + "]";
}

// clone3's exit: what the kernel wrote at the pidfd and parent_tid addresses of struct
// clone_args d (64 bytes at least; argument arg), " => {pidfd=[3], parent_tid=[1234]}", from
// the event's captures of them (CaptureKind::Deref) or else from memory; "" when neither flag
// is set.
std::string clone3_written(std::string_view d, const ArgContext& ctx, unsigned arg) {
    const std::uint64_t flags = u64(d, 0);
    std::string out;
    auto field = [&](std::uint8_t index, const char* name) {
        const std::uint64_t addr = u64(d, 8u * index);
        Source src(ctx, find_capture(ctx, arg, CaptureKind::Deref, index));
        out += std::string(out.empty() ? " => {" : ", ") + name + "=" + format_int_at(addr, src.buffer(addr, 4, 4));
    };
    if (flags & kClonePidfd) field(1, "pidfd");
    if (flags & kCloneParentSettid) field(3, "parent_tid");
    return out.empty() ? out : out + "}";
}

std::string format_clone_args(std::string_view d, std::uint64_t size) {
    constexpr std::uint64_t kPidfd = kClonePidfd, kChildSettid = 0x01000000,
                            kChildCleartid = 0x00200000, kParentSettid = kCloneParentSettid,
                            kSettls = 0x00080000, kIntoCgroup = 0x200000000ULL;
    if (size < 64 || d.size() < 64) return {};
    const std::uint64_t flags = u64(d, 0);
    std::string out = "{flags=" + format_flags(FlagTable::CloneFlags, flags);
    if (flags & kPidfd) out += ", pidfd=" + format_pointer(u64(d, 8));
    if (flags & (kChildSettid | kChildCleartid)) out += ", child_tid=" + format_pointer(u64(d, 16));
    if (flags & kParentSettid) out += ", parent_tid=" + format_pointer(u64(d, 24));
    out += ", exit_signal=" + format_signal(static_cast<std::int64_t>(u64(d, 32)));
    out += ", stack=" + format_pointer(u64(d, 40));
    out += ", stack_size=" + hex(u64(d, 48));
    if (flags & kSettls) out += ", tls=" + format_pointer(u64(d, 56));
    if (size >= 80 && d.size() >= 80 && (u64(d, 64) || u64(d, 72))) {
        out += ", set_tid=" + format_pointer(u64(d, 64)) + fmt::format(", set_tid_size={}", u64(d, 72));
    }
    if (size >= 88 && d.size() >= 88 && (u64(d, 80) || (flags & kIntoCgroup))) {
        out += fmt::format(", cgroup={}", u64(d, 80));
    }
    return out + "}";
}

std::string format_sigaction(std::string_view d) {
    if (d.size() < 32) return {};
    const std::uint64_t handler = u64(d, 0), flags = u64(d, 8);
    std::string out = "{sa_handler=";
    if (handler == 0) {
        out += "SIG_DFL";
    } else if (handler == 1) {
        out += "SIG_IGN";
    } else {
        out += format_pointer(handler);
    }
    out += ", sa_mask=" + format_sigset(d.substr(24, 8));
    out += ", sa_flags=" + format_flags(FlagTable::SaFlags, flags);
    if (flags & 0x04000000) out += ", sa_restorer=" + format_pointer(u64(d, 16));
    return out + "}";
}

std::string format_wait_status(std::string_view d) {
    if (d.size() < 4) return {};
    const std::uint32_t s = u32(d, 0);
    if ((s & 0xff) == 0x7f) {
        return fmt::format("[{{WIFSTOPPED(s) && WSTOPSIG(s) == {}}}]", format_signal((s >> 8) & 0xff));
    }
    if (s == 0xffff) return "[{WIFCONTINUED(s)}]";
    if ((s & 0x7f) == 0) return fmt::format("[{{WIFEXITED(s) && WEXITSTATUS(s) == {}}}]", (s >> 8) & 0xff);
    return fmt::format("[{{WIFSIGNALED(s) && WTERMSIG(s) == {}{}}}]", format_signal(s & 0x7f),
                       (s & 0x80) ? " && WCOREDUMP(s)" : "");
}

// struct timespec / struct timeval (x86-64: two longs), as strace prints them.
std::string format_time_pair(std::string_view d, std::size_t off, const char* sub) {
    return fmt::format("{{tv_sec={}, {}={}}}", static_cast<std::int64_t>(u64(d, off)), sub,
                       static_cast<std::int64_t>(u64(d, off + 8)));
}

// struct rusage, abbreviated like strace without -v: the two times, then "...".
std::string format_rusage(std::string_view d) {
    if (d.size() < 32) return {};
    return "{ru_utime=" + format_time_pair(d, 0, "tv_usec") +
           ", ru_stime=" + format_time_pair(d, 16, "tv_usec") + ", ...}";
}

std::string format_rlim(std::uint64_t v) {
    if (v == ~0ULL) return "RLIM64_INFINITY";
    // strace: 1024 itself as a number, its larger multiples as N*1024.
    if (v > 1024 && v % 1024 == 0) return fmt::format("{}*1024", v / 1024);
    return dec(v);
}

// A file time given to utimensat, as strace prints it: UTIME_NOW, UTIME_OMIT, or the time with
// its date in a comment ("{tv_sec=86400, tv_nsec=0} /* 1970-01-02T00:00:00+0000 */"). The date
// is in UTC: the guest's time zone is not known here.
std::string format_utime(std::string_view d, std::size_t off) {
    constexpr std::int64_t kUtimeNow = (1 << 30) - 1, kUtimeOmit = (1 << 30) - 2;
    const auto sec = static_cast<std::int64_t>(u64(d, off)), nsec = static_cast<std::int64_t>(u64(d, off + 8));
    if (nsec == kUtimeNow) return "UTIME_NOW";
    if (nsec == kUtimeOmit) return "UTIME_OMIT";
    std::string out = fmt::format("{{tv_sec={}, tv_nsec={}}}", sec, nsec);
    const auto t = static_cast<std::time_t>(sec);
    std::tm tm{};
    if (nsec < 0 || nsec > 999999999 || !gmtime_r(&t, &tm)) return out;
    out += fmt::format(" /* {:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (nsec) out += fmt::format(".{:09}", nsec);
    return out + "+0000 */";
}

// struct statfs (x86-64, 120 bytes) as strace prints it.
std::string format_statfs(std::string_view d) {
    if (d.size() < 88) return {};
    const std::uint64_t type = u64(d, 0);
    std::string name = format_enum(FlagTable::FsMagic, static_cast<std::int64_t>(type));
    if (name == dec(static_cast<std::int64_t>(type))) name = hex(type);
    return fmt::format("{{f_type={}, f_bsize={}, f_blocks={}, f_bfree={}, f_bavail={}, f_files={}, "
                       "f_ffree={}, f_fsid={{val=[{}, {}]}}, f_namelen={}, f_frsize={}, f_flags={}}}",
                       name, static_cast<std::int64_t>(u64(d, 8)), u64(d, 16), u64(d, 24), u64(d, 32),
                       u64(d, 40), u64(d, 48), hex(u32(d, 56)), hex(u32(d, 60)),
                       static_cast<std::int64_t>(u64(d, 64)), static_cast<std::int64_t>(u64(d, 72)),
                       format_flags(FlagTable::StatfsFlags, u64(d, 80)));
}

// struct sysinfo (x86-64, 112 bytes) as strace prints it.
std::string format_sysinfo(std::string_view d) {
    if (d.size() < 112) return {};
    return fmt::format("{{uptime={}, loads=[{}, {}, {}], totalram={}, freeram={}, sharedram={}, "
                       "bufferram={}, totalswap={}, freeswap={}, procs={}, totalhigh={}, freehigh={}, "
                       "mem_unit={}}}",
                       static_cast<std::int64_t>(u64(d, 0)), u64(d, 8), u64(d, 16), u64(d, 24),
                       u64(d, 32), u64(d, 40), u64(d, 48), u64(d, 56), u64(d, 64), u64(d, 72),
                       le(d, 80, 2), u64(d, 88), u64(d, 96), u32(d, 104));
}

// A kernel structure by its spec tag; empty when the tag is not decoded or the bytes are too
// few. Only the x86-64 layouts are known.
std::string format_struct(std::string_view tag, std::string_view d, const ArgContext& ctx,
                          const SyscallInfo& info) {
    if (ctx.compat) return {};
    auto size_arg = [&](std::string_view name) -> std::uint64_t {
        for (std::size_t i = 0; i < info.nargs; ++i) {
            if (info.args[i].name == name) return reg(ctx, i);
        }
        return 0;
    };
    if (tag == "stat") return format_stat(d);
    if (tag == "statx") return format_statx(d);
    if (tag == "open_how") return format_open_how(d, size_arg("size"));
    if (tag == "clone_args") return format_clone_args(d, size_arg("size"));
    if (tag == "sigaction") return format_sigaction(d);
    if (tag == "cpu_set") {
        // The CPUs a set names, "[0 2 3]": its first len bytes (the call's length argument;
        // at sched_getaffinity's exit, the bytes the kernel wrote, its return value), of the
        // kCpuSetBytes captured.
        std::uint64_t n = size_arg("len");
        if (ctx.ret && info.name == "sched_getaffinity") n = static_cast<std::uint64_t>(*ctx.ret);
        n = std::min<std::uint64_t>(n, d.size());
        std::string out = "[";
        for (std::uint64_t byte = 0; byte < n; ++byte) {
            const auto b = static_cast<std::uint8_t>(d[byte]);
            for (unsigned bit = 0; bit < 8; ++bit) {
                if (!(b >> bit & 1)) continue;
                if (out.size() > 1) out += ' ';
                out += std::to_string(byte * 8 + bit);
            }
        }
        return out + "]";
    }
    if (tag == "sigset") {
        // strace decodes a set only when its size is the kernel's (8 bytes on x86-64).
        // (signalfd's size argument is named sizemask.)
        const std::uint64_t size = size_arg("sigsetsize") ? size_arg("sigsetsize") : size_arg("sizemask");
        if (size != 8 || d.size() < 8) return {};
        return format_sigset(d.substr(0, 8));
    }
    if (tag == "fd_pair" && d.size() >= 8) {
        return fmt::format("[{}, {}]", static_cast<std::int32_t>(u32(d, 0)),
                           static_cast<std::int32_t>(u32(d, 4)));
    }
    if (tag == "wait_status") return format_wait_status(d);
    if (tag == "timespec" && d.size() >= 16) return format_time_pair(d, 0, "tv_nsec");
    if (tag == "timeval" && d.size() >= 16) return format_time_pair(d, 0, "tv_usec");
    if (tag == "epoll_event") return format_epoll_event(d);
    if (tag == "utsname" && d.size() >= 130) {
        // struct utsname: 65-byte NUL-terminated fields; strace shows the first two, then "...".
        auto field = [&](std::size_t i) { return quote_char_array(d.substr(i * 65, 65), ctx.string_limit); };
        return "{sysname=" + field(0) + ", nodename=" + field(1) + ", ...}";
    }
    if (tag == "rusage") return format_rusage(d);
    if (tag == "statfs") return format_statfs(d);
    if (tag == "itimerval" && d.size() >= 32) {
        return "{it_interval=" + format_time_pair(d, 0, "tv_usec") + ", it_value=" + format_time_pair(d, 16, "tv_usec") + "}";
    }
    if (tag == "sysinfo") return format_sysinfo(d);
    if (tag == "utimens" && d.size() >= 32) return "[" + format_utime(d, 0) + ", " + format_utime(d, 16) + "]";
    if (tag == "rlimit64" && d.size() >= 16) {
        return "{rlim_cur=" + format_rlim(u64(d, 0)) + ", rlim_max=" + format_rlim(u64(d, 8)) + "}";
    }
    return {};
}

// Bytes to capture for a structure tag (0: not decoded).
std::uint32_t struct_size(std::string_view tag) {
    if (tag == "stat") return 144;
    if (tag == "statx") return 256;
    if (tag == "open_how") return 24;
    if (tag == "clone_args") return 88;
    if (tag == "sigaction") return 32;
    if (tag == "sigset") return 8;
    if (tag == "cpu_set") return kCpuSetBytes;
    if (tag == "fd_pair") return 8;
    if (tag == "wait_status") return 4;
    if (tag == "rlimit64") return 16;
    if (tag == "timespec" || tag == "timeval") return 16;
    if (tag == "utsname") return 390;
    if (tag == "epoll_event") return kEpollEventSize;
    if (tag == "rusage") return 144;
    if (tag == "statfs") return 120;
    if (tag == "itimerval") return 32;
    if (tag == "sysinfo") return 112;
    if (tag == "utimens") return 32;
    return 0;
}

// The buffers of an IovecData capture, in entry order (a malformed tail ends the list).
// The sections of an IovecData or Msghdr capture, at most max of them, in order (a malformed
// section ends the list).
std::vector<Fetched> split_sections(const Capture* c, std::size_t max) {
    std::vector<Fetched> out;
    if (!usable(c)) return out;
    std::string_view d = c->data;
    while (d.size() >= 8 && out.size() < max) {
        const std::uint32_t len = u32(d, 0);
        const auto status = static_cast<std::uint8_t>(d[4]);
        const std::size_t padded = (static_cast<std::size_t>(len) + 7) & ~std::size_t{7};
        if (status > static_cast<std::uint8_t>(CaptureStatus::Partial) || d.size() - 8 < len) break;
        out.push_back({std::string(d.substr(8, len)), static_cast<CaptureStatus>(status)});
        d.remove_prefix(std::min(d.size(), 8 + padded));
    }
    return out;
}

// "[{iov_base="...", iov_len=4}, ...]". data_size: bytes the call transferred (readv's return
// value; writev prints each buffer whole, up to the string limit). The buffers come from
// captured (the listener's copy at the event, see split_sections) when it has them, else from
// ctx.memory when the event is decoded: exact in synchronous mode (the guest waits), possibly
// changed since the call in asynchronous mode.
std::string format_iovec(std::uint64_t addr, const Capture* c, std::uint64_t count,
                         std::uint64_t data_size, const ArgContext& ctx,
                         const std::vector<Fetched>& captured) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    std::string out = "[";
    const std::size_t have = c->data.size() / iovec_size(ctx.compat);
    std::size_t i = 0;
    for (; i < count && i < have && i < kMaxIov; ++i) {
        const auto [base, len] = iovec_entry(c->data, i, ctx.compat);
        if (i) out += ", ";
        const std::uint64_t show = std::min(len, data_size);
        data_size -= show;
        out += "{iov_base=";
        if (base == 0) {
            out += "NULL";
        } else if (i < captured.size() || ctx.memory) {
            Fetched f = i < captured.size() ? captured[i] : fetch_buffer(*ctx.memory, base, show, kIovBytes);
            if (f.status == CaptureStatus::Fault && show) {
                out += format_pointer(base);
            } else {
                out += quote(f.data, ctx.string_limit, f.status != CaptureStatus::Ok);
            }
        } else {
            out += format_pointer(base);
        }
        out += fmt::format(", iov_len={}}}", len);
    }
    if (i < count) out += i ? ", ..." : "...";
    return out + "]";
}

// msg_control as strace prints it: "[{cmsg_len=20, cmsg_level=SOL_SOCKET,
// cmsg_type=SCM_RIGHTS, cmsg_data=[4]}]". d: the bytes at addr, up to controllen of them;
// fewer than that (an unreadable page) prints the address, as strace does.
std::string format_msg_control(std::uint64_t addr, const Fetched& bytes, std::uint64_t controllen,
                               const ArgContext& ctx) {
    const std::size_t hdr = ctx.compat ? 12 : 16, word = ctx.compat ? 4 : 8;
    const std::string_view d = bytes.data;
    if (d.size() < hdr || d.size() < std::min<std::uint64_t>(controllen, kMsgControlBytes)) {
        return format_pointer(addr);
    }
    std::string out = "[";
    std::size_t off = 0, left = d.size();
    while (left >= hdr) {
        const std::uint64_t clen = ctx.compat ? u32(d, off) : u64(d, off);
        const auto level = static_cast<std::int32_t>(u32(d, off + word));
        const std::uint32_t type = u32(d, off + word + 4);
        out += std::string(off ? ", " : "") + "{cmsg_len=" + dec(clen) +
               ", cmsg_level=" + format_value(FlagTable::SocketLevel, level) + ", cmsg_type=";
        const std::uint64_t len = std::min<std::uint64_t>(clen, left);
        const std::string_view data = len > hdr ? d.substr(off + hdr, len - hdr) : std::string_view();
        if (level == 1) {  // SOL_SOCKET
            out += format_value(FlagTable::ScmType, static_cast<std::int32_t>(type));
            if (type == 1 && data.size() >= 4) {  // SCM_RIGHTS: the descriptors passed
                out += ", cmsg_data=[";
                for (std::size_t i = 0; i + 4 <= data.size(); i += 4) {
                    if (i == 4 * kMaxFdsShown) {
                        out += ", ...";
                        break;
                    }
                    out += std::string(i ? ", " : "") + dec(static_cast<std::int32_t>(u32(data, i)));
                }
                out += "]";
            } else if (type == 2 && data.size() >= 12) {  // SCM_CREDENTIALS: struct ucred
                out += fmt::format(", cmsg_data={{pid={}, uid={}, gid={}}}", u32(data, 0), u32(data, 4), u32(data, 8));
            } else if (type == 3 && !data.empty()) {  // SCM_SECURITY: the label
                out += ", cmsg_data=" + quote(data, ctx.string_limit);
            }
        } else {
            out += fmt::format("{:#x}", type);
        }
        out += "}";
        if (len < hdr) {
            left -= hdr;
            break;
        }
        const std::uint64_t step = (clen + word - 1) & ~std::uint64_t{word - 1};
        if (clen >= left || step >= left) {
            left = 0;
            break;
        }
        off += step;
        left -= step;
    }
    if (left) {
        out += ", ... /* " + format_pointer(addr + (d.size() - left)) + " */";
    } else if (d.size() < controllen) {
        out += ", ...";
    }
    return out + "]";
}

// One struct msghdr from its sections (see fetch_msghdr), starting at sections[at]: "{msg_name=...,
// msg_namelen=16, msg_iov=[...], msg_iovlen=1, msg_controllen=0, msg_flags=0}" (msg_control
// only when msg_controllen is not 0: decoded when with_control and its section follows every
// buffer's, else its address). Advances at past the structure's sections; nullopt when they
// are missing or short. data_size: what the call transferred (~0: no limit). namelen_before:
// recvmsg's msg_namelen going in ("msg_namelen=20 => 16" when it changed).
std::optional<std::string> format_msghdr_sections(const std::vector<Fetched>& sections, std::size_t& at,
                                                  std::uint32_t struct_size, std::uint64_t data_size,
                                                  std::optional<std::uint64_t> namelen_before,
                                                  const ArgContext& ctx, bool with_control = false) {
    if (sections.size() < at + 3 || sections[at].data.size() < struct_size) return std::nullopt;
    const MsghdrFields f = msghdr_fields(sections[at].data, ctx.compat);
    const Capture name{0, CaptureKind::BufFixed, sections[at + 1].status, sections[at + 1].data};
    const Capture array{0, CaptureKind::BufFixed, sections[at + 2].status, sections[at + 2].data};
    const std::size_t nbuf = std::min(array.data.size() / iovec_size(ctx.compat), sections.size() - at - 3);
    const std::vector<Fetched> buffers(sections.begin() + static_cast<std::ptrdiff_t>(at + 3),
                                       sections.begin() + static_cast<std::ptrdiff_t>(at + 3 + nbuf));
    at += 3 + nbuf;
    // Control messages follow every buffer's section (a single msghdr, record ABI 8).
    const Fetched* control = nullptr;
    if (with_control && nbuf == std::min<std::uint64_t>(f.iovlen, kMaxIov) && sections.size() == at + 1) {
        control = &sections[at++];
    }
    std::string out = "{msg_name=" + (f.name ? format_sockaddr(f.name, &name) : std::string("NULL"));
    out += ", msg_namelen=";
    if (namelen_before && *namelen_before != f.namelen) out += dec(*namelen_before) + " => ";
    out += dec(f.namelen);
    out += ", msg_iov=" + format_iovec(f.iov, &array, f.iovlen, data_size, ctx, buffers);
    out += ", msg_iovlen=" + dec(f.iovlen);
    if (f.controllen) {
        out += ", msg_control=" + (control && f.control ? format_msg_control(f.control, *control, f.controllen, ctx)
                                                        : format_pointer(f.control));
    }
    out += ", msg_controllen=" + dec(f.controllen);
    out += ", msg_flags=" + format_flags(FlagTable::MsgFlags, f.flags) + "}";
    return out;
}

// struct msghdr as strace prints it; c: a Msghdr capture or the same sections read from memory.
std::string format_msghdr(std::uint64_t addr, const Capture* c, std::uint64_t data_size,
                          std::optional<std::uint64_t> namelen_before, const ArgContext& ctx) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    std::size_t at = 0;
    auto text = format_msghdr_sections(split_sections(c, 4 + kMaxIov), at,
                                       ctx.compat ? kMsghdr32 : kMsghdr64, data_size, namelen_before, ctx,
                                       true);
    return text ? *text : format_pointer(addr);
}

// sendmmsg's array as strace prints it at the exit: "[{msg_hdr={...}, msg_len=5}, ...]", the
// messages the call sent (count: its return value; after kMaxMmsg of them, "...").
std::string format_mmsghdr(std::uint64_t addr, const Capture* c, std::uint64_t count,
                           const ArgContext& ctx,
                           const std::vector<std::uint64_t>* namelens_before = nullptr) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->status == CaptureStatus::Fault) return format_pointer(addr);
    const std::vector<Fetched> sections = split_sections(c, kMaxMmsg * (3 + kMaxIov));
    const std::uint32_t size = ctx.compat ? kMmsghdr32 : kMmsghdr64;
    std::string out = "[";
    std::size_t at = 0, i = 0;
    for (; i < count && i < kMaxMmsg; ++i) {
        if (sections.size() <= at || sections[at].data.size() < size) break;
        const std::uint32_t len = msghdr_fields(sections[at].data, ctx.compat).msg_len;
        std::optional<std::uint64_t> before;
        if (namelens_before && i < namelens_before->size()) before = (*namelens_before)[i];
        auto hdr = format_msghdr_sections(sections, at, size, len, before, ctx);
        if (!hdr) break;
        out += std::string(i ? ", " : "") + "{msg_hdr=" + *hdr + ", msg_len=" + dec(len) + "}";
    }
    if (i == 0 && count) return format_pointer(addr);
    if (i < count) out += ", ...";
    return out + "]";
}

// An array of count elements of size bytes at addr, as strace prints arrays: "[e0, e1]", each
// by element(its bytes); after max of them "..."; c: what was read of it. Its address when
// not one element could be read.
template <typename Element>
std::string format_array(std::uint64_t addr, const Capture* c, std::uint64_t count, std::size_t size,
                         std::size_t max, Element element) {
    if (addr == 0) return "NULL";
    if (!usable(c)) return format_pointer(addr);
    std::string out = "[";
    std::uint64_t i = 0;
    for (; i < count && i < max && (i + 1) * size <= c->data.size(); ++i) {
        out += std::string(i ? ", " : "") + element(c->data.substr(i * size, size));
    }
    if (i == 0 && count) return format_pointer(addr);
    if (i < count) out += ", ...";
    return out + "]";
}

// recvmmsg going in: the room each message gives for its sender's address, as nitro shows it
// at the entry ("[{msg_hdr={msg_namelen=16}}, ...]": strace shows nothing there); the exit
// reads the lengths back from that text (namelens_in) for "msg_namelen=20 => 16".
std::string format_mmsghdr_room(std::uint64_t addr, const Capture* c, std::uint64_t count,
                                const ArgContext& ctx) {
    return format_array(addr, c, count, ctx.compat ? kMmsghdr32 : kMmsghdr64, kMaxMmsg, [&](std::string_view d) {
        return "{msg_hdr={msg_namelen=" + dec(msghdr_fields(d, ctx.compat).namelen) + "}}";
    });
}

// The msg_namelen values of an entry text nitro printed (recvmsg's "{msg_namelen=20}",
// recvmmsg's list of them), in order, at most kMaxMmsg.
std::vector<std::uint64_t> namelens_in(std::string_view entry_text) {
    std::vector<std::uint64_t> out;
    constexpr std::string_view kKey = "msg_namelen=";
    for (std::size_t at = entry_text.find(kKey); at != std::string_view::npos && out.size() < kMaxMmsg;
         at = entry_text.find(kKey, at + 1)) {
        std::uint32_t n = 0;
        const char* first = entry_text.data() + at + kKey.size();
        if (std::from_chars(first, entry_text.data() + entry_text.size(), n).ec != std::errc()) {
            break;  // not a socklen_t nitro printed
        }
        out.push_back(n);
    }
    return out;
}

// "[110]" at the entry; "[110 => 2]" at the exit when the call changed it.
std::string format_socklen(std::uint64_t addr, const Capture* c, const ArgContext& ctx) {
    if (addr == 0) return "NULL";
    const bool at_exit = ctx.ret.has_value();
    if (at_exit && is_error_return(*ctx.ret) && !ctx.entry_text.empty()) {
        return std::string(ctx.entry_text);
    }
    if (!usable(c) || c->data.size() < 4) {
        return ctx.entry_text.empty() ? format_pointer(addr) : std::string(ctx.entry_text);
    }
    const std::string now = dec(u32(c->data, 0));
    const std::string_view e = ctx.entry_text;
    if (!at_exit || e.size() < 3 || e.front() != '[' || e.back() != ']') return "[" + now + "]";
    const std::string_view before = e.substr(1, e.size() - 2);
    if (before == now) return std::string(e);
    return fmt::format("[{} => {}]", before, now);
}

// poll's array going in: "[{fd=3, events=POLLIN}, {fd=-1}]" (a negative fd is skipped by
// the kernel, and strace shows only it); after kMaxFdsShown entries "...".
std::string format_pollfds(std::uint64_t addr, const Capture* c, std::uint64_t count) {
    return format_array(addr, c, count, kPollfdSize, kMaxFdsShown, [](std::string_view d) {
        const auto fd = static_cast<std::int32_t>(u32(d, 0));
        if (fd < 0) return "{fd=" + dec(fd) + "}";
        return "{fd=" + dec(fd) + ", events=" + format_flags(FlagTable::PollEvents, u32(d, 4) & 0xffff) + "}";
    });
}

// The detail strace adds after poll's return value: "Timeout", or the entries the call set
// revents in ("[{fd=3, revents=POLLIN}]"); empty when unknown.
std::string poll_detail(const Capture* c, std::uint64_t count, std::int64_t ret) {
    if (ret == 0) return "Timeout";
    if (ret < 0 || !usable(c)) return {};
    std::string out;
    std::uint64_t shown = 0;
    for (std::uint64_t i = 0; i < count && i < kMaxFdsShown && (i + 1) * kPollfdSize <= c->data.size(); ++i) {
        const std::uint32_t revents = u32(c->data, i * kPollfdSize + 4) >> 16;
        if (!revents) continue;
        out += std::string(shown++ ? ", " : "[") + "{fd=" +
               dec(static_cast<std::int32_t>(u32(c->data, i * kPollfdSize))) +
               ", revents=" + format_flags(FlagTable::PollEvents, revents) + "}";
    }
    return shown ? out + "]" : std::string();
}

// epoll_wait's array at the exit: the count events the call wrote (its return value), up to
// kMaxEpollEvents of them, then "...".
std::string format_epoll_events(std::uint64_t addr, const Capture* c, std::uint64_t count) {
    return format_array(addr, c, count, kEpollEventSize, kMaxEpollEvents, format_epoll_event);
}

// An array of n gid_t as strace prints it: "[0, 1]", the first 32 then "..."; its address
// unless all of those 32 (or n) were read.
constexpr std::size_t kMaxGroupsShown = 32;
std::string format_gid_array(std::uint64_t addr, const Capture* c, std::uint64_t n) {
    if (usable(c) && c->data.size() < std::min<std::uint64_t>(n, kMaxGroupsShown) * 4) return format_pointer(addr);
    return format_array(addr, c, n, 4, kMaxGroupsShown, [](std::string_view d) { return dec(u32(d, 0)); });
}

// Whether descriptor fd is in the fd_set bytes d (which hold it).
bool fd_in_set(std::string_view d, std::uint64_t fd) {
    return static_cast<std::uint8_t>(d[fd / 8]) & (1u << (fd % 8));
}

// A descriptor set of bits bits as strace prints it: "[3 4]"; its address when unreadable.
std::string format_fd_set(std::uint64_t addr, const Capture* c, std::uint64_t bits) {
    if (addr == 0) return "NULL";
    const std::uint64_t bytes = (std::min<std::uint64_t>(bits, kFdSetBytes * 8) + 7) / 8;
    if (!usable(c) || c->data.size() < bytes) return format_pointer(addr);
    std::string out = "[";
    for (std::uint64_t fd = 0; fd < std::min<std::uint64_t>(bits, kFdSetBytes * 8); ++fd) {
        if (fd_in_set(c->data, fd)) {
            out += std::string(out.size() > 1 ? " " : "") + dec(fd);
        }
    }
    return out + "]";
}

// futex's operation as strace names it: "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME".
std::string format_futex_op(std::uint32_t op) {
    constexpr std::uint32_t kPrivate = 128, kClockRealtime = 256;
    const std::uint32_t cmd = op & 127;
    std::string name = format_enum(FlagTable::FutexCmd, cmd);
    if ((op & ~(127u | kPrivate | kClockRealtime)) || name == dec(cmd)) {
        return fmt::format("{:#x} /* FUTEX_??? */", op);
    }
    if (op & kPrivate) name += "_PRIVATE";
    if (op & kClockRealtime) name += "|FUTEX_CLOCK_REALTIME";
    return name;
}

// futex's arguments after the operation, as strace shows them for each command: val, the
// timeout (or val2), uaddr2 and val3 only where the command uses them ("": not shown).
std::string format_futex_arg(std::size_t index, std::uint32_t cmd, const ArgContext& ctx,
                             const std::function<std::string()>& timeout) {
    enum Shown { Hidden, Dec, Timeout, Pointer, Bitset, Hex };
    Shown val = Dec, utime = Hidden, uaddr2 = Hidden, val3 = Hidden;
    switch (cmd) {
        case 0: utime = Timeout; break;                                              // WAIT
        case 1: case 2: break;                                                       // WAKE FD
        case 3: utime = Dec, uaddr2 = Pointer; break;                                // REQUEUE
        case 4: case 12: utime = Dec, uaddr2 = Pointer, val3 = Dec; break;           // CMP_REQUEUE(_PI)
        case 5: utime = Dec, uaddr2 = Pointer, val3 = Hex; break;                    // WAKE_OP
        case 6: case 13: val = Hidden, utime = Timeout; break;                       // LOCK_PI(2)
        case 7: case 8: val = Hidden; break;                                         // UNLOCK/TRYLOCK_PI
        case 9: utime = Timeout, val3 = Bitset; break;                               // WAIT_BITSET
        case 10: val3 = Bitset; break;                                               // WAKE_BITSET
        case 11: utime = Timeout, uaddr2 = Pointer; break;                           // WAIT_REQUEUE_PI
        default: utime = Pointer, uaddr2 = Pointer, val3 = Hex; break;
    }
    const Shown shown = index == 2 ? val : index == 3 ? utime : index == 4 ? uaddr2 : val3;
    const std::uint64_t v = reg(ctx, index);
    // C's "%#x": 0 without the prefix.
    auto hex32 = [](std::uint32_t x) { return x ? fmt::format("{:#x}", x) : std::string("0"); };
    switch (shown) {
        case Hidden: return {};
        case Dec: return dec(static_cast<std::uint32_t>(v));
        case Timeout: return timeout();
        case Pointer: return format_pointer(v);
        case Bitset:
            return static_cast<std::uint32_t>(v) == 0xffffffffu ? "FUTEX_BITSET_MATCH_ANY" : hex32(static_cast<std::uint32_t>(v));
        case Hex: return hex32(static_cast<std::uint32_t>(v));
    }
    return {};
}

// setsockopt/getsockopt's option name, by level, as strace prints it.
std::string format_sockopt_name(std::uint32_t level, std::uint32_t name) {
    FlagTable table;
    const char* prefix;
    switch (level) {
        case 0: table = FlagTable::IpOption, prefix = "IP"; break;
        case 1: table = FlagTable::SoOption, prefix = "SO"; break;
        case 6: table = FlagTable::TcpOption, prefix = "TCP"; break;
        case 41: table = FlagTable::Ipv6Option, prefix = "IPV6"; break;
        default: return dec(name);
    }
    std::string s = format_enum(table, static_cast<std::int32_t>(name));
    if (s != dec(static_cast<std::int32_t>(name))) return s;
    return fmt::format("{:#x} /* {}_??? */", name, prefix);
}

// SOL_SOCKET options whose value strace prints as an int ("[1]").
bool int_like_so_option(std::uint32_t name) {
    switch (name) {
        case 1: case 2: case 5: case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 14:
        case 15: case 16: case 18: case 19: case 27: case 29: case 30: case 32: case 33: case 34:
        case 35: case 36: case 37: case 40: case 41: case 42: case 43: case 44: case 45: case 46:
        case 49: case 53: case 56: case 60: case 63: case 64: case 65: case 68: case 69: case 70:
        case 73: case 75:
            return true;
        default:
            return false;
    }
}

// An option's value (setsockopt going in, getsockopt coming out: len bytes at addr, c what was
// read of them) as strace prints it: "[1]" for an int, "{l_onoff=1, l_linger=5}",
// "{pid=1, uid=0, gid=0}" (SO_PEERCRED), else the bytes as a string.
std::string format_sockopt_value(std::uint32_t level, std::uint32_t name, std::uint64_t addr,
                                 const Capture* c, std::int64_t len, bool get, const ArgContext& ctx) {
    if (addr == 0) return "NULL";
    if (get && len <= 0) return format_pointer(addr);
    const bool have = usable(c) && c->status != CaptureStatus::Fault;
    const std::string_view d = have ? c->data : std::string_view();
    if (level == 1) {  // SOL_SOCKET
        if (name == 13) {  // SO_LINGER
            if (len < 8 || d.size() < 8) return format_pointer(addr);
            return fmt::format("{{l_onoff={}, l_linger={}}}", static_cast<std::int32_t>(u32(d, 0)),
                               static_cast<std::int32_t>(u32(d, 4)));
        }
        if (get && name == 17) {  // SO_PEERCRED
            if (len < 12 || d.size() < 12) return format_pointer(addr);
            return fmt::format("{{pid={}, uid={}, gid={}}}", u32(d, 0), u32(d, 4), u32(d, 8));
        }
        if (int_like_so_option(name)) {
            if (len < 4) return get ? format_buffer(addr, c, ctx.string_limit, true) : format_pointer(addr);
            return format_int_at(addr, c);
        }
    } else if (level == 270) {  // SOL_NETLINK
        return len < 4 ? format_pointer(addr) : format_int_at(addr, c);
    }
    if (len == 4) return format_int_at(addr, c);
    return format_buffer(addr, c, ctx.string_limit);
}

// fcntl's third argument, by command.
std::string format_fcntl_arg(std::uint64_t cmd, std::uint64_t v) {
    switch (cmd) {
        case 2:  // F_SETFD
            return format_flags(FlagTable::FdFlags, v);
        case 4:  // F_SETFL
            return format_flags(FlagTable::OpenFlags, v);
        case 0: case 8: case 10: case 1024: case 1026: case 1030: case 1031: case 1033:
            // F_DUPFD F_SETOWN F_SETSIG F_SETLEASE F_NOTIFY F_DUPFD_CLOEXEC F_SETPIPE_SZ
            // F_ADD_SEALS: numbers.
            return dec(static_cast<std::int32_t>(v));
        case 5: case 6: case 7: case 12: case 13: case 14: case 15: case 16: case 36: case 37:
        case 38:
            return format_pointer(v);
        default:
            return hex_prefixed(v);
    }
}

bool fcntl_takes_arg(std::uint64_t cmd) {
    switch (cmd) {
        case 1: case 3: case 9: case 11: case 1025: case 1032: case 1034:
            // F_GETFD F_GETFL F_GETOWN F_GETSIG F_GETLEASE F_GETPIPE_SZ F_GET_SEALS
            return false;
        default:
            return true;
    }
}

// ioctl: the request by name, and the third argument as the request defines it (strace's
// forms, checked against strace 6.1 request by request).
enum class IoctlArg {
    None,        // not printed (FIOCLEX)
    Int,         // a number (TCSBRK's duration, FICLONE's descriptor)
    Queue,       // TCFLSH's queue
    Action,      // TCXONC's action
    Hex,         // a number in hex, for requests strace leaves undecoded ("0", "0x1234")
    Pointer,     // an address ("NULL"), for requests whose structure nitro does not decode
    IntIn,       // int read by the call: "[1]" (FIONBIO)
    IntOut,      // int written by the call: "[3]" at the exit (FIONREAD)
    TermiosIn,   // struct termios read by the call (TCSETS)
    TermiosOut,  // struct termios written by the call (TCGETS)
    WinsizeIn,   // struct winsize read by the call (TIOCSWINSZ)
    WinsizeOut,  // struct winsize written by the call (TIOCGWINSZ)
    IfreqIn,     // struct ifreq read by the call (SIOCSIFFLAGS)
    IfreqOut,    // struct ifreq whose name the call reads and whose value it writes (SIOCGIFMTU)
    Ifconf,      // struct ifconf: a length going in and out, the array of struct ifreq it fills
};

// struct ifreq: a 16-byte interface name, then a 24-byte union.
constexpr std::size_t kTermiosSize = 36, kWinsizeSize = 8, kIfreqSize = 40;
// struct ifconf (x86-64): int ifc_len, 4 bytes of padding, the buffer's address (field 1); the
// first interfaces of the list shown (strace shows more, rare on a guest).
constexpr std::size_t kIfconfSize = 16, kMaxIfconfShown = 16;

IoctlArg ioctl_arg(std::uint32_t request) {
    switch (request) {
        case 0x540c: case 0x540d: case 0x541d: case 0x541f: case 0x5422: case 0x5427:
        case 0x5428: case 0x5437: case 0x5450: case 0x5451: case 0xc0045877: case 0xc0045878:
        case 0x125f: case 0x1261:
            // TIOCEXCL TIOCNXCL TIOCCONS TIOCSSERIAL TIOCNOTTY TIOCSBRK TIOCCBRK TIOCVHANGUP
            // FIONCLEX FIOCLEX FIFREEZE FITHAW BLKRRPART BLKFLSBUF
            return IoctlArg::None;
        case 0x5409: case 0x5425: case 0x540e: case 0x40049409:  // TCSBRK TCSBRKP TIOCSCTTY FICLONE
            return IoctlArg::Int;
        case 0x540b: return IoctlArg::Queue;   // TCFLSH
        case 0x540a: return IoctlArg::Action;  // TCXONC
        case 0x541b: case 0x5411: case 0x540f: case 0x80045430:  // FIONREAD TIOCOUTQ TIOCGPGRP TIOCGPTN
            return IoctlArg::IntOut;
        case 0x5421: case 0x5452: case 0x5410: case 0x40045431:  // FIONBIO FIOASYNC TIOCSPGRP TIOCSPTLCK
            return IoctlArg::IntIn;
        case 0x5401: return IoctlArg::TermiosOut;                               // TCGETS
        case 0x5402: case 0x5403: case 0x5404: return IoctlArg::TermiosIn;     // TCSETS[WF]
        case 0x5413: return IoctlArg::WinsizeOut;                               // TIOCGWINSZ
        case 0x5414: return IoctlArg::WinsizeIn;                                // TIOCSWINSZ
        case 0x8910: case 0x8913: case 0x8915: case 0x8917: case 0x8919: case 0x891b:
        case 0x891d: case 0x8921: case 0x8927: case 0x8933: case 0x8942: case 0x8970:
            // SIOCGIFNAME SIOCGIFFLAGS SIOCGIFADDR SIOCGIFDSTADDR SIOCGIFBRDADDR SIOCGIFNETMASK
            // SIOCGIFMETRIC SIOCGIFMTU SIOCGIFHWADDR SIOCGIFINDEX SIOCGIFTXQLEN SIOCGIFMAP
            return IoctlArg::IfreqOut;
        case 0x8914: case 0x8916: case 0x8922: case 0x8923: case 0x8924:
            // SIOCSIFFLAGS SIOCSIFADDR SIOCSIFMTU SIOCSIFNAME SIOCSIFHWADDR
            return IoctlArg::IfreqIn;
        case 0x8912: return IoctlArg::Ifconf;  // SIOCGIFCONF
        case 0x541c: case 0x541e: case 0x542e: case 0x542f: case 0x5432: case 0x5433:
        case 0x5434: case 0x5435: case 0x40045436: case 0x80045438: case 0x80045439:
        case 0x5441: case 0x5453: case 0x5454: case 0x5455: case 0x5458: case 0x5459:
        case 0x545a: case 0x545b: case 0x545c: case 0x545d: case 0x5460: case 0x1: case 0x2:
        case 0x80087601: case 0x40087602:
            // TIOCLINUX TIOCGSERIAL TIOCGRS485 TIOCSRS485 TCGETX TCSETX TCSETXF TCSETXW TIOCSIG
            // TIOCGPKT TIOCGPTLCK TIOCGPTPEER TIOCSERCONFIG TIOCSERGWILD TIOCSERSWILD
            // TIOCSERGSTRUCT TIOCSERGETLSR TIOCSERGETMULTI TIOCSERSETMULTI TIOCMIWAIT
            // TIOCGICOUNT FIOQSIZE FIBMAP FIGETBSZ FS_IOC_GETVERSION FS_IOC_SETVERSION
            return IoctlArg::Hex;
        default:
            // Other named requests take a structure; unknown ones a number.
            return format_enum(FlagTable::IoctlRequest, request) != dec(request) ? IoctlArg::Pointer
                                                                                : IoctlArg::Hex;
    }
}

bool ioctl_arg_at_exit(std::uint32_t request) {
    const IoctlArg k = ioctl_arg(request);
    return k == IoctlArg::IntOut || k == IoctlArg::TermiosOut || k == IoctlArg::WinsizeOut ||
           k == IoctlArg::IfreqOut || k == IoctlArg::Ifconf;
}

// struct ifconf's length as strace prints it: "120 /* 3 * sizeof(struct ifreq) */" for a
// positive multiple of the structure's size, else the number alone.
std::string format_ifc_len(std::int32_t len) {
    if (len <= 0 || len % static_cast<std::int32_t>(kIfreqSize) != 0) return dec(len);
    return fmt::format("{} /* {} * sizeof(struct ifreq) */", len, len / static_cast<std::int32_t>(kIfreqSize));
}

// SIOCGIFCONF's struct ifconf. Going in: "{ifc_len=120 /* 3 * sizeof(struct ifreq) */,
// ifc_buf=0x7ffc...}" (strace shows the length alone then); the exit reads the length and
// whether there was a buffer back from that text (entry). Coming out, with a buffer: the
// length going in and, when the call changed it, " => " the length it wrote, then the
// interfaces it listed (list: the capture of the buffer); without one (a size query): the
// length the call wrote and NULL.
std::string format_ifconf(std::string_view d, const Capture* list, bool at_exit, std::string_view entry,
                          std::size_t limit) {
    const auto len = static_cast<std::int32_t>(u32(d, 0));
    const std::uint64_t buf = u64(d, 8);
    if (!at_exit) return "{ifc_len=" + format_ifc_len(len) + ", ifc_buf=" + format_pointer(buf) + "}";
    std::optional<std::int32_t> len_in;
    bool had_buf = buf != 0;
    constexpr std::string_view kKey = "{ifc_len=";
    if (entry.rfind(kKey, 0) == 0) {
        std::int32_t n = 0;
        if (std::from_chars(entry.data() + kKey.size(), entry.data() + entry.size(), n).ec == std::errc()) {
            len_in = n;
        }
        had_buf = entry.find(", ifc_buf=NULL}") == std::string_view::npos;
    }
    std::string out = "{ifc_len=";
    if (!had_buf || !len_in) {
        out += format_ifc_len(len);
    } else {
        out += format_ifc_len(*len_in);
        if (*len_in != len) out += " => " + format_ifc_len(len);
    }
    out += ", ifc_buf=";
    if (!had_buf || buf == 0) return out + format_pointer(buf) + "}";
    const std::uint64_t count = len > 0 ? static_cast<std::uint64_t>(len) / kIfreqSize : 0;
    if (count == 0) return out + "[]}";
    out += format_array(buf, list, count, kIfreqSize, kMaxIfconfShown, [&](std::string_view r) {
        const Capture addr{0, CaptureKind::BufFixed, CaptureStatus::Ok, r.substr(16, 16), 0};
        return "{ifr_name=" + quote_char_array(r.substr(0, 16), limit) + ", ifr_addr=" + format_sockaddr(1, &addr) + "}";
    });
    return out + "}";
}

// struct ifreq as strace prints it for the interface requests: the name, then the member the
// request reads or writes ("{ifr_name=\"lo\", ifr_mtu=65536}"); with_value false: the name
// alone (a get request that failed), or for SIOCGIFNAME the index alone.
std::string format_ifreq(std::uint32_t request, std::string_view d, bool with_value, std::size_t limit) {
    const std::string name = quote_char_array(d.substr(0, 16), limit);
    const std::string_view u = d.substr(16, 24);
    auto i32_at = [&](std::size_t off) { return static_cast<std::int32_t>(u32(u, off)); };
    if (request == 0x8910) {  // SIOCGIFNAME: the index going in, the name coming out
        std::string out = fmt::format("{{ifr_ifindex={}", i32_at(0));
        return out + (with_value ? ", ifr_name=" + name + "}" : "}");
    }
    std::string out = "{ifr_name=" + name;
    if (!with_value) return out + "}";
    auto sockaddr = [&](const char* member) {
        const Capture c{0, CaptureKind::BufFixed, CaptureStatus::Ok, u.substr(0, 16), 0};
        return fmt::format(", {}={}", member, format_sockaddr(1, &c));
    };
    switch (request) {
        case 0x8913: case 0x8914:
            out += ", ifr_flags=" + format_flags(FlagTable::IffFlags, u32(u, 0) & 0xffff);
            break;
        case 0x8915: case 0x8916: out += sockaddr("ifr_addr"); break;
        case 0x8917: out += sockaddr("ifr_dstaddr"); break;
        case 0x8919: out += sockaddr("ifr_broadaddr"); break;
        case 0x891b: out += sockaddr("ifr_netmask"); break;
        case 0x891d: out += fmt::format(", ifr_metric={}", i32_at(0)); break;
        case 0x8921: case 0x8922: out += fmt::format(", ifr_mtu={}", i32_at(0)); break;
        case 0x8923: out += ", ifr_newname=" + quote_char_array(u.substr(0, 16), limit); break;
        case 0x8924: case 0x8927: {
            // An Ethernet-like address: its 6 bytes, as strace shows them for these types.
            const int family = static_cast<int>(u32(u, 0) & 0xffff);
            out += ", ifr_hwaddr={sa_family=" + format_value(FlagTable::Arphrd, family);
            if (family == 1 || family == 6 || family == 772) {
                out += fmt::format(", sa_data={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                                   static_cast<unsigned char>(u[2]), static_cast<unsigned char>(u[3]),
                                   static_cast<unsigned char>(u[4]), static_cast<unsigned char>(u[5]),
                                   static_cast<unsigned char>(u[6]), static_cast<unsigned char>(u[7]));
            } else {
                out += ", ...";
            }
            out += "}";
            break;
        }
        case 0x8933: out += fmt::format(", ifr_ifindex={}", i32_at(0)); break;
        case 0x8942: out += fmt::format(", ifr_qlen={}", i32_at(0)); break;
        case 0x8970:
            // struct ifmap: two unsigned longs, an unsigned short and three bytes.
            out += fmt::format(", ifr_map={{mem_start={}, mem_end={}, base_addr={}, irq={}, dma={}, port={}}}",
                               hex(u64(u, 0)), hex(u64(u, 8)), hex(u32(u, 16) & 0xffff),
                               static_cast<unsigned char>(u[18]), static_cast<unsigned char>(u[19]),
                               static_cast<unsigned char>(u[20]));
            break;
        default: break;
    }
    return out + "}";
}

// "TCGETS", "SNDCTL_TMR_START or TCSETS" (two headers define the code), or for a request nitro
// does not name its fields: "_IOC(_IOC_READ, 0x99, 0x1, 0x4)".
std::string format_ioctl_request(std::uint32_t request) {
    switch (request) {
        case 0x5402: return "SNDCTL_TMR_START or TCSETS";
        case 0x5403: return "SNDCTL_TMR_STOP or TCSETSW";
        case 0x5404: return "SNDCTL_TMR_CONTINUE or TCSETSF";
        case 0x40049409: return "BTRFS_IOC_CLONE or FICLONE";
        case 0x4020940d: return "BTRFS_IOC_CLONE_RANGE or FICLONERANGE";
        case 0xc0189436: return "BTRFS_IOC_FILE_EXTENT_SAME or FIDEDUPERANGE";
        default: break;
    }
    std::string name = format_enum(FlagTable::IoctlRequest, request);
    if (name != dec(request)) return name;
    static constexpr std::array<const char*, 4> kDir = {"_IOC_NONE", "_IOC_WRITE", "_IOC_READ",
                                                        "_IOC_READ|_IOC_WRITE"};
    return fmt::format("_IOC({}, {}, {}, {})", kDir[request >> 30], hex((request >> 8) & 0xff),
                       hex(request & 0xff), hex((request >> 16) & 0x3fff));
}

// struct termios (the kernel's, 36 bytes) as strace prints it without -v: the four flag
// words, the speed and the character size and the output delays by name, then "...".
std::string format_termios(std::string_view d) {
    if (d.size() < kTermiosSize) return {};
    const std::uint32_t oflag = u32(d, 4), cflag = u32(d, 8);
    struct Delay {
        std::uint32_t mask;
        unsigned shift;
        const char* name;
    };
    static constexpr std::array<Delay, 6> kDelays = {{{0400, 8, "NL"}, {03000, 9, "CR"},
                                                      {014000, 11, "TAB"}, {020000, 13, "BS"},
                                                      {040000, 14, "VT"}, {0100000, 15, "FF"}}};
    std::string o;
    std::uint32_t delays = 0;
    for (const Delay& dl : kDelays) {
        o += fmt::format("{}{}{}", o.empty() ? "" : "|", dl.name, (oflag & dl.mask) >> dl.shift);
        delays |= dl.mask;
    }
    if (oflag & ~delays) o += "|" + format_flags(FlagTable::TermiosOflag, oflag & ~delays);
    constexpr std::uint32_t kCbaud = 010017, kCsize = 060;
    std::string c = format_enum(FlagTable::TermiosBaud, cflag & kCbaud);
    if (c == dec(cflag & kCbaud)) c = fmt::format("{:#o}", cflag & kCbaud);
    c += fmt::format("|CS{}", 5 + ((cflag & kCsize) >> 4));
    if (cflag & ~(kCbaud | kCsize)) c += "|" + format_flags(FlagTable::TermiosCflag, cflag & ~(kCbaud | kCsize));
    return "{c_iflag=" + format_flags(FlagTable::TermiosIflag, u32(d, 0)) + ", c_oflag=" + o +
           ", c_cflag=" + c + ", c_lflag=" + format_flags(FlagTable::TermiosLflag, u32(d, 12)) + ", ...}";
}

std::string format_winsize(std::string_view d) {
    if (d.size() < kWinsizeSize) return {};
    return fmt::format("{{ws_row={}, ws_col={}, ws_xpixel={}, ws_ypixel={}}}", le(d, 0, 2),
                       le(d, 2, 2), le(d, 4, 2), le(d, 6, 2));
}

// A structure the call read or wrote at addr, formatted by fmt from the size bytes captured or
// read there; its address when they cannot be had.
template <typename Format>
std::string format_struct_at(std::uint64_t addr, const Capture* c, std::size_t size, Format fmt_struct) {
    if (addr == 0) return "NULL";
    if (!usable(c) || c->data.size() < size) return format_pointer(addr);
    return fmt_struct(std::string_view(c->data).substr(0, size));
}

// getdents/getdents64's buffer as strace prints it without -v: "0x7ffe... /* 12 entries */",
// the records counted by their lengths within the bytes the call returned (d_reclen follows
// two 8-byte fields, two 4-byte ones in a 32-bit program's getdents); the address alone when
// the records were not all captured or their lengths do not add up.
constexpr std::uint32_t kDirentsCapture = 32768;  // glibc's readdir buffer

std::string format_dirents(std::uint64_t addr, const Capture* c, std::uint64_t ret, std::size_t reclen_at) {
    if (!usable(c) || c->data.size() < ret) return format_pointer(addr);
    std::size_t entries = 0;
    for (std::uint64_t off = 0; off < ret; ++entries) {
        const std::uint64_t left = ret - off;
        if (left < reclen_at + 2) return format_pointer(addr);
        const std::uint64_t len = le(c->data, off + reclen_at, 2);
        if (len < reclen_at + 3 || len > left) return format_pointer(addr);
        off += len;
    }
    return fmt::format("{} /* {} entries */", format_pointer(addr), entries);
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

void append_quoted(std::string& out, std::string_view s, bool force_hex) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    std::size_t run = 0;  // start of the pending run of bytes printed as they are
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto ch = static_cast<unsigned char>(s[i]);
        if (!force_hex && ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        if (force_hex) {
            const char esc[4] = {'\\', 'x', kHex[ch >> 4], kHex[ch & 15]};
            out.append(esc, sizeof esc);
            continue;
        }
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '\v': out += "\\v"; break;
            case '\f': out += "\\f"; break;
            default:
            {
                // Octal; all three digits when an octal digit follows, so that it cannot be
                // read as ours ("\18" is \1 then '8', as strace prints it).
                const bool digit_follows = i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7';
                const char oct[4] = {'\\', static_cast<char>('0' + (ch >> 6)),
                                     static_cast<char>('0' + ((ch >> 3) & 7)),
                                     static_cast<char>('0' + (ch & 7))};
                const std::size_t skip = digit_follows ? 0 : ch < 8 ? 2 : ch < 64 ? 1 : 0;
                out += '\\';
                out.append(oct + 1 + skip, 3 - skip);
            }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

std::string quote(std::string_view s, std::size_t limit, bool more_follows, bool force_hex) {
    std::string out;
    const bool cut = s.size() > limit;
    append_quoted(out, cut ? s.substr(0, limit) : s, force_hex);
    if (cut || more_follows) out += "...";
    return out;
}

std::string format_pointer(std::uint64_t addr) {
    return addr == 0 ? std::string("NULL") : hex_prefixed(addr);
}

std::string format_signal(std::int64_t sig) {
    if (sig == 32) return "SIGRTMIN";
    if (sig > 32 && sig <= 64) return fmt::format("SIGRT_{}", sig - 32);
    if (sig > 0 && sig < 32) return format_enum(FlagTable::Signal, sig);
    return dec(sig);
}

std::string format_sigset(std::string_view bytes) {
    const std::size_t nbits = std::min<std::size_t>(bytes.size(), 8) * 8;
    auto bit = [&](std::size_t i) {
        return (static_cast<unsigned char>(bytes[i / 8]) >> (i % 8)) & 1;
    };
    std::size_t set = 0;
    for (std::size_t i = 0; i < nbits; ++i) set += bit(i);
    // Two thirds or more present: print the complement, as strace does.
    const bool invert = nbits && set >= nbits * 2 / 3;
    std::string out = invert ? "~[" : "[";
    bool first = true;
    for (std::size_t i = 0; i < nbits; ++i) {
        if (bit(i) == (invert ? 1 : 0)) continue;
        const std::int64_t sig = static_cast<std::int64_t>(i) + 1;
        if (!first) out += ' ';
        first = false;
        std::string name = format_signal(sig);
        // Inside a set strace drops the "SIG" prefix.
        out += name.rfind("SIG", 0) == 0 ? name.substr(3) : name;
    }
    return out + "]";
}

std::string format_errno(int err) {
    std::string_view name = errno_name(err);
    if (name.empty()) return dec(err);
    std::string_view text = internal_errno_text(err);
    if (text.empty() && err > 0 && err < 512) {
        const char* d = strerrordesc_np(err);  // thread-safe, unlike strerror()
        if (d) text = d;
    }
    if (text.empty()) return std::string(name);
    return fmt::format("{} ({})", name, text);
}

RetText format_return(const SyscallInfo* info, std::int64_t ret, bool compat,
                      const std::array<std::uint64_t, 6>* args) {
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
    if (info && args && info->name == "fcntl" && ret > 0) {
        const std::uint64_t cmd = (*args)[1] & 0xffffffffULL;
        if (cmd == 1 /* F_GETFD */ || cmd == 3 /* F_GETFL */) {
            r.text = fmt::format("{:#x} (flags {})", ret,
                                 format_flags(cmd == 1 ? FlagTable::FdFlags : FlagTable::OpenFlags,
                                              static_cast<std::uint64_t>(ret)));
            return r;
        }
    }
    if (info && info->name == "umask") {
        r.text = fmt::format("{:#03o}", ret);  // the previous mask, in octal as strace shows it
        return r;
    }
    if (info && info->name == "personality") {
        r.text = ret ? fmt::format("{:#x}", ret) : "0";  // the previous one, in hex (C's %#x)
        return r;
    }
    if (info && info->ret == RetKind::Ptr) {
        r.text = hex_prefixed(compat ? static_cast<std::uint64_t>(ret) & 0xffffffffULL
                                             : static_cast<std::uint64_t>(ret));
    } else {
        r.text = dec(ret);
    }
    return r;
}

namespace {

// select/pselect6 after the return value, as strace: "in [3], out [4], left {...}" (the
// descriptors the call left set, as many as it returned, then the time it wrote back), or
// "Timeout".
std::string select_detail(const SyscallInfo& info, const ArgContext& ctx) {
    if (*ctx.ret == 0) return "Timeout";
    const std::uint64_t bits = std::min<std::uint64_t>(reg(ctx, 0) & 0xffffffffULL, kFdSetBytes * 8);
    std::int64_t ready = *ctx.ret;
    std::string out;
    std::string_view sep;
    static constexpr const char* kSets[] = {"in", "out", "except"};
    for (std::size_t i = 0; i < 3 && ready > 0; ++i) {
        const std::uint64_t addr = reg(ctx, i + 1);
        if (!addr) continue;
        Source src(ctx, find_capture(ctx, i + 1, CaptureKind::BufLenArg));
        const Capture* c = src.buffer(addr, (bits + 7) / 8, kFdSetBytes);
        if (!usable(c) || c->data.size() < (bits + 7) / 8) continue;
        bool first = true;
        for (std::uint64_t fd = 0; fd < bits && ready > 0; ++fd) {
            if (!fd_in_set(c->data, fd)) continue;
            out += first ? std::string(sep) + kSets[i] + " [" + dec(fd) : " " + dec(fd);
            first = false;
            sep = ", ";
            --ready;
        }
        if (!out.empty()) out += "]";
    }
    if (const std::uint64_t tp = reg(ctx, 4)) {
        Source src(ctx, find_capture(ctx, 4, CaptureKind::BufFixed));
        const Capture* c = src.buffer(tp, 16, 16);
        if (usable(c) && c->data.size() >= 16) {
            out += std::string(sep) + "left " +
                   format_time_pair(c->data, 0, info.name == "select" ? "tv_usec" : "tv_nsec");
        }
    }
    return out;
}

// An I/O priority as strace shows it: "IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 4)" (the class in
// the bits above 13, the level below).
std::string format_ioprio(std::uint64_t v) {
    static constexpr std::array<std::string_view, 4> kClass = {"IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT",
                                                               "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"};
    const auto p = static_cast<std::uint32_t>(v);
    const std::uint32_t cls = (p >> 13) & 0x7, data = p & 0x1fff;
    const std::string c = cls < kClass.size() ? std::string(kClass[cls]) : fmt::format("{:#x} /* IOPRIO_CLASS_??? */", cls);
    return fmt::format("IOPRIO_PRIO_VALUE({}, {})", c, data);
}
}  // namespace

std::string return_detail(const SyscallInfo& info, const ArgContext& ctx) {
    if (!ctx.ret || is_error_return(*ctx.ret)) return {};
    if (info.name == "ioprio_get") return format_ioprio(static_cast<std::uint64_t>(*ctx.ret));
    // The previous personality, after the value.
    if (info.name == "personality") return format_flags(FlagTable::Personality, static_cast<std::uint32_t>(*ctx.ret));
    for (std::size_t i = 0; i < info.nargs; ++i) {
        const ArgInfo& a = info.args[i];
        if (a.type != ArgType::Pollfd) continue;
        Source src(ctx, find_capture(ctx, i, CaptureKind::BufFixed));
        const std::uint64_t n = a.length_arg() ? reg(ctx, *a.length_arg()) & 0xffffffffULL : 0;
        const std::uint64_t addr = reg(ctx, i);
        return poll_detail(addr ? src.buffer(addr, std::min<std::uint64_t>(n, kMaxFdsShown) * kPollfdSize,
                                             kMaxFdsShown * kPollfdSize)
                                : nullptr,
                           n, *ctx.ret);
    }
    if (info.name == "recvmmsg" && *ctx.ret == 0) return "Timeout";
    if (info.name == "select" || info.name == "pselect6") return select_detail(info, ctx);
    return {};
}

namespace {
// syslog's actions that fill the buffer (READ, READ_ALL, READ_CLEAR); with the others strace
// shows its address.
bool syslog_reads(std::uint64_t action) {
    const auto a = static_cast<std::int32_t>(action);
    return a >= 2 && a <= 4;
}
}  // namespace

bool decoded_at_exit(const SyscallInfo& info, std::size_t index, const std::array<std::uint64_t, 6>& args) {
    if (index >= info.nargs) return false;
    if (info.name == "syslog" && index == 1) return syslog_reads(args[0]);
    // PR_GET_NAME's buffer holds the name once the call has returned; PR_SET_NAME's is read
    // again then (like a path: its page may not have been touched before the call).
    if (info.name == "prctl" && index == 1) {
        const std::uint64_t option = args[0] & 0xffffffffULL;
        if (option == 15 || option == 16) return true;
    }
    if (info.name == "ioctl" && index == 2) return ioctl_arg_at_exit(static_cast<std::uint32_t>(args[1]));
    if (info.name == "getgroups" && index == 1) return true;
    return decoded_at_exit(info.args[index]);
}

bool decoded_at_exit(const ArgInfo& arg) {
    return arg.type == ArgType::BufOut || arg.type == ArgType::SockaddrOut ||
           arg.type == ArgType::IovecOut || arg.type == ArgType::StructOut ||
           arg.type == ArgType::SocklenPtr || arg.type == ArgType::MsghdrOut ||
           arg.type == ArgType::Mmsghdr || arg.type == ArgType::MmsghdrOut ||
           arg.type == ArgType::BufOutLenPtr || arg.type == ArgType::EpollEvents ||
           arg.type == ArgType::IntOut ||
           (arg.type == ArgType::StructIn && arg.tag == "clone_args");
}

std::string format_arg(const SyscallInfo& info, std::size_t index, const ArgContext& ctx) {
    if (index >= kMaxSyscallArgs) return "?";
    const std::uint64_t v = reg(ctx, index);
    const ArgInfo a = index < info.nargs ? info.args[index] : ArgInfo{};
    const auto i32 = static_cast<std::int32_t>(ctx.args[index]);
    const bool failed = ctx.ret && is_error_return(*ctx.ret);
    Source src(ctx);
    auto len_of = [&](const ArgInfo& arg) -> std::uint64_t {
        auto l = arg.length_arg();
        return l && *l < kMaxSyscallArgs ? reg(ctx, *l) : 0;
    };

    // Calls strace decodes its own way.
    if (info.name == "clone") {
        // clone(child_stack=..., flags=..., [parent_tid=..., tls=..., child_tidptr=...])
        const std::uint64_t flags = [&] {
            for (std::size_t i = 0; i < info.nargs; ++i) {
                if (info.args[i].name == "flags") return reg(ctx, i);
            }
            return std::uint64_t{0};
        }();
        if (a.name == "stack") return "child_stack=" + format_pointer(v);
        if (a.name == "flags") return "flags=" + format_flags(FlagTable::CloneFlags, v);
        if (a.name == "parent_tid") {
            // CLONE_PARENT_SETTID or CLONE_PIDFD: the TID or pidfd written there, at the exit.
            if (!(flags & (kCloneParentSettid | kClonePidfd))) return {};
            return "parent_tid=" + (ctx.ret ? format_int_at(v, src.buffer(v, 4, 4)) : format_pointer(v));
        }
        if (a.name == "tls") return (flags & 0x00080000) ? "tls=" + format_pointer(v) : std::string();
        if (a.name == "child_tid") {
            return (flags & 0x01200000) ? "child_tidptr=" + format_pointer(v) : std::string();
        }
    }
    if (info.name == "fcntl" && index == 2) return format_fcntl_arg(reg(ctx, 1) & 0xffffffffULL, v);
    // syslog's action and a console level: the number with the name in a comment, as strace
    // prints these.
    auto numbered = [&](FlagTable table, const char* unknown) {
        std::string name = format_enum(table, i32);
        return fmt::format("{} /* {} */", i32, name == dec(i32) ? unknown : name);
    };
    if (info.name == "syslog" && index == 0) return numbered(FlagTable::SyslogAction, "SYSLOG_ACTION_???");
    if (info.name == "syslog" && index == 2 && static_cast<std::int32_t>(reg(ctx, 0)) == 8) {
        return numbered(FlagTable::Loglevel, "LOGLEVEL_???");
    }
    if (info.name == "syslog" && index == 1 && !syslog_reads(reg(ctx, 0))) return format_pointer(v);
    if ((info.name == "setsockopt" || info.name == "getsockopt") && index == 2) {
        return format_sockopt_name(static_cast<std::uint32_t>(reg(ctx, 1)), static_cast<std::uint32_t>(i32));
    }
    if (info.name == "setsockopt" && index == 3) {
        const auto len = static_cast<std::int32_t>(reg(ctx, 4));
        return format_sockopt_value(static_cast<std::uint32_t>(reg(ctx, 1)), static_cast<std::uint32_t>(reg(ctx, 2)),
                                    v, src.buffer(v, len > 0 ? static_cast<std::uint64_t>(len) : 0, kCaptureMax),
                                    len, false, ctx);
    }
    if (info.name == "getsockopt" && index == 3) {
        // Going in strace shows nothing of it; coming out, what the call wrote, as long as the
        // length it wrote back says.
        if (!ctx.ret || failed) return format_pointer(v);
        const std::uint64_t lenptr = reg(ctx, 4);
        Source length(ctx, find_capture(ctx, 4, CaptureKind::BufFixed));  // as the call wrote it back
        const Capture* rlen = length.buffer(lenptr, 4, 4);
        if (!usable(rlen) || rlen->data.size() < 4) return format_pointer(v);
        return format_sockopt_value(static_cast<std::uint32_t>(reg(ctx, 1)), static_cast<std::uint32_t>(reg(ctx, 2)),
                                    v, src.buffer_len_ptr(v, lenptr, kCaptureMax),
                                    static_cast<std::int32_t>(u32(rlen->data, 0)), true, ctx);
    }
    if (info.name == "futex" && index >= 1) {
        const auto op = static_cast<std::uint32_t>(reg(ctx, 1));
        if (index == 1) return format_futex_op(op);
        return format_futex_arg(index, op & 127, ctx, [&] {
            if (v == 0) return std::string("NULL");
            const Capture* c = src.buffer(v, 16, 16);
            if (ctx.compat || !usable(c) || c->data.size() < 16) return format_pointer(v);
            return format_time_pair(c->data, 0, "tv_nsec");
        });
    }
    if (info.name == "ptrace" && index == 3) {
        const std::uint64_t request = reg(ctx, 0) & 0xffffffffULL;
        switch (request) {
            case 7: case 9: case 17: case 24: case 31: case 32:  // CONT SINGLESTEP DETACH SYSCALL SYSEMU*
                return format_signal(i32);
            case 0x4200: case 0x4206: case 21:  // SETOPTIONS SEIZE OLDSETOPTIONS
                return format_flags(FlagTable::PtraceOptions, v);
            default:
                return format_pointer(v);
        }
    }
    if (info.name == "prctl" && index == 1) {
        const std::uint64_t option = reg(ctx, 0) & 0xffffffffULL;
        if (option == 1) return format_signal(i32);  // PR_SET_PDEATHSIG
        if (option == 15 || option == 16) {          // PR_SET_NAME, PR_GET_NAME (at the exit)
            if (option == 16 && (!ctx.ret || failed)) return format_pointer(v);
            // Read again at the exit, PR_SET_NAME's name keeps what the entry had if it is gone.
            const std::string text = format_cstring(v, src.cstring(v));
            if (option == 15 && text[0] != '"' && !ctx.entry_text.empty()) return std::string(ctx.entry_text);
            return text;
        }
    }
    if (info.name == "ioctl" && index == 1) return format_ioctl_request(static_cast<std::uint32_t>(v));
    if (info.name == "reboot") {
        // The magic numbers and the command by name (unsigned: LINUX_REBOOT_MAGIC1 is
        // 0xfee1dead); LINUX_REBOOT_CMD_RESTART2's command string.
        constexpr FlagTable kTables[] = {FlagTable::RebootMagic1, FlagTable::RebootMagic2, FlagTable::RebootCmd};
        if (index < 3) return format_value(kTables[index], static_cast<std::uint32_t>(v));
        return format_cstring(v, src.cstring(v));
    }
    if ((info.name == "setgroups" || info.name == "getgroups") && index == 1) {
        // The groups going in (setgroups: as many as its count), or coming out (getgroups: as
        // many as it returned, when it was given room).
        std::uint64_t n = static_cast<std::uint64_t>(std::max(static_cast<std::int32_t>(ctx.args[0]), 0));
        if (info.name == "getgroups") {
            if (!ctx.ret || failed || n == 0) return format_pointer(v);
            n = static_cast<std::uint64_t>(*ctx.ret);
        }
        return format_gid_array(v, src.buffer(v, std::min<std::uint64_t>(n, kMaxGroupsShown) * 4, kMaxGroupsShown * 4), n);
    }
    if ((info.name == "getdents64" || info.name == "getdents") && index == 1) {
        if (!ctx.ret || failed) return format_pointer(v);
        const auto n = static_cast<std::uint64_t>(*ctx.ret);
        return format_dirents(v, src.buffer(v, n, kDirentsCapture), n,
                              info.name == "getdents" && ctx.compat ? 8 : 16);
    }
    if (info.name == "ioctl" && index == 2) {
        const auto request = static_cast<std::uint32_t>(reg(ctx, 1));
        const bool done = ctx.ret && !failed;  // what the call wrote is there
        switch (ioctl_arg(request)) {
            case IoctlArg::None: return {};
            case IoctlArg::Int: return dec(i32);
            case IoctlArg::Queue: return format_value(FlagTable::TcflshQueue, i32);
            case IoctlArg::Action: return format_value(FlagTable::TcxoncAction, i32);
            case IoctlArg::Hex: return hex(v);
            case IoctlArg::Pointer: return format_pointer(v);
            case IoctlArg::IntOut:
                if (!done) return format_pointer(v);
                [[fallthrough]];
            case IoctlArg::IntIn:
                return format_int_at(v, src.buffer(v, 4, 4));
            case IoctlArg::TermiosOut:
                if (!done) return format_pointer(v);
                [[fallthrough]];
            case IoctlArg::TermiosIn:
                return format_struct_at(v, src.buffer(v, kTermiosSize, kTermiosSize), kTermiosSize, format_termios);
            case IoctlArg::WinsizeOut:
                if (!done) return format_pointer(v);
                [[fallthrough]];
            case IoctlArg::WinsizeIn:
                return format_struct_at(v, src.buffer(v, kWinsizeSize, kWinsizeSize), kWinsizeSize, format_winsize);
            case IoctlArg::Ifconf: {
                if (ctx.compat) return format_pointer(v);  // a 32-bit program's layout: not decoded
                if (failed) return ctx.entry_text.empty() ? format_pointer(v) : std::string(ctx.entry_text);
                const Capture* c = src.buffer(v, kIfconfSize, kIfconfSize);
                if (!usable(c) || c->data.size() < kIfconfSize) return format_pointer(v);
                const std::uint64_t buf = u64(c->data, 8);
                const auto len = static_cast<std::int32_t>(u32(c->data, 0));
                const std::uint64_t want = len > 0 ? std::min<std::uint64_t>(static_cast<std::uint64_t>(len), kMaxIfconfShown * kIfreqSize) : 0;
                Source list(ctx, find_capture(ctx, 2, CaptureKind::Deref, 1));
                return format_ifconf(c->data, ctx.ret ? list.buffer(buf, want, kMaxIfconfShown * kIfreqSize) : nullptr,
                                     ctx.ret.has_value(), ctx.entry_text, ctx.string_limit);
            }
            case IoctlArg::IfreqOut:
            case IoctlArg::IfreqIn: {
                // A get request shows its value once the call has returned, only if it succeeded.
                const bool get = ioctl_arg(request) == IoctlArg::IfreqOut;
                if (get && !ctx.ret) return format_pointer(v);
                // A 32-bit program's struct ifmap has 4-byte longs: not decoded.
                if (ctx.compat && request == 0x8970) return format_pointer(v);
                return format_struct_at(v, src.buffer(v, kIfreqSize, kIfreqSize), kIfreqSize,
                                        [&](std::string_view d) {
                                            return format_ifreq(request, d, !get || done, ctx.string_limit);
                                        });
            }
        }
    }
    if (info.name == "ioprio_set" && index == 2) return format_ioprio(v);
    if (info.name == "personality") {
        // 0xffffffff asks for the current one without changing it: strace shows the number.
        const auto p = static_cast<std::uint32_t>(v);
        return p == 0xffffffffU ? "0xffffffff" : format_flags(FlagTable::Personality, p);
    }
    if ((info.name == "mknod" || info.name == "mknodat") && a.name == "dev") {
        // The kernel's dev_t encoding (new_decode_dev): 12 bits of major, 20 of minor.
        const auto dev = static_cast<std::uint32_t>(v);
        return format_makedev((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    }
    if (info.name == "socket" && index == 2) {
        const std::uint64_t domain = reg(ctx, 0) & 0xffffffffULL;
        if (domain == 2 || domain == 10) return format_value(FlagTable::Ipproto, i32);
        if (domain == 16) return format_value(FlagTable::NetlinkProtocol, i32);
        return dec(i32);
    }

    switch (a.type) {
        case ArgType::Int:
        case ArgType::Fd:
            return dec(i32);
        case ArgType::Uint:
            return dec(static_cast<std::uint32_t>(ctx.args[index]));
        case ArgType::Long:
        case ArgType::Ssize:
            return ctx.compat ? dec(i32)
                              : dec(static_cast<std::int64_t>(v));
        case ArgType::Ulong:
        case ArgType::Size:
            return dec(v);
        case ArgType::Hex:
            return hex(v);
        case ArgType::Dirfd:
            return format_enum(FlagTable::AtFdcwd, i32);
        case ArgType::Cstring:
            return format_cstring(v, src.cstring(v));
        case ArgType::BufIn:
            return format_buffer(v, src.buffer(v, len_of(a), kCaptureMax), ctx.string_limit);
        case ArgType::BufOut: {
            // strace shows the address of a buffer the call failed to fill.
            if (!ctx.ret || failed) return format_pointer(v);
            const std::uint64_t n =
                a.length_is_return_value() ? static_cast<std::uint64_t>(*ctx.ret) : len_of(a);
            return format_buffer(v, src.buffer(v, n, kCaptureMax), ctx.string_limit,
                                 info.name == "getrandom");
        }
        case ArgType::Argv:
            return format_str_array(v, src.str_array(v), ctx.string_limit, a.name == "envp");
        case ArgType::Sockaddr:
            return format_sockaddr(v, src.buffer(v, len_of(a), kCaptureMax));
        case ArgType::SockaddrOut: {
            if (!ctx.ret || failed) return format_pointer(v);
            auto l = a.length_arg();
            const std::uint64_t lenptr = l && *l < kMaxSyscallArgs ? reg(ctx, *l) : 0;
            return format_sockaddr(v, src.buffer_len_ptr(v, lenptr, kCaptureMax));
        }
        case ArgType::BufOutLenPtr: {
            if (!ctx.ret || failed) return format_pointer(v);
            auto l = a.length_arg();
            const std::uint64_t lenptr = l && *l < kMaxSyscallArgs ? reg(ctx, *l) : 0;
            return format_buffer(v, src.buffer_len_ptr(v, lenptr, kCaptureMax), ctx.string_limit);
        }
        case ArgType::SocklenPtr:
            return format_socklen(v, src.buffer(v, 4, 4), ctx);
        case ArgType::IovecIn:
        case ArgType::IovecOut: {
            const bool out = a.type == ArgType::IovecOut;
            if (out && (!ctx.ret || failed)) return format_pointer(v);
            const std::uint64_t count = len_of(a);
            const Capture* c = src.buffer(v, std::min<std::uint64_t>(count, kMaxIov) * iovec_size(ctx.compat),
                                          kMaxIov * 16);
            return format_iovec(v, c, count, out ? static_cast<std::uint64_t>(*ctx.ret) : ~0ULL,
                                ctx, split_sections(ctx.iovec_data, kMaxIov));
        }
        case ArgType::MsghdrIn:
            return format_msghdr(v, src.msghdr(v, ~0ULL, kIovBytes), ~0ULL, std::nullopt, ctx);
        case ArgType::Mmsghdr: {
            // Decoded at the exit, where each message's msg_len is known.
            if (!ctx.ret || failed || *ctx.ret <= 0) return format_pointer(v);
            const auto sent = static_cast<std::uint64_t>(*ctx.ret);
            return format_mmsghdr(v, src.mmsghdr(v, sent, kIovBytes), std::min(sent, len_of(a)), ctx);
        }
        case ArgType::MsghdrOut: {
            if (v == 0) return "NULL";
            const std::uint32_t size = ctx.compat ? kMsghdr32 : kMsghdr64;
            if (!ctx.ret) {
                // Going in, strace shows only the room for the address (and only when the call
                // fails): "{msg_namelen=128}".
                const Capture* c = src.buffer(v, size, kMsghdr64);
                if (!usable(c) || c->data.size() < size) return format_pointer(v);
                return "{msg_namelen=" + dec(msghdr_fields(c->data, ctx.compat).namelen) + "}";
            }
            if (failed) return ctx.entry_text.empty() ? format_pointer(v) : std::string(ctx.entry_text);
            std::optional<std::uint64_t> before;
            const std::string_view e = ctx.entry_text;
            if (e.rfind("{msg_namelen=", 0) == 0 && e.back() == '}') {
                const std::vector<std::uint64_t> n = namelens_in(e);
                if (!n.empty()) before = n[0];
            }
            const auto transferred = static_cast<std::uint64_t>(*ctx.ret);
            return format_msghdr(v, src.msghdr(v, transferred, kIovBytes), transferred, before, ctx);
        }
        case ArgType::MmsghdrOut: {
            const std::uint32_t size = ctx.compat ? kMmsghdr32 : kMmsghdr64;
            const std::uint64_t vlen = len_of(a);
            if (!ctx.ret) {
                return format_mmsghdr_room(v, src.buffer(v, std::min<std::uint64_t>(vlen, kMaxMmsg) * size,
                                                         kMaxMmsg * kMmsghdr64),
                                           vlen, ctx);
            }
            // A failed call: the address, as strace; none received (a timeout): "[]".
            if (failed) return format_pointer(v);
            if (*ctx.ret == 0) return v ? "[]" : "NULL";
            const auto got = std::min(static_cast<std::uint64_t>(*ctx.ret), vlen);
            const std::vector<std::uint64_t> before = namelens_in(ctx.entry_text);
            return format_mmsghdr(v, src.mmsghdr(v, got, kIovBytes), got, ctx, &before);
        }
        case ArgType::IntOut:
            return ctx.ret ? format_int_at(v, src.buffer(v, 4, 4)) : format_pointer(v);
        case ArgType::SigFrame: {
            // x86-64: the handler's ret popped the frame's return address, so the stack
            // pointer is at its struct ucontext, whose uc_sigmask is the mask restored.
            if (ctx.compat || ctx.stack_pointer == 0) return {};
            const std::uint64_t at = ctx.stack_pointer + kSigreturnMaskOffset;
            const Capture* c = src.buffer(at, 8, 8);
            if (!usable(c) || c->status == CaptureStatus::Fault || c->data.size() < 8) return format_pointer(ctx.stack_pointer);
            return "{mask=" + format_sigset(c->data.substr(0, 8)) + "}";
        }
        case ArgType::FdSet: {
            const std::uint64_t bits = len_of(a) & 0xffffffffULL;
            return format_fd_set(v, src.buffer(v, (std::min<std::uint64_t>(bits, kFdSetBytes * 8) + 7) / 8, kFdSetBytes), bits);
        }
        case ArgType::EpollEvents: {
            if (!ctx.ret || failed) return format_pointer(v);
            const auto got = std::min<std::uint64_t>(static_cast<std::uint64_t>(*ctx.ret), len_of(a) & 0xffffffffULL);
            return format_epoll_events(v, src.buffer(v, std::min<std::uint64_t>(got, kMaxEpollEvents) * kEpollEventSize,
                                                     kMaxEpollEvents * kEpollEventSize),
                                       got);
        }
        case ArgType::Pollfd: {
            const std::uint64_t n = len_of(a);
            return format_pollfds(v, src.buffer(v, std::min<std::uint64_t>(n, kMaxFdsShown) * kPollfdSize,
                                                 kMaxFdsShown * kPollfdSize), n);
        }
        case ArgType::StructIn:
        case ArgType::StructOut: {
            if (v == 0) return "NULL";
            if (a.tag == "clone_args" && ctx.ret) {
                // clone3 at the exit: the structure as the entry showed it, then what the kernel
                // wrote through it (" => {pidfd=[3], parent_tid=[1234]}").
                std::string entry(ctx.entry_text);
                if (entry.empty() || failed) return entry.empty() ? format_pointer(v) : entry;
                const Capture* c = src.buffer(v, 64, 64);
                if (!usable(c) || c->data.size() < 64) return entry;
                return entry + clone3_written(c->data, ctx, static_cast<unsigned>(index));
            }
            if (a.type == ArgType::StructOut && a.tag == "timespec" &&
                (a.name == "rem" || a.name == "remain")) {
                // The time left is written only when a signal interrupted the sleep; strace
                // prints it then (EINTR, or the kernel's ERESTART_RESTARTBLOCK), else the address.
                if (!ctx.ret || (*ctx.ret != -4 && *ctx.ret != -516)) return format_pointer(v);
            } else if (a.type == ArgType::StructOut && (!ctx.ret || failed)) {
                return format_pointer(v);
            }
            if (a.tag == "wait_status" && ctx.ret && *ctx.ret <= 0) return format_pointer(v);
            const std::uint32_t size = struct_size(a.tag);
            if (size == 0) return format_pointer(v);
            const Capture* c = src.buffer(v, size, size);
            if (!usable(c)) return format_pointer(v);
            std::string s = format_struct(a.tag, c->data, ctx, info);
            return s.empty() ? format_pointer(v) : s;
        }
        case ArgType::Flags:
            if (a.table() == FlagTable::Mode) {
                // The mode a call creates a file with or sets is a number ("0644", "0100644"),
                // mknod's names the file type too.
                if (info.name == "mknod" || info.name == "mknodat") return format_mode(v);
                return fmt::format("{:#03o}", static_cast<std::uint32_t>(v));
            }
            return format_flags(a.table(), v);
        case ArgType::Enum:
            return format_value(a.table(), i32);
        case ArgType::Ptr:
            return format_pointer(v);
        case ArgType::None:
            break;
    }
    return hex_prefixed(v);
}

namespace {

template <typename Int>
void append_dec(std::string& out, Int v) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void append_pointer(std::string& out, std::uint64_t addr) {
    if (addr == 0) {
        out += "NULL";
        return;
    }
    char buf[24] = {'0', 'x'};
    out.append(buf, std::to_chars(buf + 2, buf + sizeof buf, addr, 16).ptr);
}

// format_buffer() and format_cstring() (limit: the whole capture) into out.
void append_captured(std::string& out, std::uint64_t addr, const Capture* c, std::size_t limit,
                     bool force_hex) {
    if (addr == 0) {
        out += "NULL";
        return;
    }
    if (!usable(c) || c->status == CaptureStatus::Fault) {
        append_pointer(out, addr);
        return;
    }
    const bool cut = c->data.size() > limit;
    append_quoted(out, cut ? c->data.substr(0, limit) : c->data, force_hex);
    if (cut || c->status != CaptureStatus::Ok) out += "...";
}

// The arguments of every call, written straight into out: what format_arg() returns for the
// plain types, and for strings and buffers the listener captured. false: not one of those
// (format_arg() decides).
bool append_arg_fast(std::string& out, const SyscallInfo& info, std::size_t index,
                     const ArgContext& ctx) {
    // Calls format_arg() decodes by name.
    static constexpr std::array<std::string_view, 19> kByName = {
        "clone", "fcntl", "socket", "setsockopt", "getsockopt", "ptrace", "prctl", "futex",
        "ioctl", "getdents64", "getdents", "getgroups", "setgroups", "syslog", "reboot",
        "mknod", "mknodat", "ioprio_set", "personality"};
    if (index >= info.nargs || std::find(kByName.begin(), kByName.end(), info.name) != kByName.end()) {
        return false;
    }
    const ArgInfo& a = info.args[index];
    const std::uint64_t v = reg(ctx, index);
    const auto i32 = static_cast<std::int32_t>(ctx.args[index]);
    // Guest memory is read (Source) only when nothing was captured: left to format_arg().
    const bool captured_or_none = ctx.capture || !ctx.memory || v == 0;
    switch (a.type) {
        case ArgType::Int:
        case ArgType::Fd:
            append_dec(out, i32);
            return true;
        case ArgType::Uint:
            append_dec(out, static_cast<std::uint32_t>(ctx.args[index]));
            return true;
        case ArgType::Long:
        case ArgType::Ssize:
            if (ctx.compat) {
                append_dec(out, i32);
            } else {
                append_dec(out, static_cast<std::int64_t>(v));
            }
            return true;
        case ArgType::Ulong:
        case ArgType::Size:
            append_dec(out, v);
            return true;
        case ArgType::Hex:
            if (v == 0) {
                out += '0';
            } else {
                append_pointer(out, v);
            }
            return true;
        case ArgType::Ptr:
            append_pointer(out, v);
            return true;
        case ArgType::Cstring:
            if (!captured_or_none) return false;
            if (ctx.capture) {
                append_captured(out, v, ctx.capture, ctx.capture->data.size(), false);
            } else {
                append_captured(out, v, nullptr, 0, false);
            }
            return true;
        case ArgType::BufIn:
            if (!captured_or_none) return false;
            append_captured(out, v, ctx.capture, ctx.string_limit, false);
            return true;
        case ArgType::BufOut:
            if (!ctx.ret || is_error_return(*ctx.ret)) {
                append_pointer(out, v);
                return true;
            }
            if (!captured_or_none) return false;
            append_captured(out, v, ctx.capture, ctx.string_limit, info.name == "getrandom");
            return true;
        default:
            return false;
    }
}

}  // namespace

void append_arg(std::string& out, const SyscallInfo& info, std::size_t index,
                const ArgContext& ctx) {
    if (!append_arg_fast(out, info, index, ctx)) out += format_arg(info, index, ctx);
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
    if (info.name == "fcntl" && n == 3 && !fcntl_takes_arg(args[1] & 0xffffffffULL)) --n;
    // mknod's device number is read only for a character or block device.
    if (info.name == "mknod" || info.name == "mknodat") {
        const std::uint64_t type = args[n - 2] & 0170000;
        if (type != 0020000 && type != 0060000) --n;
    }
    // reboot's fourth argument is read only with LINUX_REBOOT_CMD_RESTART2.
    if (info.name == "reboot" && (args[2] & 0xffffffffULL) != kRebootCmdRestart2) return 3;
    if (info.name == "syslog") {
        // Actions that use neither buffer nor length show only themselves.
        const auto action = static_cast<std::int32_t>(args[0]);
        if (action >= 0 && action <= 10 && action != 8 && !syslog_reads(action)) return 1;
    }
    if (info.name == "ptrace") {
        switch (args[0] & 0xffffffffULL) {
            case 0: return 1;                                    // PTRACE_TRACEME
            case 8: case 16: case 0x4207: case 0x4208: return 2;  // KILL ATTACH INTERRUPT LISTEN
            default: break;
        }
    }
    if (info.name == "prctl") {
        switch (args[0] & 0xffffffffULL) {
            case 1: case 15: case 16: return 2;  // PR_SET_PDEATHSIG, PR_SET_NAME, PR_GET_NAME
            default: break;
        }
    }
    if (info.name == "ioctl" && n == 3 && ioctl_arg(static_cast<std::uint32_t>(args[1])) == IoctlArg::None) --n;
    return n;
}

std::size_t first_exit_arg(const SyscallInfo& info, const std::array<std::uint64_t, 6>& args) {
    for (std::size_t i = 0; i < info.nargs; ++i) {
        if (decoded_at_exit(info, i, args)) return i;
    }
    return info.nargs;
}

std::vector<std::size_t> text_order(const SyscallInfo& info, std::size_t nargs) {
    std::vector<std::size_t> order;
    if (info.name == "clone") {
        for (std::string_view name : {"stack", "flags", "parent_tid", "tls", "child_tid"}) {
            for (std::size_t i = 0; i < info.nargs && i < nargs; ++i) {
                if (info.args[i].name == name) order.push_back(i);
            }
        }
        return order;
    }
    for (std::size_t i = 0; i < nargs; ++i) order.push_back(i);
    return order;
}

std::optional<ExecStack> read_exec_stack(const MemoryReader& memory, std::uint64_t rsp,
                                         bool compat) {
    // argc, argv[argc], NULL, envp..., NULL, auxv (type, value) pairs up to AT_NULL.
    constexpr std::uint64_t kMaxArgs = 256, kMaxEnv = 4096, kMaxAux = 64, kAtExecfn = 31;
    const std::size_t w = compat ? 4 : 8;
    auto word = [&](std::uint64_t addr, std::uint64_t& v) {
        char raw[8] = {};
        if (memory.read(addr, raw, w) < w) return false;
        v = le(std::string_view(raw, w), 0, w);
        return true;
    };
    std::uint64_t argc = 0;
    if (!word(rsp, argc) || argc > kMaxArgs) return std::nullopt;
    ExecStack st;
    std::uint64_t p = rsp + w;
    std::size_t total = 0;
    for (std::uint64_t i = 0; i < argc; ++i, p += w) {
        std::uint64_t s = 0;
        if (!word(p, s)) return std::nullopt;
        std::string text;
        const CaptureStatus cs = append_cstring(memory, s, text, kCaptureMax);
        total += text.size();
        st.argv.push_back(std::move(text));
        if (cs != CaptureStatus::Ok || total > kCaptureMax) {
            st.argv_complete = false;
            break;
        }
    }
    p = rsp + w + argc * w;
    std::uint64_t v = 1;
    if (!word(p, v) || v != 0) return std::nullopt;  // argv's NULL
    p += w;
    for (;; p += w) {
        if (!word(p, v)) return std::nullopt;
        if (v == 0) break;
        if (++st.envc > kMaxEnv) return std::nullopt;
    }
    p += w;
    for (std::uint64_t i = 0; i < kMaxAux; ++i, p += 2 * w) {
        std::uint64_t type = 0, val = 0;
        if (!word(p, type) || !word(p + w, val) || type == 0) break;
        if (type == kAtExecfn) {
            if (append_cstring(memory, val, st.execfn, kCaptureMax) != CaptureStatus::Ok) {
                st.execfn.clear();
            }
            break;
        }
    }
    return st;
}

bool complete_exec_args(const SyscallInfo& info, const std::array<std::uint64_t, 6>& values,
                        const ExecStack& stack, std::vector<std::string*>& texts,
                        std::size_t string_limit) {
    bool changed = false;
    bool relative_to_fd = false;
    for (std::size_t i = 0; i < info.nargs && i < texts.size(); ++i) {
        if (info.args[i].type == ArgType::Dirfd &&
            static_cast<std::int32_t>(values[i]) != -100 /* AT_FDCWD */) {
            relative_to_fd = true;
        }
    }
    for (std::size_t i = 0; i < info.nargs && i < texts.size(); ++i) {
        std::string& t = *texts[i];
        const ArgInfo& a = info.args[i];
        if (values[i] == 0) continue;
        if (a.type == ArgType::Cstring && t.rfind("\"", 0) != 0 && !stack.execfn.empty() &&
            !(relative_to_fd && stack.execfn.rfind("/", 0) != 0)) {
            // AT_EXECFN is the name as passed, except for a path relative to a directory fd
            // (then the kernel makes it "/dev/fd/N/name"): only an absolute name is used then.
            t = quote(stack.execfn, stack.execfn.size());
            changed = true;
        } else if (a.type == ArgType::Argv && a.name != "envp" &&
                   (t.rfind("[\"", 0) != 0 || t.find("...") != std::string::npos) &&
                   t != "[]") {
            std::string out = "[";
            for (std::size_t k = 0; k < stack.argv.size(); ++k) {
                if (k) out += ", ";
                out += quote(stack.argv[k], string_limit);
            }
            if (!stack.argv_complete) out += stack.argv.empty() ? "..." : ", ...";
            t = out + "]";
            changed = true;
        } else if (a.type == ArgType::Argv && a.name == "envp" &&
                   t.find("+ vars */") != std::string::npos) {
            t = fmt::format("{} /* {} vars */", format_pointer(values[i]), stack.envc);
            changed = true;
        }
    }
    return changed;
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
                    // Directory records are counted, not shown: all of them are needed.
                    const bool dirents = info.name == "getdents64" || info.name == "getdents";
                    add(plan.exit, {arg, CaptureKind::BufRet, 0, dirents ? kDirentsCapture : max});
                } else if (a.length_arg()) {
                    add(plan.exit, {arg, CaptureKind::BufLenArg, len, max});
                }
                break;
            case ArgType::SockaddrOut:
            case ArgType::BufOutLenPtr:
                if (a.length_arg()) add(plan.exit, {arg, CaptureKind::BufLenPtr, len, max});
                break;
            case ArgType::SocklenPtr:
                add(plan.enter, {arg, CaptureKind::BufFixed, 0, 4});
                add(plan.exit, {arg, CaptureKind::BufFixed, 0, 4});
                break;
            case ArgType::IovecIn:
                // The array, and the first bytes of each buffer it points to.
                add(plan.enter, {arg, CaptureKind::BufFixed, 0, kMaxIov * 16});
                add(plan.enter, {arg, CaptureKind::IovecData, len, kIovBytes});
                break;
            case ArgType::IovecOut:
                add(plan.exit, {arg, CaptureKind::BufFixed, 0, kMaxIov * 16});
                add(plan.exit, {arg, CaptureKind::IovecData, len, kIovBytes});
                break;
            case ArgType::MsghdrIn:
                add(plan.enter, {arg, CaptureKind::Msghdr, 0, kIovBytes});
                break;
            case ArgType::MsghdrOut:
                // msg_namelen going in; the structure and its buffers as the call left them.
                add(plan.enter, {arg, CaptureKind::BufFixed, 0, kMsghdr64});
                add(plan.exit, {arg, CaptureKind::Msghdr, 0, kIovBytes});
                break;
            case ArgType::Mmsghdr:
                add(plan.exit, {arg, CaptureKind::Mmsghdr, len, kIovBytes});
                break;
            case ArgType::IntOut:
                add(plan.exit, {arg, CaptureKind::BufFixed, 0, 4});
                break;
            case ArgType::EpollEvents:
                add(plan.exit, {arg, CaptureKind::BufFixed, 0, kMaxEpollEvents * kEpollEventSize});
                break;
            case ArgType::SigFrame:
                add(plan.enter, {arg, CaptureKind::StackAt, static_cast<std::uint8_t>(kSigreturnMaskOffset / 8), 8});
                break;
            case ArgType::FdSet:
                // Going in; and what the call left set, for the return value's detail.
                add(plan.enter, {arg, CaptureKind::BufLenArg, len, kFdSetBytes});
                add(plan.exit, {arg, CaptureKind::BufLenArg, len, kFdSetBytes});
                break;
            case ArgType::Pollfd:
                // The events going in; the revents the call set, for the return value's detail.
                add(plan.enter, {arg, CaptureKind::BufFixed, 0, kMaxFdsShown * kPollfdSize});
                add(plan.exit, {arg, CaptureKind::BufFixed, 0, kMaxFdsShown * kPollfdSize});
                break;
            case ArgType::MmsghdrOut:
                // Each message's msg_namelen going in; the messages the call filled in.
                add(plan.enter, {arg, CaptureKind::BufFixed, 0, kMaxMmsg * kMmsghdr64});
                add(plan.exit, {arg, CaptureKind::Mmsghdr, len, kIovBytes});
                break;
            case ArgType::StructIn:
            case ArgType::StructOut:
                if (std::uint32_t size = struct_size(a.tag)) {
                    add(a.type == ArgType::StructIn ? plan.enter : plan.exit,
                        {arg, CaptureKind::BufFixed, 0, size});
                }
                if (a.tag == "clone_args") {
                    // What the kernel writes through it: the pidfd (field 1) and the new task's
                    // TID (field 3), copied when the call returns (a thread's TID is cleared
                    // again when it ends), and the flags that say which.
                    add(plan.exit, {arg, CaptureKind::BufFixed, 0, 64});
                    add(plan.exit, {arg, CaptureKind::Deref, 1, 4});
                    add(plan.exit, {arg, CaptureKind::Deref, 3, 4});
                }
                break;
            default:
                break;
        }
    }
    if (info.name == "select" || info.name == "pselect6") {
        // The time left, written back by the call (strace's "left {...}").
        add(plan.exit, {4, CaptureKind::BufFixed, 0, 16});
    }
    if (info.name == "setgroups" || info.name == "getgroups") {
        // The groups going in (setgroups) or coming out (getgroups), as many as strace shows.
        add(info.name == "setgroups" ? plan.enter : plan.exit, {1, CaptureKind::BufFixed, 0, kMaxGroupsShown * 4});
    }
    if (info.name == "ioctl") {
        // The third argument is a number or points at what the request reads or writes; as
        // large as the structures nitro decodes (struct termios, struct ifreq), going in and
        // coming out.
        add(plan.enter, {2, CaptureKind::BufFixed, 0, std::max(kTermiosSize, kIfreqSize)});
        add(plan.exit, {2, CaptureKind::BufFixed, 0, std::max(kTermiosSize, kIfreqSize)});
        // SIOCGIFCONF's list, at the address in struct ifconf's second field (for other
        // requests that field is something else, and the capture finds nothing or is unused).
        add(plan.exit, {2, CaptureKind::Deref, 1, static_cast<std::uint32_t>(kMaxIfconfShown * kIfreqSize)});
    }
    if (info.name == "reboot") add(plan.enter, {3, CaptureKind::CString, 0, 256});  // RESTART2's
    if (info.name == "prctl") {
        // PR_SET_NAME's name going in, PR_GET_NAME's coming out (a task name: 16 bytes); for
        // other options the argument is a number, and reading at it finds nothing or nothing used.
        add(plan.enter, {1, CaptureKind::CString, 0, 16});
        add(plan.exit, {1, CaptureKind::CString, 0, 16});
    }
    // Paths again at the exit: a path in a page the program had not touched yet is unreadable
    // at the entry (the plugin reads without faulting pages in), and by the exit the kernel has
    // faulted it in. Not for execve-like calls: their exit runs in the new program.
    bool replaces_image = false;
    for (std::size_t i = 0; i < info.nargs; ++i) {
        if (info.args[i].type == ArgType::Argv) replaces_image = true;
    }
    for (std::size_t i = 0; i < info.nargs && !replaces_image; ++i) {
        if (info.args[i].type == ArgType::Cstring) {
            add(plan.exit, {static_cast<std::uint8_t>(i), CaptureKind::CString, 0, max});
        }
    }
    return plan;
}

}  // namespace nitro::decode
