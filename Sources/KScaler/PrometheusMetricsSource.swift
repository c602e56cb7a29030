import KScalerCore
import Prometheus

/// Reads every signal from Prometheus concurrently and classifies each answer: a value, no
/// data (an empty vector — never read as zero), stale, not a number, or failed with the reason.
package struct PrometheusMetricsSource: MetricsSource {
    let client: PrometheusClient
    let staleness: Duration

    package init(client: PrometheusClient, staleness: Duration) {
        self.client = client
        self.staleness = staleness
    }

    package func observe(queries: [Signal: String], now: Date) async -> MetricsObservation {
        await observe(queries: queries, sizesQuery: nil, now: now)
    }

    package func observe(queries: [Signal: String], sizesQuery: String?, now: Date) async -> MetricsObservation {
        // Signal nil: the sizes query, one more in the same batch (not a round trip of its own).
        let all: [(Signal?, String)] = queries.map { ($0.key, $0.value) } + (sizesQuery.map { [(nil, $0)] } ?? [])
        let (answers, sizesAnswer) = await withTaskGroup(of: (Signal?, Result<QueryResult, any Error>).self) { group in
            for (signal, query) in all {
                group.addTask {
                    // The answer is bound before the tuple is built: Swift 6.3.1 in release mode
                    // loses the tuple's first element when it is written before the `try await`
                    // (every success came back as the first signal; a wrong key crashed the run).
                    let answer: Result<QueryResult, any Error>
                    do { answer = .success(try await client.query(query)) } catch { answer = .failure(error) }
                    return (signal, answer)
                }
            }
            var answers: [Signal: Result<QueryResult, any Error>] = [:]
            var sizesAnswer: Result<QueryResult, any Error>?
            for await (signal, answer) in group {
                if let signal { answers[signal] = answer } else { sizesAnswer = answer }
            }
            return (answers, sizesAnswer)
        }
        var readings: [Signal: Reading] = [:]
        for signal in Signal.allCases {
            guard let answer = answers[signal] else { continue }
            readings[signal] = reading(signal, answer, now: now)
        }
        var observation = MetricsObservation(readings: readings, nodes: nodes(answers, readings: readings))
        if let sizesAnswer { (observation.nodeSizes, observation.nodeSizesProblem) = nodeSizes(sizesAnswer, now: now) }
        return observation
    }

    /// Sizes by instance type from `DefaultQueries.allocatableByInstanceType`'s answer: a type
    /// with both CPU and memory, fresh, finite and positive; anything doubtful about a type
    /// leaves it out (another source, or none, sizes it). A failed query is said, not thrown.
    func nodeSizes(_ answer: Result<QueryResult, any Error>, now: Date) -> ([String: WorkerSize], String?) {
        let result: QueryResult
        switch answer {
        case .failure(let error): return ([:], "node sizes from Prometheus: \(error)")
        case .success(let value): result = value
        }
        var cpu: [String: Double] = [:], memory: [String: Double] = [:], doubtful: Set<String> = []
        for sample in result.samples {
            guard let type = sample.labels["label_node_kubernetes_io_instance_type"], !type.isEmpty else { continue }
            guard case .fresh = sample.freshness(now: now, staleness: staleness), sample.value.isFinite, sample.value > 0 else {
                doubtful.insert(type)
                continue
            }
            switch sample.labels["resource"] {
            case "cpu": cpu[type] = sample.value
            case "memory": memory[type] = sample.value
            default: continue
            }
        }
        var sizes: [String: WorkerSize] = [:]
        for (type, cores) in cpu where !doubtful.contains(type) {
            guard let bytes = memory[type] else { continue }
            sizes[type] = WorkerSize(cpuCores: cores, memoryBytes: Int64(bytes))
        }
        return (sizes, nil)
    }

    func reading(_ signal: Signal, _ answer: Result<QueryResult, any Error>, now: Date) -> Reading {
        let result: QueryResult
        switch answer {
        case .failure(let error): return .failed("\(error)")
        case .success(let value): result = value
        }
        if result.isNoData { return .noData }
        let samples = result.samples
        for sample in samples {
            switch sample.freshness(now: now, staleness: staleness) {
            case .fresh: continue
            case .stale(let age): return .stale(ageSeconds: Double(age.components.seconds))
            case .ahead(let ahead):
                return .failed("a sample is \(ahead.components.seconds)s in the future: the clocks of kscaler and Prometheus disagree")
            }
        }
        switch signal.shape {
        case .scalar:
            guard samples.count == 1 else {
                return .failed("expected one series, the query answered \(samples.count); aggregate it (e.g. sum(…))")
            }
            let value = samples[0].value
            guard value.isFinite else { return .notANumber }
            if let problem = signal.problem(with: value) { return .failed(problem) }
            return .value(value)
        case .perNode:
            var seriesPerNode: [String: Int] = [:]
            for sample in samples {
                guard let node = sample.labels["node"] else { return .failed("every series must carry a `node` label") }
                seriesPerNode[node, default: 0] += 1
                guard sample.value.isFinite else { return .failed("node \(node) answered NaN or infinity") }
                if let problem = signal.problem(with: sample.value) { return .failed("node \(node): \(problem)") }
            }
            // Counted twice, a node would be two nodes (and Ready and not Ready at once).
            let repeated = seriesPerNode.filter { $0.value > 1 }.keys.sorted()
            guard repeated.isEmpty else {
                return .failed("\(repeated.count == 1 ? "node" : "nodes") \(repeated.prefix(5).joined(separator: ", "))\(repeated.count > 5 ? ", …" : "") "
                    + "answered in more than one series; one series per node is expected: aggregate with max by (node) "
                    + "(two kube-state-metrics replicas report every node twice)")
            }
            return .value(Double(samples.count))
        }
    }

    /// Nodes from `node_ready`, with their pods from `pods_per_node`: 0 when that query
    /// answered without a series for the node, nil when it failed (the core then refuses to
    /// pick victims rather than guess).
    func nodes(_ answers: [Signal: Result<QueryResult, any Error>], readings: [Signal: Reading]) -> [NodeObservation] {
        guard case .success(let ready)? = answers[.nodeReady], readings[.nodeReady]?.usableValue != nil else { return [] }
        var podsByNode: [String: Int]?
        if case .success(let pods)? = answers[.podsPerNode], readings[.podsPerNode]?.problem == nil || readings[.podsPerNode] == .noData {
            var counts: [String: Int] = [:]
            for sample in pods.samples {
                if let node = sample.labels["node"], sample.value.isFinite { counts[node] = Int(sample.value) }
            }
            podsByNode = counts
        }
        return ready.samples.compactMap { sample in
            guard let name = sample.labels["node"] else { return nil }
            // The machine behind the node is the fleet's to tell (`NodeObservation.identified(by:)`).
            return NodeObservation(name: name, instanceID: nil, providerID: sample.labels["provider_id"], ready: sample.value == 1,
                                   nonDaemonSetPods: podsByNode.map { $0[name] ?? 0 })
        }
    }
}
