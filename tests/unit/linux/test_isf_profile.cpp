// SPDX-License-Identifier: MIT
// Profiles users bring: a hand-written Volatility 3 ISF sample (the shape dwarf2json writes:
// base_types, user_types with anonymous members and bitfields, symbols with constant_data),
// plain and xz-compressed; nitro's explicit offsets format; and what is rejected.
#include <gtest/gtest.h>
#include <lzma.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nitro/error.h"
#include "os/linux/isf_profile.h"

namespace nitro::linux_os {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// base64("Linux version 6.1.0-isf (gcc 12) #1 SMP PREEMPT_DYNAMIC\n\0")
constexpr const char* kBannerB64 =
    "TGludXggdmVyc2lvbiA2LjEuMC1pc2YgKGdjYyAxMikgIzEgU01QIFBSRUVNUFRfRFlOQU1JQwoA";

Json sample_isf() {
    const Json ptr = {{"kind", "pointer"},
                      {"subtype", {{"kind", "struct"}, {"name", "list_head"}}}};
    const Json int_t = {{"kind", "base"}, {"name", "int"}};
    return Json::parse(R"({
  "metadata": {"format": "6.2.0", "producer": {"name": "dwarf2json", "version": "0.8.0"}},
  "base_types": {
    "int": {"size": 4, "signed": true, "kind": "int", "endian": "little"},
    "unsigned int": {"size": 4, "signed": false, "kind": "int", "endian": "little"},
    "char": {"size": 1, "signed": true, "kind": "char", "endian": "little"},
    "long unsigned int": {"size": 8, "signed": false, "kind": "int", "endian": "little"},
    "pointer": {"size": 8, "signed": false, "kind": "int", "endian": "little"}
  },
  "user_types": {
    "list_head": {"kind": "struct", "size": 16, "fields": {
      "next": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}},
      "prev": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}}}},
    "task_struct": {"kind": "struct", "size": 9792, "fields": {
      "flags": {"offset": 44, "type": {"kind": "base", "name": "unsigned int"}},
      "stack": {"offset": 32, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
      "tasks": {"offset": 2240, "type": {"kind": "struct", "name": "list_head"}},
      "mm": {"offset": 2328, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "mm_struct"}}},
      "pid": {"offset": 2456, "type": {"kind": "base", "name": "int"}},
      "tgid": {"offset": 2460, "type": {"kind": "base", "name": "int"}},
      "real_parent": {"offset": 2472, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "task_struct"}}},
      "comm": {"offset": 3008, "type": {"kind": "array", "count": 16, "subtype": {"kind": "base", "name": "char"}}},
      "sched_reset_on_fork": {"offset": 2416, "type": {"kind": "bitfield", "bit_position": 1, "bit_length": 1, "type": {"kind": "base", "name": "unsigned int"}}},
      "unnamed_field_c40": {"anonymous": true, "offset": 3136, "type": {"kind": "struct", "name": "unnamed_8f3a"}}}},
    "unnamed_8f3a": {"kind": "struct", "size": 16, "fields": {
      "exit_state": {"offset": 4, "type": {"kind": "base", "name": "int"}}}},
    "mm_struct": {"kind": "struct", "size": 1024, "fields": {
      "unnamed_field_0": {"anonymous": true, "offset": 0, "type": {"kind": "struct", "name": "unnamed_1234"}}}},
    "unnamed_1234": {"kind": "struct", "size": 960, "fields": {
      "pgd": {"offset": 80, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "long unsigned int"}}}}}
  },
  "enums": {},
  "symbols": {
    "init_task": {"address": 18446744071606446656, "type": {"kind": "struct", "name": "task_struct"}},
    "current_task": {"address": 129920},
    "entry_SYSCALL_64": {"address": 18446744071593525376},
    "linux_banner": {"address": 18446744071597899744, "constant_data": ")" +
                       std::string(kBannerB64) + R"("}
  }
})");
}

TEST(LinuxIsf, ProfileFromAVolatilitySymbolTable) {
    const KernelProfile p = profile_from_isf(sample_isf());
    const auto& t = p.task_struct;
    EXPECT_EQ(t.size, 9792u);
    EXPECT_EQ(t.pid.offset, 2456u);
    EXPECT_EQ(t.pid.size, 4u);
    EXPECT_EQ(t.tgid.offset, 2460u);
    EXPECT_EQ(t.comm.offset, 3008u);
    EXPECT_EQ(t.comm.size, 16u);
    EXPECT_EQ(t.real_parent.size, 8u);
    EXPECT_EQ(t.tasks.size, 16u);  // a struct member: its size from user_types
    EXPECT_EQ(t.flags.size, 4u);
    // Inside an anonymous struct: offsets add up.
    EXPECT_TRUE(t.exit_state.valid);
    EXPECT_EQ(t.exit_state.offset, 3136u + 4);
    EXPECT_EQ(p.mm_struct.pgd.offset, 80u);
    EXPECT_EQ(p.mm_struct.size, 1024u);
    EXPECT_EQ(p.list_head.prev.offset, 8u);
    // What the sample does not describe is marked missing, not invented.
    EXPECT_FALSE(t.signal.valid);
    EXPECT_FALSE(p.pt_regs.ax.valid);
    EXPECT_EQ(p.current_task_percpu, 129920u);
    EXPECT_EQ(p.current_task_source, "current_task");
    EXPECT_EQ(p.symbols.at("init_task"), 18446744071606446656ULL);
    EXPECT_EQ(p.symbols.at("entry_SYSCALL_64"), 18446744071593525376ULL);
    EXPECT_EQ(p.banner, "Linux version 6.1.0-isf (gcc 12) #1 SMP PREEMPT_DYNAMIC");
    EXPECT_EQ(p.release, "6.1.0-isf");
}

TEST(LinuxIsf, PcpuHotKernels) {
    Json j = sample_isf();
    j["symbols"].erase("current_task");
    j["symbols"]["pcpu_hot"] = {{"address", 0x21000}};
    j["user_types"]["pcpu_hot"] = Json::parse(R"({"kind": "struct", "size": 64, "fields": {
        "current_task": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "task_struct"}}}}})");
    const KernelProfile p = profile_from_isf(j);
    EXPECT_EQ(p.current_task_percpu, 0x21000u);
    EXPECT_EQ(p.current_task_source, "pcpu_hot.current_task");
}

TEST(LinuxIsf, ClearErrors) {
    auto expect_error = [](const Json& j, const std::string& needle) {
        try {
            profile_from_isf(j);
            ADD_FAILURE() << "accepted; expected " << needle;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    Json j = sample_isf();
    j["symbols"].erase("current_task");
    expect_error(j, "no symbol current_task or pcpu_hot");
    j = sample_isf();
    j["user_types"]["task_struct"]["fields"]["pid"]["type"] =
        sample_isf()["user_types"]["task_struct"]["fields"]["sched_reset_on_fork"]["type"];
    expect_error(j, "bitfield");
    j = sample_isf();
    j["user_types"]["task_struct"]["fields"].erase("comm");
    expect_error(j, "comm");
    j = sample_isf();
    j["user_types"]["task_struct"]["fields"]["comm"]["offset"] = 9790;  // past the struct
    expect_error(j, "does not fit");
    expect_error(Json::object(), "not a Volatility 3 symbol table");
    // Self-referencing anonymous members and types end, they do not recurse forever.
    j = sample_isf();
    j["user_types"]["unnamed_8f3a"]["fields"]["unnamed_field_0"] = Json::parse(
        R"({"anonymous": true, "offset": 0, "type": {"kind": "struct", "name": "unnamed_8f3a"}})");
    j["user_types"]["unnamed_8f3a"]["fields"].erase("exit_state");
    const KernelProfile p = profile_from_isf(j);
    EXPECT_FALSE(p.task_struct.exit_state.valid);
}

class ProfileFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("nitro-isf-test-" + std::to_string(getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& bytes) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
    }
    fs::path dir_;
};

std::string xz(const std::string& text) {
    std::string out(text.size() + 4096, '\0');
    size_t pos = 0;
    const lzma_ret rc = lzma_easy_buffer_encode(
        6, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const uint8_t*>(text.data()), text.size(),
        reinterpret_cast<uint8_t*>(out.data()), &pos, out.size());
    EXPECT_EQ(rc, LZMA_OK);
    out.resize(pos);
    return out;
}

TEST_F(ProfileFiles, IsfPlainAndXzCompressed) {
    const std::string text = sample_isf().dump();
    const KernelProfile plain = load_profile_file(write("linux.json", text));
    const KernelProfile packed = load_profile_file(write("linux.json.xz", xz(text)));
    EXPECT_EQ(Json(plain), Json(packed));
    EXPECT_EQ(plain.task_struct.pid.offset, 2456u);
    // A corrupt .xz is an error naming the file.
    std::string broken = xz(text);
    broken.resize(broken.size() / 2);
    const std::string path = write("broken.json.xz", broken);
    try {
        load_profile_file(path);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
    }
}

TEST_F(ProfileFiles, ExplicitOffsets) {
    const std::string path = write("offsets.json", R"({
        "nitro_offsets": 1,
        "release": "6.1.0-56-cloud-amd64",
        "current_task": "0x1fb80",
        "task_struct": {"pid": 2456, "tgid": 2460, "comm": 3008, "real_parent": 2472,
                        "mm": {"offset": 2328, "size": 8}, "tasks": 2240},
        "mm_struct": {"pgd": 80},
        "symbols": {"init_task": "0xffffffff82a1aa40"}
    })");
    const KernelProfile p = load_profile_file(path);
    EXPECT_EQ(p.task_struct.pid.offset, 2456u);
    EXPECT_EQ(p.task_struct.pid.size, 4u);
    EXPECT_EQ(p.task_struct.comm.size, 16u);
    EXPECT_EQ(p.task_struct.tasks.size, 16u);
    EXPECT_EQ(p.task_struct.size, 3008u + 16);  // the furthest member's end
    EXPECT_FALSE(p.task_struct.signal.valid);
    EXPECT_EQ(p.mm_struct.pgd.offset, 80u);
    EXPECT_EQ(p.current_task_percpu, 0x1fb80u);
    EXPECT_EQ(p.symbols.at("init_task"), 0xffffffff82a1aa40ULL);
    EXPECT_EQ(p.release, "6.1.0-56-cloud-amd64");
    // Defaults: the x86-64 ptrace layout of pt_regs, list_head {next, prev}.
    EXPECT_EQ(p.pt_regs.size, 168u);
    EXPECT_EQ(p.pt_regs.orig_ax.offset, 120u);
    EXPECT_EQ(p.pt_regs.di.offset, 112u);
    EXPECT_EQ(p.list_head.prev.offset, 8u);
}

TEST_F(ProfileFiles, OffsetsErrorsSayWhat) {
    auto expect_error = [&](const std::string& text, const std::string& needle) {
        const std::string path = write("bad.json", text);
        try {
            load_profile_file(path);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error(
        R"({"nitro_offsets": 1, "task_struct": {"pid": 1, "tgid": 5, "comm": 9, "real_parent": 32}})",
        "current_task");
    expect_error(R"({"nitro_offsets": 1, "current_task": 8, "task_struct": {"pid": "abc"}})",
                 "task_struct.pid");
    expect_error(R"({"nitro_offsets": 2})", "\"nitro_offsets\" must be 1");
    expect_error(R"({"nitro_offsets": 1, "current_task": 8, "task_struct": {"pid": 0}})",
                 "required");
    expect_error(R"({"something": "else"})", "not a kernel profile");
    expect_error("{", "not valid JSON");
    expect_error(R"({"nitro_offsets": 1, "current_task": 8, "task_struct": {"pid": 99999999999}})",
                 "implausible");
}

}  // namespace
}  // namespace nitro::linux_os
