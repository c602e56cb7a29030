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
        /// Pipe is not Sendable; each child is touched by one collector and the closer only.
        struct Child: @unchecked Sendable { let process: SpawnedProcess, input: Pipe, output: Pipe, errors: Pipe }
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

    /// The child gets exactly the environment given, and no descriptor of ours but 0, 1 and 2
    /// (an inherited write end of another child's pipe would keep that pipe from ever closing).
    @Test func aChildGetsItsEnvironmentAndOnlyTheStandardDescriptors() async throws {
        let output = Pipe(), errors = Pipe()
        let unrelated = Pipe()  // open in this process while the child starts
        let child = try ChildProcess.launch("/bin/sh", ["-c", "ls /proc/self/fd; echo \"KSTEST_X=$KSTEST_X HOME=${HOME:-unset}\""],
                                            environment: ["KSTEST_X": "42"], stdout: output, stderr: errors)
        let result = await ChildProcess.collect(child, stdout: output, stderr: errors)
        _ = unrelated
        let lines = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n")
        #expect(result.status == 0)
        #expect(lines.last == "KSTEST_X=42 HOME=unset")
        // 0, 1, 2 and the one ls opens on /proc/self/fd itself.
        #expect(lines.dropLast().compactMap { Int($0) }.filter { $0 > 2 }.count <= 1, "\(lines)")
    }

    /// Swift's concurrency threads block SIGTERM; a child spawned from one still dies of it.
    @Test func terminateStopsAChildStartedFromThePoolAndReportsTheSignal() async throws {
        let output = Pipe(), errors = Pipe()
        let child = try ChildProcess.launch("/bin/sleep", ["60"], stdout: output, stderr: errors)
        #expect(child.isRunning)
        child.terminate()
        let result = await ChildProcess.collect(child, stdout: output, stderr: errors, timeout: .seconds(30))
        #expect(result.status == 128 + SIGTERM)
        #expect(child.terminationSignal == SIGTERM)
        #expect(!child.isRunning)
    }

    /// Many children started at once from many tasks (Foundation's `Process.run()` crashed
    /// now and then under this, see `SpawnedProcess`): each runs and is reaped once.
    @Test func manyChildrenStartedConcurrentlyAllRunAndAreReaped() async throws {
        let statuses = try await withThrowingTaskGroup(of: Int32.self) { group in
            for index in 0..<64 {
                group.addTask {
                    let output = Pipe(), errors = Pipe()
                    let child = try ChildProcess.launch("/bin/sh", ["-c", "exit \(index % 3)"], stdout: output, stderr: errors)
                    return await ChildProcess.collect(child, stdout: output, stderr: errors).status
                }
            }
            var statuses: [Int32] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        #expect(statuses.sorted() == (0..<64).map { Int32($0 % 3) }.sorted())
    }
}
