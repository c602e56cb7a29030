import KScalerCore

/// What a run reads from Prometheus: one reading per signal (a failed query is a
/// `Reading.failed`, never an exception: the core decides what a missing signal blocks) and
/// the nodes the per-node signals describe.
public struct MetricsObservation: Sendable, Equatable {
    public var readings: [Signal: Reading]
    public var nodes: [NodeObservation]

    public init(readings: [Signal: Reading], nodes: [NodeObservation]) {
        self.readings = readings
        self.nodes = nodes
    }
}

public protocol MetricsSource: Sendable {
    /// Runs every query, concurrently, and classifies each answer against `now`.
    func observe(queries: [Signal: String], now: Date) async -> MetricsObservation
}

/// A launch as the run asks for it: how many, the offerings to try in order, the idempotency
/// id (EC2 ClientToken and tag `kscaler:launch-id`), and the worker user data.
public struct LaunchPlan: Sendable, Equatable {
    public var launchID: String
    public var count: Int
    public var candidates: [Offering]
    public var userData: String?

    public init(launchID: String, count: Int, candidates: [Offering], userData: String?) {
        self.launchID = launchID
        self.count = count
        self.candidates = candidates
        self.userData = userData
    }
}

public struct LaunchResult: Sendable, Equatable {
    public var instances: [ManagedInstance]
    /// The offering that launched (nil for a dry run that passed).
    public var offering: Offering?
    /// Offerings that answered with a capacity error on the way, to be skipped for a while.
    public var unavailable: [Offering]

    public init(instances: [ManagedInstance], offering: Offering?, unavailable: [Offering]) {
        self.instances = instances
        self.offering = offering
        self.unavailable = unavailable
    }
}

/// The EC2 instances kscaler manages for one cluster.
public protocol Fleet: Sendable {
    /// Pending and running instances tagged `kscaler:cluster=<id>`.
    func managedInstances() async throws -> [ManagedInstance]
    /// Instances (any live state) carrying `kscaler:launch-id=<launchID>`.
    func instances(launchID: String) async throws -> [ManagedInstance]
    /// Launches, trying offerings in order on capacity errors. A dry run proves permissions
    /// only (EC2 `DryRun=true`) and launches nothing.
    func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult
    /// Terminates managed, unprotected instances; refuses anything else before calling EC2.
    func terminate(_ instanceIDs: [String], dryRun: Bool) async throws
}

/// The table: the lease, the state document, the history — everything a run and the operator
/// commands (`lease status`, `lease break`, `history`) read or write there.
public protocol RunStore: Sendable {
    func acquire(owner: String, ttl: Duration, now: Date, clockSkew: TimeInterval) async throws -> LeaseAcquisition
    /// Releases a lease `owner` may hold (its acquisition's answer was lost); a no-op otherwise.
    func giveBack(owner: String) async throws
    func readState() async throws -> StateDocument
    /// Writes the state while the lease is ours (the launch intent, before RunInstances).
    func write(_ document: StateDocument, lease: Lease) async throws
    /// Records the state (nil: unchanged) and the event, and releases the lease, in one step;
    /// false when the lease was lost (then nothing was written).
    func finish(lease: Lease, document: StateDocument?, event: RunEvent?, retention: TimeInterval) async throws -> Bool
    func holder() async throws -> LeaseHolder
    func breakLease() async throws -> KScalerTable.BrokenLease
    func history(limit: Int) async throws -> (events: [RunEvent], unreadable: [String])
}

extension KScalerTable: RunStore {}
