// kscaler-bench: in-process figures for the work a run does on the CPU, at fleet sizes that
// show how it grows: decide() on 10 … 10,000 nodes (10× as many pods), EC2 DescribeInstances
// of 100 … 10,000 instances (in pages of 1,000, as EC2 sends them), and a Prometheus vector of
// 100 … 10,000 series. Prints median, p10 and p90 per call and the median cost per item
// (flat = linear).
// Build in release mode for meaningful figures (`make bench` runs it; see BENCHMARKS.md):
//
//   kscaler-bench [--json] [--only decide|ec2-describe|prometheus-vector] [--sizes 1000,…] [--calls N]
//
// `--calls N` makes exactly N timed calls per case, for a profiler. Valgrind cannot read this
// toolchain's debug info, so profile a copy without it; calls 3 minus calls 1, halved, is one call:
//   cp .build/release/kscaler-bench /tmp/kb && strip --strip-debug /tmp/kb
//   valgrind --tool=callgrind /tmp/kb --only ec2-describe --sizes 1000 --calls 3

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var json = false
    var only: String?
    var sizes: [Int]?
    var calls: Int?

    init(_ arguments: ArraySlice<String>) {
        var rest = arguments
        func value(_ flag: String) -> String {
            guard let value = rest.popFirst() else { usage("\(flag) needs a value") }
            return value
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--json": json = true
            case "--only": only = value(argument)
            case "--sizes":
                let text = value(argument)
                let parsed = text.split(separator: ",").compactMap { Int($0) }
                guard !parsed.isEmpty, parsed.allSatisfy({ $0 > 0 }) else { usage("--sizes wants positive counts like 100,1000, got \(text)") }
                sizes = parsed
            case "--calls":
                let text = value(argument)
                guard let count = Int(text), count > 0 else { usage("--calls wants a positive count, got \(text)") }
                calls = count
            default: usage("unknown argument \(argument)")
            }
        }
        if let only, !["decide", "ec2-describe", "prometheus-vector"].contains(only) {
            usage("--only wants decide, ec2-describe or prometheus-vector, got \(only)")
        }
    }

    func wants(_ benchmark: String) -> Bool { only == nil || only == benchmark }
}

func usage(_ problem: String) -> Never {
    print("kscaler-bench: \(problem)\nusage: kscaler-bench [--json] [--only decide|ec2-describe|prometheus-vector] [--sizes 100,1000] [--calls N]")
    exit(64)
}

let options = Options(CommandLine.arguments.dropFirst())
let plan = MeasurementPlan(calls: options.calls)
func report(_ results: [Result]) {
    for result in results { print(options.json ? result.json : result.row) }
}

if !options.json { print(Result.header) }
if options.wants("decide") { report(await DecideBenchmark.run(sizes: options.sizes ?? [10, 100, 1_000, 10_000], plan: plan)) }
if options.wants("ec2-describe") { report(try await EC2ParsingBenchmark.run(sizes: options.sizes ?? [100, 1_000, 10_000], plan: plan)) }
if options.wants("prometheus-vector") {
    report(try await PrometheusParsingBenchmark.run(sizes: options.sizes ?? [100, 1_000, 10_000], plan: plan))
}
if !options.json { print("(checksum \(checksum))") }
