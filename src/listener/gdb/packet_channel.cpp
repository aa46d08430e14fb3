// SPDX-License-Identifier: MIT
#include "listener/gdb/packet_channel.h"

#include <array>
#include <utility>

#include "nitro/error.h"
#include "nitro/log.h"

namespace nitro::gdb {

namespace {

constexpr std::size_t kMaxNotifications = 64;

}  // namespace

PacketChannel::PacketChannel(Socket socket, ChannelOptions options)
    : socket_(std::move(socket)), options_(options), scanner_(options.max_packet) {}

void PacketChannel::write(std::string_view bytes) {
    socket_.write_all(bytes, deadline_after(options_.timeout));
}

std::optional<Frame> PacketChannel::next_frame(Deadline deadline) {
    for (;;) {
        if (auto f = scanner_.next()) return f;
        std::array<char, 65536> buf;
        auto n = socket_.read_some(buf, deadline);
        if (!n) return std::nullopt;
        if (*n == 0) {
            bool cut = scanner_.in_frame();
            socket_.close();
            if (cut) fail("gdb: {} closed the connection in the middle of a packet", peer());
            fail("gdb: {} closed the connection", peer());
        }
        scanner_.feed(std::string_view(buf.data(), *n));
    }
}

void PacketChannel::keep_notification(const Frame& frame) {
    if (!frame.checksum_ok) return;  // notifications are never acknowledged, so never resent
    log::debug("gdb {} notification: {}", peer(), describe(frame.payload));
    if (notifications_.size() == kMaxNotifications) notifications_.pop_front();
    notifications_.push_back(frame.payload);
}

void PacketChannel::send(std::string_view payload) {
    if (payload.size() > options_.max_packet)
        fail("gdb: packet '{}' exceeds {} bytes", describe(payload), options_.max_packet);
    std::string framed = frame_packet(payload);
    log::debug("gdb -> {}", describe(payload));
    for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
        write(framed);
        if (!ack_mode_) return;
        Deadline deadline = deadline_after(options_.timeout);
        for (bool nak = false; !nak;) {
            auto f = next_frame(deadline);
            if (!f)
                fail("gdb: {}: no acknowledgement for '{}' within {} ms", peer(), describe(payload),
                     options_.timeout.count());
            switch (f->kind) {
                case Frame::Kind::Ack:
                    return;
                case Frame::Kind::Nak:
                    nak = true;
                    break;
                case Frame::Kind::Notification:
                    keep_notification(*f);
                    break;
                case Frame::Kind::Packet:
                    // A late reply to an earlier request whose ack was lost; GDB drops it too.
                    log::debug("gdb {}: dropping unexpected packet '{}' while awaiting an ack",
                               peer(), describe(f->payload));
                    if (f->checksum_ok) write("+");
                    break;
            }
        }
        log::debug("gdb {}: '{}' rejected, retransmitting", peer(), describe(payload));
    }
    fail("gdb: {} rejected '{}' {} times", peer(), describe(payload), options_.max_retries + 1);
}

std::optional<std::string> PacketChannel::receive_until(Deadline deadline) {
    int bad = 0;
    for (;;) {
        auto f = next_frame(deadline);
        if (!f) return std::nullopt;
        if (f->kind == Frame::Kind::Ack || f->kind == Frame::Kind::Nak) continue;
        if (f->kind == Frame::Kind::Notification) {
            keep_notification(*f);
            continue;
        }
        if (!f->checksum_ok) {
            if (!ack_mode_) fail("gdb: {} sent a packet with a bad checksum", peer());
            if (++bad > options_.max_retries)
                fail("gdb: {} sent {} packets with bad checksums in a row", peer(), bad);
            write("-");
            continue;
        }
        if (ack_mode_) {
            // A stub that exits sends its last packet (QEMU: "W00") and closes at once: the
            // packet arrived intact, so it is delivered; the next send reports the closed peer.
            try {
                write("+");
            } catch (const Error& e) {
                log::debug("gdb: cannot acknowledge the last packet: {}", e.what());
            }
        }
        std::string payload = rle_decode(f->payload, options_.max_packet);
        log::debug("gdb <- {}", describe(payload));
        return payload;
    }
}

std::string PacketChannel::receive(std::string_view what) {
    auto p = receive_until(deadline_after(options_.timeout));
    if (!p)
        fail("gdb: {}: no reply to '{}' within {} ms", peer(), describe(what),
             options_.timeout.count());
    return std::move(*p);
}

std::string PacketChannel::request(std::string_view payload) {
    send(payload);
    return receive(payload);
}

void PacketChannel::send_interrupt() {
    log::debug("gdb -> interrupt");
    write(std::string_view("\x03", 1));
}

}  // namespace nitro::gdb
