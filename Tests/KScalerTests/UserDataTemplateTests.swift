import Foundation
import Testing
import TestSupport
@testable import KScaler

/// The template rules at their edges, rendered by the Swift engine and by the Python reference
/// (infra/tests/userdata_render.py, pointed at a scratch repository): the same bytes.
@Suite struct UserDataTemplateTests {
    static let template = """
        #cloud-config
        # {{cluster_id}} {{{pool}}} {{ pool }} {{POOL}} }}{{pool}}{{ {{pool}}{{pool}}
          # {{#extra}}
        kept: '{{pool}}'
          # {{/extra}}
        # {{#dropped}}
        dropped: '{{no_such_value}}'
        {{block:no_such_block}}
        # {{/dropped}}
        a:
          script: |
            {{file:f/script.sh}}
        \t{{file:f/crlf.conf}}
          config: |
              {{block:config}}
        {{file:f/script.sh}} is not alone on its line
        """
    static let files = [
        "f/script.sh": "#!/bin/bash\n# a comment\n\n  # an indented comment\necho hi # not a comment line\n\t\n  indented\n#!/not/first\n",
        "f/crlf.conf": "x=1\r\ny=2\r\n\r\nz=3",
    ]
    static let config = "a: 1\n\n  b: 2\r\nc: '#3'\n   \n# kept: a block loses no line\n"

    @Test func rendersWhatTheReferenceRenders() async throws {
        let values = UserDataInputs.defaults(clusterID: "demo")
        let swift = try UserDataTemplate(path: "userdata/t.tmpl", text: Self.template, files: Self.files)
            .render(values: values, sections: ["extra"], blocks: ["config": Self.config])

        let repository = try ChildProcess.temporaryDirectory("kscaler-template")
        defer { try? FileManager.default.removeItem(at: repository) }
        for (path, text) in Self.files.merging(["userdata/t.tmpl": Self.template], uniquingKeysWith: { $1 }) {
            let file = repository.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
        }
        let input = String(decoding: try JSONEncoder().encode(["repo": repository.path, "config": Self.config]), as: UTF8.self)
        let python = try await UserDataRepository.python("""
            import json, sys, pathlib, userdata_render as u
            given = json.loads(sys.stdin.read())
            u.REPO = pathlib.Path(given["repo"])
            sys.stdout.write(u.render("t.tmpl", u.defaults("demo"), ("extra",), {"config": given["config"]}))
            """, stdin: input)

        #expect(swift.text == python)
        #expect(swift.text.contains("# demo {default} {{ pool }} {{POOL}} }}default{{ defaultdefault\n"))
        #expect(swift.text.contains("    #!/bin/bash\n    echo hi # not a comment line\n      indented\n"))
        #expect(swift.text.contains("      a: 1\n\n        b: 2\n      c: '#3'\n         \n      # kept: a block loses no line\n"))
        #expect(swift.valuesUsed == ["cluster_id", "pool"])
        #expect(swift.sections == ["extra", "dropped"])
        #expect(swift.blocksMissing.isEmpty)
    }

    /// `lines(of:)` walks Unicode scalars for speed; Python's own `str.splitlines()` says what
    /// it must give, for every separator it knows, CRLF, and text around and after them.
    @Test func linesSplitAsPythonsSplitlines() async throws {
        let samples = ["", "\n", "a", "a\n", "a\n\n", "\r\n\r\n", "a\r\nb\rc\nd", "é\u{301}\u{2028}x\u{2029}y\u{85}z",
                       "v\u{0B}f\u{0C}g\u{1C}h\u{1D}i\u{1E}j", "\r\r\n\n\r", "🇫🇷\n👩‍👩‍👧\r\n{{x}}"]
        let input = String(decoding: try JSONEncoder().encode(samples), as: UTF8.self)
        let python = try await UserDataRepository.python(
            "import json, sys\nsys.stdout.write(json.dumps([s.splitlines() for s in json.loads(sys.stdin.read())]))", stdin: input)
        let expected = try JSONDecoder().decode([[String]].self, from: Data(python.utf8))
        #expect(samples.map { UserDataTemplate.lines(of: $0).map(String.init) } == expected)
    }

    @Test(arguments: [("", false), ("{", false), ("{ {", false), ("a{{b", true), ("{{", true), ("é{{", true), ("}}{", false)])
    func openingBracesAreFound(text: String, expected: Bool) {
        #expect(UserDataTemplate.containsOpeningBraces(text) == expected)
    }

    @Test func aMissingBlockOrValueIsReportedNotGuessed() throws {
        let output = try UserDataTemplate(path: "t", text: "a: '{{region}}'\n  {{block:cfg}}\n", files: [:])
            .render(values: [:], sections: [], blocks: [:])
        #expect(output.valuesUsed == ["region"])
        #expect(output.blocksMissing == ["cfg"])
    }

    @Test(arguments: [
        ("# {{#a}}\nx\n", "t: section a is not closed"),
        ("# {{#a}}\n# {{/b}}\n", "t: section b closed but a is open"),
        ("# {{/a}}\n", "t: section a closed but none is open"),
        ("# {{#a}}\n# {{#b}}\n# {{/b}}\n# {{/a}}\n", "t: section b opens inside a; sections do not nest"),
        ("  {{file:userdata/missing.sh}}\n", "t: embeds userdata/missing.sh, which is not compiled in"),
    ])
    func aMalformedTemplateIsAnError(text: String, message: String) {
        let error = #expect(throws: UserDataTemplate.Malformed.self) {
            try UserDataTemplate(path: "t", text: text, files: [:]).render(values: [:], sections: [], blocks: [:])
        }
        #expect(error?.description == message)
    }
}
