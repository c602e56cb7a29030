#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("configuration: single values")
struct ScalarTests {
    @Test("durations", arguments: [
        ("30s", 30.0), ("10m", 600), ("1h30m", 5400), ("7d", 604_800), ("500ms", 0.5), ("1.5h", 5400), ("0s", 0),
    ])
    func durations(text: String, seconds: TimeInterval) {
        #expect(parseDuration(text) == seconds)
        #expect(parseDuration(formatDuration(seconds)) == seconds)
    }

    @Test("not durations", arguments: ["", "10", "m", "10x", "1h 30m", "-5m", "10M"])
    func notDurations(text: String) {
        #expect(parseDuration(text) == nil)
    }

    @Test("memory quantities", arguments: [
        ("8Gi", Int64(8) << 30), ("512Mi", Int64(512) << 20), ("8G", 8_000_000_000), ("1k", 1000), ("8589934592", Int64(8) << 30),
        ("1.5Gi", Int64(3) << 29),
    ])
    func memory(text: String, bytes: Int64) throws {
        #expect(try Scalar.memoryBytes(.string(text)).get() == bytes)
    }

    @Test("not memory quantities", arguments: ["", "Gi", "8Gb", "eight", "-1Gi", "0"])
    func notMemory(text: String) {
        #expect((try? Scalar.memoryBytes(.string(text)).get()) == nil)
    }

    @Test("CPU in cores or millicores", arguments: [(ConfigValue.number(2), 2.0), ("2", 2), ("1500m", 1.5), ("0.25", 0.25)])
    func cpu(value: ConfigValue, cores: Double) throws {
        #expect(try Scalar.cpuCores(value).get() == cores)
    }

    @Test("booleans from YAML and from the environment")
    func booleans() {
        #expect((try? Scalar.bool("true").get()) == true)
        #expect((try? Scalar.bool(" FALSE ").get()) == false)
        #expect((try? Scalar.bool(.bool(true)).get()) == true)
        #expect((try? Scalar.bool("yes").get()) == nil)
    }

    @Test("lists from YAML and from comma-separated strings")
    func lists() {
        #expect((try? Scalar.stringList("a, b,,c ").get()) == ["a", "b", "c"])
        #expect((try? Scalar.stringList("").get()) == [])
        #expect((try? Scalar.stringList(["a", 3]).get()) == ["a", "3"])
        #expect((try? Scalar.stringList(["a", ["nested"]]).get()) == nil)
    }

    @Test("human formats", arguments: [
        (250.0, "4m10s"), (604_800, "7d"), (3661, "1h1m1s"), (0, "0s"), (0.25, "250ms"),
    ])
    func formats(seconds: TimeInterval, text: String) {
        #expect(formatDuration(seconds) == text)
    }

    @Test("bytes, percents, numbers")
    func numberFormats() {
        #expect(formatBytes(20 * Double(gib)) == "20 GiB")
        #expect(formatBytes(1536) == "1.5 KiB")
        #expect(formatQuantity(8 * gib) == "8Gi")
        #expect(formatQuantity(1000) == "1000")
        #expect(formatPercent(0.725) == "72.5 %")
        #expect(formatPercent(0.29 ) == "29 %")
        #expect(formatNumber(0.1 + 0.2) == "0.3")
        #expect(formatNumber(.nan) == "NaN")
    }

    @Test("edit distance and suggestions")
    func suggestions() {
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(editDistance("", "abc") == 3)
        #expect(closestMatch(to: "scale-up", among: ["scale_up", "scale_down"]) == "scale_up")
        #expect(closestMatch(to: "zzz", among: ["scale_up"]) == nil)
    }
}
