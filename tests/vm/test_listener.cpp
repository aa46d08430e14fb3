// SPDX-License-Identifier: MIT
// The TCG listener against the real test guest: exact counts, entry/exit pairing across vCPUs,
// strace inside the guest as the oracle, 32-bit entries, and raw output formats.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <set>
#include <fstream>
#include <sstream>

#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Json = nlohmann::json;

std::vector<Json> parse_jsonl(const std::string& text) {
    std::vector<Json> v;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) v.push_back(Json::parse(line));
    }
    return v;
}

uint64_t hex(const Json& j) { return std::stoull(j.get<std::string>(), nullptr, 16); }

struct Counted {
    int entries = 0;
    int exits = 0;
    int paired = 0;
    std::set<int> vcpus;
    std::set<std::string> types;
};

// Events of syscall nr (in abi) grouped by address space (cr3 without PCID/KPTI bits), with
// every exit checked against the entry it names.
std::map<uint64_t, Counted> count_by_space(const std::vector<Json>& events, const std::string& abi,
                                           int nr) {
    std::map<std::pair<int, uint64_t>, uint64_t> open_entries;  // (vcpu, seq) -> space
    std::map<uint64_t, Counted> out;
    for (const auto& rec : events) {
        const auto& e = rec["event"];
        if (e["abi"] != abi || e["nr"] != nr) continue;
        uint64_t space = hex(e["cr3"]) & ~0x1fffULL;
        auto& c = out[space];
        c.vcpus.insert(e["vcpu"].get<int>());
        c.types.insert(e["type"].get<std::string>());
        if (e["direction"] == "enter") {
            c.entries++;
            open_entries[{e["vcpu"].get<int>(), e["seq"].get<uint64_t>()}] = space;
        } else {
            c.exits++;
            auto it = open_entries.find({e["entry_vcpu"].get<int>(), e["entry_seq"].get<uint64_t>()});
            // execve's exit is in the new address space: pair by (vCPU, seq) alone.
            if (it != open_entries.end()) {
                c.paired++;
                open_entries.erase(it);  // each entry pairs once
            }
        }
    }
    return out;
}

struct Traced {
    CommandResult run;  // the guest console is in run.out
    std::vector<Json> events;
};

// Boots the guest running cmd under `nitro trace --nobackend`; events go to a file.
Traced trace_raw(const std::string& cmd, int smp, const std::string& format = "jsonl") {
    static int counter = 0;
    std::string out = ::testing::TempDir() + "/nitro-test-events-" + std::to_string(getpid()) +
                      "-" + std::to_string(counter++);
    std::vector<std::string> args = {"trace", "--nobackend", "--format", format, "--console", "-",
                                     "-o", out};
    auto g = guest_args(cmd, smp);
    args.insert(args.end(), g.begin(), g.end());
    Traced t{run_nitro(args, 300), {}};
    std::ifstream f(out);
    std::stringstream text;
    text << f.rdbuf();
    if (format == "jsonl") {
        t.events = parse_jsonl(text.str());
    } else {
        t.events.push_back(Json::parse(text.str()));
    }
    std::remove(out.c_str());
    return t;
}

// Entries and exits of syscall nr in abi over the whole trace.
Counted count_all(const std::vector<Json>& events, const std::string& abi, int nr) {
    Counted total;
    for (const auto& [space, c] : count_by_space(events, abi, nr)) {
        total.entries += c.entries;
        total.exits += c.exits;
        total.paired += c.paired;
        total.vcpus.insert(c.vcpus.begin(), c.vcpus.end());
        total.types.insert(c.types.begin(), c.types.end());
    }
    return total;
}

class CountedSyscalls : public ::testing::TestWithParam<int> {};

// A program that makes exactly N gettid calls (a call nothing else in the guest makes) over
// four threads yields exactly N entries and N exits, each exit paired with its own entry,
// whatever the number of vCPUs. With several vCPUs the threads should also land on more than
// one; where they run is the guest scheduler's choice, though, and with the VM tests two at a
// time on this 2-core host all four ran on one vCPU of two now and then (twice in about 15 CI
// runs; the counts were exact). So a run is repeated, up to three times, until its threads
// ran on two vCPUs; every run's counts are checked.
TEST_P(CountedSyscalls, ExactlyNEntriesAndPairedExits) {
    NITRO_REQUIRE_GUEST();
    int smp = GetParam();
    const int n = smp > 1 ? 12000 : 3000;
    std::set<int> vcpus;
    for (int run = 0; run < 3 && vcpus.size() < (smp > 1 ? 2u : 1u); run++) {
        auto t = trace_raw("test_count gettid " + std::to_string(n) + " 4", smp);
        ASSERT_EQ(t.run.exit_code, 0) << t.run.err;
        ASSERT_NE(t.run.out.find("test_count: gettid x " + std::to_string(n) + " in 4 thread(s)"),
                  std::string::npos);
        Counted c = count_all(t.events, "x86_64", 186);
        EXPECT_EQ(c.entries, n) << "run " << run;
        EXPECT_EQ(c.exits, n) << "run " << run;
        EXPECT_EQ(c.paired, n) << "run " << run;
        EXPECT_EQ(c.types, std::set<std::string>{"syscall"});
        vcpus = c.vcpus;
    }
    if (smp > 1) {
        EXPECT_GT(vcpus.size(), 1u) << "in three runs the threads never ran on another vCPU";
    }
}

INSTANTIATE_TEST_SUITE_P(Smp, CountedSyscalls, ::testing::Values(1, 2, 4),
                         [](const auto& info) { return "smp" + std::to_string(info.param); });

// strace in the same guest is the oracle for the count. Under strace the traced program's
// calls also stop in ptrace; nitro must still see each exactly once. sched_yield: nothing else in
// the guest calls it (strace's child calls gettid in raise(), static glibc calls uname).
TEST(Listener, MatchesStraceCount) {
    NITRO_REQUIRE_GUEST();
    auto t = trace_raw(
        "strace -f -qq -e trace=sched_yield -o /tmp/st test_count sched_yield 200 2; "
        "echo STRACE-COUNT $(grep -v resumed /tmp/st | grep -c sched_yield)",
        2);
    ASSERT_EQ(t.run.exit_code, 0) << t.run.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(t.run.out, m, std::regex("STRACE-COUNT ([0-9]+)"))) << t.run.out;
    int strace_count = std::stoi(m[1]);
    EXPECT_EQ(strace_count, 200);
    // Address spaces are reused by later processes, so look for the one with the count.
    bool found = false;
    for (const auto& [space, c] : count_by_space(t.events, "x86_64", 24)) {
        if (c.entries != strace_count) continue;
        found = true;
        EXPECT_EQ(c.exits, strace_count);
        EXPECT_EQ(c.paired, strace_count);
    }
    EXPECT_TRUE(found) << "no address space with " << strace_count << " sched_yield calls";
}

// execve returns through iret into a new address space and TLS: its exit is still reported
// once, paired with its entry (by vCPU), for every program the guest starts.
TEST(Listener, ExecveExitsThroughIretArePaired) {
    NITRO_REQUIRE_GUEST();
    auto t = trace_raw("test_open; test_write; test_unlink", 1);
    ASSERT_EQ(t.run.exit_code, 0) << t.run.err;
    Counted c = count_all(t.events, "x86_64", 59);
    EXPECT_GE(c.entries, 3);
    EXPECT_EQ(c.exits, c.entries);
    EXPECT_EQ(c.paired, c.entries);
    // The shell's PATH search fails (ENOENT, through sysret) before each successful execve.
    int iret_success = 0;
    for (const auto& rec : t.events) {
        const auto& e = rec["event"];
        if (e["direction"] == "exit" && e["nr"] == 59 && e["exit"] == "iret" && e["rax"] == "0x0") {
            iret_success++;
        }
    }
    EXPECT_GE(iret_success, 3);
}

// 32-bit programs enter through the compat paths (sysenter, syscall from compat mode, int 0x80).
TEST(Listener, ThirtyTwoBitProgramUsesCompatAbi) {
    NITRO_REQUIRE_GUEST();
    auto t = trace_raw("test_count_32 gettid 500", 1);
    ASSERT_EQ(t.run.exit_code, 0) << t.run.err;
    Counted c = count_all(t.events, "i386", 224);  // gettid in the i386 table
    EXPECT_EQ(c.entries, 500);
    EXPECT_EQ(c.paired, 500);
    for (const auto& type : c.types) {
        EXPECT_TRUE(type == "sysenter" || type == "int80" || type == "syscall") << type;
    }
}

// The json format is one complete array, the original's -o events.json.
TEST(Listener, JsonFormatIsOneArray) {
    NITRO_REQUIRE_GUEST();
    auto t = trace_raw("test_open", 1, "json");
    ASSERT_EQ(t.run.exit_code, 0) << t.run.err;
    ASSERT_EQ(t.events.size(), 1u);
    const Json& all = t.events[0];
    ASSERT_TRUE(all.is_array());
    ASSERT_GT(all.size(), 10u);
    for (const char* key : {"vcpu", "type", "direction", "cr3", "rax", "time"}) {
        EXPECT_TRUE(all[0]["event"].contains(key)) << key;
    }
}

}  // namespace
}  // namespace nitro::test
