// SPDX-License-Identifier: MIT
// The consumer side of nitro's TCG plugin: attaches to the plugin's control file (created by
// a QEMU started with -plugin libnitro-tcg.so,ctl=PATH) and yields its events.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "listener/tcg/ring_abi.h"
#include "listener/tcg/ring_reader.h"
#include "listener/tcg/time_base.h"
#include "nitro/listener.h"

namespace nitro::tcg {

struct TcgOptions {
    Mode mode = Mode::Async;
    /// How long to wait for the plugin's control file to appear.
    std::chrono::milliseconds attach_timeout{10000};
    /// Start with traps on.
    bool traps = true;
    /// Read every register at every event (slower). By default the registers that define a
    /// call are read at each event and the others (cr0, cr4, efer, kernel_gs_base, ss and the
    /// callee-saved registers) every 256 events per vCPU.
    bool all_registers = false;
};

class TcgListener final : public Listener {
public:
    /// Attaches to the plugin of a running QEMU. Throws nitro::Error with what to do.
    TcgListener(const std::string& ctl_path, TcgOptions options);
    ~TcgListener() override;
    TcgListener(const TcgListener&) = delete;
    TcgListener& operator=(const TcgListener&) = delete;

    Status next(Event& ev, std::chrono::milliseconds timeout) override;
    /// Like next(), without decoding: rec points at the next event record in the ring (the
    /// plugin's layout, ring_abi.h; structurally checked, contents untrusted), valid until the
    /// next call. For recording events as they are (the capture file).
    Status next_record(const nitro_record*& rec, std::chrono::milliseconds timeout);
    /// Converts the records' TSC values into host and guest time.
    const TimeBase& time_base() const { return time_; }
    void stop() override;
    void set_traps(bool enabled) override;
    void set_guest_ram(const std::string& ram_file, uint64_t ram_below_4g) override;
    void set_context_in_ram(unsigned vcpu, uint64_t kernel_gs_base, const std::string& ram_file,
                            uint64_t file_offset) override;
    void add_syscall_filter(Abi abi, uint64_t nr) override;
    void remove_syscall_filter(Abi abi, uint64_t nr) override;
    void clear_syscall_filter() override;
    void set_cr3_filter(const std::vector<uint64_t>& cr3s) override;
    void set_captures(Abi abi, uint64_t nr, Direction dir,
                      const std::vector<CaptureRule>& rules) override;
    bool set_context_word(uint64_t kernel_gs_offset) override;
    bool set_context_fields(const std::vector<ContextField>& fields) override;
    void set_context_refresh(Abi abi, const std::vector<uint64_t>& nrs) override;
    void set_context_linear_map(uint64_t linear_base, uint64_t ram_below_4g) override;
    void set_pairing_hints(Abi abi, const PairingHints& hints) override;
    EndReason end_reason() const override { return end_; }
    ListenerStats stats() const override;

    /// Calls that may change the calling thread's identity (execve, arch_prctl), so that the
    /// plugin can pair their return by vCPU.
    void set_rekey_syscalls(Abi abi, const std::vector<uint64_t>& nrs);
    unsigned vcpu_count() const { return n_vcpus_; }
    /// Malformed records seen (a broken or hostile producer).
    uint64_t record_errors() const;

    /// The plugin's side: its own cost in the vCPU threads and how it reads registers.
    struct ProducerStats {
        uint64_t callbacks = 0;      ///< instrumented instructions executed while tracing
        double busy_ns = 0;          ///< host time spent in those callbacks (incl. ring waits)
        uint64_t direct_vcpus = 0;   ///< bit per vCPU reading its register file in place
        uint64_t api_vcpus = 0;      ///< bit per vCPU where that was not possible
        /// Every block of QEMU's translated code carries the plugin's instrumentation. False
        /// while the plugin is passive (traps off, no consumer) or before its first switch
        /// after set_traps(true) (a vCPU's next translation or resume from idle).
        bool instrumented = false;
        uint32_t code_flushes = 0;   ///< switches between passive and instrumented
        bool ram_file_mapped = false;  ///< context words read from the RAM file
        uint32_t context_mismatches = 0;  ///< such reads that disagreed with a page walk
        /// Reads of guest memory through the plugin's own page walk in the RAM file that
        /// disagreed with QEMU's (each turned that vCPU's walks off).
        uint32_t ram_walk_mismatches = 0;
        uint64_t memory_reads = 0;  ///< reads of guest memory by callbacks (captures, context)
        uint64_t walked_reads = 0;  ///< of them, through the plugin's own walk in the RAM file
        /// Times a vCPU found its ring full and waited (lossless modes): the consumer fell
        /// behind and the guest paid for it.
        uint64_t full_waits = 0;
    };
    ProducerStats producer_stats() const;

private:
    bool name_ram_file(const std::string& ram_file);
    uint32_t bump_config();
    void wait_config_seen(uint32_t generation);
    void set_bits(uint64_t* bitmap, const std::vector<uint64_t>& nrs);
    void refresh_time_base();
    void release_held_record();
    template <typename Take>
    Status next_from_rings(std::chrono::milliseconds timeout, Take take);
    void ack_previous();
    bool plugin_alive(std::chrono::steady_clock::time_point now) const;
    void detach();

    std::string path_;
    TcgOptions options_;
    nitro_ctl* ctl_ = nullptr;
    size_t size_ = 0;
    unsigned n_vcpus_ = 0;
    TimeBase time_;
    std::chrono::steady_clock::time_point last_calibration_{};
    mutable std::chrono::steady_clock::time_point last_alive_check_{};
    mutable std::chrono::steady_clock::time_point last_zombie_check_{};
    std::vector<RingReader> readers_;
    std::thread heartbeat_;
    std::atomic<bool> stop_heartbeat_{false};
    EndReason end_ = EndReason::None;
    uint64_t delivered_ = 0;
    uint64_t delivered_at_idle_ = 0;
    RingReader* held_reader_ = nullptr;  // next_record(): consumed at the next call
    uint32_t held_size_ = 0;
    std::chrono::steady_clock::time_point last_event_{};
    // Sync mode: the event handed out last, acknowledged on the next call.
    int pending_ack_ring_ = -1;
    uint64_t pending_ack_seq_ = 0;
};

}  // namespace nitro::tcg
