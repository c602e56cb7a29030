#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `pools.<name>`: a pool section is read by the very settings that read `workers.*`,
/// `nodes.min`/`max` and the scale-up/scale-down keys at the top level (`ConfigSettings.poolScoped`),
/// on a copy of the configuration, with every problem's path and words moved under the pool.
/// So a pool is checked exactly as `workers:` is, and says where: `pools.batch.sizes.c5.xlarge`.
enum PoolSection {
    /// Keys only a pool has.
    static let ownKeys = ["capacity_type", "priority", "prices"]
    /// What each of them means, in one line (`config init` writes them).
    static let ownKeySummaries: [String: String] = [
        "capacity_type": "on-demand, spot or spot-then-on-demand",
        "priority": "higher pools grow first with the priority expander (default 0)",
        "prices": "hourly price per instance type, for the cheapest expander, e.g. {c5.xlarge: 0.17}",
    ]

    static let schema: SchemaNode = {
        var node = SchemaNode.section([])
        for spec in ConfigSettings.poolScoped {
            node = node.inserting(SchemaNode(spec.shape), at: ConfigSettings.poolKey(spec.path)[...])
        }
        return node.inserting(.leaf, at: ["capacity_type"]).inserting(.leaf, at: ["priority"]).inserting(.dictionary, at: ["prices"])
    }()

    static func read(name: String, _ entry: ConfigValue, base: KScalerConfig, into reader: inout ConfigReader) -> PoolSettings? {
        let prefix = "pools.\(name)"
        if case .failure(let error) = TextRule.pool.parse(.string(name)) {
            reader.report(prefix, "pool name: " + error.message, fix: error.fix)
            return nil
        }
        guard case .map(let fields) = entry else { return nil }  // `checkShape` said so
        let section = ConfigValue.map(fields)
        var tree = ConfigValue.map([:])
        for spec in ConfigSettings.poolScoped {
            if let value = section.value(at: ConfigSettings.poolKey(spec.path)) { tree = tree.setting(value, at: spec.path) }
        }
        var pool = base
        pool.workers = WorkerSettings(pool: name, sizes: [:], join: JoinParameters(tokenParameter: "", serverURLParameter: ""))
        // A pool's max defaults to the cluster's; its min to 0 (nodes.min is no pool's).
        pool.nodes = NodeBounds(min: 0, max: base.nodes.max)
        var local = ConfigReader()
        for spec in ConfigSettings.poolScoped { spec.read(&local, tree.value(at: spec.path), &pool) }
        local.checkPool(pool, given: { tree.value(at: $0.split(separator: ".").map(String.init)) != nil })

        let own = Section(path: prefix, fields: fields)
        let capacityType = local.read(own, "capacity_type", Parse.oneOf(CapacityType.self)) ?? .onDemand
        let priority = local.read(own, "priority", Scalar.integer) ?? 0
        let prices = readPrices(own.value("prices"), at: own.path("prices"), into: &local)
        for problem in local.problems {
            reader.report(moved(problem.path, under: prefix), moved(problem.message, under: prefix), fix: moved(problem.fix, under: prefix))
        }
        guard local.problems.isEmpty else { return nil }
        return PoolSettings(workers: pool.workers, nodes: pool.nodes, capacityType: capacityType, priority: priority, prices: prices,
                            scaleUp: pool.scaleUp, scaleDown: pool.scaleDown, headroom: pool.headroom)
    }

    /// `{c5.xlarge: 0.068}`: hourly prices, 0 or more.
    private static func readPrices(_ value: ConfigValue?, at path: String, into reader: inout ConfigReader) -> [String: Double] {
        guard let value else { return [:] }
        guard case .map(let entries) = value else {
            reader.report(path, "expected a map of instance type to hourly price, got \(value.kindName)", fix: "write e.g. prices: {c5.xlarge: 0.068}")
            return [:]
        }
        var prices: [String: Double] = [:]
        for (type, entry) in entries.sorted(by: { $0.key < $1.key }) {
            switch Scalar.number(entry) {
            case .success(let price) where price >= 0 && price.isFinite: prices[type] = price
            case .success(let price): reader.report("\(path).\(type)", "\(formatNumber(price)) is not a price", fix: "write the hourly price, 0 or more")
            case .failure(let error): reader.report("\(path).\(type)", error.message, fix: error.fix)
            }
        }
        return prices
    }

    /// Top-level spellings in a pool's problem moved under it: `workers.sizes` → `pools.batch.sizes`,
    /// `nodes.min` → `pools.batch.min`, `scale_up.x` → `pools.batch.scale_up.x`, `headroom` →
    /// `pools.batch.headroom`. A spelling is
    /// moved only where it starts a word, so `pools.batch.scale_up` is never moved twice.
    static func moved(_ text: String, under prefix: String) -> String {
        let replacements = [("workers.", "\(prefix)."), ("nodes.min", "\(prefix).min"), ("nodes.max", "\(prefix).max"),
                            ("scale_up.", "\(prefix).scale_up."), ("scale_down.", "\(prefix).scale_down."), ("headroom", "\(prefix).headroom")]
        var result = ""
        var rest = Substring(text)
        scan: while !rest.isEmpty {
            let startsWord = result.last.map { !($0.isLetter || $0.isNumber || $0 == "." || $0 == "_") } ?? true
            if startsWord {
                for (old, new) in replacements where rest.hasPrefix(old) {
                    result += new
                    rest = rest.dropFirst(old.count)
                    continue scan
                }
            }
            result.append(rest.removeFirst())
        }
        return result
    }

    /// `config check`'s lines: each pool's effective values under `pools.<name>`; for a
    /// `workers:` configuration, the pool it became.
    static func lines(_ config: KScalerConfig) -> [(path: [String], value: String)] {
        config.workerPools.flatMap { pool -> [(path: [String], value: String)] in
            let prefix = ["pools", pool.name]
            let own: [(path: [String], value: String)] = [
                (prefix + ["capacity_type"], pool.capacityType.rawValue), (prefix + ["priority"], String(pool.priority)),
            ] + pool.prices.sorted(by: { $0.key < $1.key }).map { (prefix + ["prices", $0.key], formatNumber($0.value)) }
            guard config.pools != nil else {
                return [(prefix + ["min"], String(pool.nodes.min)), (prefix + ["max"], String(pool.nodes.max))] + own
            }
            var scoped = config
            scoped.workers = pool.workers
            scoped.nodes = pool.nodes
            scoped.scaleUp = pool.scaleUp
            scoped.scaleDown = pool.scaleDown
            scoped.headroom = pool.headroom
            let settings = ConfigSettings.poolScoped.flatMap { spec in
                spec.listing(scoped, MachineIdentity.none).map { (prefix + ConfigSettings.poolKey($0.path), $0.value) }
            }
            return settings + own
        }
    }
}

extension SchemaNode {
    init(_ shape: SettingSpec.Shape) {
        switch shape {
        case .value: self = .leaf
        case .dictionary: self = .dictionary
        case .section(let keys): self = .section(keys.map { ($0, .leaf) })
        case .named(let section): self = .namedSections(section)
        case .list(let item): self = .list(item)
        }
    }
}
