// SPDX-License-Identifier: MIT
// QEMU's side of the start of a gdb session, scripted on a FakeStub, and a client that has
// completed it: shared by the client's and the listener's tests.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "fake_stub.h"
#include "listener/gdb/gdb_client.h"

namespace nitro::gdb::testing {

inline constexpr const char* kSupported =
    "qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386";

struct Handshake {
    std::string packet_size = "1000";
    bool offer_no_ack = true;
    bool xml = true;
    bool vcont = true;
};

// QEMU's side of a handshake, with the test target description.
inline void script_handshake(FakeStub& s, const Handshake& h = {}) {
    std::string features = "PacketSize=" + h.packet_size + ";vContSupported+;multiprocess+";
    if (h.xml) features += ";qXfer:features:read+";
    if (h.offer_no_ack) features += ";QStartNoAckMode+";
    s.expect(kSupported).reply(features);
    if (h.offer_no_ack) s.expect("QStartNoAckMode").reply("OK").no_ack();
    s.expect("vCont?").reply(h.vcont ? "vCont;c;C;s;S" : "");
    if (h.xml) {
        auto files = x86_64_description();
        s.serve_xfer("target.xml", files["target.xml"])
            .serve_xfer("core64.xml", files["core64.xml"])
            .serve_xfer("sys64.xml", files["sys64.xml"]);
    }
}

// A client connected to the stub, which starts serving its script, after the handshake.
inline std::unique_ptr<GdbClient> start(FakeStub& stub,
                                        Millis timeout = std::chrono::milliseconds(1000)) {
    auto client = std::make_unique<GdbClient>(stub.take_client_socket(),
                                              ClientOptions{timeout, kDefaultMaxPacket, 3, true});
    stub.start();
    client->handshake();
    return client;
}

}  // namespace nitro::gdb::testing
