// SPDX-License-Identifier: MIT
// strace as the oracle: each corpus program (tests/guest/corpus_*.c) runs under strace -f inside
// the test guest while nitro traces the same guest from outside, in sync mode. Both watch the
// same run, so pids, addresses and buffer contents are the same on both sides and nothing has to
// be masked: per thread, the sequence of calls (name, decoded arguments, return value) that
// nitro decodes (its jsonl records) must equal strace's. A second boot checks nitro's default,
// asynchronous mode on the calls that do not depend on the run. The comparison rules are in
// docs/decoding.md.
#include <gtest/gtest.h>

#include <cstdlib>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "decode/decode.h"
#include "nitro/syscall_table.h"
#include "test_cli_util.h"
#include "vm_fixture.h"

namespace nitro::test {
namespace {

using Json = nlohmann::json;

const std::vector<std::string> kPrograms = {"corpus_file", "corpus_io",  "corpus_mem",
                                            "corpus_proc", "corpus_net", "corpus_sig"};
const char* const kStraceLog = "/tmp/corpus.strace";

// Other guest commands instead of the corpus, ';'-separated ("ls -l /;cat /etc/passwd"), to
// compare nitro with strace on them call for call (the corpus' own checks are skipped).
const char* custom_commands() { return std::getenv("NITRO_CORPUS_COMMANDS"); }
const std::vector<std::string>& commands() {
    static const std::vector<std::string> c = [] {
        if (!custom_commands()) return kPrograms;
        std::vector<std::string> out;
        std::string all = custom_commands();
        for (std::size_t at = 0; at <= all.size();) {
            std::size_t end = all.find(';', at);
            if (end == std::string::npos) end = all.size();
            if (end > at) out.push_back(all.substr(at, end - at));
            at = end + 1;
        }
        return out;
    }();
    return c;
}

struct CorpusRun {
    CommandResult result;  // the guest console is in result.out
    std::string trace;
};

// One boot: lo up (for corpus_net), every program under strace (appending to one log), then
// the log on the console with a prefix. nitro traces it all, synchronously: the guest waits at
// each event, so what nitro reads of the guest is what the call saw. With under_strace false:
// the programs alone, traced asynchronously (nitro's default mode).
CorpusRun run_corpus(bool under_strace = true) {
    std::string cmd = "ip link set lo up";
    for (const auto& p : commands()) {
        cmd += under_strace ? "; strace -f -qq -A -o " + std::string(kStraceLog) + " " + p
                            : "; " + p;
    }
    if (under_strace) cmd += "; sed s/^/STRACE:/ " + std::string(kStraceLog);
    std::string out = ::testing::TempDir() + "/nitro-test-corpus-" + std::to_string(getpid());
    std::vector<std::string> args = {"trace", "--format", "jsonl", "--console", "-", "-o", out};
    if (under_strace) args.push_back("--sync");
    auto g = guest_args(cmd, std::getenv("NITRO_CORPUS_SMP") ? std::atoi(std::getenv("NITRO_CORPUS_SMP")) : 1);
    args.insert(args.end(), g.begin(), g.end());
    CorpusRun r{run_nitro(args, 240), {}};
    r.trace = read_file(out);
    std::remove(out.c_str());
    return r;
}

/// One completed call: "openat(AT_FDCWD, \"/x\", O_RDONLY)" and "3".
struct Call {
    std::string call;
    std::string ret;
    bool operator==(const Call&) const = default;
};
using Calls = std::map<int, std::vector<Call>>;  // by thread id

const std::string kUnfinished = " <unfinished ...>";

// "name(args)    = ret" -> {"name(args)", "ret"}: the padding strace puts before "=" is
// layout, not content.
Call split_call(const std::string& line) {
    static const std::regex re(R"(^(.*\))\s*= (.*)$)");
    std::smatch m;
    if (!std::regex_match(line, m, re)) return {line, "<no return>"};
    return {m[1], m[2]};
}

// Joins "<unfinished ...>" / "<... name resumed>" halves per thread into whole calls. A resumed
// half without its entry in the same thread (a new child's return from clone/fork, which is not
// a call of the child) is dropped; an entry never resumed (the thread was killed in the call)
// gets the return "?", as strace prints such calls.
class Joiner {
  public:
    void add(int tid, const std::string& rest) {
        if (rest.size() >= kUnfinished.size() &&
            rest.compare(rest.size() - kUnfinished.size(), kUnfinished.size(), kUnfinished) ==
                0) {
            pending_[tid] = rest.substr(0, rest.size() - kUnfinished.size());
            return;
        }
        if (rest.rfind("<... ", 0) == 0) {
            auto end = rest.find(" resumed>");
            auto it = pending_.find(tid);
            if (end == std::string::npos || it == pending_.end()) return;
            calls_[tid].push_back(split_call(it->second + rest.substr(end + 9)));
            pending_.erase(it);
            return;
        }
        calls_[tid].push_back(split_call(rest));
    }
    Calls finish() {
        for (auto& [tid, head] : pending_) calls_[tid].push_back({head + ")", "?"});
        pending_.clear();
        return std::move(calls_);
    }

  private:
    std::map<int, std::string> pending_;
    Calls calls_;
};

Calls parse_strace(const std::string& console) {
    static const std::regex re(R"(^STRACE:(\d+) +(.*)$)");
    Joiner j;
    std::istringstream in(console);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::smatch m;
        if (!std::regex_match(line, m, re)) continue;
        std::string rest = m[2];
        // Signal deliveries and exit notices are not system calls.
        if (rest.rfind("--- ", 0) == 0 || rest.rfind("+++ ", 0) == 0) continue;
        j.add(std::stoi(m[1]), rest);
    }
    return j.finish();
}

// nitro's records (jsonl) joined per call: an entry and the exit that names it (entry_vcpu,
// entry_seq). The exit's arguments are final (buffers filled in, paths read again when the
// entry could not); the call is printed as the text format prints it, in strace's argument
// order, with the return value formatted by the same code. An entry without an exit never
// returned ("?"); an exit without an entry is a new child's return from clone/fork (dropped).
// all (optional): every call in order, whatever its thread; names: the process name of each
// of them at its entry.
Calls parse_nitro(const std::string& jsonl, const std::set<int>& tids,
                  std::vector<Call>* all = nullptr, std::vector<std::string>* names = nullptr) {
    struct Pending {
        int tid;
        Json entry;
        Json exit;
    };
    std::vector<Pending> calls;
    std::map<std::pair<std::int64_t, std::int64_t>, std::size_t> by_key;
    std::istringstream in(jsonl);
    std::string line;
    while (std::getline(in, line)) {
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded() || !j["process"].is_object()) continue;
        const Json& ev = j["event"];
        if (ev["direction"] == "enter") {
            const int tid = j["process"]["tid"].get<int>();
            if (!all && !tids.count(tid)) continue;
            by_key[{ev["vcpu"].get<std::int64_t>(), ev["seq"].get<std::int64_t>()}] = calls.size();
            calls.push_back({tid, j, Json()});
            continue;
        }
        if (ev.value("unpaired", false) || !ev.contains("entry_seq")) continue;
        auto it = by_key.find({ev["entry_vcpu"].get<std::int64_t>(), ev["entry_seq"].get<std::int64_t>()});
        if (it == by_key.end()) continue;
        calls[it->second].exit = j;
        by_key.erase(it);
    }
    Calls out;
    for (const Pending& c : calls) {
        const Json& rec = c.exit.is_null() ? c.entry : c.exit;
        const std::string name = rec["name"];
        const std::uint64_t nr = rec["event"]["nr"].get<std::uint64_t>();
        const SyscallInfo* info = lookup_syscall(Abi::X86_64, nr);
        std::vector<std::string> texts;
        std::array<std::uint64_t, 6> values{};
        for (const Json& a : rec["args"]) {
            if (texts.size() < values.size()) {
                values[texts.size()] = std::stoull(a["value"].get<std::string>(), nullptr, 16);
            }
            texts.push_back(a["text"]);
        }
        std::vector<std::size_t> order;
        if (info) {
            order = decode::text_order(*info, texts.size());
        } else {
            for (std::size_t i = 0; i < texts.size(); ++i) order.push_back(i);
        }
        std::string call = name + "(";
        bool first = true;
        for (std::size_t i : order) {
            if (texts[i].empty()) continue;
            call += (first ? "" : ", ") + texts[i];
            first = false;
        }
        call += ")";
        std::string ret = "?";
        if (!c.exit.is_null() && c.exit.contains("ret")) {
            ret = decode::format_return(info, c.exit["ret"].get<std::int64_t>(), false, &values).text;
            if (c.exit.contains("ret_detail")) ret += " (" + c.exit["ret_detail"].get<std::string>() + ")";
        }
        out[c.tid].push_back({call, ret});
        if (all) all->push_back({call, ret});
        if (names) names->push_back(c.entry["process"].value("name", ""));
    }
    return out;
}

class StraceCorpus : public ::testing::Test {
  protected:
    static const CorpusRun& run() {
        static CorpusRun r = run_corpus();
        return r;
    }
    static const CorpusRun& run_async() {
        static CorpusRun r = run_corpus(false);
        return r;
    }
    void SetUp() override {
        NITRO_REQUIRE_GUEST();
        // scripts/build-guest keeps the initramfs tree beside the image.
        if (!std::filesystem::exists(std::string(NITRO_GUEST_DIR) + "/initramfs/tests/corpus_file")) {
            GTEST_SKIP() << "the test guest has no corpus programs: run scripts/build-guest again";
        }
    }
};

// Families of calls the corpus makes on purpose, each counted in strace's calls: a family
// that is no longer exercised fails the comparison test too.
struct Family {
    const char* what;
    std::size_t calls;
    bool (*in)(const Call&);
};
bool has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }
bool starts(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }
const Family kFamilies[] = {
    // clone and clone3 with CLONE_PARENT_SETTID: the TID the kernel wrote, read back.
    {"corpus_proc's clone and clone3 with CLONE_PARENT_SETTID", 2,
     [](const Call& e) { return has(e.call, "parent_tid=["); }},
    // recvmmsg's messages with the change of their address length.
    {"corpus_net's recvmmsg of two datagrams", 1,
     [](const Call& e) { return starts(e.call, "recvmmsg(") && has(e.call, "msg_namelen=20 => 16"); }},
    // A descriptor passed in a control message, sent and received.
    {"corpus_net's sendmsg and recvmsg with SCM_RIGHTS", 2,
     [](const Call& e) { return has(e.call, "cmsg_type=SCM_RIGHTS, cmsg_data=["); }},
    // Socket options by name with their values.
    {"corpus_net's setsockopt and getsockopt calls", 6,
     [](const Call& e) {
         return (starts(e.call, "setsockopt(") || starts(e.call, "getsockopt(")) && has(e.call, ", SOL_");
     }},
    // poll's and select's detail after the value: a timeout, the descriptors ready.
    {"corpus_io's poll, ppoll, select and pselect6 calls", 6,
     [](const Call& e) { return has(e.ret, "(Timeout)") || has(e.ret, "revents=") || has(e.ret, "(in ["); }},
    // epoll events registered and reported.
    {"corpus_io's epoll_ctl and epoll_wait calls with events", 4,
     [](const Call& e) { return starts(e.call, "epoll_") && has(e.call, "data={u32="); }},
    // A tracer check and a new task name, by name.
    {"corpus_proc's ptrace(PTRACE_TRACEME) and prctl(PR_SET_NAME/PR_GET_NAME)", 3,
     [](const Call& e) {
         return e.call == "ptrace(PTRACE_TRACEME)" || starts(e.call, "prctl(PR_SET_NAME, \"") ||
                starts(e.call, "prctl(PR_GET_NAME, \"");
     }},
    // reboot refused: its magic numbers and command by name or as unknown, RESTART2's string.
    {"corpus_proc's reboot calls", 3, [](const Call& e) { return starts(e.call, "reboot(") && has(e.call, "LINUX_REBOOT_"); }},
    // futex operations by name, with the arguments each uses.
    {"corpus_proc's futex calls", 7, [](const Call& e) { return starts(e.call, "futex(") && has(e.call, ", FUTEX_"); }},
    // ioctl requests by name with what they read or wrote (an int, termios, winsize).
    {"corpus_io's ioctl calls on a pipe and a pseudo-terminal", 10,
     [](const Call& e) {
         return starts(e.call, "ioctl(") && (has(e.call, ", [") || has(e.call, ", {")) &&
                !has(e.call, "{ifr_") && !has(e.call, "{ifc_");
     }},
    {"corpus_net's interface requests (struct ifreq), one failing, one setting lo's address", 8,
     [](const Call& e) { return starts(e.call, "ioctl(") && has(e.call, ", {ifr_"); }},
    // The interface list: a size query, then lo in a buffer with room for three.
    {"corpus_net's SIOCGIFCONF calls", 2,
     [](const Call& e) {
         return starts(e.call, "ioctl(") && (has(e.call, ", ifc_buf=NULL}") || has(e.call, "ifc_buf=[{ifr_name=\"lo\""));
     }},
    {"corpus_file's getdents64 and getdents calls that read the directory", 3,
     [](const Call& e) { return has(e.call, " entries */"); }},
    {"corpus_file's umask calls, a creation mode with S_IFREG, a sticky directory", 4,
     [](const Call& e) { return has(e.call, "S_ISVTX") || starts(e.call, "umask(") || has(e.call, ", 0100644)"); }},
    // File times, file systems, the system's state, groups.
    {"corpus_file's utimensat, statfs, fstatfs, sysinfo, setgroups, getgroups and syslog", 10,
     [](const Call& e) {
         return (starts(e.call, "utimensat(") && has(e.call, ", [")) || has(e.call, "{f_type=") ||
                has(e.call, "{uptime=") || (e.call.find("groups(", 1) == 3 && has(e.call, ", [")) ||
                has(e.call, " /* SYSLOG_ACTION_");
     }},
};

TEST_F(StraceCorpus, EveryProgramRanToTheEnd) {
    if (custom_commands()) GTEST_SKIP() << "NITRO_CORPUS_COMMANDS: not the corpus";
    const CorpusRun& r = run();
    ASSERT_EQ(r.result.exit_code, 0) << r.result.err;
    for (const auto& p : kPrograms) {
        // The program's own line (its write also shows in the strace log, prefixed).
        const std::regex done("(^|\n)" + p + ": done\r?\n");
        EXPECT_TRUE(std::regex_search(r.result.out, done)) << p << "\n" << r.result.out;
    }
}

TEST_F(StraceCorpus, NitroMatchesStraceCallForCall) {
    const CorpusRun& r = run();
    ASSERT_EQ(r.result.exit_code, 0) << r.result.err;
    Calls want = parse_strace(r.result.out);
    ASSERT_FALSE(want.empty()) << r.result.out;
    std::set<int> tids;
    for (const auto& [tid, calls] : want) tids.insert(tid);
    Calls got = parse_nitro(r.trace, tids);
    ASSERT_FALSE(got.empty()) << "no nitro record for strace's threads\n"
                              << r.result.err << "\n"
                              << r.trace.substr(0, 2000);

    std::size_t compared = 0, differences = 0;
    std::vector<std::size_t> family_calls(std::size(kFamilies));
    std::set<int> differing;
    std::ostringstream report;
    for (const auto& [tid, expected] : want) {
        std::vector<Call> seen = got[tid];
        // strace starts the program in a child of its own, which runs strace's code until its
        // execve: nitro sees those calls too, strace does not show them.
        if (!expected.empty() && expected.front().call.rfind("execve(", 0) == 0) {
            std::size_t k = 0;
            while (k < seen.size() && seen[k].call.rfind("execve(", 0) != 0) ++k;
            seen.erase(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(k));
        }
        const std::size_t n = std::max(expected.size(), seen.size());
        for (std::size_t i = 0; i < n; ++i) {
            const Call none{"<none>", ""};
            const Call& e = i < expected.size() ? expected[i] : none;
            const Call& s = i < seen.size() ? seen[i] : none;
            ++compared;
            for (std::size_t f = 0; f < std::size(kFamilies); ++f) family_calls[f] += kFamilies[f].in(e);
            if (e == s) continue;
            ++differences;
            differing.insert(tid);
            report << "pid " << tid << " #" << i << "\n  strace: " << e.call << " = " << e.ret
                   << "\n  nitro:  " << s.call << " = " << s.ret << "\n";
        }
    }
    // strace's own lines for the threads that differ, to see what it printed.
    std::istringstream console(r.result.out);
    for (std::string line; std::getline(console, line);) {
        for (int tid : differing) {
            if (line.rfind("STRACE:" + std::to_string(tid) + " ", 0) == 0) report << line << "\n";
        }
    }
    std::cout << compared << " calls compared, " << differences << " differences\n";
    EXPECT_EQ(differences, 0u) << differences << " of " << compared << " calls differ\n"
                               << report.str();
    if (custom_commands()) return;
    // The corpus makes a few hundred calls; a parse that found next to nothing proves nothing.
    EXPECT_GT(compared, 250u);
    for (std::size_t f = 0; f < std::size(kFamilies); ++f) {
        EXPECT_EQ(family_calls[f], kFamilies[f].calls) << kFamilies[f].what;
    }
    // + the children of corpus_proc that make calls for sure (the last one may be killed
    // before it runs).
    EXPECT_GE(tids.size(), kPrograms.size() + 4);
}

// A call whose text is the same in every run (no address, pid, random bytes or ephemeral port)
// and that asynchronous mode decodes in full.
bool run_independent(const Call& c) {
    static const std::regex address("0x[0-9a-f]{6,}");
    static const std::set<std::string> per_run = {
        "getpid", "getppid",  "gettid", "set_tid_address", "getrandom", "kill",  "tgkill",
        "tkill",  "wait4",    "clone",  "clone3",          "fork",      "vfork", "execve",
        "execveat", "sysinfo",  // uptime and free memory
        "rt_sigreturn",         // restores a result: a pid, a restarted call's number
        "ptrace"};  // PTRACE_TRACEME fails under strace only
    const std::string name = c.call.substr(0, c.call.find('('));
    if (per_run.count(name) || std::regex_search(c.call + c.ret, address)) return false;
    // The time a select left depends on the run; whether a timer's signal finds a call
    // blocked too.
    if (c.ret.find("left {") != std::string::npos || c.ret.find("ERESTART") != std::string::npos) return false;
    // Credentials passed in a control message name the sender's pid.
    if (c.call.find("cmsg_data={pid=") != std::string::npos) return false;
    // The peer of an accepted TCP connection has an ephemeral port.
    if (name.rfind("accept", 0) == 0 && c.call.find("AF_INET") != std::string::npos) return false;
    return true;
}

// nitro's default, asynchronous mode decodes from what the plugin captured at the event. Without
// strace in the guest, in another boot: every call of the strace run above that does not depend
// on the run must show up, decoded the same, in the same order, in nitro's records, and (but
// for the execve that starts it) be made by a process of the program's name: the plugin copies
// the task's name at the event, which the next program's exec would otherwise have replaced.
TEST_F(StraceCorpus, AsynchronousModeDecodesTheSameCalls) {
    if (custom_commands()) GTEST_SKIP() << "NITRO_CORPUS_COMMANDS: not the corpus";
    const CorpusRun& oracle = run();
    ASSERT_EQ(oracle.result.exit_code, 0) << oracle.result.err;
    const CorpusRun& r = run_async();
    ASSERT_EQ(r.result.exit_code, 0) << r.result.err;
    Calls want = parse_strace(oracle.result.out);
    std::vector<Call> seen;
    std::vector<std::string> names;
    parse_nitro(r.trace, {}, &seen, &names);

    std::size_t checked = 0, k = 0;
    std::ostringstream report;
    for (const auto& program : kPrograms) {
        if (program == "corpus_proc") continue;  // its children's calls are all per-run
        // The program's main thread under strace: the one whose first call executes it.
        const std::vector<Call>* expected = nullptr;
        for (const auto& [tid, calls] : want) {
            const std::string exec = "execve(\"/tests/" + program + "\"";
            if (!calls.empty() && calls.front().call.rfind(exec, 0) == 0) expected = &calls;
        }
        ASSERT_NE(expected, nullptr) << program;
        for (const Call& c : *expected) {
            if (!run_independent(c)) continue;
            ++checked;
            std::size_t at = k;
            const bool is_exec = c.call.rfind("execve(", 0) == 0;
            while (at < seen.size() && !(seen[at] == c && (is_exec || names[at] == program))) ++at;
            if (at == seen.size()) {
                report << program << ": not found in order: " << c.call << " = " << c.ret << "\n";
                continue;
            }
            k = at + 1;
        }
    }
    EXPECT_EQ(report.str(), "");
    std::cout << checked << " run-independent calls checked in asynchronous mode\n";
    EXPECT_GE(checked, 140u);
}

}  // namespace
}  // namespace nitro::test
