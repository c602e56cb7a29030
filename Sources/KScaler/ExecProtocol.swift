import KScalerCore

/// The `exec` backend's wire format, version 1 (docs/backends/exec.md): one JSON request on
/// the program's stdin, one JSON answer on its stdout.
package struct ExecRequest: Sendable, Encodable {
    package enum Operation: String, Sendable, Encodable {
        case list, launch, terminate
    }

    package var operation: Operation
    package var clusterID: String
    package var dryRun: Bool
    package var launchID: String?
    package var count: Int?
    package var offering: Offering?
    package var bootstrap: WorkerBootstrap?
    package var machineIDs: [String]?
    /// Always `ExecFleet.protocolVersion`, but for the conformance check of a refusal.
    package var protocolVersion = ExecFleet.protocolVersion

    package init(operation: Operation, clusterID: String, dryRun: Bool, launchID: String? = nil, count: Int? = nil,
                 offering: Offering? = nil, bootstrap: WorkerBootstrap? = nil, machineIDs: [String]? = nil) {
        self.operation = operation
        self.clusterID = clusterID
        self.dryRun = dryRun
        self.launchID = launchID
        self.count = count
        self.offering = offering
        self.bootstrap = bootstrap
        self.machineIDs = machineIDs
    }

    private enum CodingKeys: String, CodingKey {
        case protocolVersion = "protocol", operation, clusterID = "cluster_id", dryRun = "dry_run", launchID = "launch_id", count
        case offering, bootstrap, machineIDs = "machine_ids"
    }

    private enum OfferingKeys: String, CodingKey { case machineType = "machine_type", placement, market }
    private enum BootstrapKeys: String, CodingKey { case clusterID = "cluster_id", pool, labels, taints }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(protocolVersion, forKey: .protocolVersion)
        try container.encode(operation, forKey: .operation)
        try container.encode(clusterID, forKey: .clusterID)
        try container.encode(dryRun, forKey: .dryRun)
        try container.encodeIfPresent(launchID, forKey: .launchID)
        try container.encodeIfPresent(count, forKey: .count)
        if let offering {
            var nested = container.nestedContainer(keyedBy: OfferingKeys.self, forKey: .offering)
            try nested.encode(offering.machineType, forKey: .machineType)
            try nested.encode(offering.placement, forKey: .placement)
            try nested.encode(offering.market.rawValue, forKey: .market)
        }
        if let bootstrap {
            var nested = container.nestedContainer(keyedBy: BootstrapKeys.self, forKey: .bootstrap)
            try nested.encode(bootstrap.clusterID, forKey: .clusterID)
            try nested.encode(bootstrap.pool, forKey: .pool)
            try nested.encode(bootstrap.labels, forKey: .labels)
            try nested.encode(bootstrap.taints, forKey: .taints)
        }
        try container.encodeIfPresent(machineIDs, forKey: .machineIDs)
    }

    func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }
}

/// One machine as the program lists it.
package struct ExecMachine: Sendable, Equatable, Decodable {
    package enum State: String, Sendable, Decodable {
        case pending, running, ended
    }

    package var id: String
    package var state: State
    package var launchTime: Date
    package var machineType: String?
    package var placement: String?
    package var pool: String?
    package var launchID: String?
    package var providerID: String?
    package var protected: Bool?
    package var market: Market?

    private enum CodingKeys: String, CodingKey {
        case id, state, launchTime = "launch_time", machineType = "machine_type", placement, pool, launchID = "launch_id"
        case providerID = "provider_id", protected, market
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        guard (1...128).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._:-".contains($0)) }) else {
            throw DecodingError.dataCorruptedError(forKey: .id, in: container, debugDescription: "id \"\(id.prefix(40))\" is not 1-128 of A-Z a-z 0-9 . _ : -")
        }
        state = try container.decode(State.self, forKey: .state)
        let time = try container.decode(String.self, forKey: .launchTime)
        guard let parsed = Protection.parseTime(time) else {
            throw DecodingError.dataCorruptedError(forKey: .launchTime, in: container, debugDescription: "launch_time \"\(time.prefix(40))\" is not RFC 3339")
        }
        launchTime = parsed
        machineType = try container.decodeIfPresent(String.self, forKey: .machineType)
        placement = try container.decodeIfPresent(String.self, forKey: .placement)
        pool = try container.decodeIfPresent(String.self, forKey: .pool)
        launchID = try container.decodeIfPresent(String.self, forKey: .launchID)
        providerID = try container.decodeIfPresent(String.self, forKey: .providerID)
        protected = try container.decodeIfPresent(Bool.self, forKey: .protected)
        market = try container.decodeIfPresent(Market.self, forKey: .market)
    }

    /// As the core counts it: live machines only.
    var managed: ManagedInstance? {
        guard state != .ended else { return nil }
        return ManagedInstance(id: id, machineType: machineType ?? "", placement: placement, zone: nil, launchTime: launchTime,
                               state: state == .pending ? .pending : .running, protected: protected ?? false, pool: pool,
                               market: market ?? .onDemand)
    }
}

/// The program's answer: machines (list, launch), terminated ids, or an error.
package struct ExecAnswer: Sendable, Decodable {
    package struct Failure: Sendable, Decodable {
        package var outcome: String?
        package var capacity: Bool?
        package var message: String?
    }

    package var protocolVersion: Int?
    package var machines: [ExecMachine]?
    package var terminated: [String]?
    package var error: Failure?

    private enum CodingKeys: String, CodingKey { case protocolVersion = "protocol", machines, terminated, error }

    /// The answer in `stdout`, or what is wrong with it (never quoting it: it may hold anything).
    static func decode(_ stdout: Data) -> Result<ExecAnswer, ExecAnswerProblem> {
        guard !stdout.isEmpty else { return .failure(ExecAnswerProblem(description: "stdout is empty")) }
        do {
            let answer = try JSONDecoder().decode(ExecAnswer.self, from: stdout)
            if let version = answer.protocolVersion, version != ExecFleet.protocolVersion {
                return .failure(ExecAnswerProblem(description: "it speaks protocol \(version), kscaler \(ExecFleet.protocolVersion)"))
            }
            return .success(answer)
        } catch let error as DecodingError {
            return .failure(ExecAnswerProblem(description: Self.describe(error)))
        } catch {
            return .failure(ExecAnswerProblem(description: "not JSON"))
        }
    }

    func machines(from operation: String) throws -> [ExecMachine] {
        guard let machines else {
            throw ExecCallFailure(operation: ExecRequest.Operation(rawValue: operation) ?? .list, outcome: .unknown,
                                  message: "the answer has no \"machines\" list")
        }
        return machines
    }

    private static func describe(_ error: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "the answer" : path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        return switch error {
        case .keyNotFound(let key, let context): "\(at(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): "\(at(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context): context.codingPath.isEmpty ? "not JSON" : "\(at(context.codingPath)): \(context.debugDescription)"
        @unknown default: "not a protocol answer"
        }
    }
}

package struct ExecAnswerProblem: Error, Sendable, CustomStringConvertible {
    package var description: String
}

/// What of a program's stderr reaches an error: the last 4 KiB, and nothing after a word that
/// announces a secret on the same line.
enum ExecRedaction {
    static let maxBytes = 4096
    static let secretWords = ["token", "secret", "password", "passwd", "authorization", "api_key", "apikey", "credential"]

    static func tail(of stderr: Data) -> String {
        let text = redacted(String(decoding: stderr.suffix(maxBytes), as: UTF8.self))
        let isBlank: (Character) -> Bool = { $0.isWhitespace || $0.isNewline }
        return String(text.drop(while: isBlank).reversed().drop(while: isBlank).reversed())
    }

    /// Each line cut after the first secret word it holds (the word kept, so the reader knows
    /// what was there).
    static func redacted(_ text: String) -> String {
        let lines: [Substring] = text.split(separator: "\n" as Character, omittingEmptySubsequences: false)
        return lines.map { (line: Substring) -> String in
            let lower = line.lowercased()
            let cuts = secretWords.compactMap { word in lower.firstRange(of: word).map { lower.distance(from: lower.startIndex, to: $0.upperBound) } }
            guard let cut = cuts.min() else { return String(line) }
            // Lower-casing can change a line's length (non-ASCII): then nothing of it is kept.
            return (lower.count == line.count ? String(line.prefix(cut)) + " " : "") + "[redacted]"
        }.joined(separator: "\n")
    }
}
