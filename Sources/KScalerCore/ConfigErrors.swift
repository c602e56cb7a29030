/// One thing wrong with the configuration: where (dotted path, e.g. `scale_up.cpu_threshold`),
/// what is wrong, and how to fix it. Messages never echo values of sensitive fields.
package struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    package var path: String
    package var message: String
    package var fix: String
    /// The environment variable the value came from, when it did not come from the file:
    /// the place to fix it.
    package var variable: String?

    package init(path: String, message: String, fix: String, variable: String? = nil) {
        self.path = path
        self.message = message
        self.fix = fix
        self.variable = variable
    }

    package var description: String {
        "\(path)\(variable.map { " (set by environment variable \($0))" } ?? ""): \(message). Fix: \(fix)"
    }
}

/// Every problem found in one pass, so a user fixes the whole file at once.
package struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    package var problems: [ConfigProblem]

    package init(problems: [ConfigProblem]) { self.problems = problems }

    /// At most this many are listed: a file of thousands of mistakes (the wrong file, say)
    /// gets a readable answer, quickly.
    package static let listed = 25

    package var description: String {
        let noun = problems.count == 1 ? "problem" : "problems"
        return (["configuration has \(problems.count) \(noun):"] + listing).joined(separator: "\n")
    }

    /// One indented line per listed problem, and a last one counting the rest.
    package var listing: [String] {
        var lines = problems.prefix(Self.listed).map { "  - \($0)" }
        if problems.count > Self.listed {
            lines.append("  … and \(problems.count - Self.listed) more; fix these first (is --config the right file?)")
        }
        return lines
    }
}

/// The candidate closest to `word` by edit distance, when close enough to be a likely typo
/// (at most a third of the word's length, at least 1 and at most 3 edits); failing that, a
/// candidate the word abbreviates (`mem` → `memory`).
func closestMatch(to word: String, among candidates: some Sequence<String>) -> String? {
    let word = word.lowercased()
    let limit = min(3, max(1, word.count / 3))
    var best: (candidate: String, distance: Int)?
    var abbreviated: String?
    for candidate in candidates {
        let distance = editDistance(word, candidate)
        if distance <= limit, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        if abbreviated == nil, word.count >= 3, candidate.hasPrefix(word) { abbreviated = candidate }
    }
    return best?.candidate ?? abbreviated
}

/// Levenshtein distance (insertions, deletions, substitutions), two rows of memory.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = Array(repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
