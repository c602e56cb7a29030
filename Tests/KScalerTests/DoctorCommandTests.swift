import AWS
import Foundation
import Testing
import TestSupport

/// `kscaler doctor` as an operator runs it: a separate process, against moto with signature
/// checking on.
@Suite struct DoctorCommandTests {
    @Test func reportsSourceRegionAndIdentityAndExitsZero() async throws {
        let moto = try Peers.moto()
        let result = try await KScalerProcess.run(["doctor"], environment: moto.environment())
        #expect(result.status == 0, "\(result.combined)")
        #expect(result.stdout.contains("ok   region       us-east-1 (from AWS_REGION)"))
        #expect(result.stdout.contains("ok   credentials  from environment"))
        #expect(result.stdout.contains("ok   identity     account 123456789012, arn:aws:iam::123456789012:user/kscaler-tests"))
        #expect(!result.combined.contains(moto.secretAccessKey))
    }

    @Test func wrongSecretFailsSayingTheSignatureWasRejectedWithoutPrintingIt() async throws {
        let moto = try Peers.moto()
        let wrongSecret = "not-the-right-secret-0000000000000000000000"
        let result = try await KScalerProcess.run(["doctor"], environment: moto.environment(extra: ["AWS_SECRET_ACCESS_KEY": wrongSecret]))
        #expect(result.status == 5, "\(result.combined)")
        #expect(result.stdout.contains("FAIL identity"))
        #expect(result.stdout.contains("SignatureDoesNotMatch"))
        #expect(result.stdout.contains("signature was rejected"))
        #expect(!result.combined.contains(wrongSecret))
        #expect(!result.combined.contains(moto.secretAccessKey))
    }

    @Test func versionAndHelpDocumentExitCodes() async throws {
        let version = try await KScalerProcess.run(["--version"], environment: [:])
        #expect(version.status == 0)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression) != nil)
        let help = try await KScalerProcess.run(["--help"], environment: [:])
        #expect(help.status == 0)
        #expect(help.stdout.contains("EXIT CODES"))
        #expect(help.stdout.contains("3   observation failed"))
    }
}

/// `kscaler doctor --config`: every dependency of a run, against moto and a real Prometheus.
@Suite struct DoctorClusterTests {
    /// The autoscaler (the default role) checks what a run needs and leaves the join token
    /// alone: the stack's policy rightly denies kscaler reading it.
    @Test func everyDependencyOfARunIsCheckedAndTheJoinTokenIsNotTouched() async throws {
        try await EndToEndHarness.with { harness in
            try await harness.prometheus?.waitUntil("count(kube_node_info)", atLeast: 1)

            let result = try await harness.kscaler(["doctor"])
            #expect(result.status == 0, "\(result.combined)")
            for line in ["ok   config", "ok   identity", "ok   table        \(harness.tableName) is ACTIVE",
                         "ok   ec2 launch   RunInstances dry run passed for t3.large in \(harness.subnet)", "ok   prometheus"] {
                #expect(result.stdout.contains(line), "missing \(line) in:\n\(result.stdout)")
            }
            #expect(!result.stdout.contains("join token") && !result.stdout.contains("server url"), "\(result.stdout)")
        }
    }

    /// A worker reads both join parameters with decryption; the token is never printed.
    @Test func aWorkerReadsTheJoinParametersAndNeverPrintsTheToken() async throws {
        try await EndToEndHarness.with { harness in
            let token = "K10-secret-join-token-\(Peers.uniqueName("t"))"
            let ssm = harness.fixture.context.ssm
            try await ssm.putParameter(name: "/kscaler/\(harness.clusterID)/join-token", value: token)
            try await ssm.putParameter(name: "/kscaler/\(harness.clusterID)/server-url", value: "https://10.0.0.10:6443", type: .string)

            let result = try await harness.kscaler(["doctor", "--role", "worker"])
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.stdout.contains("ok   join token   /kscaler/\(harness.clusterID)/join-token readable (SecureString"), "\(result.stdout)")
            #expect(result.stdout.contains("ok   server url   /kscaler/\(harness.clusterID)/server-url readable (String"), "\(result.stdout)")
            // A worker needs neither the table nor a launch permission.
            #expect(!result.stdout.contains("table") && !result.stdout.contains("ec2 launch"), "\(result.stdout)")
            #expect(!result.combined.contains(token))
        }
    }

    @Test func aWorkerMissingAJoinParameterFailsWithHowToCreateIt() async throws {
        try await EndToEndHarness.with { harness in
            let result = try await harness.kscaler(["doctor", "--role", "worker"])
            #expect(result.status == 5, "\(result.combined)")
            #expect(result.stdout.contains("FAIL join token"))
            #expect(result.stdout.contains("aws ssm put-parameter"))
        }
    }

    /// The server's write permission is proved by a PutParameter that SSM refuses only because
    /// the parameter exists: afterwards each parameter is at the version it was, with its value.
    @Test func theServersWritePermissionIsProvedWithoutChangingAnything() async throws {
        try await EndToEndHarness.with { harness in
            let token = "K10-secret-join-token-\(Peers.uniqueName("t"))"
            let ssm = harness.fixture.context.ssm
            let tokenName = "/kscaler/\(harness.clusterID)/join-token", urlName = "/kscaler/\(harness.clusterID)/server-url"
            try await ssm.putParameter(name: tokenName, value: token)
            try await ssm.putParameter(name: urlName, value: "https://10.0.0.10:6443", type: .string)

            let result = try await harness.kscaler(["doctor", "--role", "server"])
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.stdout.contains("ok   join token   \(tokenName) readable and writable (SecureString, version 1)"), "\(result.stdout)")
            #expect(result.stdout.contains("ok   server url   \(urlName) readable and writable (String, version 1)"), "\(result.stdout)")
            let after = try await ssm.getParameter(name: tokenName)
            #expect(after.version == 1 && after.value == token)
            #expect(try await ssm.getParameter(name: urlName).version == 1)
            #expect(!result.combined.contains(token))
        }
    }

    /// Before the server's first boot nothing is published; the probe would create the
    /// parameter, so it is not sent, and the check says so.
    @Test func aServerBeforeItsFirstPublishIsNotProbedAndNothingIsCreated() async throws {
        try await EndToEndHarness.with { harness in
            let result = try await harness.kscaler(["doctor", "--role", "server", "--output", "json"])
            #expect(result.status == 0, "\(result.combined)")
            let output = try JSONDecoder().decode(DoctorJSON.self, from: Data(result.stdout.utf8))
            #expect(output.role == "server" && output.passed)
            let token = try #require(output.checks.first { $0.name == "join token" })
            #expect(token.detail.contains("not published yet") && token.detail.contains("not probed"), "\(token.detail)")
            await #expect(throws: SSMClient.ParameterNotFound.self) {
                try await harness.fixture.context.ssm.getParameter(name: "/kscaler/\(harness.clusterID)/join-token")
            }
        }
    }

    /// With pools, a launch is dry-run for every pool, a Spot pool's in the Spot market; the
    /// join parameters they share are read once by a worker's check.
    @Test func withPoolsEveryPoolsLaunchIsDryRun() async throws {
        try await EndToEndHarness.with { harness in
            let ssm = harness.fixture.context.ssm
            try await ssm.putParameter(name: "/kscaler/\(harness.clusterID)/join-token", value: "K10-\(Peers.uniqueName("t"))")
            try await ssm.putParameter(name: "/kscaler/\(harness.clusterID)/server-url", value: "https://10.0.0.10:6443", type: .string)
            let single = try String(contentsOfFile: harness.configPath, encoding: .utf8)
            let workers = try #require(single.range(of: "workers:\n"))
            let kubernetes = try #require(single.range(of: "kubernetes:", range: workers.upperBound..<single.endIndex))
            let pool = { (name: String, market: String) in
                "  \(name):\n    capacity_type: \(market)\n    image_id: ami-760aaa0f\n    instance_types: [t3.large]\n"
                    + "    subnets: [\(harness.subnet)]\n    sizes: {t3.large: {cpu: 2, memory: 8Gi}}\n    max: 3\n"
            }
            let pooled = String(single[..<workers.lowerBound]).replacing(#/nodes: \{min: \d+, /#, with: "nodes: {")
                + "pools:\n" + pool("general", "on-demand") + pool("batch", "spot") + String(single[kubernetes.lowerBound...])
            try pooled.write(toFile: harness.configPath, atomically: true, encoding: .utf8)

            let result = try await harness.kscaler(["doctor"])
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let batch = lines.first { $0.hasPrefix("ok   ec2 launch (pool batch) ") }
            let general = lines.first { $0.hasPrefix("ok   ec2 launch (pool general) ") }
            #expect(batch?.hasSuffix("RunInstances dry run passed for t3.large in \(harness.subnet) (Spot)") == true, "\(result.stdout)")
            #expect(general?.hasSuffix("RunInstances dry run passed for t3.large in \(harness.subnet)") == true, "\(result.stdout)")
            let worker = try await harness.kscaler(["doctor", "--role", "worker"])
            #expect(worker.status == 0, "\(worker.combined)")
            #expect(worker.stdout.components(separatedBy: "join token").count == 2, "the shared join token is read once: \(worker.stdout)")
        }
    }

    /// `--output json`: one document with the role, the verdict and each check; a failed check
    /// still exits 5.
    @Test func jsonOutputCarriesEveryCheckAndTheExitCodeStillSaysFailed() async throws {
        try await EndToEndHarness.with { harness in
            let result = try await harness.kscaler(["doctor", "--role", "worker", "--output", "json"])
            #expect(result.status == 5, "\(result.combined)")
            let output = try JSONDecoder().decode(DoctorJSON.self, from: Data(result.stdout.utf8))
            #expect(output.role == "worker" && !output.passed)
            #expect(output.checks.map(\.name).starts(with: ["config", "region", "credentials", "identity"]), "\(output.checks.map(\.name))")
            let token = try #require(output.checks.first { $0.name == "join token" })
            #expect(!token.passed && token.detail.contains("aws ssm put-parameter"))
        }
    }
}

/// The shape of `doctor --output json`, as a script reads it.
struct DoctorJSON: Decodable {
    struct Check: Decodable { var name: String; var passed: Bool; var detail: String }
    var role: String
    var passed: Bool
    var checks: [Check]
    var notes: [String]
}
