// SPDX-License-Identifier: MIT
// Kernel structure layouts from the BTF the kernel carries (CONFIG_DEBUG_INFO_BTF), and the
// KernelProfile nitro's Linux backend consumes (offsets, sizes, a few symbols), with a JSON
// cache format.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct btf;

namespace nitro::linux_os {

class ElfImage;
class Kallsyms;

// A member as laid out in memory. Bitfields have bit_size != 0 and usually no byte offset.
struct MemberInfo {
    uint64_t bit_offset = 0;
    uint32_t bit_size = 0;  // 0: not a bitfield
    uint64_t size = 0;      // bytes of the member's type
    uint32_t type_id = 0;

    bool is_bitfield() const { return bit_size != 0; }
    uint64_t offset() const { return bit_offset / 8; }
};

// Owns a libbpf `struct btf`. Every lookup treats the BTF as untrusted: bad type ids, cycles
// and absurd sizes end in nitro::Error, not in a crash.
class Btf {
  public:
    // Parses raw BTF (starting with the 0xEB9F header); libbpf copies the bytes.
    static Btf from_bytes(std::span<const uint8_t> raw);
    // The .BTF section, or (without section headers) a scan for a sane BTF header.
    static Btf from_vmlinux(const ElfImage& elf);
    // Locates raw BTF inside a vmlinux: .BTF, or a scan for the magic with a consistent header.
    static std::span<const uint8_t> locate(const ElfImage& elf);

    Btf(Btf&& other) noexcept;
    Btf& operator=(Btf&& other) noexcept;
    Btf(const Btf&) = delete;
    Btf& operator=(const Btf&) = delete;
    ~Btf();

    uint32_t type_count() const;

    // Id of the struct or union of that name.
    std::optional<uint32_t> find_composite(std::string_view name) const;
    // Size in bytes of a struct/union/typedef/int... by name; throws if unknown.
    uint64_t size_of(std::string_view type_name) const;
    // Member of a struct/union, found through anonymous struct/union members; throws if absent.
    MemberInfo member(std::string_view type_name, std::string_view member_name) const;
    std::optional<MemberInfo> find_member(std::string_view type_name,
                                          std::string_view member_name) const;
    // Byte offset; throws for bitfields (use member() for their bit position).
    uint64_t offset_of(std::string_view type_name, std::string_view member_name) const;
    // "mm_struct.pgd", "task_struct.thread.sp": follows embedded (not pointed-to) members.
    MemberInfo member_path(std::string_view path) const;
    // Offset of a per-CPU variable in the per-CPU area (DATASEC ".data..percpu"); this equals
    // the per-CPU symbol's value.
    std::optional<uint64_t> percpu_offset(std::string_view var_name) const;

    const struct btf* raw() const { return btf_; }

  private:
    explicit Btf(struct btf* b) : btf_(b) {}
    std::optional<MemberInfo> find_in(uint32_t type_id, std::string_view member_name,
                                      int depth) const;
    struct btf* btf_ = nullptr;
};

struct Field {
    uint32_t offset = 0;
    uint32_t size = 0;
    bool valid = false;  // false: this kernel has no such member (only for optional fields)
};

// Everything nitro needs to know about one kernel build. Offsets are bytes.
struct KernelProfile {
    static constexpr int kFormatVersion = 2;  // 2: mount, vfsmount

    std::string banner;    // "Linux version 6.1.0-... #1 SMP ..." (linux_banner)
    std::string release;   // "6.1.0-56-cloud-amd64"
    std::string build_id;  // NT_GNU_BUILD_ID hex; may be empty
    // SHA-256 of the raw BTF: the cache key of kernels without a build id (may be empty, e.g.
    // for profiles from ISF files or explicit offsets).
    std::string btf_sha256;

    struct TaskStruct {
        uint32_t size = 0;
        Field pid, tgid, comm, mm, active_mm, real_parent, parent, tasks, children, sibling;
        Field thread_group;  // optional (removed in newer kernels)
        Field thread_node;   // optional (newer kernels)
        Field signal, flags, exit_state, stack;
    } task_struct;
    struct SignalStruct {
        Field thread_head;  // optional (kernels since 6.6 list a process's threads here)
    } signal_struct;
    struct ListHead {
        Field next, prev;
    } list_head;
    struct MmStruct {
        uint32_t size = 0;
        Field pgd, exe_file, arg_start, arg_end;
    } mm_struct;
    struct File {
        Field f_path;
    } file;
    struct Path {
        Field dentry, mnt;
    } path;
    struct Dentry {
        Field d_name, d_parent;
    } dentry;
    struct Qstr {
        Field name, len;
    } qstr;
    // fs/mount.h's struct mount around the vfsmount a path points to, and the vfsmount's root:
    // how a path crosses from a mount's root to where it is mounted (optional: without them
    // paths stop at the root of their own mount).
    struct Mount {
        Field mnt, mnt_parent, mnt_mountpoint;
    } mount;
    struct Vfsmount {
        Field mnt_root;
    } vfsmount;
    struct PtRegs {
        uint32_t size = 0;
        Field orig_ax, ax, di, si, dx, r10, r8, r9, ip, cs, flags, sp, ss;
    } pt_regs;

    // Per-CPU offset of the current task pointer: current_task (<= 6.1) or
    // pcpu_hot.current_task (>= 6.2). Address on CPU n: __per_cpu_offset[n] + this.
    uint64_t current_task_percpu = 0;
    std::string current_task_source;  // "current_task" or "pcpu_hot.current_task"

    // Link-time addresses of symbols the backend uses (empty without kallsyms).
    std::map<std::string, uint64_t> symbols;

    // The key to cache profiles under: the build id, else "btf-" and the BTF digest, else a
    // digest of the banner. Only [0-9a-z-] (keys from guest memory name files).
    std::string cache_key() const;
};

// Any source of struct layouts (BTF, a Volatility ISF, an offsets file): sizes of structs and
// members by name (anonymous members looked through).
struct LayoutLookup {
    std::string source;  // prefix of error messages: "BTF", "ISF"
    std::function<std::optional<uint64_t>(std::string_view type)> size_of;
    std::function<std::optional<MemberInfo>(std::string_view type, std::string_view member)> member;
    // Missing structs and members are left invalid (size 0, Field::valid false) instead of
    // failing; validate_profile() then checks what process tracing needs.
    bool lenient = false;
};
// Fills every layout of the profile (not current_task_percpu, symbols or identity). Throws
// nitro::Error naming the first required member that is missing.
void fill_layouts(KernelProfile& profile, const LayoutLookup& lookup);
// Symbols worth keeping in a profile (the backend and the listeners use them).
std::span<const char* const> profile_symbol_names();

// Builds the profile from BTF (layouts) and, when available, the ELF (build id, banner) and
// kernel symbols. Throws nitro::Error naming the first required member that is missing.
KernelProfile build_profile(const Btf& btf, const ElfImage* elf = nullptr,
                            const Kallsyms* symbols = nullptr);

// Throws nitro::Error when the profile is internally inconsistent (a field outside its struct,
// absurd sizes, no current-task offset): for profiles from caches, ISF and offsets files.
void validate_profile(const KernelProfile& profile);

// "Linux version ..." of the image: linux_banner via kallsyms, else a scan of .rodata.
std::string find_banner(const ElfImage& elf, const Kallsyms* symbols = nullptr);

void to_json(nlohmann::json& j, const Field& f);
void from_json(const nlohmann::json& j, Field& f);
void to_json(nlohmann::json& j, const KernelProfile& p);
void from_json(const nlohmann::json& j, KernelProfile& p);
// from_json that reports malformed or incompatible caches as nitro::Error.
KernelProfile profile_from_json(const nlohmann::json& j);

}  // namespace nitro::linux_os
