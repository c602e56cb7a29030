import Testing
import YAML

/// Plain scalars get YAML 1.1's types by the rules Yams' default resolver applied with regular
/// expressions; everything quoted, block-styled or tagged `!!str` is a string.
@Suite struct YAMLResolverTests {
    func resolved(_ text: String, style: YAMLScalar.Style = .plain, tag: String? = nil) -> YAMLValue {
        YAMLScalar(text, style: style, tag: tag).resolved
    }

    @Test(arguments: [
        ("", YAMLValue.null), ("~", .null), ("null", .null), ("Null", .null), ("NULL", .null),
        ("nULL", .string("nULL")), ("none", .string("none")),
    ])
    func nulls(text: String, expected: YAMLValue) {
        #expect(resolved(text) == expected)
    }

    @Test func booleansAreTheEighteenSpellings() {
        for word in ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"] { #expect(resolved(word) == .bool(true), "\(word)") }
        for word in ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"] { #expect(resolved(word) == .bool(false), "\(word)") }
        for word in ["tRue", "y", "n", "yEs", "1", "enabled"] { #expect(resolved(word) != .bool(true) && resolved(word) != .bool(false), "\(word)") }
    }

    @Test(arguments: [
        ("0", YAMLValue.int(0)), ("3", .int(3)), ("-3", .int(-3)), ("+7", .int(7)), ("1_000", .int(1000)),
        ("0x1F", .int(31)), ("-0x10", .int(-16)), ("0b101", .int(5)), ("0o17", .int(15)), ("017", .int(15)),
        ("1:30", .int(90)), ("-1:00:00", .int(-3600)),
        ("99999999999999999999", .float(1e20)),
        ("0x", .string("0x")), ("0xG", .string("0xG")), ("1:60", .string("1:60")),
    ])
    func integers(text: String, expected: YAMLValue) {
        #expect(resolved(text) == expected)
    }

    @Test(arguments: [
        ("0.5", YAMLValue.float(0.5)), ("-1.5", .float(-1.5)), ("1.", .float(1)), ("1e3", .float(1000)), ("1E+3", .float(1000)),
        ("6.5e-1", .float(0.65)), (".5", .float(0.5)), ("09", .float(9)), ("1_0.5", .float(10.5)),
        (".inf", .float(.infinity)), ("-.Inf", .float(-.infinity)), ("+.INF", .float(.infinity)), ("1:30.5", .float(90.5)),
        // Strings to YAML 1.1, though Swift's own parser would take them as numbers.
        ("nan", .string("nan")), ("inf", .string("inf")), ("infinity", .string("infinity")), ("0x1p3", .string("0x1p3")),
        ("+.5", .string("+.5")), (".", .string(".")), ("1e", .string("1e")), ("1.2.3", .string("1.2.3")), ("5m", .string("5m")),
    ])
    func floats(text: String, expected: YAMLValue) {
        #expect(resolved(text) == expected)
    }

    @Test func notANumberIsAFloat() throws {
        guard case .float(let value) = resolved(".NaN") else { Issue.record("not a float"); return }
        #expect(value.isNaN)
    }

    @Test func timestampsMergeKeysAndEverythingElseAreStrings() {
        #expect(YAMLScalar("2024-01-31").resolvedTag == YAMLTag.timestamp)
        #expect(YAMLScalar("2024-1-3 4:05:06.5 +01:00").resolvedTag == YAMLTag.timestamp)
        #expect(YAMLScalar("2024-01-31T04:05:06Z").resolvedTag == YAMLTag.timestamp)
        #expect(YAMLScalar("2024-01-31x").resolvedTag == YAMLTag.str)
        #expect(resolved("2024-01-31") == .string("2024-01-31"))
        #expect(YAMLScalar("<<").resolvedTag == YAMLTag.merge)
        #expect(YAMLScalar("=").resolvedTag == YAMLTag.value)
        #expect(resolved("m5.large") == .string("m5.large"))
        #expect(resolved("https://prometheus:9090") == .string("https://prometheus:9090"))
        // Sexagesimal, as in YAML 1.1, but only without a leading zero (Yams' constructors,
        // applied without its resolver, also made 480 of `08:00`).
        #expect(resolved("8:00") == .int(480))
        #expect(resolved("08:00") == .string("08:00"))
    }

    @Test func quotedBlockAndStringTaggedScalarsAreStrings() {
        for style in [YAMLScalar.Style.singleQuoted, .doubleQuoted, .literal, .folded] {
            #expect(resolved("3", style: style) == .string("3"))
            #expect(resolved("true", style: style) == .string("true"))
            #expect(resolved("~", style: style) == .string("~"))
            #expect(resolved("", style: style) == .string(""))
        }
        #expect(resolved("3", tag: YAMLTag.str) == .string("3"))
        #expect(resolved("3", tag: "!") == .string("3"))
        #expect(resolved("3", style: .doubleQuoted, tag: YAMLTag.int) == .int(3))
        #expect(resolved("x", tag: YAMLTag.int) == .string("x"))
        #expect(resolved("yes", tag: YAMLTag.bool) == .bool(true))
        #expect(resolved("", tag: YAMLTag.null) == .null)
    }
}
