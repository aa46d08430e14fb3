// SPDX-License-Identifier: MIT
// What `nitro prepare` changes in a libvirt domain definition, as pure functions on the XML
// text (unit-tested without libvirt): shared file memory backing, nitro's TCG plugin on QEMU's
// command line (<qemu:commandline>), <acpi/> for QEMU 10, and the original definition saved in
// the domain's <metadata> so that `nitro prepare --undo` can restore it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace nitro::vm {

/// XML namespace of nitro's metadata element in a domain definition.
inline constexpr const char* kNitroMetadataNs = "https://github.com/kvm-vmi/nitro/prepare/1";
/// XML namespace of libvirt's QEMU command-line passthrough.
inline constexpr const char* kQemuNs = "http://libvirt.org/schemas/domain/qemu/1.0";

struct PrepareSettings {
    std::string plugin;    ///< absolute path of libnitro-tcg.so
    std::string ctl;       ///< the plugin's control file (ctl=)
    bool add_acpi = true;  ///< add <features><acpi/> when missing (QEMU 10 with libvirt 9)
};

struct PreparedXml {
    std::string xml;                   ///< the new definition, to give to virDomainDefineXML
    std::vector<std::string> changes;  ///< one line per change, for the user
};

/// The definition `original` prepared for nitro. If `original` is already prepared, the
/// preparation is redone from the definition saved in it (so the saved original stays the
/// first one). Throws nitro::Error on XML that cannot be parsed.
PreparedXml prepare_domain_xml(const std::string& original, const PrepareSettings& settings);

/// The original definition saved by prepare_domain_xml, if `xml` is prepared.
std::optional<std::string> saved_original_xml(const std::string& xml);

/// nitro's plugin as a domain definition loads it (from <qemu:commandline>).
struct PluginArgs {
    std::string plugin;  ///< the plugin file
    std::string ctl;     ///< its ctl= argument (empty: the plugin's default)
};
std::optional<PluginArgs> plugin_in_xml(const std::string& xml);

/// The control file nitro gives the plugin of the domain with this UUID.
std::string domain_ctl_path(const std::string& uuid);

/// A line diff of a and b in unified style ("-", "+", and one line of context).
std::string line_diff(const std::string& a, const std::string& b);

}  // namespace nitro::vm
