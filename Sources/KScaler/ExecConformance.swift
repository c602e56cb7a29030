import KScalerCore

/// `kscaler backend test --exec PROG`: the checks a program must pass to be an `exec` backend
/// (docs/backends/exec.md), run against it for real under a throwaway cluster id. It launches
/// at most two machines and terminates what it launched before it returns, whatever failed.
package struct ExecConformance: Sendable {
    package struct Check: Sendable, Equatable {
        package var name: String
        package var passed: Bool
        package var detail: String
    }

    let fleet: ExecFleet
    let launchID: String
    let offering: Offering

    /// - Parameters:
    ///   - clusterID: the throwaway cluster the checks run under (nothing else's machines).
    ///   - machineType, placement: the offering to launch (nil: the program's default).
    package init(command: [String], timeout: TimeInterval, clusterID: String, machineType: String?, placement: String?,
                 environment: [String: String], launchID: String) {
        let workers = WorkerSettings(pool: "conformance", instanceTypes: machineType.map { [$0] } ?? [], subnets: placement.map { [$0] } ?? [],
                                     sizes: [:], join: JoinParameters(tokenParameter: "", serverURLParameter: ""))
        fleet = ExecFleet(settings: ExecBackendSettings(command: command, timeout: timeout), clusterID: clusterID,
                          pools: [PoolSettings(workers: workers, nodes: NodeBounds(min: 0, max: 2))], protectedInstances: [],
                          environment: environment)
        self.launchID = launchID
        offering = Offering(machineType: machineType, placement: placement)
    }

    /// Every check in order; a check that cannot run because an earlier one failed is reported
    /// failed with the reason.
    package func run() async -> [Check] {
        var checks: [Check] = []
        func record(_ name: String, _ body: () async throws -> String) async -> Bool {
            do {
                checks.append(Check(name: name, passed: true, detail: try await body()))
                return true
            } catch {
                checks.append(Check(name: name, passed: false, detail: "\(error)"))
                return false
            }
        }
        let plan = { (count: Int) in LaunchPlan(launchID: launchID, count: count, candidates: [offering], pool: "conformance") }

        guard await record("list", {
            let machines = try await fleet.list(dryRun: false)
            guard machines.isEmpty else { throw Failed("a new cluster id lists \(machines.count) machines: list must answer this cluster's only") }
            return "answers an empty list for a new cluster id"
        }) else { return checks }

        _ = await record("unknown protocol", {
            var request = ExecRequest(operation: .list, clusterID: fleet.clusterID, dryRun: false)
            request.protocolVersion = 99
            do {
                _ = try await fleet.call(request)
            } catch let failure as ExecCallFailure where failure.outcome == .nothingLaunched {
                return "protocol 99 is refused with outcome nothing_launched"
            } catch let failure as ExecCallFailure {
                throw Failed("protocol 99 must fail with outcome nothing_launched; it failed with: \(failure.message)")
            }
            throw Failed("protocol 99 was answered as if known: a program must refuse a version it does not speak")
        })

        _ = await record("dry run", {
            _ = try await fleet.launch(plan(1), dryRun: true)
            let machines = try await fleet.list(dryRun: false)
            guard machines.isEmpty else { throw Failed("a dry-run launch made \(machines.count) machines") }
            return "a dry-run launch answers and makes nothing"
        })

        var launched: [ManagedInstance] = []
        let launchedOne = await record("launch", {
            let result = try await fleet.launch(plan(1), dryRun: false)
            launched = result.instances
            guard result.instances.count == 1 else { throw Failed("count 1 answered \(result.instances.count) machines") }
            return "count 1 launched \(result.instances[0].id) (\(result.instances[0].state.rawValue))"
        })
        if launchedOne {
            _ = await record("launch again", {
                let again = try await fleet.launch(plan(1), dryRun: false)
                let listed = try await fleet.instances(launchID: launchID)
                guard Set(again.instances.map(\.id)) == Set(launched.map(\.id)), listed.count == 1 else {
                    throw Failed("the same launch id again answered \(again.instances.map(\.id)) and left \(listed.count) machines carrying it: "
                        + "a launch must be idempotent by its launch_id")
                }
                return "the same launch id again launched nothing more"
            })
            _ = await record("launch the missing", {
                let more = try await fleet.launch(plan(2), dryRun: false)
                let listed = try await fleet.instances(launchID: launchID)
                launched = listed
                guard more.instances.count == 2, listed.count == 2 else {
                    throw Failed("count 2 under a launch id holding 1 answered \(more.instances.count) and left \(listed.count) carrying it; want 2")
                }
                return "count 2 under the same id launched exactly one more"
            })
        }
        let leftovers = (try? await fleet.instances(launchID: launchID)) ?? launched
        if !leftovers.isEmpty {
            let ids = leftovers.map(\.id)
            _ = await record("terminate", {
                try await fleet.terminate(ids, dryRun: false)
                let live = try await fleet.instances(launchID: launchID)
                guard live.isEmpty else { throw Failed("\(live.map(\.id)) still listed live after terminate") }
                return "terminated \(ids.joined(separator: ", ")); none listed live"
            })
            _ = await record("terminate again", {
                // Asked directly: kscaler itself would refuse ids no longer listed live.
                let answer = try await fleet.call(ExecRequest(operation: .terminate, clusterID: fleet.clusterID, dryRun: false, machineIDs: ids))
                guard answer.terminated != nil else { throw Failed("the answer has no \"terminated\" list") }
                return "terminating machines already gone succeeds"
            })
        }
        return checks
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
