// SPDX-License-Identifier: MIT
// Hooks on the Linux backend against a synthetic guest: which calls they fire for, undefining,
// reading and writing arguments through guest memory, the register-write error, statistics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "nitro/error.h"
#include "nitro/hooks.h"
#include "nitro/syscall_table.h"
#include "os/linux/backend.h"
#include "synthetic_guest.h"

namespace nitro {
namespace {

using test::SyntheticGuest;
using ::testing::HasSubstr;

constexpr std::uint64_t kPath = SyntheticGuest::kUserBase + 0x100;
constexpr std::uint64_t kOpenat = 257, kGetpid = 39, kOpenat32 = 295;
constexpr std::uint64_t kAtFdcwd = static_cast<std::uint64_t>(-100);

// Guest memory that refuses writes, as a read-only mapping of QEMU's RAM file does.
class ReadOnlyMemory final : public PhysicalMemory {
  public:
    explicit ReadOnlyMemory(std::shared_ptr<PhysicalMemory> m) : m_(std::move(m)) {}
    MemStatus read(GuestPhys a, std::span<std::byte> out) const override {
        return m_->read(a, out);
    }
    MemStatus write(GuestPhys, std::span<const std::byte>) override { return MemStatus::ReadOnly; }
    std::uint64_t size() const override { return m_->size(); }
    std::uint64_t limit() const override { return m_->limit(); }

  private:
    std::shared_ptr<PhysicalMemory> m_;
};

class HooksTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::uint64_t init = guest_.add_task(0, 1, 1, "init", 0);
        task_ = guest_.add_task(1, 231, 231, "test_open", init);
        guest_.set_current(0, task_);
        guest_.write_user(kPath, std::string_view("/proc/cpuinfo\0", 14));
        backend_ =
            std::make_unique<linux_os::LinuxBackend>(SyntheticGuest::profile(), guest_.memory());
    }
    Event openat() { return guest_.enter(0, kOpenat, {kAtFdcwd, kPath, 0, 0, 0, 0}); }

    SyntheticGuest guest_;
    std::uint64_t task_ = 0;
    std::unique_ptr<linux_os::LinuxBackend> backend_;
};

TEST_F(HooksTest, FiresForTheRightNameAndDirection) {
    int enters = 0, exits = 0;
    std::string seen_name, seen_process;
    std::int64_t seen_ret = 0;
    backend_->define_hook(
        "openat",
        [&](Syscall& sc, ArgumentMap& args) {
            ++enters;
            seen_name = sc.name;
            seen_process = sc.process.name;
            EXPECT_EQ(args.size(), 4u);  // dirfd, pathname, flags, mode
            EXPECT_EQ(args[1], kPath);
            EXPECT_EQ(&args.event(), &args.event());
        },
        Direction::Enter);
    backend_->define_hook(
        "openat",
        [&](Syscall& sc, ArgumentMap&) {
            ++exits;
            seen_ret = sc.ret.value_or(-999);
        },
        Direction::Exit);

    backend_->process_event(guest_.enter(0, kGetpid, {}));
    EXPECT_EQ(enters + exits, 0);
    Event in = openat();
    backend_->process_event(in);
    EXPECT_EQ(enters, 1);
    EXPECT_EQ(exits, 0);
    EXPECT_EQ(seen_name, "openat");
    EXPECT_EQ(seen_process, "test_open");
    backend_->process_event(guest_.exit_of(in, 3));
    EXPECT_EQ(enters, 1);
    EXPECT_EQ(exits, 1);
    EXPECT_EQ(seen_ret, 3);
    EXPECT_EQ(backend_->stats().hooks_run, 2u);
}

TEST_F(HooksTest, NameCoversBothAbis) {
    int n = 0;
    backend_->define_hook("openat", [&](Syscall& sc, ArgumentMap&) {
        ++n;
        EXPECT_EQ(sc.abi, Abi::I386);
    });
    Event e = guest_.enter(0, kOpenat32, {0xffffff9c, kPath, 0, 0, 0, 0});
    e.compat = true;
    backend_->process_event(e);
    EXPECT_EQ(n, 1);
    // 257 in the i386 table is another call: no hook.
    Event other = guest_.enter(0, kOpenat, {});
    other.compat = true;
    backend_->process_event(other);
    EXPECT_EQ(n, 1);
}

TEST_F(HooksTest, UndefineAndRedefine) {
    int first = 0, second = 0;
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap&) { ++first; });
    backend_->process_event(openat());
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap&) { ++second; });  // replaces
    backend_->process_event(openat());
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 1);
    EXPECT_FALSE(backend_->undefine_hook("openat", Direction::Exit));
    EXPECT_TRUE(backend_->undefine_hook("openat", Direction::Enter));
    EXPECT_FALSE(backend_->undefine_hook("openat", Direction::Enter));
    EXPECT_TRUE(backend_->hooks().empty());
    backend_->process_event(openat());
    EXPECT_EQ(first + second, 2);
}

TEST_F(HooksTest, HookMayUndefineOrReplaceItself) {
    int first = 0, second = 0;
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap&) {
        ++first;
        // Replaces the running hook: it stays alive until it returns.
        backend_->define_hook("openat", [&](Syscall&, ArgumentMap&) {
            ++second;
            EXPECT_TRUE(backend_->undefine_hook("openat"));
        });
    });
    for (int i = 0; i < 3; ++i) backend_->process_event(openat());
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 1);
    EXPECT_TRUE(backend_->hooks().empty());
}

TEST_F(HooksTest, TableTracksNumbersAndGenerations) {
    HookTable t;
    EXPECT_THROW(t.define(
                     "no_such_call", [](Syscall&, ArgumentMap&) {}, Direction::Enter),
                 Error);
    EXPECT_THROW(t.define("openat", HookCallback{}, Direction::Enter), Error);
    const auto g0 = t.generation();
    t.define(
        "openat", [](Syscall&, ArgumentMap&) {}, Direction::Enter);
    t.define(
        "openat", [](Syscall&, ArgumentMap&) {}, Direction::Exit);
    t.define(
        "getpid", [](Syscall&, ArgumentMap&) {}, Direction::Exit);
    EXPECT_GT(t.generation(), g0);
    using N = std::pair<Abi, std::uint64_t>;
    EXPECT_EQ(
        t.numbers(),
        (std::vector<N>{{Abi::X86_64, 39}, {Abi::X86_64, 257}, {Abi::I386, 20}, {Abi::I386, 295}}));
    EXPECT_NE(t.find(Abi::X86_64, 39, Direction::Exit), nullptr);
    EXPECT_EQ(t.find(Abi::X86_64, 39, Direction::Enter), nullptr);
    EXPECT_EQ(t.find(Abi::X86_64, ~0ULL, Direction::Exit), nullptr);
    t.undefine("openat", Direction::Enter);
    EXPECT_EQ(t.numbers().size(), 4u);  // openat still hooked at exit
    t.undefine("openat", Direction::Exit);
    EXPECT_EQ(t.numbers(), (std::vector<N>{{Abi::X86_64, 39}, {Abi::I386, 20}}));
}

TEST_F(HooksTest, ReadsArgumentsFromMemoryAndCaptures) {
    guest_.write_user(kPath + 0x100, "abcdef");
    std::optional<std::string> from_memory, from_capture, null_arg;
    std::vector<std::byte> bytes;
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        from_memory = args.read_string(1);
        null_arg = args.read_string(2);  // flags 0 is no pointer: NULL
    });
    backend_->process_event(openat());
    EXPECT_EQ(from_memory, "/proc/cpuinfo");
    EXPECT_FALSE(null_arg);

    // Asynchronous mode: the capture is what the call saw; memory has changed since.
    Event in = openat();
    SyntheticGuest::add_capture(in, 1, CaptureKind::CString, "/etc/passwd");
    backend_->define_hook("openat", [&](Syscall& sc, ArgumentMap& args) {
        from_capture = args.read_string(1);
        EXPECT_EQ(sc.args[1].text, "\"/etc/passwd\"");
        auto r = args.read_bytes(1, 4);
        ASSERT_TRUE(r.ok());
        bytes = r.value();
        auto m = args.read_memory(GuestVirt(kPath + 0x100), 6);
        ASSERT_TRUE(m.ok());
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), m->size()), "abcdef");
        EXPECT_FALSE(args.read_memory(GuestVirt(0x7fff0000), 1).ok());  // not mapped
        EXPECT_THROW(args.value(4), Error);
    });
    backend_->process_event(in);
    EXPECT_EQ(from_capture, "/etc/passwd");
    ASSERT_EQ(bytes.size(), 4u);
    EXPECT_EQ(static_cast<char>(bytes[0]), '/');
    EXPECT_EQ(static_cast<char>(bytes[1]), 'e');
}

TEST_F(HooksTest, ReadOfUnmappedOrUnterminatedMemoryIsBounded) {
    std::optional<std::string> unmapped, cut;
    const std::uint64_t end = SyntheticGuest::kUserBase + SyntheticGuest::kUserPages * 0x1000;
    guest_.write_user(end - 4, "abcd");  // runs into the unmapped page after it
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        unmapped = args.read_string(0);
        cut = args.read_string(1, 100);
    });
    backend_->process_event(guest_.enter(0, kOpenat, {0x7fff0000, end - 4, 0, 0, 0, 0}));
    EXPECT_FALSE(unmapped);
    EXPECT_EQ(cut, "abcd");
}

TEST_F(HooksTest, WritesAreRefusedUnlessSynchronous) {
    std::string error;
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        try {
            args.write_string(1, "/proc/version");
        } catch (const Error& e) {
            error = e.what();
        }
    });
    backend_->process_event(openat());
    EXPECT_THAT(error, HasSubstr("synchronous mode"));
    EXPECT_EQ(guest_.read_user(kPath, 14), std::string("/proc/cpuinfo\0", 14));
}

TEST_F(HooksTest, WritesAStringArgumentThroughGuestMemory) {
    backend_->set_memory_writes("");
    std::string too_long, after;
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        try {
            args.write_string(1, "/proc/cpuinfo-and-more");
        } catch (const Error& e) {
            too_long = e.what();
        }
        args.write_string(1, "/proc/version");
        after = args.read_string(1).value_or("");
    });
    Syscall sc = backend_->process_event(openat());
    EXPECT_THAT(too_long, HasSubstr("overwrite what follows"));
    EXPECT_EQ(after, "/proc/version");
    EXPECT_EQ(guest_.read_user(kPath, 14), std::string("/proc/version\0", 14));
    // Shorter strings fit; the NUL ends them.
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        args.write_string(1, "/x");
        const std::byte b[] = {std::byte{'y'}};
        args.write_bytes(1, b, 1);
        EXPECT_THROW(args.write_string(2, "z"), Error);                    // NULL
        EXPECT_THROW(args.write_memory(GuestVirt(0x7fff0000), b), Error);  // not mapped
    });
    backend_->process_event(openat());
    EXPECT_EQ(guest_.read_user(kPath, 3), std::string("/y\0", 3));
}

TEST_F(HooksTest, WritesToReadOnlyMemoryFailClearly) {
    auto ro = std::make_shared<ReadOnlyMemory>(guest_.memory());
    linux_os::LinuxBackend backend(SyntheticGuest::profile(), ro);
    backend.set_memory_writes("");
    std::string error;
    backend.define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        try {
            args.write_string(1, "/proc/version");
        } catch (const Error& e) {
            error = e.what();
        }
    });
    backend.process_event(openat());
    EXPECT_THAT(error, HasSubstr("read-only"));
}

TEST_F(HooksTest, RegisterWritesGiveAClearError) {
    backend_->set_memory_writes("");
    std::string set_error, ret_error;
    backend_->define_hook("openat", [&](Syscall&, ArgumentMap& args) {
        try {
            args.set(2, 0101);
        } catch (const Error& e) {
            set_error = e.what();
        }
        try {
            args.set_return(-2);
        } catch (const Error& e) {
            ret_error = e.what();
        }
    });
    backend_->process_event(openat());
    EXPECT_THAT(set_error, HasSubstr("no register write"));
    EXPECT_THAT(set_error, HasSubstr("version 4"));
    EXPECT_THAT(ret_error, HasSubstr("no register write"));
}

TEST_F(HooksTest, HookExceptionsReachTheCaller) {
    backend_->define_hook("openat", [](Syscall&, ArgumentMap&) { fail("hook failed"); });
    EXPECT_THROW(backend_->process_event(openat()), Error);
}

TEST_F(HooksTest, Statistics) {
    // A path that was neither captured nor readable: an argument decoding error at the exit.
    Event bad = guest_.enter(0, kOpenat, {kAtFdcwd, 0x7fff0000, 0, 0, 0, 0});
    backend_->process_event(bad);
    EXPECT_EQ(backend_->stats().decode_errors, 0u);  // the exit may still read it
    backend_->process_event(guest_.exit_of(bad, -2));
    EXPECT_EQ(backend_->stats().decode_errors, 1u);
    // A readable path: no error.
    Event good = openat();
    backend_->process_event(good);
    backend_->process_event(guest_.exit_of(good, 3));
    EXPECT_EQ(backend_->stats().decode_errors, 1u);
    // An unknown number, and a process that cannot be read.
    backend_->process_event(guest_.enter(0, 999, {}));
    guest_.set_current(0, 0xffff888000abc000ULL);  // not mapped
    backend_->process_event(guest_.enter(0, kGetpid, {}));
    const BackendStats& s = backend_->stats();
    EXPECT_EQ(s.events, 6u);
    EXPECT_EQ(s.unknown_syscalls, 1u);
    EXPECT_EQ(s.process_errors, 1u);
    EXPECT_EQ(s.hooks_run, 0u);
}

}  // namespace
}  // namespace nitro
