// SPDX-License-Identifier: MIT
// nitro prepare's edits of a libvirt domain definition, without libvirt.
#include <gtest/gtest.h>

#include "nitro/error.h"
#include "vm/domain_prepare.h"

namespace nitro::vm {
namespace {

const char* kPlain = R"(<domain type='qemu'>
  <name>t</name>
  <uuid>f4124be1-6f73-4b33-b71f-913f551f07cd</uuid>
  <memory unit='KiB'>262144</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-10.0'>hvm</type>
    <kernel>/tmp/vmlinuz</kernel>
  </os>
  <devices/>
</domain>
)";

PrepareSettings settings() {
    return {.plugin = "/opt/nitro/lib/nitro/libnitro-tcg.so", .ctl = "/dev/shm/nitro-x.ctl"};
}

TEST(DomainPrepare, AddsMemoryBackingPluginAcpiAndSavesOriginal) {
    PreparedXml p = prepare_domain_xml(kPlain, settings());
    EXPECT_NE(p.xml.find("<source type=\"file\"/>"), std::string::npos) << p.xml;
    EXPECT_NE(p.xml.find("<access mode=\"shared\"/>"), std::string::npos) << p.xml;
    EXPECT_NE(p.xml.find("<acpi/>"), std::string::npos) << p.xml;
    EXPECT_NE(p.xml.find("xmlns:qemu=\"http://libvirt.org/schemas/domain/qemu/1.0\""),
              std::string::npos);
    auto plugin = plugin_in_xml(p.xml);
    ASSERT_TRUE(plugin);
    EXPECT_EQ(plugin->plugin, "/opt/nitro/lib/nitro/libnitro-tcg.so");
    EXPECT_EQ(plugin->ctl, "/dev/shm/nitro-x.ctl");
    auto orig = saved_original_xml(p.xml);
    ASSERT_TRUE(orig);
    EXPECT_EQ(*orig, kPlain);
    EXPECT_FALSE(p.changes.empty());
    EXPECT_FALSE(plugin_in_xml(kPlain));
    EXPECT_FALSE(saved_original_xml(kPlain));
}

TEST(DomainPrepare, PreparingTwiceKeepsTheFirstOriginalAndOnePlugin) {
    PreparedXml p1 = prepare_domain_xml(kPlain, settings());
    PrepareSettings s2 = settings();
    s2.plugin = "/usr/lib/nitro/libnitro-tcg.so";
    PreparedXml p2 = prepare_domain_xml(p1.xml, s2);
    EXPECT_EQ(*saved_original_xml(p2.xml), kPlain);
    EXPECT_EQ(plugin_in_xml(p2.xml)->plugin, "/usr/lib/nitro/libnitro-tcg.so");
    size_t n = 0;
    for (size_t pos = 0; (pos = p2.xml.find("-plugin", pos)) != std::string::npos; pos++) n++;
    EXPECT_EQ(n, 1u) << p2.xml;
}

TEST(DomainPrepare, KeepsOtherQemuArgsAndReplacesPrivateMemory) {
    const char* xml =
        R"(<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>t</name>
  <memoryBacking><source type='memfd'/><access mode='private'/></memoryBacking>
  <features><acpi/><apic/></features>
  <qemu:commandline><qemu:arg value='-d'/><qemu:arg value='guest_errors'/></qemu:commandline>
</domain>)";
    PreparedXml p = prepare_domain_xml(xml, settings());
    EXPECT_NE(p.xml.find("guest_errors"), std::string::npos);
    EXPECT_EQ(p.xml.find("memfd"), std::string::npos);
    EXPECT_EQ(p.xml.find("private"), std::string::npos);
    EXPECT_NE(p.xml.find("<apic/>"), std::string::npos);
    EXPECT_EQ(p.xml.find("<acpi/>"), p.xml.rfind("<acpi/>"));  // not added twice
    EXPECT_TRUE(plugin_in_xml(p.xml));
}

TEST(DomainPrepare, RejectsBadInput) {
    EXPECT_THROW(prepare_domain_xml("<domain><name>", settings()), Error);
    EXPECT_THROW(prepare_domain_xml("<network/>", settings()), Error);
    PrepareSettings rel = settings();
    rel.plugin = "libnitro-tcg.so";
    EXPECT_THROW(prepare_domain_xml(kPlain, rel), Error);
    PrepareSettings comma = settings();
    comma.ctl = "/dev/shm/a,b";
    EXPECT_THROW(prepare_domain_xml(kPlain, comma), Error);
    // A corrupted saved original is not used.
    std::string bad = prepare_domain_xml(kPlain, settings()).xml;
    auto pos = bad.find("encoding=\"base64\">");
    ASSERT_NE(pos, std::string::npos);
    bad.insert(pos + 18, "*");
    EXPECT_FALSE(saved_original_xml(bad));
}

TEST(DomainPrepare, LineDiff) {
    EXPECT_EQ(line_diff("a\nb\nc\n", "a\nb\nc\n"), "");
    EXPECT_EQ(line_diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
    std::string d = line_diff("1\n2\n3\n4\n5\n6\n", "1\n2\n3\n4\n5\n6\n7\n");
    EXPECT_EQ(d, "  6\n+ 7\n");
}

TEST(DomainPrepare, CtlPath) {
    EXPECT_EQ(domain_ctl_path("abc"), "/dev/shm/nitro-libvirt-abc.ctl");
}

}  // namespace
}  // namespace nitro::vm
