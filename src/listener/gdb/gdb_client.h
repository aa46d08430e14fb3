// SPDX-License-Identifier: MIT
// A GDB remote serial protocol client for QEMU's gdbstub: registers (by name, from the target
// description), memory, breakpoints, threads (vCPUs), resume/step and stop replies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "listener/gdb/packet_channel.h"
#include "listener/gdb/socket.h"
#include "listener/gdb/stop_reply.h"
#include "listener/gdb/target_description.h"

namespace nitro::gdb {

struct ClientOptions {
    Millis timeout{2000};                        // per reply
    std::size_t max_packet = kDefaultMaxPacket;  // bound on anything the stub sends
    int max_retries = 3;                         // retransmissions on '-'
    bool no_ack = true;                          // ask for QStartNoAckMode when offered
};

/// What the stub said in reply to qSupported and vCont?.
struct StubFeatures {
    std::size_t packet_size = 0;  // PacketSize=, 0 when not given
    bool xfer_features = false;   // qXfer:features:read+
    bool no_ack_mode = false;     // QStartNoAckMode+
    bool multiprocess = false;
    bool vcont_supported = false;  // vContSupported+
    bool swbreak = false;
    bool hwbreak = false;
    bool vcont_continue = false;             // vCont? lists c
    bool vcont_step = false;                 // vCont? lists s
    std::map<std::string, std::string> all;  // every feature: "+", "-", "?" or its value
};

/// Z/z packet types.
enum class BreakpointType {
    Software = 0,
    Hardware = 1,
    WriteWatch = 2,
    ReadWatch = 3,
    AccessWatch = 4
};

class GdbClient {
  public:
    /// Connects ("unix:/path" or "host:port") and runs handshake().
    static std::unique_ptr<GdbClient> connect(std::string_view endpoint,
                                              ClientOptions options = {});
    /// Wraps a connected socket; call handshake() before anything else.
    explicit GdbClient(Socket socket, ClientOptions options = {});

    /// qSupported, no-ack negotiation, vCont?, then the target description (or a fallback).
    void handshake();
    const StubFeatures& features() const { return features_; }
    const RegisterMap& registers() const { return *map_; }
    std::shared_ptr<const RegisterMap> register_map() const { return map_; }
    /// One file of the target description via qXfer:features:read.
    std::string read_feature_file(const std::string& annex);

    /// All registers of the selected thread ('g').
    RegisterFile read_registers();
    /// One register ('p', or 'g' when the stub lacks 'p'); at most 64 bits.
    std::uint64_t read_register(std::string_view name);
    std::vector<std::uint8_t> read_register_bytes(const RegisterInfo& reg);
    void write_register(std::string_view name, std::uint64_t value);

    /// Reads guest virtual memory ('m'), in chunks that fit the stub's packet size.
    std::vector<std::uint8_t> read_memory(std::uint64_t address, std::size_t length);
    void write_memory(std::uint64_t address, std::span<const std::uint8_t> data);
    /// Reads up to out.size() bytes, page by page, and returns how many were read before the
    /// first unreadable byte (an error reply is not an exception here: guest pointers are often
    /// bad). Malformed or oversized replies still throw.
    std::size_t read_memory_some(std::uint64_t address, std::span<std::uint8_t> out);

    void insert_breakpoint(BreakpointType type, std::uint64_t address, int kind = 1);
    void remove_breakpoint(BreakpointType type, std::uint64_t address, int kind = 1);

    /// qfThreadInfo/qsThreadInfo.
    std::vector<ThreadId> threads();
    /// Hg (registers/memory) or Hc (old-style step/continue).
    void select_thread(ThreadId thread, char op = 'g');

    /// '?': why the target is stopped.
    StopReply query_stop();
    /// Resumes all threads (vCont;c or c) without waiting.
    void resume();
    /// Resumes one thread only (vCont;c:tid), the others stay stopped; needs vCont.
    void resume_thread(ThreadId thread);
    /// Steps one thread (vCont;s:tid, or Hc + s) without waiting.
    void resume_step(std::optional<ThreadId> thread = std::nullopt);
    /// resume_step() and wait for the stop reply.
    StopReply step(std::optional<ThreadId> thread = std::nullopt);
    /// After resume: the stop reply, or nullopt when the timeout passes first. Console output
    /// ('O' packets) on the way is logged and skipped.
    std::optional<StopReply> wait_for_stop(Millis timeout);
    /// Sends the interrupt byte; wait_for_stop() then returns the stop.
    void interrupt();
    bool running() const { return running_; }

    /// Detaches ('D'): the target resumes and the connection closes.
    void detach();
    /// Kills the target ('k'; for QEMU this ends the VM) and closes the connection.
    void kill();

    /// Any request, for what this class does not wrap (e.g. qRcmd).
    std::string request(std::string_view packet);
    PacketChannel& channel() { return channel_; }

  private:
    void require_stopped(std::string_view what) const;
    std::string checked(std::string_view packet, std::string_view what);
    void expect_ok(std::string_view packet, std::string_view what);
    std::size_t packet_size() const;
    void parse_supported(std::string_view reply);

    PacketChannel channel_;
    ClientOptions options_;
    StubFeatures features_;
    std::shared_ptr<const RegisterMap> map_;
    bool running_ = false;
    bool p_unsupported_ = false;
};

}  // namespace nitro::gdb
