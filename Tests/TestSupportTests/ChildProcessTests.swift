import Foundation
import Testing
import TestSupport

/// The test helpers themselves: CI runs on loaded 2-core machines, where a helper that blocks
/// a cooperative thread, or a readiness poll that can miss a line, fails unrelated suites.
@Suite struct ChildProcessTests {
    /// More children than the pool has threads, each collected while it waits on its stdin;
    /// only a task on the same pool can close those stdins. A collector that blocked a pool
    /// thread per child (as `Task.detached { readDataToEndOfFile() }` does) would leave that
    /// task no thread to run on, and the test would hang until its time limit.
    @Test(.timeLimit(.minutes(1)))
    func collectingManyChildrenLeavesThePoolFree() async throws {
        let count = 2 * ProcessInfo.processInfo.activeProcessorCount + 2
        /// Process is not Sendable; each child is touched by one collector and the closer only.
        struct Child: @unchecked Sendable { let process: Process, input: Pipe, output: Pipe, errors: Pipe }
        var started: [Child] = []
        for _ in 0..<count {
            let input = Pipe(), output = Pipe(), errors = Pipe()
            let process = try ChildProcess.launch("/bin/cat", [], stdout: output, stderr: errors, stdin: input)
            started.append(Child(process: process, input: input, output: output, errors: errors))
        }
        let children = started
        let outputs = await withTaskGroup(of: ChildProcess.Output?.self) { group in
            for child in children {
                group.addTask { await ChildProcess.collect(child.process, stdout: child.output, stderr: child.errors) }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(200))
                for child in children {
                    child.input.fileHandleForWriting.write(Data("done\n".utf8))
                    try? child.input.fileHandleForWriting.close()
                }
                return nil
            }
            var outputs: [ChildProcess.Output] = []
            for await case let output? in group { outputs.append(output) }
            return outputs
        }
        #expect(outputs.count == count)
        #expect(outputs.allSatisfy { $0.status == 0 && $0.stdout == Data("done\n".utf8) })
    }

    /// A line already in the file is found even when the bound has passed before the first
    /// look: the file is always read once more after the deadline.
    @Test func firstLineFindsALineAlreadyWrittenWhateverTheBound() async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-firstline")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("log")
        try "starting\n{\"port\": 40443}\n".write(to: file, atomically: true, encoding: .utf8)
        let line = try await ChildProcess.firstLine(of: file, timeout: .zero, what: "the port") { $0.hasPrefix("{") }
        #expect(line == "{\"port\": 40443}")
    }

    @Test func firstLineNamesWhatItMissedAndShowsTheOutput() async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-firstline")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("log")
        try "starting\n".write(to: file, atomically: true, encoding: .utf8)
        let error = await #expect(throws: TestSupportError.self) {
            try await ChildProcess.firstLine(of: file, timeout: .milliseconds(50), what: "the port") { $0.hasPrefix("{") }
        }
        #expect(error?.description.contains("did not see the port") == true)
        #expect(error?.description.contains("starting") == true)
    }
}
