// SPDX-License-Identifier: MIT
#include "os/linux/backend.h"

#include "os/linux/pairing.h"
#include "os/linux/signal_frame.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>
#include <span>

#include "decode/decode.h"
#include "nitro/syscall_table.h"
#include "os/linux/kernel_profile.h"

namespace nitro::linux_os {

namespace {

// The event's process memory for the decoders: what the listener did not capture is read here
// (exact in synchronous mode, where the vCPU waits; late in asynchronous mode).
class EventMemory final : public decode::MemoryReader {
  public:
    EventMemory(AddressSpace& as, const Event& ev) : as_(as), ev_(ev) {}
    std::size_t read(std::uint64_t addr, char* out, std::size_t len) const override {
        if (!configured_) {
            as_.set_config(
                PagingConfig::from_registers(ev_.sregs.cr3, ev_.sregs.cr4, ev_.sregs.efer));
            configured_ = true;
        }
        return as_.read(GuestVirt(addr), std::as_writable_bytes(std::span<char>(out, len))).done;
    }

  private:
    AddressSpace& as_;
    const Event& ev_;
    mutable bool configured_ = false;
};

// execve's arguments as the new program's initial stack shows them (see
// decode::read_exec_stack), for what the entry could not read.
void complete_exec(AddressSpace& as, const Event& ev, const SyscallInfo& info,
                   std::vector<SyscallArg>& args) {
    EventMemory now(as, ev);  // the exit's cr3: the new program
    std::uint64_t rsp = ev.regs.rsp;
    if (rsp >> 47) {
        // Returning through iretq: rsp is the kernel's iret frame (rip, cs, rflags, rsp, ss).
        char raw[8];
        if (now.read(rsp + 24, raw, 8) < 8) return;
        std::memcpy(&rsp, raw, 8);
    }
    auto stack = decode::read_exec_stack(now, rsp, ev.compat);
    if (!stack) return;
    std::vector<std::string*> texts;
    for (auto& a : args) texts.push_back(&a.text);
    decode::complete_exec_args(info, ev.args, *stack, texts);
}

// Decodes the event's arguments into out, reusing its elements' storage.
void decode_args(std::vector<SyscallArg>& out, const SyscallInfo* info, const Event& ev,
                 std::optional<std::int64_t> ret, const decode::MemoryReader* memory) {
    decode::ArgContext ctx;
    ctx.compat = ev.compat;
    ctx.args = ev.args;
    ctx.ret = ret;
    ctx.memory = memory;
    ctx.stack_pointer = ev.regs.rsp;
    if (!info) {
        // Unknown number: all six registers, raw.
        out.resize(kMaxSyscallArgs);
        for (std::size_t i = 0; i < kMaxSyscallArgs; ++i) {
            out[i].name = fmt::format("arg{}", i);
            out[i].value = ev.args[i];
            out[i].text = fmt::format("{:#x}", ev.args[i]);
        }
        return;
    }
    const std::size_t n = decode::printed_args(*info, ev.args);
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        ctx.capture = ev.capture(static_cast<unsigned>(i));
        ctx.iovec_data = ev.iovec_data(static_cast<unsigned>(i));
        ctx.event_captures = &ev.captures;
        SyscallArg& a = out[i];
        a.name.assign(info->args[i].name);
        // Not a register: the frame's address.
        a.value = info->args[i].type == ArgType::SigFrame ? ev.regs.rsp : ev.args[i];
        a.text.clear();
        decode::append_arg(a.text, *info, i, ctx);
    }
}

bool is_bare_address(const std::string& text) {
    if (text.size() < 3 || text[0] != '0' || text[1] != 'x') return false;
    for (std::size_t i = 2; i < text.size(); ++i) {
        if (!std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
    }
    return true;
}

// Arguments that show guest memory (strings, buffers, addresses) but came out as a bare
// address: the memory could not be read, at the event or later.
std::uint64_t count_decode_errors(const SyscallInfo& info, const Syscall& sc, bool compat) {
    std::uint64_t errors = 0;
    const bool failed = sc.ret && *sc.ret < 0 && *sc.ret >= -4095;
    for (std::size_t i = 0; i < info.nargs && i < sc.args.size(); ++i) {
        const SyscallArg& a = sc.args[i];
        const std::uint64_t v = compat ? a.value & 0xffffffffULL : a.value;
        if (v == 0 || !is_bare_address(a.text)) continue;
        switch (info.args[i].type) {
            case ArgType::Cstring:
            case ArgType::BufIn:
            case ArgType::Argv:
            case ArgType::Sockaddr:
                ++errors;
                break;
            case ArgType::BufOut:
            case ArgType::SockaddrOut:
                // A call that failed filled nothing in: strace shows the address too.
                if (!failed) ++errors;
                break;
            default:
                break;
        }
    }
    return errors;
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
    // Guest RAM's file, where the listener may read the captures itself (page walks of its own
    // in the file instead of QEMU's).
    if (const auto* ram = dynamic_cast<const MappedPhysicalMemory*>(memory_.get())) {
        listener.set_guest_ram(ram->path(), ram->layout().below_4g);
    }
    // The current task as it is at each event (per-CPU current_task behind the kernel's GS
    // base), so that asynchronous events are attributed to the task that made them.
    // Its identity too (pid, name, parent) as it is at the event: an exec renames a task, and
    // an exited task's memory is reused, before nitro handles a late event.
    if (profile_.current_task_percpu && listener.set_context_word(profile_.current_task_percpu)) {
        listener_ = &listener;
        if (listener.set_context_fields(processes_.context_fields())) {
            for (Abi abi : {Abi::X86_64, Abi::I386}) listener.set_context_refresh(abi, renaming_calls(abi));
        }
    }
    set_linux_pairing_hints(listener);
}

void LinuxBackend::locate_context(const Event& ev) {
    if (!linear_map_given_ && linear_map_tries_ < kLinearMapTries) locate_linear_map(ev);
    const std::uint64_t kgs = ev.sregs.kernel_gs_base;
    if (ev.vcpu >= kMaxVcpus || !(ev.fresh & reg_bit(Reg::kernel_gs_base))) return;
    if (ev.vcpu >= context_kgs_.size()) context_kgs_.resize(ev.vcpu + 1, 0);
    if (context_kgs_[ev.vcpu] == kgs) return;
    context_kgs_[ev.vcpu] = kgs;  // once per base, found or not
    const auto* ram = dynamic_cast<const MappedPhysicalMemory*>(memory_.get());
    if (!ram) return;
    auto phys = processes_.kernel_phys(ev, kgs + profile_.current_task_percpu);
    if (!phys) return;
    auto off = ram->layout().offset_of(*phys, 8);
    if (off) listener_->set_context_in_ram(ev.vcpu, kgs, ram->path(), *off);
}

// Where the kernel's direct map starts, from the current task (a slab object, in the direct
// map): the task's address less its physical address, which must be 1 GiB aligned (the
// kernel places and randomises the direct map in 1 GiB steps) and hold for its last field too.
void LinuxBackend::locate_linear_map(const Event& ev) {
    const auto* ram = dynamic_cast<const MappedPhysicalMemory*>(memory_.get());
    if (!ram) {
        linear_map_tries_ = kLinearMapTries;
        return;
    }
    if (!is_kernel_address(ev.context)) return;
    ++linear_map_tries_;  // without the map, each event's copy goes through QEMU's page walk
    const std::uint64_t last = profile_.task_struct.real_parent.offset;
    auto phys = processes_.kernel_phys(ev, ev.context);
    auto phys_last = processes_.kernel_phys(ev, ev.context + last);
    if (!phys || !phys_last || phys->value() > ev.context) return;
    const std::uint64_t base = ev.context - phys->value();
    if (base % (1ULL << 30) != 0 || phys_last->value() != phys->value() + last) return;
    listener_->set_context_linear_map(base, ram->layout().below_4g);
    linear_map_given_ = true;
}

Syscall LinuxBackend::process_event(const Event& ev) {
    Syscall sc;
    process_event_into(ev, sc);
    return sc;
}

void LinuxBackend::process_event_into(const Event& ev, Syscall& sc) {
    if (listener_) locate_context(ev);
    const SyscallInfo* info = lookup_syscall(ev.compat ? Abi::I386 : Abi::X86_64, ev.nr);
    decode_event(ev, info, sc);
    ++stats_.events;
    if (!sc.known) ++stats_.unknown_syscalls;
    if (!sc.process.valid) ++stats_.process_errors;
    // Arguments are final at the exit, or at the entry of a call that never returns.
    if (info && (ev.direction == Direction::Exit || !sc.returns)) {
        stats_.decode_errors += count_decode_errors(*info, sc, ev.compat);
    }
    if (auto hook = hooks_.find(sc.abi, sc.nr, sc.direction)) {
        ArgumentMap args(ev, info, user_, writes_refused_);
        ++stats_.hooks_run;
        (*hook)(sc, args);
    }
}

void LinuxBackend::remember_entry(const PendingKey& key, const std::vector<SyscallArg>& args) {
    if (pending_.size() >= kMaxPendingEntries) {
        // Forget the oldest entry still waiting (a call that never returns, an exit lost to a
        // dropping listener).
        while (!pending_order_.empty()) {
            const PendingKey oldest = pending_order_.front();
            pending_order_.pop_front();
            if (pending_.erase(oldest)) break;
        }
    }
    if (!spare_.empty()) {
        // A node (and argument strings) of an entry whose exit came: no allocation.
        auto node = std::move(spare_.back());
        spare_.pop_back();
        node.key() = key;
        node.mapped() = args;
        if (!pending_.insert(std::move(node)).inserted) pending_[key] = args;
    } else {
        pending_[key] = args;
    }
    pending_order_.push_back(key);
    if (pending_order_.size() > 2 * kMaxPendingEntries) {
        // Drop the keys of entries whose exits came: at most kMaxPendingEntries remain, so
        // this runs at most once every kMaxPendingEntries entries.
        std::erase_if(pending_order_, [&](const PendingKey& k) { return !pending_.contains(k); });
    }
}

bool LinuxBackend::take_entry(const PendingKey& key, std::vector<SyscallArg>& args) {
    auto it = pending_.find(key);
    if (it == pending_.end()) return false;
    auto node = pending_.extract(it);
    if (args.capacity() == 0) {
        args.swap(node.mapped());  // a new Syscall: take the strings
    } else {
        args = node.mapped();  // a reused one: copy into its storage, keep the node's
    }
    if (spare_.size() < kSpareNodes) spare_.push_back(std::move(node));
    return true;
}

void LinuxBackend::decode_event(const Event& ev, const SyscallInfo* info, Syscall& sc) {
    sc.abi = ev.compat ? Abi::I386 : Abi::X86_64;
    sc.nr = ev.nr;
    sc.direction = ev.direction;
    sc.known = info != nullptr;
    if (info) {
        sc.name.assign(info->name);
        sc.full_name.assign(info->handler);
        sc.returns = info->ret != RetKind::Void;
    } else {
        sc.name = fmt::format("syscall_{}", ev.nr);
        sc.full_name = sc.name;
        sc.returns = true;
    }
    processes_.current(ev, sc.process);
    sc.ret.reset();
    sc.errno_name.clear();
    sc.ret_text.clear();
    sc.ret_detail.clear();

    // The exit of a call that replaced the address space (execve) cannot read its arguments.
    EventMemory memory(user_, ev);
    const decode::MemoryReader* mem = ev.fallback ? nullptr : &memory;
    if (ev.direction == Direction::Enter) {
        decode_args(sc.args, info, ev, std::nullopt, mem);
        if (sc.returns) remember_entry({ev.vcpu, ev.seq}, sc.args);
        return;
    }

    const std::int64_t ret = return_value(ev);
    sc.ret = ret;
    auto text = decode::format_return(info, ret, ev.compat, &ev.args);
    sc.ret_text = std::move(text.text);
    sc.errno_name = std::move(text.errno_name);
    decode::ArgContext ctx;
    ctx.compat = ev.compat;
    ctx.args = ev.args;
    ctx.ret = ret;
    ctx.memory = mem;
    ctx.event_captures = &ev.captures;
    if (info) {
        // What strace adds after the value ("Timeout", poll's revents), from the exit.
        sc.ret_detail = decode::return_detail(*info, ctx);
        if (!sc.ret_detail.empty()) sc.ret_text += " (" + sc.ret_detail + ")";
    }
    if (ev.unpaired || !take_entry({ev.entry_vcpu, ev.entry_seq}, sc.args)) {
        decode_args(sc.args, info, ev, ret, mem);
        if (info) reread_strings(ev, *info, sc.args);
        return;
    }
    if (info) {
        // Buffers the call filled in are decoded from what the exit captured.
        for (std::size_t i = 0; i < info->nargs && i < sc.args.size(); ++i) {
            ctx.capture = ev.capture(static_cast<unsigned>(i));
            ctx.iovec_data = ev.iovec_data(static_cast<unsigned>(i));
            // A path the entry could not read, captured again at the exit.
            const bool path_again = info->args[i].type == ArgType::Cstring && ctx.capture &&
                                    sc.args[i].value != 0 && !sc.args[i].text.empty() &&
                                    sc.args[i].text[0] != '"';
            if (!decode::decoded_at_exit(*info, i, ev.args) && !path_again) continue;
            const std::string entry_text = sc.args[i].text;
            ctx.entry_text = entry_text;
            sc.args[i].text = decode::format_arg(*info, i, ctx);
        }
        // What neither capture had is read from memory now (exact in sync mode).
        reread_strings(ev, *info, sc.args);
        if (ret == 0 && (info->name == "execve" || info->name == "execveat")) {
            complete_exec(user_, ev, *info, sc.args);
        }
    }
}

}  // namespace nitro::linux_os
