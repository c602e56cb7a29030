import AWS
import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// `headroom:` end to end: the release binary against moto (signature checking on) and a real
/// Prometheus scraping a simulated cluster, whose requests say how much room is free.
@Suite struct HeadroomEndToEndTests {
    @Test func aShortfallLaunchesAndTheFloorHoldsTheScaleDown() async throws {
        try await EndToEndHarness.with(extraConfig: "headroom: {cpu: 2}", minNodes: 1) { harness in
            let first = try #require(try await harness.launchWorkers(1).first)
            // 1.2 of 2 cores requested (60 %, below the 70 % threshold): 0.8 free, 2 wanted.
            harness.exporter.update { $0.workers = [.init(instanceID: first.id, podCPU: [0.6, 0.6])] }
            try await Task.sleep(for: .seconds(1.1))
            try await harness.waitForMetrics()

            let (planned, plan) = try await harness.report("plan")
            #expect(planned.status == 0, "\(planned.combined)")
            let status = try #require(plan?.decision?.headroom)
            // The exporter's DaemonSet pod requests a little too: about 0.8 free.
            #expect(status.wanted.cpu == 2 && (0.7...0.8).contains(status.free.cpu) && abs(status.shortfall.cpu - (2 - status.free.cpu)) < 1e-9)
            #expect(plan?.decision?.action == .scaleUp(count: 1))
            #expect(plan?.decision?.reasons.contains { reason in
                reason.code == .headroom && reason.message.hasPrefix("headroom cpu 2 wanted, 0.") && reason.message.contains(" free: +1 node of t3.large")
            } == true)
            let human = try await harness.kscaler(["plan"])
            #expect(human.stdout.contains("headroom    cpu 2 wanted, 0.") && human.stdout.contains(" free · short"), "\(human.stdout)")

            let (ran, report) = try await harness.report()
            #expect(ran.status == 0, "\(ran.combined)")
            let launched = try #require(report?.actions.first?.instanceIDs.first)
            #expect(try await harness.instances().count == 2)

            // Both calm now (0.1 core each): 3.8 free, but one node less would leave 1.8 < 2.
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: first.id, podCPU: [0.1]), .init(instanceID: launched, podCPU: [0.1])]
            }
            try await Task.sleep(for: .seconds(1.1))  // past boot grace and the delay after the scale-up
            try await harness.waitForMetrics()
            let (held, heldReport) = try await harness.report()
            #expect(held.status == 0, "\(held.combined)")
            #expect(heldReport?.decision?.action == Decision.Action.none)
            #expect(heldReport?.decision?.reasons.contains { $0.code == .headroom && $0.message.contains("scale-down blocked") } == true,
                    "\(String(describing: heldReport?.decision?.reasons))")
            #expect(try await harness.instances().count == 2)
        }
    }
}
