import Foundation
import KScaler
import KScalerCore
import Testing
@testable import kscaler

/// What `kscaler plan` and `run` print about ghost Nodes: each one, why it is a ghost, and
/// when it is (or would be) deleted; and the deletions among the actions.
@Suite struct ReportPrinterTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func report(_ mode: RunReport.Mode) -> RunReport {
        var report = RunReport(runID: "run-1", mode: mode, clusterID: "demo", startedAt: now)
        let own = ClusterNode(name: "i-0aaa", uid: "u1", providerID: nil, ready: false, machineID: "i-0aaa")
        let other = ClusterNode(name: "i-0bbb", uid: "u2", providerID: nil, ready: false, machineID: "i-0bbb")
        report.nodeCleanup = NodeCleanup(ghosts: [
            .init(node: own, machine: "i-0aaa", since: now, deleteAt: now, terminatedByKscaler: true, due: true),
            .init(node: other, machine: "i-0bbb", since: now.addingTimeInterval(-30), deleteAt: now.addingTimeInterval(90),
                  terminatedByKscaler: false, due: false),
        ])
        report.actions = [.init(kind: .deleteNode, instanceIDs: ["i-0aaa"], nodes: ["i-0aaa"])]
        return report
    }

    @Test func planListsEachGhostWithWhenItWouldBeDeleted() {
        let text = ReportPrinter.human(Self.report(.plan), bounds: NodeBounds(), now: Self.now)
        #expect(text.contains("ghosts      Node objects whose instance is gone"))
        #expect(text.contains("i-0aaa") && text.contains("terminated by kscaler · would be deleted now"), "\(text)")
        #expect(text.contains("gone since 2027-01-15T07:59:30Z") && text.contains("deleted after") && text.contains("(in 1m 30s, kubernetes.ghost_grace)"),
                "\(text)")
        #expect(text.contains("action      delete node i-0aaa (server-side dry run passed)"), "\(text)")
    }

    @Test func aRunSaysWhatItDeleted() {
        let text = ReportPrinter.human(Self.report(.run), bounds: NodeBounds(), now: Self.now)
        #expect(text.contains("terminated by kscaler · deleted now"), "\(text)")
        #expect(text.contains("action      deleted node i-0aaa"), "\(text)")
    }
}
