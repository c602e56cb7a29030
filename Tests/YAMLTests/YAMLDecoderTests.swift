import Testing
import YAML

/// `Decodable` from a node, as Yams' decoder read kubeconfig files.
@Suite struct YAMLDecoderTests {
    struct Cluster: Decodable, Equatable {
        var server: String?
        var insecure: Bool?
        var port: Int?
        var weight: Double?
        var names: [String]?
        var tags: [String: String]?

        private enum CodingKeys: String, CodingKey {
            case server, insecure = "insecure-skip-tls-verify", port, weight, names, tags
        }
    }

    struct Named: Decodable, Equatable {
        var name: String
        var cluster: Cluster?
    }

    func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try YAMLDecoder().decode(type, from: try #require(try YAMLParser.parse(text)))
    }

    func decodingError<T: Decodable>(_ type: T.Type, _ text: String) throws -> DecodingError? {
        do {
            _ = try decode(type, text)
            return nil
        } catch let error as DecodingError {
            return error
        }
    }

    @Test func fieldsListsAndDictionariesDecode() throws {
        let text = """
            - name: prod
              cluster:
                server: https://10.0.0.1:6443
                insecure-skip-tls-verify: yes
                port: 0x1F90
                weight: 0.5
                names: [a, 'b', 3]
                tags: {team: infra, tier: "1"}
                unknown: ignored
            - name: 42
            """
        let named = try decode([Named].self, text)
        #expect(named == [
            Named(name: "prod", cluster: Cluster(server: "https://10.0.0.1:6443", insecure: true, port: 8080, weight: 0.5,
                                                 names: ["a", "b", "3"], tags: ["team": "infra", "tier": "1"])),
            Named(name: "42", cluster: nil),
        ])
    }

    @Test func nullsAreNilAndQuotedNullsAreText() throws {
        let cluster = try decode(Cluster.self, "server: ~\nnames:\n")
        #expect(cluster.server == nil && cluster.names == nil)
        #expect(try decode(Cluster.self, "server: 'null'\n").server == "null")
    }

    @Test func booleansAcceptAnyCaseButNotQuotedText() throws {
        #expect(try decode(Cluster.self, "insecure-skip-tls-verify: TRUE\n").insecure == true)
        #expect(try decode(Cluster.self, "insecure-skip-tls-verify: off\n").insecure == false)
        let quoted = try #require(try decodingError(Cluster.self, "insecure-skip-tls-verify: \"true\"\n"))
        guard case .typeMismatch(_, let context) = quoted else { Issue.record("\(quoted)"); return }
        #expect(context.debugDescription == "Expected to decode Bool but found Scalar instead.")
        #expect(context.codingPath.map(\.stringValue) == ["insecure-skip-tls-verify"])
    }

    @Test func shapesThatDoNotFitAreTypeMismatchesWithThePath() throws {
        let list = try #require(try decodingError(Cluster.self, "- a\n- b\n"))
        guard case .typeMismatch(_, let context) = list else { Issue.record("\(list)"); return }
        #expect(context.codingPath.isEmpty)
        #expect(context.debugDescription == "Expected to decode Mapping but found Sequence instead.")

        let nested = try #require(try decodingError([Named].self, "- name: a\n  cluster: {names: [x, [y]]}\n"))
        guard case .typeMismatch(_, let nestedContext) = nested else { Issue.record("\(nested)"); return }
        #expect(nestedContext.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue } == ["0", "cluster", "names", "1"])
        #expect(nestedContext.debugDescription == "Expected to decode String but found Sequence instead.")

        let missing = try #require(try decodingError([Named].self, "- cluster: {}\n"))
        guard case .keyNotFound(let key, _) = missing else { Issue.record("\(missing)"); return }
        #expect(key.stringValue == "name")
    }

    @Test func aliasesDecodeAsTheirAnchors() throws {
        let named = try decode([Named].self, "- name: a\n  cluster: &c {server: s, port: 1_000}\n- name: b\n  cluster: *c\n")
        #expect(named[1].cluster == Cluster(server: "s", port: 1000))
    }
}
