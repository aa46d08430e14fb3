// SPDX-License-Identifier: MIT
// Packets over a socket: framing, '+'/'-' acknowledgements with bounded retransmission,
// no-ack mode, notifications and the out-of-band interrupt byte.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "listener/gdb/rsp_codec.h"
#include "listener/gdb/socket.h"

namespace nitro::gdb {

struct ChannelOptions {
    Millis timeout{2000};                        // per reply, per acknowledgement
    std::size_t max_packet = kDefaultMaxPacket;  // raw and expanded payload bound
    int max_retries = 3;                         // retransmissions after '-', and '-' we send
};

class PacketChannel {
  public:
    explicit PacketChannel(Socket socket, ChannelOptions options = {});

    /// Sends one packet (payload already escaped if binary). In ack mode, waits for '+' and
    /// retransmits after '-' up to max_retries times.
    void send(std::string_view payload);
    /// Waits up to the configured timeout for the next packet and returns its payload with
    /// run-length encoding expanded. `what` names the request in error messages.
    std::string receive(std::string_view what);
    /// Like receive(), but returns nullopt when the deadline passes first. Partial data stays
    /// buffered for the next call.
    std::optional<std::string> receive_until(Deadline deadline);
    /// send() then receive().
    std::string request(std::string_view payload);
    /// The out-of-band interrupt (0x03), which is not a packet and is never acknowledged.
    void send_interrupt();

    bool ack_mode() const { return ack_mode_; }
    void set_ack_mode(bool on) { ack_mode_ = on; }
    /// Notification payloads ("Stop:T05...") seen so far; bounded, oldest dropped.
    std::deque<std::string>& notifications() { return notifications_; }
    const ChannelOptions& options() const { return options_; }
    void set_timeout(Millis timeout) { options_.timeout = timeout; }
    const std::string& peer() const { return socket_.peer(); }
    bool is_open() const { return socket_.is_open(); }
    void close() { socket_.close(); }

  private:
    std::optional<Frame> next_frame(Deadline deadline);
    void write(std::string_view bytes);
    void keep_notification(const Frame& frame);

    Socket socket_;
    ChannelOptions options_;
    FrameScanner scanner_;
    bool ack_mode_ = true;
    std::deque<std::string> notifications_;
};

}  // namespace nitro::gdb
