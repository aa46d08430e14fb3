// SPDX-License-Identifier: MIT
#include "listener/tcg/tcg_listener.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "nitro/error.h"
#include "nitro/log.h"

namespace nitro::tcg {

namespace {
using Clock = std::chrono::steady_clock;

template <typename T>
T load(const T* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void store(T* p, T v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

uint64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

void futex_wake(uint32_t* addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void futex_wait(uint32_t* addr, uint32_t expected, std::chrono::milliseconds timeout) {
    timespec ts{static_cast<time_t>(timeout.count() / 1000),
                static_cast<long>((timeout.count() % 1000) * 1000000)};
    syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, nullptr, 0);
}
}  // namespace

TcgListener::TcgListener(const std::string& ctl_path, TcgOptions options)
    : path_(ctl_path), options_(options) {
    auto deadline = Clock::now() + options_.attach_timeout;
    int fd = -1;
    for (;;) {
        fd = open(path_.c_str(), O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            struct stat st {};
            if (fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) >= sizeof(nitro_ctl)) {
                size_ = static_cast<size_t>(st.st_size);
                void* m = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                               fd, 0);
                if (m == MAP_FAILED) {
                    close(fd);
                    fail_errno("cannot map nitro plugin control file " + path_);
                }
                ctl_ = static_cast<nitro_ctl*>(m);
                if (load(&ctl_->magic) == NITRO_ABI_MAGIC) break;
                munmap(m, size_);
                ctl_ = nullptr;
            }
            close(fd);
            fd = -1;
        } else if (errno == EACCES) {
            fail("cannot open {}: permission denied (run nitro as the user that runs QEMU, or root)",
                 path_);
        }
        if (Clock::now() >= deadline) {
            fail("nitro's plugin is not running in this QEMU (no control file {}); start QEMU "
                 "with -plugin libnitro-tcg.so,ctl={}",
                 path_, path_);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    close(fd);
    if (ctl_->version != NITRO_ABI_VERSION || ctl_->header_size != sizeof(nitro_ctl)) {
        uint32_t version = ctl_->version;  // read before the unmap
        munmap(ctl_, size_);
        fail("nitro plugin ABI {} does not match this nitro (ABI {}); use the plugin built with it",
             version, NITRO_ABI_VERSION);
    }
    n_vcpus_ = ctl_->n_vcpus;
    uint64_t stride = ctl_->ring_stride;
    uint32_t bytes = ctl_->ring_bytes;
    if (n_vcpus_ == 0 || n_vcpus_ > NITRO_MAX_VCPUS || bytes < 64 || (bytes & (bytes - 1)) ||
        stride < sizeof(nitro_ring) + bytes || ctl_->ring_offset < sizeof(nitro_ctl) ||
        ctl_->ring_offset + stride * n_vcpus_ > size_) {
        munmap(ctl_, size_);
        fail("nitro plugin control file {} is inconsistent", path_);
    }
    if (load(&ctl_->attached) && load(&ctl_->consumer_pid) != 0 &&
        kill(static_cast<pid_t>(ctl_->consumer_pid), 0) == 0 &&
        ctl_->consumer_pid != static_cast<uint32_t>(getpid())) {
        munmap(ctl_, size_);
        fail("another nitro (pid {}) is already attached to this QEMU", ctl_->consumer_pid);
    }
    time_ = TimeBase::from_ctl(*ctl_);
    time_.calibrate_now();
    last_calibration_ = Clock::now();
    for (unsigned i = 0; i < n_vcpus_; i++) {
        auto* base = reinterpret_cast<uint8_t*>(ctl_) + ctl_->ring_offset + stride * i;
        auto* ring = reinterpret_cast<nitro_ring*>(base);
        // Events left from an earlier consumer are not ours.
        store(&ring->tail, load(&ring->head));
        readers_.emplace_back(ring, base + sizeof(nitro_ring), bytes, &time_);
    }
    store(&ctl_->mode, static_cast<uint32_t>(options_.mode == Mode::Sync        ? NITRO_MODE_SYNC
                                             : options_.mode == Mode::AsyncDrop ? NITRO_MODE_ASYNC_DROP
                                                                                : NITRO_MODE_ASYNC));
    store(&ctl_->traps, options_.traps ? 1u : 0u);
    store(&ctl_->all_registers, options_.all_registers ? 1u : 0u);
    store(&ctl_->consumer_pid, static_cast<uint32_t>(getpid()));
    store(&ctl_->consumer_heartbeat_ns, monotonic_ns());
    store(&ctl_->attached, 1u);
    const uint32_t gen = bump_config();
    heartbeat_ = std::thread([this] {
        while (!stop_heartbeat_.load()) {
            store(&ctl_->consumer_heartbeat_ns, monotonic_ns());
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    wait_config_seen(gen);
    log::info("attached to nitro plugin {} ({} vCPUs, QEMU plugin API {})", path_, n_vcpus_,
              ctl_->qemu_api_version);
}

TcgListener::~TcgListener() {
    detach();
    if (ctl_) munmap(ctl_, size_);
}

void TcgListener::detach() {
    if (!ctl_) return;
    if (heartbeat_.joinable()) {
        store(&ctl_->attached, 0u);
        // Release every vCPU waiting for us, in sync mode or on a full ring.
        for (auto& r : readers_) {
            store(&r.ring()->ack_seq, UINT64_MAX);
            __atomic_fetch_add(&r.ring()->ack, 1u, __ATOMIC_SEQ_CST);
            futex_wake(&r.ring()->ack);
            __atomic_fetch_add(&r.ring()->space, 1u, __ATOMIC_SEQ_CST);
            futex_wake(&r.ring()->space);
        }
        bump_config();
        stop_heartbeat_ = true;
        heartbeat_.join();
    }
}

void TcgListener::refresh_time_base() {
    auto now = Clock::now();
    if (now - last_calibration_ < std::chrono::milliseconds(100)) return;
    last_calibration_ = now;
    if (!time_.tsc_run0) time_.tsc_run0 = load(&ctl_->tsc_at_first_run);
    time_.calibrate_now();
}

uint32_t TcgListener::bump_config() {
    uint32_t gen = __atomic_add_fetch(&ctl_->config_generation, 1u, __ATOMIC_SEQ_CST);
    futex_wake(&ctl_->config_generation);
    return gen;
}

// Waits (at most a second) until the plugin's watcher has acted on configuration generation:
// a VM resumed after that runs instrumented from its first instruction when traps are on.
void TcgListener::wait_config_seen(uint32_t generation) {
    auto deadline = Clock::now() + std::chrono::seconds(1);
    while (static_cast<int32_t>(load(&ctl_->config_seen) - generation) < 0 &&
           Clock::now() < deadline && load(&ctl_->plugin_state) == 1) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

namespace {

// A process that has exited but not been reaped (its state in /proc is Z or X).
bool is_zombie(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    FILE* f = std::fopen(path, "re");
    if (!f) return false;
    char buf[512];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    const char* paren = std::strrchr(buf, ')');  // the name may hold spaces and parentheses
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

}  // namespace

bool TcgListener::plugin_alive(Clock::time_point now) const {
    if (load(&ctl_->plugin_state) == 2) return false;
    // The process checks are system calls: at most every 10 ms (the consumer comes here each
    // time it has caught up, thousands of times a second while events flow).
    if (now - last_alive_check_ < std::chrono::milliseconds(10)) return true;
    last_alive_check_ = now;
    pid_t pid = static_cast<pid_t>(ctl_->plugin_pid);
    if (kill(pid, 0) != 0 && errno == ESRCH) return false;
    // A QEMU that crashed stays a zombie until its parent reaps it (nitro's launcher does at
    // the end): kill() still finds it. Checked at most every 100 ms while idle.
    if (now - last_zombie_check_ < std::chrono::milliseconds(100)) return true;
    last_zombie_check_ = now;
    return !is_zombie(pid);
}

void TcgListener::ack_previous() {
    if (pending_ack_ring_ < 0) return;
    nitro_ring* ring = readers_[static_cast<size_t>(pending_ack_ring_)].ring();
    store(&ring->ack_seq, pending_ack_seq_);
    __atomic_fetch_add(&ring->ack, 1u, __ATOMIC_SEQ_CST);
    futex_wake(&ring->ack);
    pending_ack_ring_ = -1;
}

Listener::Status TcgListener::next(Event& ev, std::chrono::milliseconds timeout) {
    return next_from_rings(timeout, [&ev](RingReader& r) -> std::optional<uint64_t> {
        if (!r.pop(ev)) return std::nullopt;
        return ev.seq;
    });
}

Listener::Status TcgListener::next_record(const nitro_record*& rec, std::chrono::milliseconds timeout) {
    return next_from_rings(timeout, [&](RingReader& r) -> std::optional<uint64_t> {
        const nitro_record* front = r.front_record();
        if (!front) return std::nullopt;
        if (front->kind != NITRO_REC_EVENT || !record_registers_end(front, front->size)) {
            r.skip_front(front->size, /*malformed=*/true);
            return std::nullopt;
        }
        // Consumed at the next call, so that the caller can use it in place until then.
        held_reader_ = &r;
        held_size_ = front->size;
        rec = front;
        return front->seq;
    });
}

void TcgListener::release_held_record() {
    if (!held_reader_) return;
    held_reader_->skip_front(held_size_, false);
    held_reader_ = nullptr;
}

template <typename Take>
Listener::Status TcgListener::next_from_rings(std::chrono::milliseconds timeout, Take take) {
    release_held_record();
    if (end_ != EndReason::None) return Status::End;
    ack_previous();
    // The deadline is taken when the rings are first found empty: an event ready at once
    // costs no clock read.
    std::optional<Clock::time_point> deadline;
    for (;;) {
        // Merge the per-vCPU rings in time order.
        int best = -1;
        uint64_t best_time = 0;
        for (size_t i = 0; i < readers_.size(); i++) {
            auto t = readers_[i].peek_time();
            if (t && (best < 0 || *t < best_time)) {
                best = static_cast<int>(i);
                best_time = *t;
            }
        }
        if (best >= 0) {
            if (auto seq = take(readers_[static_cast<size_t>(best)])) {
                delivered_++;
                if (options_.mode == Mode::Sync) {
                    pending_ack_ring_ = best;
                    pending_ack_seq_ = *seq;
                }
                return Status::Event;
            }
            continue;  // a malformed record was skipped
        }

        auto now = Clock::now();
        if (!deadline) deadline = now + timeout;
        if (delivered_ != delivered_at_idle_) {  // a burst just ended
            delivered_at_idle_ = delivered_;
            last_event_ = now;
        }
        refresh_time_base();
        // Nothing buffered: has QEMU gone? (checked after draining, so nothing is lost)
        if (!plugin_alive(now)) {
            end_ = load(&ctl_->plugin_state) == 2 ? EndReason::QemuExited : EndReason::QemuDied;
            return Status::End;
        }
        if (now >= *deadline) return Status::Timeout;
        // Doze (poll every 2 ms, woken only by a filling ring) while events flow; sleep until
        // woken once the guest has been quiet for a while.
        bool busy = now - last_event_ < std::chrono::milliseconds(50);
        uint32_t bell = load(&ctl_->doorbell);
        store(&ctl_->consumer_sleeping, busy ? NITRO_SLEEP_DOZE : NITRO_SLEEP_DEEP);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        bool empty = true;
        for (auto& r : readers_) {
            if (!r.empty()) empty = false;
        }
        if (empty) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now);
            futex_wait(&ctl_->doorbell, bell,
                       std::min(left, std::chrono::milliseconds(busy ? 2 : 100)));
        }
        store(&ctl_->consumer_sleeping, NITRO_SLEEP_AWAKE);
    }
}

void TcgListener::stop() {
    if (end_ == EndReason::None) end_ = EndReason::Stopped;
    release_held_record();
    ack_previous();
    detach();
}

void TcgListener::set_traps(bool enabled) {
    store(&ctl_->traps, enabled ? 1u : 0u);
    const uint32_t gen = bump_config();
    if (enabled) wait_config_seen(gen);
}

bool TcgListener::name_ram_file(const std::string& ram_file) {
    if (ram_file.empty() || ram_file.size() >= sizeof ctl_->ram_file) return false;
    if (std::string_view(ctl_->ram_file) != ram_file) {
        std::memset(ctl_->ram_file, 0, sizeof ctl_->ram_file);
        std::memcpy(ctl_->ram_file, ram_file.data(), ram_file.size());
        __atomic_fetch_add(&ctl_->ram_file_generation, 1u, __ATOMIC_RELEASE);
        bump_config();
    }
    return true;
}

void TcgListener::set_guest_ram(const std::string& ram_file, uint64_t ram_below_4g) {
    if (name_ram_file(ram_file)) store(&ctl_->ram_below_4g, ram_below_4g);
}

void TcgListener::set_context_in_ram(unsigned vcpu, uint64_t kernel_gs_base,
                                     const std::string& ram_file, uint64_t file_offset) {
    if (vcpu >= n_vcpus_ || !name_ram_file(ram_file)) return;
    // The plugin uses the offset only while it reads the same GS base before and after it.
    store(&ctl_->context_kgs[vcpu], uint64_t{0});
    store(&ctl_->context_file_off[vcpu], file_offset);
    store(&ctl_->context_kgs[vcpu], kernel_gs_base);
}

void TcgListener::add_syscall_filter(Abi abi, uint64_t nr) {
    if (nr >= NITRO_MAX_NR) fail("syscall number {} is beyond the filter range", nr);
    uint64_t* bm = abi == Abi::I386 ? ctl_->filter_nr32 : ctl_->filter_nr64;
    __atomic_fetch_or(&bm[nr / 64], 1ULL << (nr % 64), __ATOMIC_SEQ_CST);
    store(&ctl_->filter_nr_enabled, 1u);
    bump_config();
}

void TcgListener::remove_syscall_filter(Abi abi, uint64_t nr) {
    if (nr >= NITRO_MAX_NR) return;
    uint64_t* bm = abi == Abi::I386 ? ctl_->filter_nr32 : ctl_->filter_nr64;
    __atomic_fetch_and(&bm[nr / 64], ~(1ULL << (nr % 64)), __ATOMIC_SEQ_CST);
    bump_config();
}

void TcgListener::clear_syscall_filter() {
    store(&ctl_->filter_nr_enabled, 0u);
    for (auto& w : ctl_->filter_nr64) store(&w, uint64_t{0});
    for (auto& w : ctl_->filter_nr32) store(&w, uint64_t{0});
    bump_config();
}

void TcgListener::set_cr3_filter(const std::vector<uint64_t>& cr3s) {
    if (cr3s.size() > NITRO_MAX_CR3) fail("at most {} address-space filters", NITRO_MAX_CR3);
    store(&ctl_->filter_cr3_count, 0u);
    for (size_t i = 0; i < cr3s.size(); i++) store(&ctl_->filter_cr3[i], cr3s[i]);
    store(&ctl_->filter_cr3_count, static_cast<uint32_t>(cr3s.size()));
    bump_config();
}

void TcgListener::set_captures(Abi abi, uint64_t nr, Direction dir,
                               const std::vector<CaptureRule>& rules) {
    if (nr >= NITRO_MAX_NR) return;
    if (rules.size() > NITRO_MAX_CAPTURES) fail("at most {} captures per syscall", NITRO_MAX_CAPTURES);
    auto& set = ctl_->capture[abi == Abi::I386][nr][static_cast<int>(dir)];
    store(&set.count, 0u);
    for (size_t i = 0; i < rules.size(); i++) {
        const auto& r = rules[i];
        if (!capture_rule_valid(r)) fail("capture argument index out of range");
        set.rule[i] = nitro_capture_rule{r.arg, static_cast<uint8_t>(r.kind), r.len_arg, 0,
                                         std::min<uint32_t>(r.max, NITRO_MAX_CAPTURE_BYTES)};
    }
    store(&set.count, static_cast<uint32_t>(rules.size()));
    store(&ctl_->capture_enabled, 1u);
}

bool TcgListener::set_context_word(uint64_t kernel_gs_offset) {
    store(&ctl_->context_offset, kernel_gs_offset);
    store(&ctl_->context_enabled, 1u);
    bump_config();
    return true;
}

bool TcgListener::set_context_fields(const std::vector<ContextField>& fields) {
    if (fields.size() > NITRO_MAX_CONTEXT_FIELDS) return false;
    uint32_t total = 0;
    for (const auto& f : fields) {
        if (f.len == 0 || f.len > NITRO_MAX_CONTEXT_FIELD_BYTES) return false;
        total += f.len;
    }
    if (total > NITRO_MAX_CONTEXT_BYTES) return false;
    store(&ctl_->context_fields_count, 0u);
    for (size_t i = 0; i < fields.size(); i++) {
        store(&ctl_->context_fields[i].offset, fields[i].offset);
        store(&ctl_->context_fields[i].len, fields[i].len);
    }
    store(&ctl_->context_fields_count, static_cast<uint32_t>(fields.size()));
    bump_config();
    return true;
}

void TcgListener::set_context_linear_map(uint64_t linear_base, uint64_t ram_below_4g) {
    store(&ctl_->context_linear_base, uint64_t{0});
    store(&ctl_->ram_below_4g, ram_below_4g);
    store(&ctl_->context_linear_base, linear_base);
}

void TcgListener::set_pairing_hints(Abi abi, const PairingHints& hints) {
    bool i386 = abi == Abi::I386;
    set_bits(i386 ? ctl_->rekey_nr32 : ctl_->rekey_nr64, hints.rekey);
    set_bits(i386 ? ctl_->fork_nr32 : ctl_->fork_nr64, hints.fork);
    set_bits(i386 ? ctl_->noreturn_nr32 : ctl_->noreturn_nr64, hints.noreturn);
}

void TcgListener::set_rekey_syscalls(Abi abi, const std::vector<uint64_t>& nrs) {
    set_bits(abi == Abi::I386 ? ctl_->rekey_nr32 : ctl_->rekey_nr64, nrs);
}

void TcgListener::set_context_refresh(Abi abi, const std::vector<uint64_t>& nrs) {
    set_bits(abi == Abi::I386 ? ctl_->context_refresh_nr32 : ctl_->context_refresh_nr64, nrs);
}

void TcgListener::set_bits(uint64_t* bm, const std::vector<uint64_t>& nrs) {
    for (uint64_t nr : nrs) {
        if (nr < NITRO_MAX_NR) __atomic_fetch_or(&bm[nr / 64], 1ULL << (nr % 64), __ATOMIC_SEQ_CST);
    }
}

ListenerStats TcgListener::stats() const {
    ListenerStats s;
    s.events = delivered_;
    for (const auto& r : readers_) s.dropped += load(&r.ring()->dropped);
    return s;
}

TcgListener::ProducerStats TcgListener::producer_stats() const {
    ProducerStats p;
    uint64_t cycles = 0;
    for (const auto& r : readers_) {
        p.callbacks += load(&r.ring()->callbacks);
        p.memory_reads += load(&r.ring()->memory_reads);
        p.walked_reads += load(&r.ring()->walked_reads);
        p.full_waits += load(&r.ring()->full_waits);
        cycles += load(&r.ring()->busy_cycles);
    }
    p.direct_vcpus = load(&ctl_->direct_vcpus);
    p.api_vcpus = load(&ctl_->direct_off_vcpus);
    p.instrumented = load(&ctl_->instrumented) != 0;
    p.code_flushes = load(&ctl_->code_flushes);
    p.ram_file_mapped = load(&ctl_->ram_file_mapped) != 0;
    p.context_mismatches = load(&ctl_->context_mismatches);
    p.ram_walk_mismatches = load(&ctl_->ram_walk_mismatches);
    // The plugin recorded the TSC and the monotonic clock at start: the ratio since then
    // converts cycles to nanoseconds (same host, same TSC).
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
    uint64_t tsc_now = __builtin_ia32_rdtsc();
    uint64_t tsc0 = ctl_->tsc_at_start, mono0 = ctl_->mono_ns_at_start;
    if (tsc_now > tsc0 && mono > mono0) {
        p.busy_ns = static_cast<double>(cycles) * static_cast<double>(mono - mono0) /
                    static_cast<double>(tsc_now - tsc0);
    }
    return p;
}

uint64_t TcgListener::record_errors() const {
    uint64_t n = 0;
    for (const auto& r : readers_) n += r.errors();
    return n;
}

}  // namespace nitro::tcg
