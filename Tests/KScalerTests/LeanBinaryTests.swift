#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// The binary under test (the release build, `KSTEST_BINARY`) links FoundationEssentials only:
/// full Foundation brings ICU's 34 MB of data and its start-up with it (issue 18). One
/// `import Foundation` anywhere in a target kscaler links is enough to bring it back.
@Suite struct LeanBinaryTests {
    @Test func noICUAndNoFullFoundationAreLinkedIn() throws {
        let path = try KScalerProcess.binaryPath()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.count > 1_000_000, "\(path) is not the kscaler binary")
        // Names that exist only in ICU's data and in Foundation's ICU-backed half.
        for marker in ["icudt", "FoundationInternationalization", "_FoundationICU"] {
            let found = bytes.withUnsafeBytes { Self.contains($0, Array(marker.utf8)) }
            #expect(!found, "\(path) contains \(marker): something imports all of Foundation")
        }
    }

    /// Whether `needle` occurs in `haystack`: memchr to each candidate first byte (the debug
    /// build's generic search takes seconds over a 44 MB binary).
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let base = haystack.baseAddress, let first = needle.first else { return false }
        var offset = 0
        while offset + needle.count <= haystack.count {
            guard let hit = memchr(base + offset, Int32(first), haystack.count - offset - needle.count + 1) else { return false }
            let position = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + position, needle, needle.count) == 0 { return true }
            offset = position + 1
        }
        return false
    }
}
