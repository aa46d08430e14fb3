// SPDX-License-Identifier: MIT
#include "listener/gdb/gdb_listener.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "nitro/error.h"
#include "nitro/log.h"
#include "os/linux/kallsyms.h"
#include "os/linux/kernel_profile.h"

namespace nitro::gdb {

namespace {

using Clock = std::chrono::steady_clock;

// The registers an event needs, in this order (QEMU's names).
enum Reg : unsigned {
    RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15,
    RIP, RFLAGS, CS, SS, FS_BASE, GS_BASE, K_GS_BASE, CR0, CR3, CR4, EFER, kNumRegs
};
constexpr const char* kRegNames[kNumRegs] = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",      "r9",
    "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "cs",   "ss",
    "fs_base", "gs_base", "k_gs_base", "cr0", "cr3", "cr4", "efer"};

// Symbols the listener looks for (link addresses), beyond those only used for bounds.
constexpr const char* kTrapSymbolNames[] = {
    "_text", "_etext", "linux_banner", "entry_SYSCALL_64", "entry_SYSRETQ_unsafe_stack",
    "entry_SYSRETQ_end", "swapgs_restore_regs_and_return_to_usermode", "native_irq_return_iret",
    "entry_SYSCALL_compat", "entry_SYSRETL_compat_unsafe_stack", "entry_SYSRETL_compat_end",
    "entry_SYSENTER_compat", "entry_INT80_compat", "asm_int80_emulation", "__entry_text_end"};

// The x86-64 kernel image region (KASLR moves the kernel inside it) and its alignment.
constexpr std::uint64_t kImageStart = 0xffffffff80000000ULL;
constexpr std::uint64_t kImageEnd = 0xffffffffc0000000ULL;
constexpr std::int64_t kSlideAlign = 2 << 20;

constexpr std::uint64_t kCr0Pg = 1ULL << 31;
constexpr std::uint64_t kEferLma = 1ULL << 10;
// Bound on what is read to find a return instruction in a routine.
constexpr std::size_t kMaxScan = 4096;
// Bytes of the banner compared to recognise the kernel.
constexpr std::size_t kBannerCompare = 64;

constexpr std::uint8_t kIretq[] = {0x48, 0xcf};

// Linux's identity-changing calls (see TcgListener::set_rekey_syscalls).
constexpr std::uint64_t kRekey64[] = {59 /* execve */, 322 /* execveat */, 158 /* arch_prctl */};
constexpr std::uint64_t kRekey32[] = {11 /* execve */, 358 /* execveat */,
                                      243 /* set_thread_area */};
constexpr std::uint64_t kMaxNr = 4096;

std::uint64_t realtime_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

bool is_entry(TrapKind k) {
    return k == TrapKind::Syscall64 || k == TrapKind::Int80 || k == TrapKind::Sysenter ||
           k == TrapKind::SyscallCompat;
}

std::uint64_t u32(std::uint64_t v) { return v & 0xffffffffULL; }

}  // namespace

std::string_view to_string(TrapKind k) {
    switch (k) {
        case TrapKind::Syscall64: return "syscall";
        case TrapKind::Sysretq: return "sysretq";
        case TrapKind::Iret: return "iretq";
        case TrapKind::Int80: return "int80";
        case TrapKind::Sysenter: return "sysenter";
        case TrapKind::Sysretl: return "sysretl";
        case TrapKind::SyscallCompat: return "syscall32";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// Symbols, patterns, KASLR

KernelTrapSymbols KernelTrapSymbols::from_kallsyms(const linux_os::Kallsyms& symbols,
                                                   std::string banner) {
    KernelTrapSymbols out;
    out.banner = std::move(banner);
    for (const char* name : kTrapSymbolNames) {
        if (auto a = symbols.link_address(name)) out.link.emplace(name, *a);
    }
    return out;
}

std::vector<std::string_view> KernelTrapSymbols::names() {
    return {std::begin(kTrapSymbolNames), std::end(kTrapSymbolNames)};
}

std::optional<std::uint64_t> KernelTrapSymbols::get(std::string_view name) const {
    auto it = link.find(name);
    if (it == link.end()) return std::nullopt;
    return it->second;
}

std::optional<std::uint64_t> find_unique(std::span<const std::uint8_t> code, std::uint64_t base,
                                         std::span<const std::uint8_t> pattern, std::size_t at) {
    if (pattern.empty() || code.size() < pattern.size()) return std::nullopt;
    std::optional<std::uint64_t> found;
    for (std::size_t i = 0; i + pattern.size() <= code.size(); ++i) {
        if (std::memcmp(code.data() + i, pattern.data(), pattern.size()) != 0) continue;
        if (found)
            fail("gdb listener: the instruction pattern occurs twice in {} bytes at {:#x}",
                 code.size(), base);
        found = base + i + at;
    }
    return found;
}

std::optional<std::size_t> simple_insn_length(std::span<const std::uint8_t> c) {
    auto at = [&](std::size_t i) -> int { return i < c.size() ? c[i] : -1; };
    if (c.empty()) return std::nullopt;
    std::uint8_t b = c[0];
    if (b == 0x90 || b == 0xfc || (b >= 0x50 && b <= 0x57)) return 1;  // nop, cld, push r
    if (b == 0x41 && at(1) >= 0x50 && at(1) <= 0x57) return 2;            // push r8..r15
    if (b == 0x6a && c.size() >= 2) return 2;                              // push imm8
    if (b == 0x66 && at(1) == 0x90) return 2;
    if (b == 0xf3 && at(1) == 0x0f && at(2) == 0x1e && at(3) == 0xfa) return 4;  // endbr64
    if (b == 0x0f && at(1) == 0x01 && (at(2) == 0xf8 || at(2) == 0xca)) return 3;  // swapgs, clac
    if (b == 0x0f && at(1) == 0x00 && at(2) == 0x2d && c.size() >= 7) return 7;  // verw rip+disp32
    // nopl/nopw forms: [66] 0f 1f modrm [sib] [disp8|disp32]
    std::size_t p = b == 0x66 ? 1 : 0;
    if (at(p) == 0x0f && at(p + 1) == 0x1f && at(p + 2) >= 0) {
        int modrm = at(p + 2);
        int mod = modrm >> 6, rm = modrm & 7;
        std::size_t len = p + 3 + (rm == 4 && mod != 3 ? 1 : 0) +
                          (mod == 1 ? 1 : mod == 2 ? 4 : 0);
        if (mod == 0 && rm == 5) return std::nullopt;  // rip-relative: not a kernel nop form
        if (len <= c.size()) return len;
    }
    return std::nullopt;
}

std::optional<std::uint64_t> find_sysret(std::span<const std::uint8_t> code, std::uint64_t base,
                                         bool q64) {
    auto path = find_sysret_path(code, base, q64);
    if (!path) return std::nullopt;
    return path->sysret;
}

std::optional<SysretPath> find_sysret_path(std::span<const std::uint8_t> code, std::uint64_t base,
                                           bool q64) {
    std::optional<SysretPath> found;
    for (std::size_t i = 0; i + 3 <= code.size(); ++i) {
        if (code[i] != 0x0f || code[i + 1] != 0x01 || code[i + 2] != 0xf8) continue;  // swapgs
        std::size_t p = i + 3;
        // At most a few instructions: a short jump over verw (CLEAR_CPU_BUFFERS), or nops and
        // the verw itself when the mitigation is on.
        for (int n = 0; n < 8 && p < code.size(); ++n) {
            if (code[p] == 0xeb && p + 1 < code.size()) {
                p += 2 + static_cast<std::int8_t>(code[p + 1]);
            } else if (code[p] == 0x0f && p + 2 < code.size() && code[p + 1] == 0x00 &&
                       code[p + 2] == 0x2d) {
                p += 7;  // verw rip+disp32
            } else if (auto len = simple_insn_length(code.subspan(p));
                       len && code[p] != 0xf3 && !(code[p] == 0x0f && code[p + 1] == 0x01)) {
                p += *len;
            } else {
                break;
            }
        }
        if (p >= code.size()) continue;
        bool match = q64 ? (p + 3 <= code.size() && code[p] == 0x48 && code[p + 1] == 0x0f &&
                            code[p + 2] == 0x07)
                         : (p + 2 <= code.size() && code[p] == 0x0f && code[p + 1] == 0x07);
        if (!match) continue;
        std::uint64_t at = base + p;
        if (found && found->sysret != at)
            fail("gdb listener: two sysret{} after swapgs at {:#x} and {:#x}", q64 ? 'q' : 'l',
                 found->sysret, at);
        found = SysretPath{base + i + 3, at};
    }
    return found;
}

std::vector<std::int64_t> kaslr_candidates(std::uint64_t text, std::uint64_t etext,
                                           std::optional<std::uint64_t> hint) {
    std::vector<std::int64_t> out;
    if (text < kImageStart || etext <= text || etext > kImageEnd) return out;
    std::int64_t lo = -static_cast<std::int64_t>(text - kImageStart);
    std::int64_t hi = static_cast<std::int64_t>(kImageEnd - etext);
    lo = lo / kSlideAlign * kSlideAlign;
    if (hint && *hint >= kImageStart && *hint < kImageEnd) {
        // slide in (hint - etext, hint - text]
        auto from = static_cast<std::int64_t>(*hint - etext);
        auto to = static_cast<std::int64_t>(*hint - text);
        for (std::int64_t s = (std::max(from, lo) / kSlideAlign) * kSlideAlign; s <= to;
             s += kSlideAlign)
            if (s > from && s >= lo && s <= hi) out.push_back(s);
    }
    for (std::int64_t s = lo; s <= hi; s += kSlideAlign)
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Captures

namespace {

struct Capturer {
    GuestReader& mem;
    std::vector<char>& out;
    std::uint32_t max;

    // Reads `want` bytes (at most max) page by page; returns status.
    CaptureStatus buffer(std::uint64_t addr, std::uint64_t want) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(want, max));
        std::size_t start = out.size();
        out.resize(start + n);
        std::size_t got = mem.read(addr, std::span(reinterpret_cast<std::uint8_t*>(out.data() + start), n));
        out.resize(start + got);
        if (got < n) return got ? CaptureStatus::Partial : CaptureStatus::Fault;
        return want > max ? CaptureStatus::Truncated : CaptureStatus::Ok;
    }

    // A NUL-terminated string (without the NUL), within `limit` bytes.
    CaptureStatus cstring(std::uint64_t addr, std::size_t limit) {
        std::size_t len = 0;
        std::uint8_t chunk[256];
        while (len < limit) {
            std::uint64_t a = addr + len;
            std::size_t n = std::min<std::size_t>({sizeof chunk, limit - len,
                                                   0x1000 - static_cast<std::size_t>(a & 0xfff)});
            std::size_t got = mem.read(a, std::span(chunk, n));
            auto* nul = static_cast<std::uint8_t*>(std::memchr(chunk, 0, got));
            std::size_t take = nul ? static_cast<std::size_t>(nul - chunk) : got;
            out.insert(out.end(), chunk, chunk + take);
            len += take;
            if (nul) return CaptureStatus::Ok;
            if (got < n) return len ? CaptureStatus::Partial : CaptureStatus::Fault;
        }
        return CaptureStatus::Truncated;
    }

    CaptureStatus str_array(std::uint64_t addr, bool compat) {
        std::size_t psize = compat ? 4 : 8;
        std::size_t start = out.size();
        for (int i = 0; i < 256; ++i) {
            std::uint64_t p = 0;
            if (mem.read(addr + static_cast<std::uint64_t>(i) * psize,
                         std::span(reinterpret_cast<std::uint8_t*>(&p), psize)) != psize)
                return i ? CaptureStatus::Partial : CaptureStatus::Fault;
            if (p == 0) return CaptureStatus::Ok;
            std::size_t used = out.size() - start;
            if (used >= max) return CaptureStatus::Truncated;
            CaptureStatus st = cstring(p, max - used);
            if (st != CaptureStatus::Ok)
                return st == CaptureStatus::Fault ? CaptureStatus::Partial : st;
            if (out.size() - start >= max) return CaptureStatus::Truncated;
            out.push_back('\0');
        }
        return CaptureStatus::Truncated;
    }

    // The buffers of an iovec array (CaptureKind::IovecData): per entry its length, status,
    // 3 bytes of padding and up to max bytes, padded to 8; total < 0: no limit, else the bytes
    // the call transferred.
    CaptureStatus iovec_data(std::uint64_t addr, std::uint64_t count, bool compat, std::int64_t total) {
        const std::size_t esize = compat ? 8 : 16;
        CaptureStatus status = CaptureStatus::Ok;
        if (count > kIovecDataEntries) {
            count = kIovecDataEntries;
            status = CaptureStatus::Truncated;
        }
        for (std::uint64_t i = 0; i < count; ++i) {
            std::uint64_t e[2] = {};
            std::uint32_t e32[2] = {};
            auto* raw = compat ? reinterpret_cast<std::uint8_t*>(e32) : reinterpret_cast<std::uint8_t*>(e);
            if (mem.read(addr + i * esize, std::span(raw, esize)) != esize) {
                return i ? CaptureStatus::Partial : CaptureStatus::Fault;
            }
            const std::uint64_t base = compat ? e32[0] : e[0];
            std::uint64_t len = compat ? e32[1] : e[1];
            if (total >= 0) {
                len = std::min<std::uint64_t>(len, static_cast<std::uint64_t>(total));
                total -= static_cast<std::int64_t>(len);
            }
            const std::size_t header = out.size();
            out.resize(header + 8, '\0');
            CaptureStatus st = CaptureStatus::Ok;
            if (base) {
                st = buffer(base, len);
            } else if (len) {
                st = CaptureStatus::Fault;
            }
            const auto n = static_cast<std::uint32_t>(out.size() - header - 8);
            std::memcpy(out.data() + header, &n, 4);
            out[header + 4] = static_cast<char>(st);
            out.resize(header + 8 + ((n + 7) & ~7u), '\0');
        }
        return status;
    }
};

}  // namespace

void capture_arguments(GuestReader& mem, const std::vector<CaptureRule>& rules, Event& ev) {
    ev.captures.clear();
    ev.capture_storage.clear();
    struct Span {
        std::uint8_t arg;
        CaptureKind kind;
        CaptureStatus status;
        std::size_t off, len;
    };
    std::vector<Span> spans;
    const std::int64_t ret = ev.ret();
    for (const CaptureRule& r : rules) {
        if (!capture_rule_valid(r) || spans.size() >= 4) continue;
        std::uint32_t max = std::min<std::uint32_t>(r.max, 65536);
        std::uint64_t addr = r.kind == CaptureKind::StackAt ? ev.regs.rsp + 8u * r.len_arg : ev.args[r.arg];
        if (ev.compat) addr = u32(addr);
        std::size_t off = ev.capture_storage.size();
        Capturer c{mem, ev.capture_storage, max};
        CaptureStatus st = CaptureStatus::Ok;
        switch (r.kind) {
            case CaptureKind::CString: st = c.cstring(addr, max); break;
            case CaptureKind::BufFixed:
            case CaptureKind::StackAt: st = c.buffer(addr, max); break;
            case CaptureKind::BufLenArg: {
                std::uint64_t want = ev.args[r.len_arg];
                st = c.buffer(addr, ev.compat ? u32(want) : want);
                break;
            }
            case CaptureKind::BufRet:
                if (ev.direction != Direction::Exit || ret <= 0) continue;
                st = c.buffer(addr, static_cast<std::uint64_t>(ret));
                break;
            case CaptureKind::StrArray: st = c.str_array(addr, ev.compat); break;
            case CaptureKind::IovecData: {
                const bool exit = ev.direction == Direction::Exit;
                if (exit && ret <= 0) continue;
                std::uint64_t count = ev.compat ? u32(ev.args[r.len_arg]) : ev.args[r.len_arg];
                st = c.iovec_data(addr, count, ev.compat, exit ? ret : -1);
                break;
            }
            case CaptureKind::BufLenPtr: {
                std::uint64_t lp = ev.compat ? u32(ev.args[r.len_arg]) : ev.args[r.len_arg];
                std::uint32_t want = 0;
                if (!lp || mem.read(lp, std::span(reinterpret_cast<std::uint8_t*>(&want), 4)) != 4)
                    continue;
                st = c.buffer(addr, want);
                break;
            }
            default: continue;
        }
        if (addr == 0) {
            ev.capture_storage.resize(off);
            st = CaptureStatus::Fault;
        }
        spans.push_back({r.arg, r.kind, st, off, ev.capture_storage.size() - off});
    }
    // Views are made last: the storage may have moved while it grew.
    for (const Span& s : spans)
        ev.captures.push_back(Capture{s.arg, s.kind, s.status,
                                      std::string_view(ev.capture_storage.data() + s.off, s.len)});
}

// ---------------------------------------------------------------------------------------------
// Pending entries

void PendingCalls::put(Entry e) {
    e.stamp = ++stamp_;
    auto it = map_.find(e.key);
    if (it != map_.end()) {
        if (it->second.rekey) rekey_count_--;
        if (e.rekey) rekey_count_++;
        it->second = e;
        return;
    }
    if (map_.size() >= capacity_) {
        // Threads that never returned (killed, entered before an earlier detach): oldest goes.
        auto oldest = map_.begin();
        for (auto i = map_.begin(); i != map_.end(); ++i)
            if (i->second.stamp < oldest->second.stamp) oldest = i;
        if (oldest->second.rekey) rekey_count_--;
        map_.erase(oldest);
    }
    if (e.rekey) rekey_count_++;
    map_.emplace(e.key, e);
}

std::optional<PendingCalls::Entry> PendingCalls::take(const Key& k) {
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    Entry e = it->second;
    if (e.rekey) rekey_count_--;
    map_.erase(it);
    return e;
}

std::optional<PendingCalls::Entry> PendingCalls::take_exact(const Key& k, unsigned vcpu,
                                                            std::uint64_t seq) {
    auto it = map_.find(k);
    if (it == map_.end() || it->second.vcpu != vcpu || it->second.seq != seq) return std::nullopt;
    return take(k);
}

std::optional<PendingCalls::Entry> PendingCalls::take_rekey(std::uint64_t cr3_key, bool fresh,
                                                            unsigned vcpu) {
    if (rekey_count_ == 0) return std::nullopt;
    const Entry* best = nullptr;
    int best_rank = 0;
    for (const auto& [k, e] : map_) {
        if (!e.rekey) continue;
        int rank = e.key.cr3 == cr3_key ? 3 : !fresh ? 0 : e.vcpu == vcpu ? 2 : 1;
        if (rank > best_rank || (rank && rank == best_rank && e.stamp < best->stamp)) {
            best = &e;
            best_rank = rank;
        }
    }
    if (!best) return std::nullopt;
    return take(best->key);
}

// ---------------------------------------------------------------------------------------------
// Guest memory at a stop

struct GdbListener::Regs {
    std::array<std::uint64_t, kNumRegs> v{};
    std::uint64_t operator[](unsigned i) const { return v[i]; }
};

class GdbListener::StubReader final : public GuestReader {
  public:
    StubReader(GdbClient& c, GdbStats& s) : client_(c), stats_(s) {}
    std::size_t read(std::uint64_t va, std::span<std::uint8_t> out) override {
        stats_.memory_reads++;
        return client_.read_memory_some(va, out);
    }

  private:
    GdbClient& client_;
    GdbStats& stats_;
};

class GdbListener::SharedReader final : public GuestReader {
  public:
    SharedReader(PhysicalMemory& mem, GdbStats& s) : space_(mem, 0, 0), stats_(s) {}
    void set(std::uint64_t cr3, std::uint64_t cr4, std::uint64_t efer) {
        space_.set_config(PagingConfig::from_registers(cr3, cr4, efer));
    }
    std::size_t read(std::uint64_t va, std::span<std::uint8_t> out) override {
        stats_.memory_reads++;
        return space_.read(GuestVirt(va), std::as_writable_bytes(out)).done;
    }

  private:
    AddressSpace space_;
    GdbStats& stats_;
};

// ---------------------------------------------------------------------------------------------
// Set-up

std::unique_ptr<GdbListener> GdbListener::connect(const std::string& endpoint,
                                                  KernelTrapSymbols symbols,
                                                  GdbListenerOptions options) {
    auto client = GdbClient::connect(endpoint, options.client);
    return std::make_unique<GdbListener>(std::move(client), std::move(symbols),
                                         std::move(options));
}

GdbListener::GdbListener(std::unique_ptr<GdbClient> client, KernelTrapSymbols symbols,
                         GdbListenerOptions options)
    : client_(std::move(client)), symbols_(std::move(symbols)), options_(std::move(options)) {
    traps_on_ = options_.traps;
    temp_breakpoints_ = options_.step_over == GdbListenerOptions::StepOver::TemporaryBreakpoint;
    for (unsigned i = 0; i < kNumRegs; ++i)
        if (!client_->registers().find(kRegNames[i]))
            fail("gdb listener: {} has no register '{}' (not QEMU's x86-64 gdbstub?)",
                 client_->channel().peer(), kRegNames[i]);
    for (auto& bits : nr_allowed_) bits.assign(kMaxNr, false);
    for (auto& bits : rekey_) bits.assign(kMaxNr, false);
    for (auto nr : kRekey64) rekey_[0][nr] = true;
    for (auto nr : kRekey32) rekey_[1][nr] = true;
    stub_reader_ = std::make_unique<StubReader>(*client_, gstats_);
    if (options_.memory) shared_reader_ = std::make_unique<SharedReader>(*options_.memory, gstats_);
    gstats_.memory_through_stub = !options_.memory;

    if (client_->running()) fail("gdb listener: the target must be stopped when attaching");
    // '?' also makes QEMU drop breakpoints a previous debugger left behind.
    client_->query_stop();
    refresh_threads();
    find_kernel();
    place_traps();
    if (traps_on_) {
        for (Trap& t : traps_) insert_trap(t);
        breakpoints_in_ = true;
    }
    resume_all();
    log::info("gdb listener: attached to {} ({} vCPUs, KASLR slide {:#x}, {} breakpoints, memory "
              "{})",
              client_->channel().peer(), threads_.size(), slide_, gstats_.breakpoints,
              options_.memory ? "from the shared file" : "through the stub");
}

GdbListener::~GdbListener() {
    try {
        detach();
    } catch (const std::exception& e) {
        log::warn("gdb listener: detaching: {}", e.what());
    }
}

void GdbListener::refresh_threads() {
    threads_ = client_->threads();
    if (threads_.empty()) fail("gdb listener: {} lists no vCPUs", client_->channel().peer());
    if (vcpus_.size() < threads_.size()) vcpus_.resize(threads_.size());
}

unsigned GdbListener::vcpu_of(const StopReply& stop) {
    if (!stop.thread) return 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
        for (std::size_t i = 0; i < threads_.size(); ++i)
            if (threads_[i].tid == stop.thread->tid) return static_cast<unsigned>(i);
        refresh_threads();  // a vCPU hot-plugged since we attached
    }
    fail("gdb listener: stop on unknown thread {}", stop.thread->to_string());
}

GdbListener::Regs GdbListener::read_regs(const ThreadId& thread) {
    if (!selected_ || !(*selected_ == thread)) {
        client_->select_thread(thread, 'g');
        selected_ = thread;
    }
    RegisterFile rf = client_->read_registers();
    Regs r;
    for (unsigned i = 0; i < kNumRegs; ++i) {
        auto v = rf.try_get(kRegNames[i]);
        r.v[i] = v ? *v : client_->read_register(kRegNames[i]);
    }
    return r;
}

GuestReader& GdbListener::reader_for(const Regs& r) {
    if (!shared_reader_) return *stub_reader_;
    shared_reader_->set(r[CR3], r[CR4], r[EFER]);
    return *shared_reader_;
}

void GdbListener::find_kernel() {
    auto deadline = Clock::now() + options_.kernel_timeout;
    bool waited = false;
    while (!try_find_kernel()) {
        if (Clock::now() >= deadline)
            fail("gdb listener: the kernel (\"{}\") did not appear in guest memory within {} s; "
                 "is this the kernel the guest runs?",
                 symbols_.banner.substr(0, 40), options_.kernel_timeout.count() / 1000);
        if (!waited) log::info("gdb listener: waiting for the guest's kernel to start");
        waited = true;
        // Let the guest boot a little, then look again.
        client_->resume();
        auto stop = client_->wait_for_stop(std::chrono::milliseconds(50));
        if (!stop) {
            client_->interrupt();
            stop = client_->wait_for_stop(options_.client.timeout);
            if (!stop) fail("gdb listener: {} did not stop when interrupted", client_->channel().peer());
        }
        if (stop->is_exit()) fail("gdb listener: the guest ended before its kernel started");
        selected_.reset();
    }
}

bool GdbListener::try_find_kernel() {
    auto text = symbols_.get("_text");
    auto etext = symbols_.get("_etext");
    auto banner_at = symbols_.get("linux_banner");
    if (!text || !etext || !banner_at || symbols_.banner.empty())
        fail("gdb listener: the kernel profile lacks _text, _etext or linux_banner");
    std::string want = symbols_.banner.substr(0, kBannerCompare);
    // Any vCPU that runs the kernel in long mode will do.
    for (const ThreadId& t : threads_) {
        Regs r = read_regs(t);
        if (!(r[CR0] & kCr0Pg) || !(r[EFER] & kEferLma)) continue;
        // Kernel mode (the kernel's page tables, also under KPTI, map the banner).
        if ((r[CS] & 3) != 0) continue;
        GuestReader& mem = reader_for(r);
        std::vector<std::uint8_t> buf(want.size());
        for (std::int64_t slide : kaslr_candidates(*text, *etext, r[RIP])) {
            std::uint64_t at = *banner_at + static_cast<std::uint64_t>(slide);
            if (mem.read(at, buf) == buf.size() && std::memcmp(buf.data(), want.data(), buf.size()) == 0) {
                slide_ = slide;
                gstats_.kaslr_slide = slide;
                log::debug("gdb listener: linux_banner at {:#x}: KASLR slide {:#x}", at, slide);
                return true;
            }
        }
    }
    return false;
}

void GdbListener::place_traps() {
    // The routines are read on a vCPU in kernel mode (find_kernel() made sure one was).
    const ThreadId* kthread = nullptr;
    Regs kregs;
    for (const ThreadId& t : threads_) {
        kregs = read_regs(t);
        if ((kregs[CS] & 3) == 0) {
            kthread = &t;
            break;
        }
    }
    if (!kthread) fail("gdb listener: no vCPU in kernel mode to read the entry code from");
    GuestReader& mem = reader_for(kregs);
    auto rt = [&](std::string_view name) -> std::optional<std::uint64_t> {
        auto a = symbols_.get(name);
        if (!a) return std::nullopt;
        return *a + static_cast<std::uint64_t>(slide_);
    };
    auto read_code = [&](std::uint64_t from, std::uint64_t to) {
        std::vector<std::uint8_t> code(std::min<std::uint64_t>(to - from, kMaxScan));
        code.resize(mem.read(from, code));
        if (log::level() >= log::Level::Debug) {
            std::string hex;
            for (std::size_t i = 0; i < std::min<std::size_t>(code.size(), 128); ++i)
                hex += fmt::format("{:02x} ", code[i]);
            log::debug("gdb listener: code at {:#x}: {}", from, hex);
        }
        return code;
    };
    auto entry_end = rt("__entry_text_end");
    auto bound = [&](std::uint64_t from, std::optional<std::uint64_t> end) {
        std::uint64_t to = end.value_or(entry_end.value_or(from + kMaxScan));
        return std::min(to, from + kMaxScan);
    };
    auto add = [&](TrapKind kind, std::uint64_t address, std::string where) {
        traps_.push_back(Trap{kind, address, std::move(where), false, std::nullopt, std::nullopt});
    };

    // 64-bit syscall: entry, and the sysretq found in entry_SYSCALL_64's bytes.
    auto sys64 = rt("entry_SYSCALL_64");
    if (!sys64) fail("gdb listener: the kernel has no entry_SYSCALL_64 symbol");
    add(TrapKind::Syscall64, *sys64, "entry_SYSCALL_64");
    // The exit trap goes on the instruction after the swapgs that precedes the sysret (the jump
    // over verw on Linux 6.1), not on the sysret itself: the vCPU must leave a trap without the
    // trap being taken out while it runs in user mode (docs/gdb-listener.md, "Stepping off").
    // The registers there are those at the sysret.
    auto sysret_trap = [&](const SysretPath& path) {
        return path.after_swapgs < path.sysret ? path.after_swapgs : path.sysret;
    };
    {
        std::optional<SysretPath> path;
        if (auto u = rt("entry_SYSRETQ_unsafe_stack")) {
            auto code = read_code(*u, bound(*u, rt("entry_SYSRETQ_end")));
            path = find_sysret_path(code, *u, true);
        }
        if (!path) {
            auto code = read_code(*sys64, bound(*sys64, rt("entry_SYSRETQ_end")));
            path = find_sysret_path(code, *sys64, true);
        }
        if (!path) fail("gdb listener: no sysretq found in entry_SYSCALL_64 at {:#x}", *sys64);
        std::uint64_t at = sysret_trap(*path);
        add(TrapKind::Sysretq, at,
            fmt::format("entry_SYSCALL_64+{:#x} (sysretq at +{:#x})", at - *sys64,
                        path->sysret - *sys64));
    }
    // The iret return to user mode: the instruction after the swapgs of
    // swapgs_restore_regs_and_return_to_usermode, which only returns to user mode take (the
    // iret frame is on the stack, gs and cr3 are the user's: as at the iretq itself). Failing
    // that, the iretq shared by returns to kernel mode (native_irq_return_iret), filtered at
    // each stop by the frame's CS.
    {
        static constexpr std::uint8_t kSwapgs[] = {0x0f, 0x01, 0xf8};
        std::optional<std::uint64_t> at;
        std::string where;
        if (auto s = rt("swapgs_restore_regs_and_return_to_usermode")) {
            auto n = rt("native_irq_return_iret");
            auto code = read_code(*s, bound(*s, n && *n > *s ? n : std::nullopt));
            try {
                at = find_unique(code, *s, kSwapgs, 3);
            } catch (const Error& e) {
                log::debug("gdb listener: {}", e.what());
            }
            if (at) where = fmt::format("swapgs_restore_regs_and_return_to_usermode+{:#x}", *at - *s);
        }
        if (!at) {
            if (auto n = rt("native_irq_return_iret")) {
                std::uint8_t b[2] = {};
                if (mem.read(*n, b) == 2 && std::memcmp(b, kIretq, 2) == 0) at = *n;
                where = "native_irq_return_iret";
            }
        }
        if (!at) fail("gdb listener: no iretq found on the kernel's return-to-user path");
        add(TrapKind::Iret, *at, where);
    }
    // 32-bit: int 0x80, sysenter, syscall in compat mode, and their sysretl.
    if (auto a = rt("entry_INT80_compat")) add(TrapKind::Int80, *a, "entry_INT80_compat");
    else if (auto b = rt("asm_int80_emulation")) add(TrapKind::Int80, *b, "asm_int80_emulation");
    std::optional<std::uint64_t> sysretl;
    if (auto c = rt("entry_SYSCALL_compat")) {
        std::optional<SysretPath> path;
        if (auto u = rt("entry_SYSRETL_compat_unsafe_stack")) {
            auto code = read_code(*u, bound(*u, rt("entry_SYSRETL_compat_end")));
            path = find_sysret_path(code, *u, false);
        }
        if (!path) {
            auto code = read_code(*c, bound(*c, rt("entry_SYSRETL_compat_end")));
            path = find_sysret_path(code, *c, false);
        }
        if (path) sysretl = sysret_trap(*path);
        else log::warn("gdb listener: no sysretl in entry_SYSCALL_compat; 32-bit fast returns "
                       "are not traced");
    }
    if (sysretl) {
        add(TrapKind::Sysretl, *sysretl, "entry_SYSCALL_compat (sysretl)");
        if (auto s = rt("entry_SYSENTER_compat")) add(TrapKind::Sysenter, *s, "entry_SYSENTER_compat");
        add(TrapKind::SyscallCompat, *rt("entry_SYSCALL_compat"), "entry_SYSCALL_compat");
    }
    for (Trap& t : traps_) {
        std::uint8_t code[16] = {};
        std::size_t n = mem.read(t.address, code);
        if (n >= 2 && code[0] == 0xeb) {
            t.jump = t.address + 2 + static_cast<std::uint64_t>(static_cast<std::int8_t>(code[1]));
        } else if (n >= 5 && code[0] == 0xe9) {
            std::int32_t rel;
            std::memcpy(&rel, code + 1, 4);
            t.jump = t.address + 5 + static_cast<std::uint64_t>(static_cast<std::int64_t>(rel));
        }
        // (simple_insn_length knows no sysret, iret or jump: those never get a `next`.)
        if (!t.jump) {
            if (auto len = simple_insn_length(std::span(code, n))) t.next = t.address + *len;
        }
        log::debug("gdb listener: trap {} at {:#x} ({}), next instruction {}{}", to_string(t.kind),
                   t.address, t.where, t.next ? fmt::format("{:#x}", *t.next) : "unknown",
                   t.jump ? fmt::format(", a jump to {:#x}", *t.jump) : "");
    }
}

bool GdbListener::insert_trap(Trap& t) {
    if (options_.max_breakpoints && gstats_.breakpoints >= options_.max_breakpoints) return false;
    // A 32-bit entry whose fast return cannot be trapped would leave calls without exits.
    if (t.kind == TrapKind::Sysenter || t.kind == TrapKind::SyscallCompat) {
        bool have_sysretl = false;
        for (const Trap& o : traps_)
            if (o.kind == TrapKind::Sysretl && o.inserted) have_sysretl = true;
        if (!have_sysretl) return false;
    }
    auto type = options_.software_breakpoints ? BreakpointType::Software : BreakpointType::Hardware;
    try {
        client_->insert_breakpoint(type, t.address, 1);
    } catch (const Error& e) {
        log::warn("gdb listener: cannot trap {} at {:#x} ({}): {}; {} calls are not traced",
                  to_string(t.kind), t.address, t.where, e.what(), to_string(t.kind));
        return false;
    }
    t.inserted = true;
    gstats_.breakpoints++;
    return true;
}

void GdbListener::remove_traps() {
    auto type = options_.software_breakpoints ? BreakpointType::Software : BreakpointType::Hardware;
    for (Trap& t : traps_) {
        if (!t.inserted) continue;
        client_->remove_breakpoint(type, t.address, 1);
        t.inserted = false;
        gstats_.breakpoints--;
    }
    breakpoints_in_ = false;
}

// ---------------------------------------------------------------------------------------------
// Running

void GdbListener::resume_all() {
    client_->resume();
    selected_.reset();
}

void GdbListener::resume_from(const ThreadId& thread) {
    if (!on_trap_) {
        resume_all();
        return;
    }
    on_trap_ = false;
    if (trap_at_ && trap_at_->jump) {
        // Do the jump for the vCPU: rip = its target.
        if (!selected_ || !(*selected_ == thread)) {
            client_->select_thread(thread, 'g');
            selected_ = thread;
        }
        client_->write_register("rip", *trap_at_->jump);
        gstats_.steps++;
        resume_all();
        return;
    }
    // A temporary breakpoint only on the next instruction in the kernel, where interrupts are
    // still off: while this vCPU runs alone with our trap out, nothing else can pass the trap.
    // (Once the temporary breakpoint was the user return address: an interrupt taken right after
    // the sysret could schedule another thread, whose own sysret then went untrapped: a lost exit
    // at smp 2.) Return instructions themselves (sysret/iret without a decodable instruction
    // before them) are single-stepped: QEMU steps with interrupts masked.
    if (temp_breakpoints_ && next_ip_ && step_over_with_breakpoint(thread)) return;
    auto type = options_.software_breakpoints ? BreakpointType::Software : BreakpointType::Hardware;
    auto step = [&] {
        gstats_.steps++;
        client_->resume_step(thread);
        auto s = client_->wait_for_stop(options_.client.timeout);
        if (!s) fail("no stop reply within {} ms of a single step", options_.client.timeout.count());
        selected_.reset();
        if (s->is_exit()) {
            end_with(EndReason::QemuExited, "");
            return false;
        }
        if (stop_selects_thread_ && s->thread) selected_ = s->thread;
        return true;
    };
    if (step_over_ == StepOver::Reinsert) {
        // Take the breakpoint under the vCPU away for the step, then put it back.
        std::uint64_t rip = read_regs(thread)[RIP];
        const Trap* at = nullptr;
        for (const Trap& t : traps_)
            if (t.inserted && t.address == rip) at = &t;
        if (at) client_->remove_breakpoint(type, at->address, 1);
        if (!step()) return;
        if (at) client_->insert_breakpoint(type, at->address, 1);
    } else if (step_over_ == StepOver::Unknown) {
        std::uint64_t before = read_regs(thread)[RIP];
        if (!step()) return;
        if (read_regs(thread)[RIP] == before) {
            // The stub reported the breakpoint again instead of stepping over it.
            log::info("gdb listener: {} does not step over breakpoints; removing them for each "
                      "step",
                      client_->channel().peer());
            step_over_ = StepOver::Reinsert;
            on_trap_ = true;
            resume_from(thread);
            return;
        }
        log::debug("gdb listener: a single step leaves a breakpoint ({:#x})", before);
        step_over_ = StepOver::Step;
    } else {
        if (!step()) return;
    }
    resume_all();
}

bool GdbListener::step_over_with_breakpoint(const ThreadId& thread) {
    // A single step makes QEMU's TCG discard all translated code (twice: on and off), which
    // costs milliseconds. Instead: take our breakpoint away, put a temporary one on the next
    // instruction, run only this vCPU there, then swap them back and resume all.
    auto type = options_.software_breakpoints ? BreakpointType::Software : BreakpointType::Hardware;
    std::uint64_t next = *next_ip_;
    const Trap* at = trap_at_;
    if (!at) return false;
    for (const Trap& t : traps_)
        if (t.inserted && t.address == next) return false;
    client_->remove_breakpoint(type, at->address, 1);
    try {
        client_->insert_breakpoint(type, next, 1);
    } catch (const Error& e) {
        log::info("gdb listener: no temporary breakpoint ({}); single-stepping instead", e.what());
        temp_breakpoints_ = false;
        client_->insert_breakpoint(type, at->address, 1);
        return false;
    }
    gstats_.steps++;
    client_->resume_thread(thread);
    auto stop = client_->wait_for_stop(options_.client.timeout);
    if (!stop) {
        // It never got there (an endless interrupt storm, a hung vCPU): stop it and go on.
        client_->interrupt();
        stop = client_->wait_for_stop(options_.client.timeout);
        if (!stop) fail("{} does not stop", client_->channel().peer());
    }
    selected_.reset();
    if (stop->is_exit()) {
        end_with(EndReason::QemuExited, "");
        return true;
    }
    if (stop_selects_thread_ && stop->thread) selected_ = stop->thread;
    client_->remove_breakpoint(type, next, 1);
    client_->insert_breakpoint(type, at->address, 1);
    bool arrived = false;
    if (stop->thread && *stop->thread == thread && stop->code == 5) {
        if (!selected_ || !(*selected_ == thread)) {
            client_->select_thread(thread, 'g');
            selected_ = thread;
        }
        arrived = client_->read_register("rip") == next;
    }
    if (arrived) {
        resume_all();
    } else {
        // It stopped elsewhere first (an interrupt return on the way): a stop of its own.
        deferred_stop_ = std::move(stop);
    }
    return true;
}

bool GdbListener::halt() {
    if (end_ != EndReason::None) return false;
    if (!client_->running()) return true;
    client_->interrupt();
    auto stop = client_->wait_for_stop(options_.client.timeout);
    if (!stop) fail("gdb listener: {} did not stop when interrupted", client_->channel().peer());
    selected_.reset();
    if (stop->is_exit()) {
        end_with(EndReason::QemuExited, "");
        return false;
    }
    // A breakpoint hit that raced with the interrupt: keep it for next().
    if (stop->code == 5 && stop->thread) deferred_stop_ = stop;
    return true;
}

void GdbListener::end_with(EndReason reason, std::string error) {
    if (end_ == EndReason::None) end_ = reason;
    if (!error.empty() && error_.empty()) {
        error_ = std::move(error);
        log::warn("gdb listener: {}", error_);
    }
}

Listener::Status GdbListener::next(Event& ev, std::chrono::milliseconds timeout) {
    if (end_ != EndReason::None) return Status::End;
    auto deadline = Clock::now() + timeout;
    try {
        if (held_) {
            ThreadId t = *held_;
            held_.reset();
            resume_from(t);
            if (end_ != EndReason::None) return Status::End;
        }
        for (;;) {
            std::optional<StopReply> stop;
            if (deferred_stop_) {
                stop = std::move(deferred_stop_);
                deferred_stop_.reset();
            } else {
                if (!client_->running()) resume_all();
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
                stop = client_->wait_for_stop(std::max(left, std::chrono::milliseconds(0)));
                if (!stop) return Status::Timeout;
                selected_.reset();
                if (stop_selects_thread_ && stop->thread) selected_ = stop->thread;
            }
            if (stop->is_exit()) {
                end_with(EndReason::QemuExited, "");
                client_->channel().close();
                return Status::End;
            }
            bool got = handle_stop(*stop, ev);
            if (end_ != EndReason::None) return Status::End;
            if (got) {
                delivered_++;
                if (options_.mode == Mode::Sync && stop->thread) {
                    held_ = stop->thread;
                } else {
                    resume_from(*stop->thread);
                }
                return Status::Event;
            }
            if (stop->thread) resume_from(*stop->thread);
            else resume_all();
            if (end_ != EndReason::None) return Status::End;
            if (Clock::now() >= deadline) return Status::Timeout;
        }
    } catch (const Error& e) {
        // The stub closed the connection without an exit reply, stalled or sent garbage.
        end_with(EndReason::QemuDied, e.what());
        client_->channel().close();
        return Status::End;
    }
}

bool GdbListener::handle_stop(const StopReply& stop, Event& ev) {
    if (!stop.thread) return false;
    unsigned vcpu = vcpu_of(stop);
    Regs r = read_regs(*stop.thread);
    const Trap* trap = nullptr;
    for (const Trap& t : traps_)
        if (t.inserted && t.address == r[RIP]) trap = &t;
    if (!trap && stop_selects_thread_ && threads_.size() > 1) {
        // Maybe the stub did not select the stopped vCPU: select it ourselves from now on.
        selected_.reset();
        client_->select_thread(*stop.thread, 'g');
        selected_ = stop.thread;
        r = read_regs(*stop.thread);
        for (const Trap& t : traps_)
            if (t.inserted && t.address == r[RIP]) trap = &t;
        if (trap) {
            log::info("gdb listener: the stub does not select the stopped vCPU; selecting it");
            stop_selects_thread_ = false;
        }
    }
    if (!trap) {  // an interrupt, or a stop that is not ours
        log::debug("gdb listener: stop on vCPU {} at {:#x}: not a trap", vcpu, r[RIP]);
        return false;
    }
    on_trap_ = true;
    trap_at_ = trap;
    // Where the vCPU goes next (for stepping over the breakpoint): the next instruction in the
    // kernel, never the user return address (see resume_from).
    next_ip_ = trap->next;
    gstats_.stops++;
    bool got = is_entry(trap->kind) ? on_entry(*trap, vcpu, r, ev) : on_exit(*trap, vcpu, r, ev);
    if (log::level() >= log::Level::Debug) {  // (the protocol log says what, this says why)
        log::debug("gdb listener: stop on vCPU {} at {} (rax {:#x}, cr3 {:#x}, fs {:#x}): {}", vcpu,
                   to_string(trap->kind), r[RAX], r[CR3], r[FS_BASE],
                   !got ? std::string("no event")
                        : fmt::format("{} nr {} seq {}{}",
                                      ev.direction == Direction::Enter ? "entry" : "exit", ev.nr,
                                      ev.seq, ev.unpaired ? " unpaired" : ""));
    }
    return got;
}

bool GdbListener::nr_traced(bool compat, std::uint64_t nr) const {
    if (!traps_on_) return false;
    if (!nr_filter_) return true;
    return nr < kMaxNr && nr_allowed_[compat][nr];
}

bool GdbListener::cr3_traced(std::uint64_t cr3) const {
    if (cr3_filter_.empty()) return true;
    std::uint64_t k = cr3 & PendingCalls::kCr3KeyMask;
    return std::find(cr3_filter_.begin(), cr3_filter_.end(), k) != cr3_filter_.end();
}

void GdbListener::fill_event(Event& ev, unsigned vcpu, const Regs& r) {
    ev.vcpu = vcpu;
    ev.regs = Registers{r[RAX], r[RBX], r[RCX], r[RDX], r[RSI], r[RDI], r[RBP], r[RSP], r[R8],
                        r[R9],  r[R10], r[R11], r[R12], r[R13], r[R14], r[R15], r[RIP], r[RFLAGS]};
    ev.sregs = SpecialRegisters{r[CR0],     r[CR3],     r[CR4],       r[EFER], r[FS_BASE],
                                r[GS_BASE], r[K_GS_BASE], r[CS], r[SS]};
    ev.host_time_ns = realtime_ns();
    ev.captures.clear();
    ev.capture_storage.clear();
}

bool GdbListener::on_entry(const Trap& t, unsigned vcpu, const Regs& r, Event& ev) {
    bool compat = t.kind != TrapKind::Syscall64;
    std::uint64_t nr = compat ? u32(r[RAX]) : r[RAX];
    bool traced = nr_traced(compat, nr) && cr3_traced(r[CR3]);
    VcpuState& v = vcpus_[vcpu];
    PendingCalls::Entry p;
    p.key = PendingCalls::key_of(r[CR3], r[FS_BASE], r[GS_BASE]);
    p.vcpu = vcpu;
    p.seq = ++v.seq;
    p.nr = nr;
    p.compat = compat;
    p.traced = traced;
    p.rekey = nr < kMaxNr && rekey_[compat][nr];
    p.type = t.kind == TrapKind::Int80      ? EventType::Int80
             : t.kind == TrapKind::Sysenter ? EventType::Sysenter
                                            : EventType::Syscall;
    GuestReader* mem = nullptr;
    if (traced) {
        switch (t.kind) {
            case TrapKind::Syscall64:
                p.args = {r[RDI], r[RSI], r[RDX], r[R10], r[R8], r[R9]};
                break;
            case TrapKind::Int80:
                p.args = {u32(r[RBX]), u32(r[RCX]), u32(r[RDX]), u32(r[RSI]), u32(r[RDI]), u32(r[RBP])};
                break;
            case TrapKind::Sysenter:
            case TrapKind::SyscallCompat: {
                // The sixth argument is on the user stack: at [esp] for syscall (the kernel has
                // not switched stacks yet), at [ebp] for sysenter (the vDSO saved esp in ebp).
                mem = &reader_for(r);
                std::uint64_t sp = t.kind == TrapKind::Sysenter ? u32(r[RBP]) : u32(r[RSP]);
                std::uint32_t a6 = 0;
                if (mem->read(sp, std::span(reinterpret_cast<std::uint8_t*>(&a6), 4)) != 4) a6 = 0;
                std::uint64_t a2 = t.kind == TrapKind::Sysenter ? r[RCX] : r[RBP];
                p.args = {u32(r[RBX]), u32(a2), u32(r[RDX]), u32(r[RSI]), u32(r[RDI]), a6};
                break;
            }
            default: break;
        }
    }
    pending_.put(p);
    v.last = p;
    v.returns_since_entry = 0;
    if (!traced) {
        gstats_.filtered++;
        return false;
    }
    fill_event(ev, vcpu, r);
    ev.type = p.type;
    ev.direction = Direction::Enter;
    ev.compat = compat;
    ev.seq = p.seq;
    ev.entry_vcpu = 0;
    ev.entry_seq = 0;
    ev.exit_insn = ExitInsn::None;
    ev.unpaired = false;
    ev.fallback = false;
    ev.nr = nr;
    ev.args = p.args;
    auto rules = captures_.find({compat, nr, static_cast<int>(Direction::Enter)});
    if (rules != captures_.end() && !rules->second.empty())
        capture_arguments(mem ? *mem : reader_for(r), rules->second, ev);
    return true;
}

bool GdbListener::on_exit(const Trap& t, unsigned vcpu, const Regs& r, Event& ev) {
    GuestReader* mem = nullptr;
    if (t.kind == TrapKind::Iret) {
        // Only an iret to user mode (RPL 3 in the frame's CS) can end a system call.
        mem = &reader_for(r);
        std::uint64_t frame[2] = {};
        if (mem->read(r[RSP], std::span(reinterpret_cast<std::uint8_t*>(frame), sizeof frame)) !=
                sizeof frame ||
            (frame[1] & 3) != 3) {
            gstats_.kernel_irets++;
            return false;
        }
    }
    VcpuState& v = vcpus_[vcpu];
    auto key = PendingCalls::key_of(r[CR3], r[FS_BASE], r[GS_BASE]);
    auto p = pending_.take(key);
    bool fallback = false;
    if (!p) {
        // The key changed during the call (execve, arch_prctl): see docs/listener.md.
        if (v.last && v.returns_since_entry == 0 && v.last->key.cr3 == key.cr3 &&
            t.kind != TrapKind::Iret)
            p = pending_.take_exact(v.last->key, v.last->vcpu, v.last->seq);
        bool fresh = r[FS_BASE] == 0 && r[GS_BASE] == 0;
        if (!p && (fresh || t.kind != TrapKind::Iret)) p = pending_.take_rekey(key.cr3, fresh, vcpu);
        fallback = p.has_value();
    }
    v.returns_since_entry++;
    bool unpaired = false;
    if (!p) {
        // No entry: an interrupt or exception return, or a call that entered before we
        // attached; only sysret is certainly the end of a system call.
        if (t.kind == TrapKind::Iret) {
            gstats_.interrupt_irets++;
            return false;
        }
        unpaired = true;
        p = PendingCalls::Entry{};
        p->traced = traps_on_ && cr3_traced(r[CR3]) && !nr_filter_;
        p->type = EventType::Syscall;
        p->compat = t.kind == TrapKind::Sysretl;
        p->nr = UINT64_MAX;
    }
    if (!p->traced || !traps_on_) {
        gstats_.filtered++;
        return false;
    }
    fill_event(ev, vcpu, r);
    ev.type = p->type;
    ev.direction = Direction::Exit;
    ev.compat = p->compat;
    ev.seq = ++v.seq;
    ev.entry_vcpu = unpaired ? 0 : p->vcpu;
    ev.entry_seq = unpaired ? 0 : p->seq;
    ev.exit_insn = t.kind == TrapKind::Iret ? ExitInsn::Iret : ExitInsn::Sysret;
    ev.unpaired = unpaired;
    ev.fallback = fallback;
    ev.nr = p->nr;
    ev.args = p->args;
    if (!unpaired) {
        auto rules = captures_.find({p->compat, p->nr, static_cast<int>(Direction::Exit)});
        if (rules != captures_.end() && !rules->second.empty())
            capture_arguments(mem ? *mem : reader_for(r), rules->second, ev);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Control

void GdbListener::set_traps(bool enabled) {
    traps_on_ = enabled;
    if (end_ != EndReason::None || enabled == breakpoints_in_) return;
    try {
        bool was_running = client_->running() && !held_;
        if (!halt()) return;
        if (enabled) {
            for (Trap& t : traps_) insert_trap(t);
            breakpoints_in_ = true;
        } else {
            remove_traps();
        }
        if (was_running && !deferred_stop_) resume_all();
    } catch (const Error& e) {
        end_with(EndReason::QemuDied, e.what());
    }
}

void GdbListener::add_syscall_filter(Abi abi, uint64_t nr) {
    if (nr >= kMaxNr) fail("syscall number {} is beyond the filter range", nr);
    nr_allowed_[abi == Abi::I386][nr] = true;
    nr_filter_ = true;
}

void GdbListener::remove_syscall_filter(Abi abi, uint64_t nr) {
    if (nr < kMaxNr) nr_allowed_[abi == Abi::I386][nr] = false;
}

void GdbListener::clear_syscall_filter() {
    nr_filter_ = false;
    for (auto& bits : nr_allowed_) std::fill(bits.begin(), bits.end(), false);
}

void GdbListener::set_cr3_filter(const std::vector<uint64_t>& cr3s) {
    cr3_filter_.clear();
    for (auto c : cr3s) cr3_filter_.push_back(c & PendingCalls::kCr3KeyMask);
}

void GdbListener::set_captures(Abi abi, uint64_t nr, Direction dir,
                               const std::vector<CaptureRule>& rules) {
    if (rules.size() > 4) fail("at most 4 captures per syscall");
    for (const auto& r : rules)
        if (!capture_rule_valid(r)) fail("capture argument index out of range");
    captures_[{abi == Abi::I386, nr, static_cast<int>(dir)}] = rules;
}

void GdbListener::set_rekey_syscalls(Abi abi, const std::vector<uint64_t>& nrs) {
    for (auto nr : nrs)
        if (nr < kMaxNr) rekey_[abi == Abi::I386][nr] = true;
}

ListenerStats GdbListener::stats() const {
    ListenerStats s;
    s.events = delivered_;
    return s;
}

void GdbListener::stop() {
    if (end_ == EndReason::None) end_ = EndReason::Stopped;
    try {
        detach();
    } catch (const Error& e) {
        log::warn("gdb listener: detaching: {}", e.what());
    }
}

void GdbListener::detach() {
    if (!client_ || !client_->channel().is_open()) return;
    // The stub must be stopped to take requests; a held vCPU already is.
    if (client_->running()) {
        client_->interrupt();
        auto stop = client_->wait_for_stop(options_.client.timeout);
        if (!stop) fail("{} did not stop when interrupted", client_->channel().peer());
        if (stop->is_exit()) {
            client_->channel().close();
            return;
        }
    }
    held_.reset();
    deferred_stop_.reset();
    remove_traps();
    // 'D' resumes every vCPU; a vCPU left on a breakpoint address runs on normally, as the
    // breakpoint is gone.
    client_->detach();
    log::info("gdb listener: detached from {} ({} events)", client_->channel().peer(), delivered_);
    if (options_.after_detach) options_.after_detach();
}

std::unique_ptr<GdbListener> make_gdb_listener(const std::string& endpoint,
                                               const linux_os::LoadedKernel& kernel,
                                               std::shared_ptr<PhysicalMemory> memory,
                                               GdbListenerOptions options) {
    options.memory = std::move(memory);
    return GdbListener::connect(
        endpoint, KernelTrapSymbols::from_kallsyms(kernel.symbols, kernel.profile.banner),
        std::move(options));
}

}  // namespace nitro::gdb
