import Testing
import YAML

/// The parser over libyaml: the tree, marks, aliases and their limits, and errors by position.
@Suite struct YAMLParserTests {
    func parse(_ text: String, limits: YAMLParser.Limits = YAMLParser.Limits()) throws -> YAMLNode {
        try #require(try YAMLParser.parse(text, limits: limits))
    }

    func error(_ text: String, limits: YAMLParser.Limits = YAMLParser.Limits()) -> YAMLError? {
        do {
            _ = try YAMLParser.parse(text, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func scalarsKeepTheirStyleAndText() throws {
        let text = """
            plain: some words
            single: 'it''s'
            double: "tab\\tthere"
            literal: |
              line one
              line two
            folded: >
              folded
              together
            """
        let mapping = try #require(try parse(text).mapping)
        let scalars = mapping.pairs.map { ($0.key.string!, $0.value.scalar!) }
        #expect(scalars.map(\.0) == ["plain", "single", "double", "literal", "folded"])
        #expect(scalars.map(\.1.style) == [.plain, .singleQuoted, .doubleQuoted, .literal, .folded])
        #expect(scalars.map(\.1.value) == ["some words", "it's", "tab\tthere", "line one\nline two\n", "folded together"])
        #expect(scalars.allSatisfy { $0.1.tag == nil })
    }

    @Test func marksAreLinesAndColumnsFromOneCountingCharacters() throws {
        let mapping = try #require(try parse("a:\n  b: [x, \"é\", y]\nc: 1\n").mapping)
        #expect(mapping.mark == YAMLMark(line: 1, column: 1))
        #expect(mapping.pairs[1].key.mark == YAMLMark(line: 3, column: 1))
        let inner = try #require(mapping["a"]?.mapping)
        #expect(inner.pairs[0].key.mark == YAMLMark(line: 2, column: 3))
        let items = try #require(inner["b"]?.sequence?.items)
        #expect(items.map(\.mark) == [YAMLMark(line: 2, column: 7), YAMLMark(line: 2, column: 10), YAMLMark(line: 2, column: 15)])
    }

    @Test func sequencesAndMappingsKeepTheirOrder() throws {
        let mapping = try #require(try parse("z: 1\na: [3, 2, 1]\nm: {y: 1, b: 2}\n").mapping)
        #expect(mapping.pairs.map { $0.key.string } == ["z", "a", "m"])
        #expect(mapping["a"]?.sequence?.items.map(\.string) == ["3", "2", "1"])
        #expect(mapping["m"]?.mapping?.pairs.map { $0.key.string } == ["y", "b"])
    }

    @Test func explicitTagsAreExpandedAndWin() throws {
        let mapping = try #require(try parse("a: !!str 3\nb: !!int \"3\"\nc: ! 3\nd: !custom x\n").mapping)
        #expect(mapping["a"]?.scalar?.tag == YAMLTag.str)
        #expect(mapping["a"]?.scalar?.resolved == .string("3"))
        #expect(mapping["b"]?.scalar?.resolved == .int(3))
        #expect(mapping["c"]?.scalar?.resolved == .string("3"))
        #expect(mapping["d"]?.scalar?.tag == "!custom")
        #expect(mapping["d"]?.scalar?.resolved == .string("x"))
    }

    @Test func noDocumentIsNilAndASecondDocumentIsAnError() throws {
        #expect(try YAMLParser.parse("") == nil)
        #expect(try YAMLParser.parse("# only a comment\n") == nil)
        #expect(try parse("---\n").scalar?.value == "")
        let second = try #require(error("a: 1\n---\nb: 2\n"))
        #expect(second.kind == .composer)
        #expect(second.description == "line 2, column 1: but found another document")
        #expect(second.context == "expected a single document in the stream")
    }

    // MARK: Aliases

    @Test func anAliasIsTheNodeItsAnchorNames() throws {
        let mapping = try #require(try parse("base: &b {cpu: 2, labels: [x]}\ncopy: *b\nname: &n web\nagain: *n\n").mapping)
        #expect(mapping["copy"]?.mapping?.pairs.map { $0.key.string } == ["cpu", "labels"])
        #expect(mapping["copy"]?.mapping?["labels"]?.sequence?.items.map(\.string) == ["x"])
        #expect(mapping["again"]?.string == "web")
        // A later anchor of the same name replaces the earlier one from there on.
        let shadowed = try #require(try parse("a: &x 1\nb: *x\nc: &x 2\nd: *x\n").mapping)
        #expect([shadowed["b"]?.string, shadowed["d"]?.string] == ["1", "2"])
    }

    @Test func undefinedAndSelfReferringAliasesAreErrors() throws {
        let undefined = try #require(error("a: 1\nb: *nowhere\n"))
        #expect(undefined.kind == .composer)
        #expect(undefined.description == "line 2, column 4: found undefined alias")
        // An anchor names its node once the node is complete.
        #expect(error("a: &loop [1, *loop]\n")?.problem == "found undefined alias")
    }

    @Test func aliasesToAliasesStopAtTheNodeLimitWithoutExpanding() throws {
        // Nine levels of nine: 387 million nodes once expanded.
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]"
        for level in 1...8 { bomb += "\na\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]" }
        let refused = try #require(error(bomb))
        #expect(refused.kind == .limit)
        #expect(refused.problem == "the document expands to more than 1000000 nodes (aliases repeat what their anchor holds)")
        #expect(refused.line == 7)  // a6 is the first level past a million
        let small = try #require(error(bomb, limits: YAMLParser.Limits(maxNodes: 100)))
        #expect(small.line == 2)
        #expect(small.problem.contains("more than 100 nodes"))
        // Counted exactly: root mapping 1, keys 2, [x, x] 3, the alias 3 more.
        #expect(error("a: &l [x, x]\nb: *l\n", limits: YAMLParser.Limits(maxNodes: 9)) == nil)
        #expect(error("a: &l [x, x]\nb: *l\n", limits: YAMLParser.Limits(maxNodes: 8))?.kind == .limit)
    }

    // MARK: Nesting

    @Test func nestingPastTheLimitIsAnErrorNotARecursion() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let refused = try #require(error(deep))
        #expect(refused.kind == .limit)
        #expect(refused.description == "line 1, column 1001: collections are nested more than 1000 deep")
        // Block nesting counts as flow nesting does.
        let dashes = String(repeating: "- ", count: 2_000) + "x\n"
        #expect(error(dashes)?.problem == "collections are nested more than 1000 deep")
        let fine = try parse(String(repeating: "[", count: 1_000) + String(repeating: "]", count: 1_000))
        var depth = 0
        var node: YAMLNode? = fine
        while let items = node?.sequence?.items {
            depth += 1
            node = items.first
        }
        #expect(depth == 1_000)
        #expect(error("a: [[x]]\n", limits: YAMLParser.Limits(maxDepth: 2))?.kind == .limit)
        #expect(error("a: [x]\n", limits: YAMLParser.Limits(maxDepth: 2)) == nil)
    }

    // MARK: Errors

    @Test func syntaxErrorsNameTheLineAndColumnOnly() throws {
        let mappingValue = try #require(error("cluster_id: demo\n  table: [unclosed\n"))
        #expect(mappingValue.kind == .scanner)
        #expect(mappingValue.description == "line 2, column 8: mapping values are not allowed in this context")

        let unclosed = try #require(error("key: \"hunter2-secret\n  bad: [\n"))
        #expect(unclosed.kind == .scanner)
        #expect(unclosed.problem == "found unexpected end of stream")
        #expect(unclosed.context == "while scanning a quoted scalar")
        #expect(!unclosed.description.contains("hunter2"))

        let flow = try #require(error("a: [1, 2\nb: 3\n"))
        #expect(flow.kind == .parser || flow.kind == .scanner)
        #expect(flow.line >= 2)
    }

    @Test func controlCharactersAndBytesThatAreNotUTF8AreReaderErrorsWithAPosition() throws {
        let control = try #require(error("a: 1\nb: x\u{01}y\n"))
        #expect(control.kind == .reader)
        #expect(control.description == "line 2, column 5: control characters are not allowed")

        do {
            _ = try YAMLParser.parse(utf8: Array("a: é\nb: ".utf8) + [0xFF, 0xFE, 0x00])
            Issue.record("garbage parsed")
        } catch {
            #expect(error.kind == .reader)
            #expect(error.problem == "invalid leading UTF-8 octet")
            #expect(error.mark == YAMLMark(line: 2, column: 4))
        }
        // Text from `String(decoding:as:)` has its bad bytes replaced, which libyaml accepts.
        let repaired = String(decoding: Array("a: ".utf8) + [0xFF], as: UTF8.self)
        #expect(try parse(repaired).mapping?["a"]?.string == "\u{FFFD}")
        // Random bytes: an answer, never a crash.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? YAMLParser.parse(utf8: bytes)
            _ = try? YAMLParser.parse(String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func aByteOrderMarkIsSkipped() throws {
        #expect(try parse("\u{FEFF}a: 1\n").mapping?["a"]?.string == "1")
    }

    @Test func repeatedKeysAreAnErrorNamingThemAtTheFirst() throws {
        let repeated = try #require(error("b: 1\na: 2\nb: 3\na: 4\nc: 5\n"))
        #expect(repeated.kind == .composer)
        #expect(repeated.duplicateKeys == ["a", "b"])
        #expect(repeated.description == "line 2, column 1: expected all keys to be unique but found the following duplicated key(s): 'a', 'b'")
        // A key is its text and resolved type: 1 and "1" are different keys.
        #expect(error("1: x\n\"1\": y\n") == nil)
        #expect(error("outer:\n  k: 1\n  k: 2\n")?.mark == YAMLMark(line: 2, column: 3))
    }
}
