#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// (instance type, subnet) pairs to try in order: instance types in configured order, and for
/// each, subnets with the fewest managed instances first (ties: configured order), skipping
/// offerings marked unavailable until after `now`. With a launch template alone (no types
/// configured) the type is the template's, so any unavailable entry for a subnet skips it.
func launchCandidates(capacity: WorkerCapacity, instances: [ManagedInstance], unavailable: [UnavailableOffering], now: Date) -> [Offering] {
    let inEffect = unavailable.filter { $0.until > now }
    let perSubnet = Dictionary(grouping: instances.compactMap(\.subnetID), by: { $0 }).mapValues(\.count)
    let subnets: [String?] = capacity.subnets.isEmpty
        ? [nil]
        : capacity.subnets.enumerated()
            .sorted { (perSubnet[$0.element] ?? 0, $0.offset) < (perSubnet[$1.element] ?? 0, $1.offset) }
            .map(\.element)
    let types: [String?] = capacity.instanceTypes.isEmpty ? [nil] : capacity.instanceTypes
    var offerings: [Offering] = []
    for type in types {
        for subnet in subnets {
            let blocked = inEffect.contains { entry in
                guard let type else { return subnet != nil && entry.subnetID == subnet }
                return entry.instanceType == type && (entry.subnetID == nil || entry.subnetID == subnet)
            }
            if !blocked { offerings.append(Offering(instanceType: type, subnetID: subnet)) }
        }
    }
    return offerings
}

/// The worker size scale-ups are counted in: the first launchable instance type's size; else
/// the first configured type with a size; with a launch template alone, the smallest size
/// given (the pending pods surely fit; an extra node is cheaper than a second round).
func sizingUnit(capacity: WorkerCapacity, candidates: [Offering]) -> SizingUnit? {
    if let type = candidates.first?.instanceType, let size = capacity.sizes[type] {
        return SizingUnit(instanceType: type, size: size)
    }
    if let type = capacity.instanceTypes.first(where: { capacity.sizes[$0] != nil }), let size = capacity.sizes[type] {
        return SizingUnit(instanceType: type, size: size)
    }
    return capacity.sizes
        .min { ($0.value.cpuCores, $0.value.memoryBytes, $0.key) < ($1.value.cpuCores, $1.value.memoryBytes, $1.key) }
        .map { SizingUnit(instanceType: $0.key, size: $0.value) }
}
