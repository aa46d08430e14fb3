// SPDX-License-Identifier: MIT
// The QEMU plugin API stand-in of fake_qemu.h.
#include "fake_qemu.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

extern "C" {
#ifdef NITRO_SYSTEM_QEMU_PLUGIN_H
#include <qemu-plugin.h>
#else
#include "nitro_qemu_plugin_api.h"
#endif
}

struct qemu_plugin_insn {
    std::vector<uint8_t> bytes;
    uint64_t vaddr = 0;
    qemu_plugin_vcpu_udata_cb_t cb = nullptr;
    void* udata = nullptr;
    qemu_plugin_u64 entry{};
    uint64_t imm = 0;
};
struct qemu_plugin_tb {
    uint64_t vaddr;
    std::vector<qemu_plugin_insn*> insns;
};
struct qemu_plugin_scoreboard {
    size_t element_size;
    std::vector<uint8_t> data;
};

namespace {

// What the plugin registered.
struct Registered {
    qemu_plugin_vcpu_simple_cb_t init = nullptr, resume = nullptr;
    qemu_plugin_udata_cb_t atexit = nullptr;
    void* atexit_data = nullptr;
    qemu_plugin_vcpu_tb_trans_cb_t translate = nullptr;
};
Registered reg;
nitro::fake::Cpu* cpu = nullptr;
const nitro::fake::FakeQemu* instance = nullptr;
qemu_plugin_insn syscall_insn, sysret_insn, iret_insn;

// The plugin looks registers up by QEMU's gdbstub names; the handle is the index + 1.
constexpr const char* kRegNames[NITRO_NREGS] = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",  "r9",
    "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss",
    "fs_base", "gs_base", "k_gs_base", "cr0", "cr3", "cr4", "efer",
};

uint64_t& score_u64(qemu_plugin_u64 e, unsigned vcpu) {
    return *reinterpret_cast<uint64_t*>(e.score->data.data() + vcpu * e.score->element_size + e.offset);
}

// QEMU calls an instrumented instruction's callback only while the plugin's flag is set.
void exec(const qemu_plugin_insn& insn) {
    if (insn.cb && __atomic_load_n(&score_u64(insn.entry, 0), __ATOMIC_RELAXED) != insn.imm) {
        insn.cb(0, insn.udata);
    }
}

}  // namespace

extern "C" {
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t, qemu_plugin_vcpu_simple_cb_t cb) { reg.init = cb; }
void qemu_plugin_register_vcpu_resume_cb(qemu_plugin_id_t, qemu_plugin_vcpu_simple_cb_t cb) { reg.resume = cb; }
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t cb, void* userdata) {
    reg.atexit = cb;
    reg.atexit_data = userdata;
}
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t cb) {
    reg.translate = cb;
}
// QEMU flushes its translated code and drops every callback, then calls cb with the vCPUs
// stopped; here nothing runs concurrently at the call.
void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb) {
    reg = Registered{};
    syscall_insn.cb = sysret_insn.cb = iret_insn.cb = nullptr;
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
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb* tb) { return tb->vaddr; }
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb* tb, size_t idx) {
    return tb->insns.at(idx);
}
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn* insn) { return insn->vaddr; }
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn* insn) { return insn->bytes.size(); }
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
        d.feature = "fake";
        g_array_append_val(a, d);
    }
    return a;
}
int qemu_plugin_read_register(struct qemu_plugin_register* handle, GByteArray* buf) {
    auto i = reinterpret_cast<uintptr_t>(handle) - 1;
    uint64_t v = i < NITRO_NREGS && cpu ? cpu->truth[i] : 0;
    g_byte_array_append(buf, reinterpret_cast<const guint8*>(&v), 8);
    return 8;
}
bool qemu_plugin_read_memory_vaddr(uint64_t addr, GByteArray* data, size_t len) {
    std::vector<uint8_t> tmp(len);
    if (!instance || !instance->read(addr, tmp.data(), len)) return false;
    g_byte_array_append(data, tmp.data(), static_cast<guint>(len));
    return true;
}
}

namespace nitro::fake {

Cpu& fake_cpu() { return *cpu; }

FakeQemu::FakeQemu(const std::string& extra_args) {
    static Cpu the_cpu{7};
    cpu = &the_cpu;
    instance = this;
    ctl_path_ = "/dev/shm/nitro-fake-qemu-" + std::to_string(getpid());
    std::string arg = "ctl=" + ctl_path_;
    std::vector<char*> argv = {arg.data()};
    std::string extra = extra_args;
    if (!extra.empty()) argv.push_back(extra.data());
    qemu_info_t info{};
    info.target_name = "x86_64";
    info.version.min = info.version.cur = 4;
    info.system_emulation = true;
    info.system.smp_vcpus = info.system.max_vcpus = 1;
    if (qemu_plugin_install(1, &info, static_cast<int>(argv.size()), argv.data()) != 0) std::abort();
    reg.init(1, 0);
    syscall_insn.bytes = {0x0f, 0x05};      // syscall
    syscall_insn.vaddr = kSyscallAddress;
    sysret_insn.bytes = {0x48, 0x0f, 0x07};  // sysretq
    sysret_insn.vaddr = 0xffffffff81000100ULL;
    iret_insn.bytes = {0x48, 0xcf};  // iretq
    iret_insn.vaddr = 0xffffffff81000200ULL;
}

FakeQemu::~FakeQemu() {
    if (reg.atexit) reg.atexit(1, reg.atexit_data);
    instance = nullptr;
}

void FakeQemu::translate() {
    // The plugin's watcher registers the translation callback once a consumer wants tracing;
    // it is there from the plugin's load until its first translation in any case.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!reg.translate && std::chrono::steady_clock::now() < deadline) {
        if (reg.resume) reg.resume(1, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!reg.translate) {
        std::fprintf(stderr, "fake QEMU: the plugin registered no translation callback\n");
        std::abort();
    }
    // Two blocks: the user's, whose syscall is 16 bytes in, and the kernel's sysret.
    qemu_plugin_tb user{kSyscallBlock, {&syscall_insn}};
    reg.translate(1, &user);
    qemu_plugin_tb kernel{sysret_insn.vaddr, {&sysret_insn}};
    reg.translate(1, &kernel);
    qemu_plugin_tb interrupt{iret_insn.vaddr, {&iret_insn}};
    reg.translate(1, &interrupt);
}

void FakeQemu::set(int r, uint64_t value) {
    cpu->truth[r] = value;
    for (int k = 0; k < 16; k++) {
        if (kHw[k] == r) cpu->env->regs[k] = value;
    }
    if (r == NITRO_REG_RIP) cpu->env->eip = value;
}

void FakeQemu::enter(uint64_t nr, const uint64_t (&args)[6]) {
    static const int kArgRegs[6] = {NITRO_REG_RDI, NITRO_REG_RSI, NITRO_REG_RDX,
                                    NITRO_REG_R10, NITRO_REG_R8,  NITRO_REG_R9};
    set(NITRO_REG_RAX, nr);
    for (int i = 0; i < 6; i++) set(kArgRegs[i], args[i]);
    set(NITRO_REG_RIP, kSyscallBlock + shift_);  // QEMU's rip: the block's start
    exec(syscall_insn);
}

void FakeQemu::leave(uint64_t ret) { leave_to(ret, kSyscallAddress + shift_ + 2, cpu->truth[NITRO_REG_RSP]); }

void FakeQemu::leave_to(uint64_t ret, uint64_t rip, uint64_t rsp) {
    set(NITRO_REG_RAX, ret);
    set(NITRO_REG_RCX, rip);  // sysret's return address
    set(NITRO_REG_RSP, rsp);
    set(NITRO_REG_RIP, sysret_insn.vaddr);
    exec(sysret_insn);
}

void FakeQemu::interrupt_return(uint64_t rax, uint64_t rip) {
    // The frame iretq pops, on the kernel stack: rip, cs (user), rflags, rsp.
    constexpr uint64_t kKernelStack = 0xffffc90000013f00ULL;
    const uint64_t user_rsp = cpu->truth[NITRO_REG_RSP];
    const uint64_t frame[4] = {rip, 0x33, 0x246, user_rsp};
    map(kKernelStack, std::string(reinterpret_cast<const char*>(frame), sizeof frame));
    set(NITRO_REG_RAX, rax);
    set(NITRO_REG_RSP, kKernelStack);
    set(NITRO_REG_RIP, iret_insn.vaddr);
    exec(iret_insn);
    set(NITRO_REG_RSP, user_rsp);
}

void FakeQemu::call(uint64_t nr, const uint64_t (&args)[6], uint64_t ret) {
    enter(nr, args);
    leave(ret);
}

bool FakeQemu::read(uint64_t addr, void* out, size_t len) const {
    auto* dst = static_cast<uint8_t*>(out);
    size_t done = 0;
    while (done < len) {
        auto it = memory_.upper_bound(addr + done);
        if (it == memory_.begin()) return false;
        --it;
        const uint64_t off = addr + done - it->first;
        if (off >= it->second.size()) return false;
        const size_t n = std::min<size_t>(len - done, it->second.size() - off);
        std::memcpy(dst + done, it->second.data() + off, n);
        done += n;
    }
    return true;
}

}  // namespace nitro::fake
