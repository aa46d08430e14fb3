// SPDX-License-Identifier: MIT
#include "nitro/hooks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "nitro/error.h"
#include "nitro/syscall_table.h"

namespace nitro {

namespace {

// The guest waits for nitro at most this long per argument read (a 1 MiB string would be
// absurd for a hook to ask for; AddressSpace caps reads anyway).
constexpr std::size_t kMaxHookRead = 1 << 20;

bool capture_complete(const Capture* c) {
    return c && (c->status == CaptureStatus::Ok || c->status == CaptureStatus::Truncated);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ArgumentMap

ArgumentMap::ArgumentMap(const Event& ev, const SyscallInfo* info, AddressSpace& space,
                         std::string writes_refused)
    : ev_(&ev),
      info_(info),
      space_(&space),
      writes_refused_(std::move(writes_refused)),
      count_(info ? info->nargs : kMaxSyscallArgs) {}

std::uint64_t ArgumentMap::value(std::size_t i) const {
    if (i >= count_) {
        fail("argument {} out of range: {} has {} argument{}", i,
             info_ ? std::string(info_->name) : fmt::format("syscall {}", ev_->nr), count_,
             count_ == 1 ? "" : "s");
    }
    // A 32-bit program's arguments are the low halves of the registers.
    return ev_->compat ? (ev_->args[i] & 0xffffffffULL) : ev_->args[i];
}

GuestVirt ArgumentMap::pointer(std::size_t i) const { return GuestVirt(value(i)); }

void ArgumentMap::prepare_space() {
    if (space_ready_) return;
    // Fresh translations: the guest has run since the backend last used this address space.
    space_->set_config(
        PagingConfig::from_registers(ev_->sregs.cr3, ev_->sregs.cr4, ev_->sregs.efer));
    space_ready_ = true;
}

std::optional<std::string> ArgumentMap::read_string(std::size_t i, std::size_t max_len) {
    const GuestVirt va = pointer(i);
    if (va.value() == 0) return std::nullopt;
    max_len = std::min(max_len, kMaxHookRead);
    // In asynchronous mode the capture is what the call saw; memory may have changed since.
    // When writes are allowed the guest is waiting and memory is current (and may hold what
    // another hook wrote).
    const Capture* c = writes_refused_.empty() ? nullptr : ev_->capture(static_cast<unsigned>(i));
    if (capture_complete(c) && c->kind == CaptureKind::CString) {
        return std::string(c->data.substr(0, std::min(c->data.size(), max_len)));
    }
    prepare_space();
    CString s = space_->read_cstring(va, max_len);
    if (s.end == StringEnd::Faulted && s.text.empty()) {
        if (c && c->kind == CaptureKind::CString && !c->data.empty()) {
            return std::string(c->data.substr(0, std::min(c->data.size(), max_len)));
        }
        return std::nullopt;
    }
    return std::move(s.text);
}

Result<std::vector<std::byte>, MemFault> ArgumentMap::read_bytes(std::size_t i, std::size_t len) {
    const GuestVirt va = pointer(i);
    const Capture* c = writes_refused_.empty() ? nullptr : ev_->capture(static_cast<unsigned>(i));
    if (capture_complete(c) && c->kind != CaptureKind::StrArray && len <= c->data.size()) {
        const auto* p = reinterpret_cast<const std::byte*>(c->data.data());
        return std::vector<std::byte>(p, p + len);
    }
    return read_memory(va, len);
}

Result<std::vector<std::byte>, MemFault> ArgumentMap::read_memory(GuestVirt va, std::size_t len) {
    prepare_space();
    if (len > kMaxHookRead) {
        MemFault f;
        f.status = MemStatus::TooLong;
        f.virt = va;
        return Result<std::vector<std::byte>, MemFault>::error(f);
    }
    return space_->read_bytes(va, len);
}

void ArgumentMap::check_writes() const {
    if (!writes_refused_.empty()) fail("{}", writes_refused_);
}

void ArgumentMap::write_string(std::size_t i, std::string_view s) {
    check_writes();
    const GuestVirt va = pointer(i);
    if (va.value() == 0) fail("cannot write argument {}: it is NULL", i);
    if (s.find('\0') != std::string_view::npos) fail("cannot write a string with a NUL inside");
    if (s.size() >= kMaxHookRead) fail("string of {} bytes is too long to write", s.size());
    prepare_space();
    // The new string may not be longer than the old one: the bytes after the old string's NUL
    // belong to something else.
    CString old = space_->read_cstring(va, s.size());
    if (old.end == StringEnd::Faulted) {
        fail("cannot write argument {}: the string at {} is unreadable ({})", i, va,
             to_string(old.fault));
    }
    if (old.end == StringEnd::Terminated && old.text.size() < s.size()) {
        fail(
            "cannot write a {}-byte string over the {}-byte string of argument {}: it would "
            "overwrite what follows it",
            s.size(), old.text.size(), i);
    }
    std::string bytes(s);
    bytes.push_back('\0');
    write_memory(va, std::as_bytes(std::span(bytes.data(), bytes.size())));
}

void ArgumentMap::write_bytes(std::size_t i, std::span<const std::byte> data,
                              std::uint64_t offset) {
    check_writes();
    const GuestVirt va = pointer(i);
    if (va.value() == 0) fail("cannot write argument {}: it is NULL", i);
    write_memory(va + offset, data);
}

void ArgumentMap::write_memory(GuestVirt va, std::span<const std::byte> data) {
    check_writes();
    prepare_space();
    Transfer t = space_->write(va, data);
    if (!t.ok()) {
        fail("guest memory write at {} stopped after {} of {} bytes: {}", va, t.done, data.size(),
             to_string(t.fault));
    }
}

void ArgumentMap::set(std::size_t i, std::uint64_t) {
    value(i);  // an index error first, if it is one
    fail(
        "cannot set argument {}: QEMU's TCG plugin API (version 4, QEMU 10.0) has no register "
        "write; change the memory an argument points to instead (write_string, write_bytes)",
        i);
}

void ArgumentMap::set_return(std::int64_t) {
    fail(
        "cannot set the return value: QEMU's TCG plugin API (version 4, QEMU 10.0) has no "
        "register write");
}

// ---------------------------------------------------------------------------------------------
// HookTable

void HookTable::define(std::string_view name, HookCallback callback, Direction direction) {
    if (!callback) fail("hook for {} has no callback", name);
    std::vector<std::pair<Abi, std::uint64_t>> nrs;
    for (Abi abi : {Abi::X86_64, Abi::I386}) {
        if (auto nr = syscall_number(abi, name)) nrs.emplace_back(abi, *nr);
    }
    if (nrs.empty()) fail("cannot hook '{}': no system call of that name in nitro's tables", name);
    auto cb = std::make_shared<const HookCallback>(std::move(callback));
    // A name always selects the same numbers: they all point at the new callback now.
    by_name_[{std::string(name), direction}] = cb;
    for (auto [abi, nr] : nrs) by_nr_[key(abi, nr, direction)] = cb;
    ++generation_;
}

bool HookTable::undefine(std::string_view name, Direction direction) {
    auto it = by_name_.find({std::string(name), direction});
    if (it == by_name_.end()) return false;
    for (auto n = by_nr_.begin(); n != by_nr_.end();) {
        n = n->second == it->second ? by_nr_.erase(n) : std::next(n);
    }
    by_name_.erase(it);
    ++generation_;
    return true;
}

void HookTable::clear() {
    by_nr_.clear();
    by_name_.clear();
    ++generation_;
}

std::shared_ptr<const HookCallback> HookTable::find(Abi abi, std::uint64_t nr,
                                                    Direction direction) const {
    if (by_nr_.empty() || nr > 0xffffffffULL) return nullptr;
    auto it = by_nr_.find(key(abi, nr, direction));
    return it == by_nr_.end() ? nullptr : it->second;
}

std::vector<std::pair<Abi, std::uint64_t>> HookTable::numbers() const {
    std::vector<std::pair<Abi, std::uint64_t>> out;
    for (const auto& [k, cb] : by_nr_) {
        out.emplace_back(static_cast<Abi>(k >> 40), k & 0xffffffffULL);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace nitro
