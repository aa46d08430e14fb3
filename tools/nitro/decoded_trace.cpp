// SPDX-License-Identifier: MIT
// nitro trace with the Linux backend: decoded system calls with their processes.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "decode/strace_text.h"
#include "nitro/error.h"
#include "nitro/log.h"
#include "nitro/memory.h"
#include "os/linux/backend.h"
#include "os/linux/profile_source.h"
#include "output/syscall_json.h"
#include "output/sink.h"
#include "process_filter.h"
#include "target.h"
#include "trace_output.h"

namespace nitro::cli {

namespace {

// Writes each '\n'-terminated line of text as one record.
void write_lines(output::Sink& sink, std::string& text) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        sink.write(std::string_view(text).substr(start, nl - start));
    }
    text.clear();
}

class DecodedOutput final : public TraceOutput {
  public:
    /// Without a profile (no image, no profile file), it is built from guest memory at the
    /// first event.
    DecodedOutput(const TraceOptions& o, std::optional<linux_os::KernelProfile> profile,
                  linux_os::ProfileOptions sources, const vm::GuestRam& ram)
        : opts_(o),
          text_(o.format == "text"),
          sink_(o.out, o.format == "json" ? output::Sink::Framing::JsonArray
                                          : output::Sink::Framing::Lines),
          memory_(std::make_shared<MappedPhysicalMemory>(MappedPhysicalMemory::Options{
              .path = ram.path, .ram_size = ram.size, .below_4g_mem_size = ram.below_4g})),
          sources_(std::move(sources)),
          ram_(ram) {
        if (profile) backend_ = std::make_unique<linux_os::LinuxBackend>(std::move(*profile), memory_);
    }

    void attach(Listener& listener) override {
        listener_ = &listener;
        if (backend_) {
            backend_->attach(listener);
        } else {
            // The capture rules do not depend on the profile: send them before the guest runs.
            linux_os::LinuxBackend(linux_os::KernelProfile{}, memory_).attach(listener);
        }
    }

    void handle(const Event& e) override {
        if (!backend_) profile_from_memory(e);
        backend_->process_event_into(e, sc_);  // reuses sc_'s storage from event to event
        const Syscall& sc = sc_;
        if (!wanted(e, sc)) return;
        if (text_) {
            strace_text_.feed(e, sc, out_);
            write_lines(sink_, out_);
        } else {
            out_.clear();
            output::append_syscall_record(out_, e, sc,
                                          opts_.registers ? output::RegisterOutput::Fresh
                                                          : output::RegisterOutput::None);
            sink_.write(out_);
        }
    }

    void finish() override {
        if (text_) {
            strace_text_.flush(out_);
            write_lines(sink_, out_);
        }
        sink_.close();
    }
    uint64_t records() const override { return sink_.records(); }

    void print_stats(std::FILE* f) const override {
        if (!backend_) return;
        const BackendStats& s = backend_->stats();
        std::fprintf(f,
                     "nitro: backend: %llu events decoded, %llu decoding errors, %llu process "
                     "errors, %llu unknown syscalls, %llu hooks run\n",
                     static_cast<unsigned long long>(s.events),
                     static_cast<unsigned long long>(s.decode_errors),
                     static_cast<unsigned long long>(s.process_errors),
                     static_cast<unsigned long long>(s.unknown_syscalls),
                     static_cast<unsigned long long>(s.hooks_run));
        if (opts_.pid) {
            std::fprintf(f, "nitro: --pid %lld %s\n", static_cast<long long>(opts_.pid),
                         cr3_pushed_ ? "pushed down to the listener as an address-space filter"
                                     : "filtered in nitro");
        }
        if (opts_.follow) {
            std::fprintf(f, "nitro: --follow: %zu processes followed\n",
                         filter_.processes_followed());
        }
    }

  private:
    void profile_from_memory(const Event& e) {
        linux_os::GuestMemory mem = linux_os::open_guest_memory(ram_.path, ram_.size);
        linux_os::ResolvedProfile p = linux_os::resolve_profile(sources_, &mem, &e);
        log::info("kernel profile from {} in {:.0f} ms", p.source, p.ms);
        backend_ = std::make_unique<linux_os::LinuxBackend>(std::move(p.profile), memory_);
        if (listener_) backend_->attach(*listener_);  // the context word needs the profile
    }

    // --pid, --process and --follow (process_filter.h). A --pid process's address space, once
    // seen, is pushed down to the listener (only its events leave the guest); an execve drops
    // it until the new image's first event, which has the new address space. Not with
    // --follow: the descendants have address spaces of their own.
    bool wanted(const Event& e, const Syscall& sc) {
        if (!filter_.wanted(sc)) return false;
        if (opts_.pid == 0 || opts_.follow) return true;
        if (listener_) {
            bool exec =
                e.direction == Direction::Enter && (sc.name == "execve" || sc.name == "execveat");
            if (exec && cr3_pushed_) {
                listener_->set_cr3_filter({});
                cr3_pushed_ = false;
            } else if (!exec && !cr3_pushed_) {
                listener_->set_cr3_filter({e.sregs.cr3});
                cr3_pushed_ = true;
            }
        }
        return true;
    }

    TraceOptions opts_;
    bool text_;
    output::Sink sink_;
    std::shared_ptr<MappedPhysicalMemory> memory_;
    linux_os::ProfileOptions sources_;
    vm::GuestRam ram_;
    std::unique_ptr<linux_os::LinuxBackend> backend_;
    decode::StraceText strace_text_;
    std::string out_;
    Syscall sc_;
    Listener* listener_ = nullptr;
    bool cr3_pushed_ = false;
    ProcessFilter filter_{opts_.pid, opts_.process, opts_.follow};
};

}  // namespace

struct DecodedOutputFactory::Impl {
    TraceOptions opts;
    linux_os::ProfileOptions sources;
    std::optional<linux_os::KernelProfile> profile;
};

DecodedOutputFactory::DecodedOutputFactory(const TraceOptions& o, const std::string& kernel_image,
                                           Progress& progress)
    : impl_(std::make_unique<Impl>()) {
    impl_->opts = o;
    impl_->sources.profile_file = o.profile_file;
    impl_->sources.kernel_image = kernel_image;
    if (o.no_profile_cache) {
        impl_->sources.cache_dir.clear();
    } else if (!o.profile_cache.empty()) {
        impl_->sources.cache_dir = o.profile_cache;
    }
    if (kernel_image.empty() && o.profile_file.empty()) return;  // from guest memory, later
    if (!kernel_image.empty() && !std::filesystem::is_regular_file(kernel_image)) {
        fail("kernel image {} does not exist", kernel_image);
    }
    progress.step("building the kernel profile from " +
                  (o.profile_file.empty() ? kernel_image : o.profile_file));
    try {
        auto r = linux_os::resolve_profile(impl_->sources);
        log::info("kernel profile from {} in {:.0f} ms", r.source, r.ms);
        impl_->profile = std::move(r.profile);
    } catch (const Error& e) {
        fail("no kernel profile from {}: {} (nitro needs a kernel with BTF, a profile file "
             "(--profile), or guest memory alone: drop --kernel-image; or use --nobackend for raw "
             "events)",
             o.profile_file.empty() ? kernel_image : o.profile_file, e.what());
    }
}

DecodedOutputFactory::~DecodedOutputFactory() = default;

std::unique_ptr<TraceOutput> DecodedOutputFactory::make(const Target& target) {
    return std::make_unique<DecodedOutput>(impl_->opts, std::move(impl_->profile), impl_->sources,
                                           target.ram());
}

}  // namespace nitro::cli
