// SPDX-License-Identifier: MIT
// nitro-plugin-bench: the plugin's own cost per event, outside QEMU (Google Benchmark).
//
// The plugin's source is linked into this program together with a stand-in for the part of
// QEMU's plugin API it calls: registers come from a register file laid out like QEMU's x86 CPU
// state (tests/unit/tcg/fake_cpu.h), so the plugin finds it and reads it in place as it does
// in QEMU. A real TcgListener on another thread consumes the events from the plugin's rings.
// Each iteration is one traced system call, its entry and its exit instruction "executed" the
// way QEMU calls an instrumented instruction's callback; the QEMU side (translation, the call
// from generated code) is not measured: nitro-bench measures the whole in the guest.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "fake_cpu.h"
#include "listener/tcg/tcg_listener.h"
#include "nitro/event.h"

extern "C" {
#ifdef NITRO_SYSTEM_QEMU_PLUGIN_H
#include <qemu-plugin.h>
#else
#include "nitro_qemu_plugin_api.h"
#endif
}

// The stand-in for QEMU: what the plugin registered, and the one vCPU's registers.
struct qemu_plugin_insn {
    std::vector<uint8_t> bytes;
    qemu_plugin_vcpu_udata_cb_t cb = nullptr;
    void* udata = nullptr;
    qemu_plugin_u64 entry{};
    uint64_t imm = 0;
};
struct qemu_plugin_tb {
    std::vector<qemu_plugin_insn*> insns;
};
struct qemu_plugin_scoreboard {
    size_t element_size;
    std::vector<uint8_t> data;
};

namespace {

struct FakeQemu {
    qemu_plugin_vcpu_simple_cb_t init = nullptr, resume = nullptr;
    qemu_plugin_udata_cb_t atexit = nullptr;
    void* atexit_data = nullptr;
    qemu_plugin_vcpu_tb_trans_cb_t translate = nullptr;
    nitro::fake::Cpu cpu{7};
};
FakeQemu fq;

// The plugin looks registers up by QEMU's gdbstub names; the handle is the index + 1.
constexpr const char* kRegNames[NITRO_NREGS] = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",  "r9",
    "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss",
    "fs_base", "gs_base", "k_gs_base", "cr0", "cr3", "cr4", "efer",
};

uint64_t& score_u64(qemu_plugin_u64 e, unsigned vcpu) {
    return *reinterpret_cast<uint64_t*>(e.score->data.data() + vcpu * e.score->element_size + e.offset);
}

}  // namespace

extern "C" {
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t, qemu_plugin_vcpu_simple_cb_t cb) { fq.init = cb; }
void qemu_plugin_register_vcpu_resume_cb(qemu_plugin_id_t, qemu_plugin_vcpu_simple_cb_t cb) { fq.resume = cb; }
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t cb, void* userdata) {
    fq.atexit = cb;
    fq.atexit_data = userdata;
}
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t cb) {
    fq.translate = cb;
}
// QEMU flushes its translated code and drops every callback, then calls cb with the vCPUs
// stopped; here nothing runs concurrently at the call.
void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb) {
    fq.init = fq.resume = nullptr;
    fq.translate = nullptr;
    fq.atexit = nullptr;
    cb(id);
}
void qemu_plugin_register_vcpu_insn_exec_cond_cb(struct qemu_plugin_insn* insn,
                                                 qemu_plugin_vcpu_udata_cb_t cb,
                                                 enum qemu_plugin_cb_flags, enum qemu_plugin_cond,
                                                 qemu_plugin_u64 entry, uint64_t imm, void* userdata) {
    // Only QEMU_PLUGIN_COND_NE is used by the plugin.
    insn->cb = cb;
    insn->udata = userdata;
    insn->entry = entry;
    insn->imm = imm;
}
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb) { return tb->insns.size(); }
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb* tb, size_t idx) {
    return tb->insns.at(idx);
}
size_t qemu_plugin_insn_data(const struct qemu_plugin_insn* insn, void* dest, size_t len) {
    size_t n = std::min(len, insn->bytes.size());
    std::memcpy(dest, insn->bytes.data(), n);
    return n;
}
struct qemu_plugin_scoreboard* qemu_plugin_scoreboard_new(size_t element_size) {
    return new qemu_plugin_scoreboard{element_size, std::vector<uint8_t>(element_size * 64)};
}
void qemu_plugin_u64_set(qemu_plugin_u64 entry, unsigned int vcpu_index, uint64_t val) {
    __atomic_store_n(&score_u64(entry, vcpu_index), val, __ATOMIC_RELAXED);
}
GArray* qemu_plugin_get_registers(void) {
    GArray* a = g_array_new(false, true, sizeof(qemu_plugin_reg_descriptor));
    for (int i = 0; i < NITRO_NREGS; i++) {
        qemu_plugin_reg_descriptor d{};
        d.handle = reinterpret_cast<struct qemu_plugin_register*>(static_cast<uintptr_t>(i + 1));
        d.name = kRegNames[i];
        d.feature = "bench";
        g_array_append_val(a, d);
    }
    return a;
}
int qemu_plugin_read_register(struct qemu_plugin_register* handle, GByteArray* buf) {
    auto i = reinterpret_cast<uintptr_t>(handle) - 1;
    uint64_t v = i < NITRO_NREGS ? fq.cpu.truth[i] : 0;
    g_byte_array_append(buf, reinterpret_cast<const guint8*>(&v), 8);
    return 8;
}
bool qemu_plugin_read_memory_vaddr(uint64_t, GByteArray*, size_t) { return false; }
}

namespace {

using namespace nitro;

// The plugin installed on one vCPU, a listener consuming on another thread, and the two
// instrumented instructions.
class Harness {
public:
    Harness() {
        ctl_path_ = "/dev/shm/nitro-plugin-bench-" + std::to_string(getpid());
        std::string arg = "ctl=" + ctl_path_;
        char* argv[] = {arg.data()};
        qemu_info_t info{};
        info.target_name = "x86_64";
        info.version.min = info.version.cur = 4;
        info.system_emulation = true;
        info.system.smp_vcpus = info.system.max_vcpus = 1;
        if (qemu_plugin_install(1, &info, 1, argv) != 0) std::abort();
        fq.init(1, 0);
        listener_ = std::make_unique<tcg::TcgListener>(ctl_path_, tcg::TcgOptions{});
        // The plugin instruments once its watcher has seen the consumer attach with traps on,
        // at the vCPU's next resume.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!fq.translate && std::chrono::steady_clock::now() < deadline) {
            if (fq.resume) fq.resume(1, 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (!fq.translate) {
            std::fprintf(stderr, "nitro-plugin-bench: the plugin did not start instrumenting\n");
            std::abort();
        }
        entry_.bytes = {0x0f, 0x05};        // syscall
        exit_.bytes = {0x48, 0x0f, 0x07};   // sysretq
        qemu_plugin_tb tb{{&entry_, &exit_}};
        fq.translate(1, &tb);
        consumer_ = std::thread([this] {
            Event ev;
            uint64_t n = 0;
            while (!stop_.load(std::memory_order_relaxed)) {
                if (listener_->next(ev, std::chrono::milliseconds(20)) == Listener::Status::Event) {
                    // Published now and then: a count stored at every event would move its
                    // cache line between the cores as often.
                    if (++n % 4096 == 0) consumed_.store(n, std::memory_order_relaxed);
                } else {
                    consumed_.store(n, std::memory_order_relaxed);
                }
            }
            consumed_.store(n);
        });
    }
    ~Harness() {
        stop_ = true;
        consumer_.join();
        listener_.reset();
        if (fq.atexit) fq.atexit(1, fq.atexit_data);
    }

    // One system call: the entry instruction with the call's registers, the exit with its
    // return value, as QEMU calls the callbacks (only while the plugin's flag is set).
    void call(uint64_t nr, uint64_t arg0, uint64_t ret) {
        set(NITRO_REG_RAX, nr);
        set(NITRO_REG_RDI, arg0);
        exec(entry_);
        set(NITRO_REG_RAX, ret);
        exec(exit_);
        calls_++;
    }

    uint64_t calls() const { return calls_; }
    uint64_t consumed() const { return consumed_.load(); }
    tcg::TcgListener::ProducerStats producer_stats() { return listener_->producer_stats(); }

private:
    static void exec(const qemu_plugin_insn& insn) {
        if (insn.cb && __atomic_load_n(&score_u64(insn.entry, 0), __ATOMIC_RELAXED) != insn.imm) {
            insn.cb(0, insn.udata);
        }
    }
    // QEMU keeps the register file current before calling a callback that reads registers.
    static void set(int reg, uint64_t v) {
        fq.cpu.truth[reg] = v;
        for (int k = 0; k < 16; k++) {
            if (nitro::fake::kHw[k] == reg) fq.cpu.env->regs[k] = v;
        }
    }

    std::string ctl_path_;
    std::unique_ptr<tcg::TcgListener> listener_;
    qemu_plugin_insn entry_, exit_;
    std::thread consumer_;
    alignas(64) std::atomic<bool> stop_{false};
    std::atomic<uint64_t> consumed_{0};
    alignas(64) uint64_t calls_ = 0;
};

Harness& harness() {
    static Harness h;
    return h;
}

// A traced getppid-like call: entry and exit records written, consumed on another thread.
void BM_PluginTracedCall(benchmark::State& state) {
    Harness& h = harness();
    uint64_t i = 0;
    for (auto _ : state) h.call(110, i++, 1);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);  // events
    auto ps = h.producer_stats();
    state.counters["direct_regs"] = ps.direct_vcpus;
    state.counters["ns_per_callback"] = ps.callbacks ? ps.busy_ns / ps.callbacks : 0;
}
BENCHMARK(BM_PluginTracedCall);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    // Lossless: every event the plugin wrote reached the consumer (it drains the rest first).
    Harness& h = harness();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (h.consumed() < 2 * h.calls() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("calls %llu, events consumed %llu\n", static_cast<unsigned long long>(h.calls()),
                static_cast<unsigned long long>(h.consumed()));
    return h.consumed() == 2 * h.calls() ? 0 : 1;
}
