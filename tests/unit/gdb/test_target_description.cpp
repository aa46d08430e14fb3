// SPDX-License-Identifier: MIT
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_stub.h"
#include "listener/gdb/target_description.h"
#include "nitro/error.h"

namespace nitro::gdb {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

RegisterMap::Fetch from(std::map<std::string, std::string> files) {
    return [files = std::move(files)](const std::string& annex) {
        auto it = files.find(annex);
        if (it == files.end()) throw Error("no file " + annex);
        return it->second;
    };
}

TEST(XmlScanner, ReadsTagsAttributesAndText) {
    auto tags = scan_xml_tags(
        "<?xml version=\"1.0\"?><!DOCTYPE t [<!ELEMENT a (b)>]><t>"
        "<!-- <reg name=\"ghost\" bitsize=\"8\"/> --><a x = 'one' y=\"&lt;2&amp;&#x41;&#66;\">"
        "text &gt; here </a><b/></t>");
    ASSERT_EQ(tags.size(), 5u);
    EXPECT_EQ(tags[0].name, "t");
    EXPECT_EQ(tags[1].name, "a");
    EXPECT_FALSE(tags[1].self_closing);
    EXPECT_EQ(*tags[1].attribute("x"), "one");
    EXPECT_EQ(*tags[1].attribute("y"), "<2&AB");
    EXPECT_EQ(tags[1].attribute("z"), nullptr);
    EXPECT_EQ(tags[1].text, "text > here");
    EXPECT_TRUE(tags[2].closing);
    EXPECT_EQ(tags[2].name, "a");
    EXPECT_TRUE(tags[3].self_closing);
    EXPECT_EQ(tags[3].name, "b");
    EXPECT_TRUE(tags[4].closing);
}

TEST(XmlScanner, RejectsGarbledMarkup) {
    for (const char* bad : {"<a", "<!-- open", "<a x=\"1>", "<a x=1/>", "<a x/>", "<>", "<a /x>",
                            "<?xml", "<!DOCTYPE x [", "<a =\"1\"/>"})
        EXPECT_THROW(scan_xml_tags(bad), Error) << bad;
}

TEST(RegisterMap, BuildsQemuLikeLayoutFromIncludes) {
    auto map = RegisterMap::from_target_xml(from(testing::x86_64_description()));
    EXPECT_EQ(map.architecture(), "i386:x86-64");
    EXPECT_EQ(map.registers().size(), 66u);
    EXPECT_EQ(map.find("cs_base"), nullptr);  // commented out
    EXPECT_EQ(map.find("ss_base"), nullptr);
    const RegisterInfo& rip = map.at("rip");
    EXPECT_EQ(rip.regnum, 16);
    EXPECT_EQ(rip.offset, 128u);
    EXPECT_EQ(rip.feature, "org.gnu.gdb.i386.core");
    EXPECT_EQ(map.at("eflags").bitsize, 32);
    EXPECT_EQ(map.at("eflags").offset, 136u);
    EXPECT_EQ(map.at("gs").offset, 160u);
    EXPECT_EQ(map.at("fs_base").regnum, 24);
    EXPECT_EQ(map.at("k_gs_base").offset, 180u);
    EXPECT_EQ(map.at("st7").size(), 10u);
    EXPECT_EQ(map.at("xmm0").offset, 300u);
    EXPECT_EQ(map.at("mxcsr").regnum, 59);
    // The control registers follow a numbering gap; the 'g' layout packs them anyway.
    const RegisterInfo& cr0 = map.at("cr0");
    EXPECT_EQ(cr0.regnum, 70);
    EXPECT_EQ(cr0.offset, 560u);
    EXPECT_EQ(cr0.feature, "org.nitro.test.system");
    EXPECT_EQ(cr0.group, "system");
    EXPECT_EQ(map.at("cr3").regnum, 72);
    EXPECT_EQ(map.at("cr3").offset, 576u);
    EXPECT_EQ(map.at("efer").regnum, 75);
    EXPECT_EQ(map.g_size(), 608u);
    EXPECT_EQ(map.by_number(72)->name, "cr3");
    EXPECT_EQ(map.by_number(66), nullptr);
    EXPECT_THAT(error_of([&] { map.at("zmm0"); }), HasSubstr("no register named 'zmm0'"));
}

TEST(RegisterMap, FallbackMatchesQemuOrder) {
    auto map = RegisterMap::x86_64_fallback();
    EXPECT_EQ(map.at("rip").offset, 128u);
    EXPECT_EQ(map.at("cr0").regnum, 27);
    EXPECT_EQ(map.at("cr0").offset, 188u);
    EXPECT_EQ(map.at("efer").regnum, 32);
    EXPECT_EQ(map.at("mxcsr").regnum, 65);
    EXPECT_EQ(map.g_size(), 608u);
}

TEST(RegisterMap, RejectsBadDescriptions) {
    auto wrap = [](std::string body) {
        return std::map<std::string, std::string>{{"target.xml", "<target>" + body + "</target>"},
                                                  {"a.xml", "<xi:include href=\"b.xml\"/>"},
                                                  {"b.xml", "<xi:include href=\"a.xml\"/>"}};
    };
    auto err = [&](std::string body) {
        return error_of([&] { RegisterMap::from_target_xml(from(wrap(body))); });
    };
    EXPECT_THAT(err("<reg name=\"a\" bitsize=\"12\"/>"), HasSubstr("bitsize"));
    EXPECT_THAT(err("<reg name=\"a\"/>"), HasSubstr("bitsize"));
    EXPECT_THAT(err("<reg bitsize=\"8\"/>"), HasSubstr("without a name"));
    EXPECT_THAT(err("<reg name=\"a\" bitsize=\"8\"/><reg name=\"a\" bitsize=\"8\"/>"),
                HasSubstr("twice"));
    EXPECT_THAT(err("<reg name=\"a\" bitsize=\"8\" regnum=\"3\"/>"
                    "<reg name=\"b\" bitsize=\"8\" regnum=\"3\"/>"),
                HasSubstr("gives number 3"));
    EXPECT_THAT(err("<reg name=\"a\" bitsize=\"8\" regnum=\"-3\"/>"), HasSubstr("regnum"));
    EXPECT_THAT(err("<reg name=\"a\" bitsize=\"99999999\"/>"), HasSubstr("out of range"));
    EXPECT_THAT(err("<xi:include href=\"a.xml\"/>"), HasSubstr("includes 'a.xml' twice"));
    EXPECT_THAT(err("<xi:include href=\"../etc/passwd\"/>"), HasSubstr("invalid file"));
    EXPECT_THAT(err("<xi:include href=\"x#y.xml\"/>"), HasSubstr("invalid file"));
    EXPECT_THAT(err("<xi:include/>"), HasSubstr("without href"));
    EXPECT_THAT(err(""), HasSubstr("lists no registers"));
}

TEST(RegisterFile, ReadsValuesByNameAndKnowsUnavailableBytes) {
    auto map = std::make_shared<const RegisterMap>(RegisterMap::x86_64_fallback());
    std::vector<std::uint8_t> bytes(200, 0);
    std::vector<bool> known(200, true);
    bytes[128] = 0xf0;  // rip = 0xfff0
    bytes[129] = 0xff;
    bytes[136] = 0x02;      // eflags
    bytes[188 + 3] = 0x60;  // cr0 = 0x60000010
    bytes[188] = 0x10;
    known[0] = false;  // rax's first byte came as "xx"
    RegisterFile regs(map, bytes, known);
    EXPECT_EQ(regs.get("rip"), 0xfff0u);
    EXPECT_EQ(regs.get("eflags"), 2u);
    EXPECT_EQ(regs.get("cr0"), 0x60000010u);
    EXPECT_FALSE(regs.available("rax"));
    EXPECT_FALSE(regs.try_get("rax"));
    EXPECT_THROW(regs.get("rax"), Error);
    EXPECT_FALSE(regs.available("cr2"));    // beyond the 200 bytes sent
    EXPECT_THROW(regs.get("xmm0"), Error);  // too wide for a number
    EXPECT_THROW(regs.get("nope"), Error);
    EXPECT_EQ(regs.raw("rip").size(), 8u);
}

}  // namespace
}  // namespace nitro::gdb
