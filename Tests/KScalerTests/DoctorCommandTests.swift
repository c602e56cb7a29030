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
    @Test func everyDependencyIsCheckedAndTheJoinTokenNeverPrinted() async throws {
        try await EndToEndHarness.with { harness in
            let token = "K10-secret-join-token-\(Peers.uniqueName("t"))"
            let ssm = harness.fixture.context.ssm
            try await ssm.putParameter(name: "/kscaler/\(harness.clusterID)/join-token", value: token)
            try await ssm.putParameter(name: "/kscaler/\(harness.clusterID)/server-url", value: "https://10.0.0.10:6443", type: .string)
            try await harness.prometheus?.waitUntil("count(kube_node_info)", atLeast: 1)

            let result = try await harness.kscaler(["doctor"])
            #expect(result.status == 0, "\(result.combined)")
            for line in ["ok   config", "ok   identity", "ok   table        \(harness.tableName) is ACTIVE",
                         "ok   ec2 launch   RunInstances dry run passed for t3.large in \(harness.subnet)",
                         "ok   join token   /kscaler/\(harness.clusterID)/join-token readable (SecureString",
                         "ok   server url", "ok   prometheus"] {
                #expect(result.stdout.contains(line), "missing \(line) in:\n\(result.stdout)")
            }
            #expect(!result.combined.contains(token))
        }
    }

    /// With pools, a launch is dry-run for every pool, a Spot pool's in the Spot market; the
    /// join parameters they share are read once.
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
            #expect(result.stdout.components(separatedBy: "join token").count == 2, "the shared join token is read once")
        }
    }

    @Test func aMissingJoinParameterFailsWithHowToCreateIt() async throws {
        try await EndToEndHarness.with { harness in
            let result = try await harness.kscaler(["doctor"])
            #expect(result.status == 5, "\(result.combined)")
            #expect(result.stdout.contains("FAIL join token"))
            #expect(result.stdout.contains("aws ssm put-parameter"))
            #expect(result.stdout.contains("ok   table"))
        }
    }
}
