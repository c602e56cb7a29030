#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// (machine type, placement, market) to try in order: markets in order (spot before on-demand),
/// within each machine types in configured order, and for each, placements with the fewest
/// managed machines first (ties: configured order), skipping offerings marked unavailable (in
/// that market) until after `now`. Both are opaque here (EC2: instance type and
/// subnet). With a template alone (no types configured) the type is the template's, so any
/// unavailable entry for a placement skips it.
func launchCandidates(capacity: WorkerCapacity, instances: [ManagedInstance], unavailable: [UnavailableOffering], now: Date) -> [Offering] {
    let inEffect = unavailable.filter { $0.until > now }
    let perPlacement = Dictionary(grouping: instances.compactMap(\.placement), by: { $0 }).mapValues(\.count)
    let placements: [String?] = capacity.placements.isEmpty
        ? [nil]
        : capacity.placements.enumerated()
            .sorted { (perPlacement[$0.element] ?? 0, $0.offset) < (perPlacement[$1.element] ?? 0, $1.offset) }
            .map(\.element)
    let types: [String?] = capacity.machineTypes.isEmpty ? [nil] : capacity.machineTypes
    var offerings: [Offering] = []
    for market in capacity.markets {
        for type in types {
            for placement in placements {
                let blocked = inEffect.contains { entry in
                    guard entry.market == market else { return false }
                    guard let type else { return placement != nil && entry.placement == placement }
                    return entry.machineType == type && (entry.placement == nil || entry.placement == placement)
                }
                if !blocked { offerings.append(Offering(machineType: type, placement: placement, market: market)) }
            }
        }
    }
    return offerings
}

/// The worker size scale-ups are counted in: the first launchable instance type's size; else
/// the first configured type with a size; with a launch template alone, the smallest size
/// given (the pending pods surely fit; an extra node is cheaper than a second round).
func sizingUnit(capacity: WorkerCapacity, candidates: [Offering]) -> SizingUnit? {
    if let type = candidates.first?.machineType, let size = capacity.sizes[type] {
        return SizingUnit(machineType: type, size: size)
    }
    if let type = capacity.machineTypes.first(where: { capacity.sizes[$0] != nil }), let size = capacity.sizes[type] {
        return SizingUnit(machineType: type, size: size)
    }
    return capacity.sizes
        .min { ($0.value.cpuCores, $0.value.memoryBytes, $0.key) < ($1.value.cpuCores, $1.value.memoryBytes, $1.key) }
        .map { SizingUnit(machineType: $0.key, size: $0.value) }
}
