#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Spare *requested* capacity kept free on the managed workers (`headroom:`): what
/// cluster-autoscaler users get from low-priority "overprovisioning" pause pods, done in the
/// decision instead. A shortfall is sized into scale-ups like pending pods' requests; a
/// scale-down never takes the free capacity below it.
package enum Headroom: Sendable, Equatable {
    /// CPU cores and/or memory bytes kept free (at least one is set).
    case resources(cpu: Double?, memory: Int64?)
    /// The capacity of this many nodes of the sizing unit kept free.
    case nodes(Int)

    /// The amounts to keep free, a resource not asked for as 0; nil for `.nodes` when no worker
    /// size is known.
    func wanted(unit: SizingUnit?) -> Resources? {
        switch self {
        case .resources(let cpu, let memory):
            return Resources(cpu: cpu ?? 0, memory: Double(memory ?? 0))
        case .nodes(let count):
            guard let unit else { return nil }
            return Resources(cpu: Double(count) * unit.size.cpuCores, memory: Double(count) * Double(unit.size.memoryBytes))
        }
    }
}

/// How the headroom stood this run (a pool's, with `pools:`): in the plan, the JSON report and
/// the history. Amounts in cores and bytes.
package struct HeadroomStatus: Sendable, Equatable, Codable {
    /// The `{nodes: N}` form's N; nil for the cpu/memory form.
    package var nodes: Int?
    /// What is to be kept free (0: that resource was not asked for).
    package var wanted: Resources
    /// Allocatable minus requested on the Ready workers that stay (not interrupted, not being drained away).
    package var freeReady: Resources
    /// The allocatable of the workers still booting.
    package var booting: Resources
    /// What the scale-up sizing adds: wanted minus free on Ready workers (booting capacity is
    /// subtracted afterwards, in whole nodes, as for pending pods).
    package var missing: Resources

    package init(nodes: Int?, wanted: Resources, freeReady: Resources, booting: Resources) {
        self.nodes = nodes
        self.wanted = wanted
        self.freeReady = freeReady
        self.booting = booting
        missing = Resources(cpu: max(0, wanted.cpu - freeReady.cpu), memory: max(0, wanted.memory - freeReady.memory))
    }

    /// Free on Ready workers plus booting capacity.
    package var free: Resources { Resources(cpu: freeReady.cpu + booting.cpu, memory: freeReady.memory + booting.memory) }

    /// Wanted minus free (booting counted): what is short even once every booting node is Ready.
    package var shortfall: Resources {
        Resources(cpu: max(0, wanted.cpu - free.cpu), memory: max(0, wanted.memory - free.memory))
    }

    /// "cpu 2 wanted, 0.5 free; memory 4 GiB wanted, 6 GiB free" (only the resources asked for).
    package var summary: String {
        var parts: [String] = []
        if wanted.cpu > 0 { parts.append("cpu \(formatNumber(wanted.cpu, decimals: 3)) wanted, \(formatNumber(free.cpu, decimals: 3)) free") }
        if wanted.memory > 0 { parts.append("memory \(formatBytes(wanted.memory)) wanted, \(formatBytes(free.memory)) free") }
        return (nodes.map { "\($0) node\($0 == 1 ? "" : "s"): " } ?? "") + parts.joined(separator: "; ")
    }

    private enum CodingKeys: String, CodingKey {
        case nodes, wanted, freeReady = "free_ready", booting, free, missing, shortfall
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(nodes, forKey: .nodes)
        try container.encode(wanted, forKey: .wanted)
        try container.encode(free, forKey: .free)
        try container.encode(freeReady, forKey: .freeReady)
        try container.encode(booting, forKey: .booting)
        try container.encode(shortfall, forKey: .shortfall)
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(nodes: try container.decodeIfPresent(Int.self, forKey: .nodes), wanted: try container.decode(Resources.self, forKey: .wanted),
                  freeReady: try container.decode(Resources.self, forKey: .freeReady), booting: try container.decode(Resources.self, forKey: .booting))
    }
}

extension FleetView {
    /// A machine's allocatable: its type's configured size, else the sizing unit's.
    func allocatable(of instance: ManagedInstance, capacity: WorkerCapacity, unit: SizingUnit?) -> Resources {
        let size = capacity.sizes[instance.machineType] ?? unit?.size
        return Resources(cpu: size?.cpuCores ?? 0, memory: Double(size?.memoryBytes ?? 0))
    }

    /// The headroom as it stands. Requested capacity comes from the utilisation fractions
    /// (`utilization: requests`: requested over allocatable on the Ready workers) times the
    /// Ready workers' configured allocatable; the workers in `leaving` (interrupted, or being
    /// drained away) take their allocatable with them but their pods' requests stay.
    func headroomStatus(_ headroom: Headroom, capacity: WorkerCapacity, unit: SizingUnit?, cpuUtilization: Double,
                        memoryUtilization: Double, leaving: Set<String>) -> HeadroomStatus? {
        guard let wanted = headroom.wanted(unit: unit) else { return nil }
        var readyAll = Resources.zero, readyStaying = Resources.zero, booting = Resources.zero
        for instance in instances {
            let size = allocatable(of: instance, capacity: capacity, unit: unit)
            switch status(of: instance) {
            case .ready:
                readyAll = readyAll + size
                if !instance.interrupted && !leaving.contains(instance.id) { readyStaying = readyStaying + size }
            case .booting, .unregistered:
                if !instance.interrupted { booting = booting + size }
            case .notReady, .failedBoot:
                break
            }
        }
        let requested = Resources(cpu: cpuUtilization * readyAll.cpu, memory: memoryUtilization * readyAll.memory)
        let free = Resources(cpu: max(0, readyStaying.cpu - requested.cpu), memory: max(0, readyStaying.memory - requested.memory))
        if case .nodes(let count) = headroom {
            return HeadroomStatus(nodes: count, wanted: wanted, freeReady: free, booting: booting)
        }
        return HeadroomStatus(nodes: nil, wanted: wanted, freeReady: free, booting: booting)
    }
}

extension Resources {
    static func + (lhs: Resources, rhs: Resources) -> Resources { Resources(cpu: lhs.cpu + rhs.cpu, memory: lhs.memory + rhs.memory) }
    static func - (lhs: Resources, rhs: Resources) -> Resources { Resources(cpu: lhs.cpu - rhs.cpu, memory: lhs.memory - rhs.memory) }
}

// MARK: - Configuration

extension ConfigSettings {
    /// `headroom: {cpu: 2, memory: 4Gi}` or `headroom: {nodes: 1}`; one form at a time.
    static var headroom: SettingSpec { SettingSpec(
        path: ["headroom"], shape: .section(["cpu", "memory", "nodes"]),
        summary: "spare requested capacity kept free: {cpu, memory} or {nodes: N} of the sizing unit (utilization: requests)",
        read: { reader, value, config in
            let section = reader.section(value, at: "headroom")
            guard !section.fields.isEmpty else {
                if case .map? = value {
                    reader.report("headroom", "is empty", fix: "write headroom: {cpu: 2, memory: 4Gi} or headroom: {nodes: 1}, or remove it")
                }
                return
            }
            let cpu = reader.read(section, "cpu", Scalar.cpuCores)
            let memory = reader.read(section, "memory", Scalar.memoryBytes)
            let nodes = reader.read(section, "nodes", Parse.integer(atLeast: 1))
            let resourceForm = section.has("cpu") || section.has("memory")
            if resourceForm && section.has("nodes") {
                reader.report("headroom.nodes", "is set together with headroom.\(section.has("cpu") ? "cpu" : "memory")",
                              fix: "keep one form: headroom: {cpu: …, memory: …} or headroom: {nodes: N}")
                return
            }
            if let nodes {
                config.headroom = .nodes(nodes)
            } else if resourceForm, section.has("cpu") == (cpu != nil), section.has("memory") == (memory != nil) {
                config.headroom = .resources(cpu: cpu, memory: memory)
            }
        },
        listing: { config, _ in headroomLines(config.headroom, listing: true) },
        environment: { headroomLines($0.headroom, listing: false) }) }

    private static func headroomLines(_ headroom: Headroom?, listing: Bool) -> [(path: [String], value: String)] {
        var cpu = "", memory = "", nodes = ""
        switch headroom {
        case .resources(let cores, let bytes)?:
            cpu = cores.map { formatNumber($0) } ?? ""
            memory = bytes.map(formatQuantity) ?? ""
        case .nodes(let count)?:
            nodes = String(count)
        case nil:
            break
        }
        let lines = [(["headroom", "cpu"], cpu), (["headroom", "memory"], memory), (["headroom", "nodes"], nodes)]
        return listing ? lines : lines.filter { !$0.1.isEmpty }
    }
}

extension ConfigReader {
    /// Headroom counts *requested* capacity: `utilization: usage` measures something else, and
    /// sizing on it would keep the wrong thing free.
    mutating func checkHeadroom(_ config: KScalerConfig, given: (String) -> Bool) {
        checkHeadroomFits(config, given: given)
        guard config.utilization == .usage, !isBroken("utilization") else { return }
        var paths: [String] = given("headroom") ? ["headroom"] : []
        for name in (config.pools ?? [:]).keys.sorted() where given("pools.\(name).headroom") { paths.append("pools.\(name).headroom") }
        for path in paths where !isBroken(path) {
            report(path, "needs utilization: requests (headroom is requested capacity kept free; utilization: usage measures use)",
                   fix: "set utilization: requests, or remove \(path)")
        }
    }
}

extension ConfigReader {
    /// A headroom more than `max` nodes of the largest size could ever hold is never kept: the
    /// fleet would sit at its maximum for good. Checked for `workers:` and for each pool.
    private mutating func checkHeadroomFits(_ config: KScalerConfig, given: (String) -> Bool) {
        let pools: [(path: String, pool: PoolSettings)] = config.pools == nil
            ? config.workerPools.map { ("headroom", $0) }
            : config.workerPools.map { pool in (given("pools.\(pool.name).headroom") ? "pools.\(pool.name).headroom" : "headroom", pool) }
        for (path, pool) in pools {
            guard let headroom = pool.headroom, !isBroken(path), !problems.contains(where: { $0.path.hasPrefix(path + ".") }),
                  let largest = pool.workers.sizes.values.max(by: { ($0.cpuCores, $0.memoryBytes) < ($1.cpuCores, $1.memoryBytes) }) else { continue }
            let maxPath = config.pools == nil ? "nodes.max" : "pools.\(pool.name).max"
            let capacity = (cpu: Double(pool.nodes.max) * largest.cpuCores, memory: Double(pool.nodes.max) * Double(largest.memoryBytes))
            let needed: (cpu: Double, memory: Double)
            switch headroom {
            case .nodes(let count):
                needed = (Double(count) * largest.cpuCores, Double(count) * Double(largest.memoryBytes))
            case .resources(let cpu, let memory):
                needed = (cpu ?? 0, Double(memory ?? 0))
            }
            guard needed.cpu > capacity.cpu || needed.memory > capacity.memory else { continue }
            report(path, "can never be kept free: \(maxPath) \(pool.nodes.max) node\(pool.nodes.max == 1 ? "" : "s") of at most "
                + "\(formatNumber(largest.cpuCores)) cores / \(formatQuantity(largest.memoryBytes)) hold "
                + "\(formatNumber(capacity.cpu)) cores / \(formatBytes(capacity.memory)) in all",
                   fix: "lower \(path), or raise \(maxPath)")
        }
    }
}
