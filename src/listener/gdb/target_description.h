// SPDX-License-Identifier: MIT
// The stub's registers, read from its target description XML: name, number, size and place in
// the 'g' packet. Nothing is hard-coded unless the stub offers no description at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace nitro::gdb {

/// One tag of an XML document: enough of XML for target descriptions.
struct XmlTag {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;
    bool closing = false;       // </name>
    bool self_closing = false;  // <name .../>
    std::string text;           // character data after the tag, up to the next markup

    const std::string* attribute(std::string_view key) const;
};

/// Scans tags and their attributes, skipping comments, processing instructions and DOCTYPE.
/// Throws nitro::Error on unterminated or garbled markup.
std::vector<XmlTag> scan_xml_tags(std::string_view xml);

struct RegisterInfo {
    std::string name;
    int regnum = 0;
    int bitsize = 0;
    std::size_t offset = 0;  // byte offset in the 'g' reply
    std::string feature;     // e.g. org.gnu.gdb.i386.core
    std::string group;

    std::size_t size() const { return static_cast<std::size_t>(bitsize) / 8; }
};

class RegisterMap {
  public:
    /// Fetches an annex's XML; used to follow <xi:include href="..."/>.
    using Fetch = std::function<std::string(const std::string& annex)>;

    /// Builds the map from "target.xml" and the files it includes (fetched through `fetch`).
    static RegisterMap from_target_xml(const Fetch& fetch, const std::string& root = "target.xml");
    /// QEMU's x86-64 layout, for a stub that offers no target description.
    static RegisterMap x86_64_fallback();

    /// Adds a register; call finish() when all are added.
    void add(RegisterInfo reg);
    /// Sorts by register number and assigns 'g' offsets. Throws on duplicates.
    void finish();

    const RegisterInfo* find(std::string_view name) const;
    /// Throws nitro::Error naming the register when absent.
    const RegisterInfo& at(std::string_view name) const;
    const RegisterInfo* by_number(int regnum) const;
    const std::vector<RegisterInfo>& registers() const { return regs_; }
    /// Size in bytes of a 'g' reply that holds every register.
    std::size_t g_size() const { return g_size_; }
    const std::string& architecture() const { return architecture_; }
    bool empty() const { return regs_.empty(); }

  private:
    std::vector<RegisterInfo> regs_;
    std::unordered_map<std::string, std::size_t> by_name_;
    std::unordered_map<int, std::size_t> by_number_;
    std::size_t g_size_ = 0;
    std::string architecture_;
};

/// Little-endian bytes to a number (x86 targets); at most 8 bytes.
std::uint64_t le_to_u64(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> u64_to_le(std::uint64_t value, std::size_t size);

/// All registers as returned by one 'g' packet.
class RegisterFile {
  public:
    RegisterFile(std::shared_ptr<const RegisterMap> map, std::vector<std::uint8_t> bytes,
                 std::vector<bool> known);

    /// True when the register exists and the stub sent all its bytes.
    bool available(std::string_view name) const;
    /// The value of a register of at most 64 bits; throws when unknown or unavailable.
    std::uint64_t get(std::string_view name) const;
    std::optional<std::uint64_t> try_get(std::string_view name) const;
    /// The raw bytes of any register (e.g. 128-bit xmm); throws when unknown or unavailable.
    std::span<const std::uint8_t> raw(std::string_view name) const;
    const std::vector<std::uint8_t>& bytes() const { return bytes_; }
    const RegisterMap& map() const { return *map_; }

  private:
    std::shared_ptr<const RegisterMap> map_;
    std::vector<std::uint8_t> bytes_;
    std::vector<bool> known_;  // per byte: false where the stub sent "xx" or nothing
};

}  // namespace nitro::gdb
