import ArgumentParser
import Foundation
import KScaler
import Testing
@testable import kscaler

/// What an invocation's event may ask, when its run must end, and how an exit code is named.
@Suite struct LambdaEventTests {
    @Test(arguments: ["", "  ", "null", "{}", #"{"mode": "run"}"#, #"{"source": "aws.scheduler", "detail": {}}"#])
    func theseEventsRun(event: String) throws {
        #expect(try LambdaEvent.mode(of: Data(event.utf8)) == .run)
    }

    @Test func planIsAsked() throws {
        #expect(try LambdaEvent.mode(of: Data(#"{"mode":"plan"}"#.utf8)) == .plan)
    }

    @Test(arguments: [#"{"mode": "destroy"}"#, #"{"mode": 1}"#, #"{"mode": null}"#, "[1]", "\"run\"", "not json"])
    func theseAreRefused(event: String) {
        #expect(throws: LambdaEvent.Invalid.self) { try LambdaEvent.mode(of: Data(event.utf8)) }
    }

    @Test func theRunEndsASecondBeforeTheDeadlineAndNeverAfterTheLease() {
        let now = ContinuousClock.now
        let wall = Date(timeIntervalSince1970: 1_000_000)
        let wallMs = Int64(1_000_000_000)
        // 30 s left: the run has 29.
        #expect(LambdaLoop.end(deadlineEpochMilliseconds: wallMs + 30_000, leaseTTL: 120, now: now, wallNow: wall) == now + .seconds(29))
        // 15 minutes left (Lambda's longest timeout), a 2-minute lease: the lease bounds it.
        #expect(LambdaLoop.end(deadlineEpochMilliseconds: wallMs + 900_000, leaseTTL: 120, now: now, wallNow: wall) == now + .seconds(119))
        // Already past: the end is in the past, so the run refuses to start anything.
        #expect(LambdaLoop.end(deadlineEpochMilliseconds: wallMs - 500, leaseTTL: 120, now: now, wallNow: wall) < now)
        // No deadline header: 60 s, as `run --timeout` defaults.
        #expect(LambdaLoop.end(deadlineEpochMilliseconds: nil, leaseTTL: 120, now: now, wallNow: wall) == now + .seconds(60))
    }

    @Test func exitCodesAreNamedByTheirClass() {
        #expect(KScalerExit.errorType(for: KScalerExit.observationFailed) == "KScaler.ObservationFailed")
        #expect(KScalerExit.errorType(for: KScalerExit.invalidConfig) == "KScaler.InvalidConfiguration")
        #expect(KScalerExit.errorType(for: KScalerExit.actionFailed) == "KScaler.ActionFailed")
        #expect(KScalerExit.errorType(for: ExitCode(143)) == "KScaler.Terminated")
        #expect(KScalerExit.errorType(for: KScalerExit.internalError) == "KScaler.InternalError")
    }
}
