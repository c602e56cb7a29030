import AWS
import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// `kscaler scale` as a separate process (the release binary) against moto (signature
/// checking on) and a real Prometheus scraping a simulated cluster: the request under the
/// lease, its refusals, its hold over the runs that follow, and the history it leaves.
@Suite struct ScaleCommandTests {
    @Test func scaleToHoldRefusalsAndReleaseAcrossRuns() async throws {
        try await EndToEndHarness.with(minNodes: 1, maxNodes: 6) { harness in
            let operatorEnvironment = harness.environment.merging(["USER": "alice"]) { _, new in new }
            let plain = try #require(try await harness.launchWorkers(1).first)
            let protected = try #require(try await harness.ec2.runInstances(RunInstancesRequest(
                imageID: "ami-760aaa0f", instanceType: "t3.large", count: 1, subnetID: harness.subnet,
                instanceTags: ["kscaler:cluster": harness.clusterID, "kscaler:pool": "default", "kscaler:protected": "true"])).first)
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: plain.id), .init(instanceID: protected.id)]
            }
            try await harness.waitForMetrics()

            // A target past nodes.max is refused whole: exit 6, nothing launched, the nearest allowed target named.
            let tooMany = try await harness.kscaler(["scale", "--to", "9"], environment: operatorEnvironment)
            #expect(tooMany.status == 6, "\(tooMany.combined)")
            #expect(tooMany.stdout.contains("manual target 9 nodes is outside nodes.max 6 (2 now): ask for 6, or add --force"), "\(tooMany.stdout)")
            #expect(try await harness.instances().count == 2)

            // --dry-run decides and changes nothing.
            let (dry, dryReport) = try await harness.report("scale", ["--to", "4", "--dry-run"], environment: operatorEnvironment)
            #expect(dry.status == 0, "\(dry.combined)")
            #expect(dryReport?.decision?.manualTarget == 4)
            #expect(try await harness.instances().count == 2)
            #expect(try await harness.table.readState().hold == nil)

            // --to 4 with a hold: two launched in one run, the hold in the state.
            let (scaled, report) = try await harness.report("scale", ["--to", "4", "--hold", "10m", "--reason", "launch day"],
                                                            environment: operatorEnvironment)
            #expect(scaled.status == 0, "\(scaled.combined)")
            #expect(report?.outcome == .acted)
            #expect(report?.actions.first?.kind == .launch)
            #expect(try await harness.instances().count == 4)
            let hold = try #require(try await harness.table.readState().hold)
            #expect(hold.target == 4 && hold.by == "alice" && hold.reason == "launch day")
            #expect(hold.until.timeIntervalSince(hold.setAt) == 600)
            #expect(try await harness.table.readState().pool("default").lastScaleUpAt != nil, "a manual scale-up starts the scale-down delay")

            // Removing the protected machine is refused, even with --force; nothing changes.
            let refused = try await harness.kscaler(["scale", "--remove", protected.id, "--force", "--reason", "tidy up"], environment: operatorEnvironment)
            #expect(refused.status == 6, "\(refused.combined)")
            #expect(refused.stdout.contains("\(protected.id) is protected"), "\(refused.stdout)")
            #expect(try await harness.instances().count == 4)

            // Pending pods would scale up, quiet ones down: a run during the hold decides neither.
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 512 * 1_048_576), count: 6) }
            try await harness.waitForMetrics()
            let (held, heldReport) = try await harness.report()
            #expect(held.status == 0, "\(held.combined)")
            #expect(heldReport?.decision?.action == Decision.Action.none)
            #expect(heldReport?.decision?.reasons.first?.code == .held, "\(heldReport?.decision?.reasons ?? [])")
            #expect(heldReport?.hold == hold)
            #expect(try await harness.instances().count == 4)
            let planned = try await harness.kscaler(["plan"])
            #expect(planned.stdout.contains("hold        held at 4 nodes by alice until"), "\(planned.stdout)")
            let lease = try await harness.kscaler(["lease", "status"])
            #expect(lease.stdout.contains("hold: held at 4 nodes by alice"), "\(lease.stdout)")

            // Released: the next run decides by the policy again and scales up for the pods.
            let released = try await harness.kscaler(["scale", "--release-hold", "--reason", "launch done"], environment: operatorEnvironment)
            #expect(released.status == 0, "\(released.combined)")
            #expect(try await harness.table.readState().hold == nil)
            let (after, afterReport) = try await harness.report()
            #expect(after.status == 0, "\(after.combined)")
            #expect(afterReport?.decision?.reasons.contains { $0.code == .held } == false)
            #expect(afterReport?.decision.map { if case .scaleUp = $0.action { true } else { false } } == true, "\(afterReport?.decision?.reasons ?? [])")

            // Every request is in the history as manual, the refused ones too, newest first.
            let events = try await harness.table.history(limit: 10).events
            let manual = events.compactMap(\.manual)
            #expect(manual.map(\.summary) == ["--release-hold", "--remove \(protected.id) --force", "--to 4 --hold 10m", "--to 9"])
            #expect(manual.map(\.reason) == ["launch done", "tidy up", "launch day", nil])
            #expect(manual.allSatisfy { $0.by == "alice" })
            #expect(events.first { $0.manual?.change == .to(4) }?.hold == hold)
            let history = try await harness.kscaler(["history"])
            #expect(history.stdout.contains("manual: kscaler scale --to 4 --hold 10m by alice: \"launch day\""), "\(history.stdout)")
        }
    }
}
