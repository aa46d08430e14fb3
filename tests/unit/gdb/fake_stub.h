// SPDX-License-Identifier: MIT
// A scripted gdbstub for unit tests: a thread on one end of a socketpair that plays a list of
// steps (expect this packet, send that reply, stall, hang up) and records every deviation.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "listener/gdb/socket.h"
#include "nitro/error.h"

namespace nitro::gdb::testing {

/// The message of the nitro::Error that body throws, or "(no error)".
inline std::string error_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

class FakeStub {
  public:
    FakeStub();
    ~FakeStub();
    FakeStub(const FakeStub&) = delete;
    FakeStub& operator=(const FakeStub&) = delete;

    /// The client's end of the connection (call once).
    Socket take_client_socket();

    // Script steps, played in order once start() is called.
    /// Reads one packet; its payload must equal `payload`. Acks it in ack mode.
    FakeStub& expect(std::string payload);
    /// Reads one packet that must start with `prefix`.
    FakeStub& expect_prefix(std::string prefix);
    /// Reads one packet (must equal `payload`) and answers '-' instead of '+'.
    FakeStub& expect_and_nak(std::string payload);
    /// Sends "$payload#cs" exactly as given (so the payload may hold RLE), then in ack mode
    /// waits for '+'.
    FakeStub& reply(std::string payload);
    /// Sends a packet with a wrong checksum and expects '-' (ack mode only).
    FakeStub& reply_bad_checksum(std::string payload);
    /// Sends bytes as they are, waiting for nothing.
    FakeStub& send_raw(std::string bytes);
    /// Reads exactly these bytes.
    FakeStub& expect_raw(std::string bytes);
    /// Nothing may arrive for this long.
    FakeStub& expect_silence(std::chrono::milliseconds ms);
    /// Serves qXfer:features:read requests for one annex until it has sent the last chunk.
    FakeStub& serve_xfer(std::string annex, std::string content);
    FakeStub& pause(std::chrono::milliseconds ms);
    /// From here on, no '+'/'-' either way.
    FakeStub& no_ack();
    FakeStub& hang_up();

    void start();
    /// Waits for the script to end and returns what went wrong (empty when all went as scripted).
    std::vector<std::string> finish();

  private:
    struct Step {
        enum class Op {
            Expect,
            ExpectPrefix,
            ExpectNak,
            Reply,
            ReplyBad,
            SendRaw,
            ExpectRaw,
            Silence,
            Xfer,
            Pause,
            NoAck,
            HangUp
        };
        Op op;
        std::string a;
        std::string b;
        std::chrono::milliseconds ms{0};
    };

    void run();
    bool play(const Step& step);
    bool read_byte(char& c, std::chrono::milliseconds timeout);
    bool read_packet(std::string& payload);
    bool write(const std::string& bytes);
    bool wait_ack(char want);
    bool error(std::string what);

    int stub_fd_ = -1;
    int client_fd_ = -1;
    bool ack_ = true;
    std::vector<Step> steps_;
    std::thread thread_;
    std::mutex mu_;
    std::vector<std::string> errors_;
};

/// A QEMU-like x86-64 target description: target.xml includes core64.xml (general, segment,
/// base, x87 and SSE registers, with commented-out registers as in QEMU's file) and sys64.xml
/// (control registers and efer, numbered from 70 so that they follow a gap).
std::map<std::string, std::string> x86_64_description();

}  // namespace nitro::gdb::testing
