import KScalerCore

/// A launch as the run asks for it: how many, the offerings to try in order, and the
/// idempotency id (EC2: the ClientToken and tag `kscaler:launch-id`). What the machines boot
/// with (user data, image) is the fleet's own.
package struct LaunchPlan: Sendable, Equatable {
    package var launchID: String
    package var count: Int
    package var candidates: [Offering]
    /// The pool to launch into (its launch settings and user data); nil: the fleet's only one.
    package var pool: String?

    package init(launchID: String, count: Int, candidates: [Offering], pool: String? = nil) {
        self.launchID = launchID
        self.count = count
        self.candidates = candidates
        self.pool = pool
    }
}

package struct LaunchResult: Sendable, Equatable {
    package var instances: [ManagedInstance]
    /// The offering that launched (nil for a dry run that passed).
    package var offering: Offering?
    /// Offerings that answered with a capacity error on the way, to be skipped for a while.
    package var unavailable: [Offering]

    package init(instances: [ManagedInstance], offering: Offering?, unavailable: [Offering]) {
        self.instances = instances
        self.offering = offering
        self.unavailable = unavailable
    }
}

/// What became of a fleet call that threw, as far as anyone can tell.
package enum FailedCallOutcome: Sendable, Equatable {
    /// Refused before anything happened, or answered with a definite error.
    case nothingHappened
    /// Sent without a usable answer: it may have happened. The run records it as unknown and
    /// the next run looks (a launch by its id) before acting again.
    case unknown
}

/// The machines kscaler manages for one cluster, on one backend (EC2 today).
///
/// The contract every backend keeps: nothing is launched or terminated on doubt; a launch that
/// launched nothing throws `LaunchFailure` (with the offerings found out of capacity); for any
/// other error `outcome(of:)` says whether the call may have taken effect; a launch carrying
/// the same `launchID` twice launches once, and `instances(launchID:)` finds what it launched.
package protocol Fleet: Sendable {
    /// How the backend's machines show up as Kubernetes nodes: the default queries' worker
    /// selector and the node → machine mapping.
    var machines: MachineIdentity { get }
    /// This cluster's machines: the live ones (pending or running), and those ended (shutting
    /// down or terminated, as far as the backend still lists them), in one call.
    func listMachines() async throws -> MachineListing
    /// The live machines launched under `launchID`.
    func instances(launchID: String) async throws -> [ManagedInstance]
    /// Launches, trying offerings in order on capacity errors. A dry run proves permissions
    /// only and launches nothing.
    func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult
    /// Terminates managed, unprotected machines; refuses anything else before calling the backend.
    func terminate(_ instanceIDs: [String], dryRun: Bool) async throws
    /// Whether a call that threw `error` may have taken effect.
    func outcome(of error: any Error) -> FailedCallOutcome
}

/// A backend that can tell a machine type's allocatable from its hardware (EC2:
/// `DescribeInstanceTypes` less the kubelet's reservation), for types no node has reported yet.
package protocol MachineSizing: Sendable {
    /// The estimated allocatable of each of `machineTypes` the backend knows, in one call.
    func estimatedSizes(of machineTypes: [String]) async throws -> [String: WorkerSize]
}

extension Fleet {
    /// The live (pending or running) machines of this cluster.
    package func managedInstances() async throws -> [ManagedInstance] { try await listMachines().live }
}

/// This cluster's machines as the backend lists them.
package struct MachineListing: Sendable, Equatable {
    package var live: [ManagedInstance]
    /// Ids of machines shutting down or terminated that still carry this cluster's tag: their
    /// Node objects are ghosts.
    package var ended: Set<String>

    package init(live: [ManagedInstance], ended: Set<String> = []) {
        self.live = live
        self.ended = ended
    }
}

/// Every offering answered with a capacity error (or the request was refused outright):
/// nothing was launched.
package struct LaunchFailure: Error, Sendable, CustomStringConvertible {
    package var unavailable: [Offering]
    package var reason: String

    package init(unavailable: [Offering], reason: String) {
        self.unavailable = unavailable
        self.reason = reason
    }

    package var description: String { "launch failed: \(reason)" }
}

/// A termination kscaler refused before calling the backend: the machine is not one it may touch.
package struct TerminationRefused: Error, Sendable, CustomStringConvertible {
    package var instances: [String]
    package var description: String {
        "refused to terminate \(instances.joined(separator: ", ")): kscaler terminates only live, unprotected machines of its own cluster"
    }
}
