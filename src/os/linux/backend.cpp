// SPDX-License-Identifier: MIT
#include "os/linux/backend.h"

#include <fmt/format.h>

#include "decode/decode.h"
#include "nitro/syscall_table.h"
#include "os/linux/kernel_profile.h"

namespace nitro::linux_os {

namespace {

std::vector<SyscallArg> decode_args(const SyscallInfo* info, const Event& ev,
                                    std::optional<std::int64_t> ret) {
    std::vector<SyscallArg> out;
    decode::ArgContext ctx;
    ctx.compat = ev.compat;
    ctx.args = ev.args;
    ctx.ret = ret;
    if (!info) {
        // Unknown number: all six registers, raw.
        for (std::size_t i = 0; i < kMaxSyscallArgs; ++i) {
            out.push_back({fmt::format("arg{}", i), ev.args[i], fmt::format("{:#x}", ev.args[i])});
        }
        return out;
    }
    const std::size_t n = decode::printed_args(*info, ev.args);
    for (std::size_t i = 0; i < n; ++i) {
        ctx.capture = ev.capture(static_cast<unsigned>(i));
        out.push_back(
            {std::string(info->args[i].name), ev.args[i], decode::format_arg(*info, i, ctx)});
    }
    return out;
}

}  // namespace

LinuxBackend::LinuxBackend(KernelProfile profile, std::shared_ptr<PhysicalMemory> memory)
    : profile_(std::move(profile)),
      memory_(std::move(memory)),
      processes_(*memory_, profile_),
      user_(*memory_, PagingConfig{}) {}

std::unique_ptr<LinuxBackend> LinuxBackend::open(const std::string& kernel_image,
                                                 const std::string& ram_file,
                                                 std::uint64_t ram_size) {
    // Only the profile is kept: the decompressed vmlinux is tens of MiB.
    KernelProfile profile = load_kernel_file(kernel_image).profile;
    auto memory = std::make_shared<MappedPhysicalMemory>(
        MappedPhysicalMemory::Options{.path = ram_file, .ram_size = ram_size});
    return std::make_unique<LinuxBackend>(std::move(profile), std::move(memory));
}

void LinuxBackend::reread_strings(const Event& ev, const SyscallInfo& info,
                                  std::vector<SyscallArg>& args) {
    // A path in a page the program had not touched yet cannot be copied at entry (the plugin
    // reads without faulting pages in); by the exit the kernel has faulted it in. The exit of
    // a call that replaced the address space (execve) cannot be read this way.
    if (ev.fallback) return;
    bool configured = false;
    for (std::size_t i = 0; i < info.nargs && i < args.size(); ++i) {
        if (info.args[i].type != ArgType::Cstring) continue;
        // Only what the entry printed as an address (no capture) is read again.
        if (args[i].value == 0 || args[i].text.empty() || args[i].text[0] == '"') continue;
        if (!configured) {
            user_.set_config(
                PagingConfig::from_registers(ev.sregs.cr3, ev.sregs.cr4, ev.sregs.efer));
            configured = true;
        }
        const std::uint64_t va = ev.compat ? args[i].value & 0xffffffffULL : args[i].value;
        CString s = user_.read_cstring(GuestVirt(va), decode::kCaptureMax);
        if (s.end == StringEnd::Faulted && s.text.empty()) continue;
        args[i].text = decode::quote(s.text, s.text.size(), s.end != StringEnd::Terminated);
    }
}

void LinuxBackend::attach(Listener& listener) {
    for (Abi abi : {Abi::X86_64, Abi::I386}) {
        // Numbers are small and dense in both tables; 1024 covers them with room to spare.
        for (std::uint64_t nr = 0; nr < 1024; ++nr) {
            const SyscallInfo* info = lookup_syscall(abi, nr);
            if (!info) continue;
            auto plan = decode::capture_plan(*info);
            if (!plan.enter.empty()) listener.set_captures(abi, nr, Direction::Enter, plan.enter);
            if (!plan.exit.empty()) listener.set_captures(abi, nr, Direction::Exit, plan.exit);
        }
    }
}

Syscall LinuxBackend::process_event(const Event& ev) {
    Syscall sc;
    sc.abi = ev.compat ? Abi::I386 : Abi::X86_64;
    sc.nr = ev.nr;
    sc.direction = ev.direction;
    const SyscallInfo* info = lookup_syscall(sc.abi, ev.nr);
    sc.known = info != nullptr;
    if (info) {
        sc.name = std::string(info->name);
        sc.full_name = std::string(info->handler);
        sc.returns = info->ret != RetKind::Void;
    } else {
        sc.name = fmt::format("syscall_{}", ev.nr);
        sc.full_name = sc.name;
    }
    sc.process = processes_.current(ev);

    if (ev.direction == Direction::Enter) {
        sc.args = decode_args(info, ev, std::nullopt);
        if (sc.returns) {
            if (pending_.size() >= kMaxPendingEntries) pending_.erase(pending_.begin());
            pending_[{ev.vcpu, ev.seq}] = sc.args;
        }
        return sc;
    }

    const std::int64_t ret = ev.ret();
    sc.ret = ret;
    auto text = decode::format_return(info, ret, ev.compat);
    sc.ret_text = std::move(text.text);
    sc.errno_name = std::move(text.errno_name);
    auto it = ev.unpaired ? pending_.end() : pending_.find({ev.entry_vcpu, ev.entry_seq});
    if (it == pending_.end()) {
        sc.args = decode_args(info, ev, ret);
        if (info) reread_strings(ev, *info, sc.args);
        return sc;
    }
    sc.args = std::move(it->second);
    pending_.erase(it);
    if (info) reread_strings(ev, *info, sc.args);
    if (info) {
        // Buffers the call filled in are decoded from what the exit captured.
        decode::ArgContext ctx;
        ctx.compat = ev.compat;
        ctx.args = ev.args;
        ctx.ret = ret;
        for (std::size_t i = 0; i < info->nargs && i < sc.args.size(); ++i) {
            if (!decode::decoded_at_exit(info->args[i])) continue;
            ctx.capture = ev.capture(static_cast<unsigned>(i));
            sc.args[i].text = decode::format_arg(*info, i, ctx);
        }
    }
    return sc;
}

}  // namespace nitro::linux_os
