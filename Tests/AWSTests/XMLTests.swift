import Testing
@testable import AWS

@Suite struct XMLTests {
    @Test func parsesAnEC2AnswerIgnoringNamespacesAndAttributes() throws {
        let root = try XML.parse("""
        <?xml version="1.0" encoding="UTF-8"?>
        <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <nextToken>abc</nextToken>
          <reservationSet><item><instancesSet>
            <item><instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>
            <item><instanceId>i-2</instanceId><tagSet/></item>
          </instancesSet></item></reservationSet>
        </DescribeInstancesResponse>
        """)
        #expect(root.name == "DescribeInstancesResponse")
        #expect(root.string("nextToken") == "abc")
        let instances = root.items("reservationSet").flatMap { $0.items("instancesSet") }
        #expect(instances.map { $0.string("instanceId") } == ["i-1", "i-2"])
        #expect(instances[0].path("instanceState", "name")?.text == "running")
        #expect(instances[1].child("tagSet")?.children.isEmpty == true)
    }

    @Test func decodesEntitiesAndCDATA() throws {
        let root = try XML.parse("<a><b>x &amp; y &lt;z&gt; &#65;&#x42; &quot;q&apos;</b><c><![CDATA[<raw & text>]]></c><!-- note --></a>")
        #expect(root.string("b") == "x & y <z> AB \"q'")
        #expect(root.string("c") == "<raw & text>")
        #expect(XML.escape("a<b & 'c'") == "a&lt;b &amp; &apos;c&apos;")
    }

    @Test(arguments: [
        ("", "empty document"),
        ("<html><body>502 Bad Gateway</body>", "ends inside"),
        ("<a><b></a></b>", "closes"),
        ("<a>&bogus;</a>", "unknown entity"),
        ("not xml at all", "root element"),
        ("<a></a><b></b>", "after the root"),
        ("<!DOCTYPE x [<!ENTITY e 'boom'>]><a/>", "DOCTYPE"),
    ])
    func rejectsMalformedInputWithAReason(input: String, expected: String) {
        #expect {
            _ = try XML.parse(input)
        } throws: { error in
            (error as? XMLParseError)?.description.contains(expected) == true
        }
    }

    @Test func dropsNamespacePrefixesAndJoinsTextPieces() throws {
        let root = try XML.parse(#"<ec2:Response xmlns:ec2="x"><ec2:item a="1">v &amp; w<![CDATA[ <x>]]> z</ec2:item><item/></ec2:Response>"#)
        #expect(root.name == "Response")
        #expect(root.children.map(\.name) == ["item", "item"])
        #expect(root.children[0].text == "v & w <x> z")
        #expect(root.children[1].text == "")
        #expect(throws: XMLParseError.self) { try XML.parse("<ec2:a></a>") }
    }

    @Test func boundsNestingDepth() {
        let deep = String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100)
        #expect(throws: XMLParseError.self) { try XML.parse(deep) }
    }
}
