/// How a backend's machines show up as Kubernetes nodes. The core knows no backend's ids: each
/// backend declares its rules (EC2: provider id `aws:///{zone}/{id}`, nodes named `{id}` with
/// ids `i-[0-9a-f]+`; Proxmox: `proxmox://{cluster}/{id}`; `exec`: the user's templates), and
/// nodes are joined to machines by provider id first, node name second.
package struct MachineIdentity: Sendable {
    /// The backend's name, for reports and reasons.
    package var backend: String
    /// The provider id a machine's node carries; nil when the backend cannot say. Without it a
    /// machine with no node is never terminated as a failed boot: a node named otherwise than
    /// `nodeName` says would be a healthy machine kscaler cannot see.
    package var providerID: IdentityTemplate?
    /// How a machine's node is named.
    package var nodeName: IdentityTemplate
    /// An RE2 expression for one machine id, as the default queries select the workers' nodes.
    package var machineIDs: String
    /// Whether a text taken from a node's name or provider id is a machine id of this backend
    /// (EC2: `i-` and lower-case hex); a node whose text fails is not one of its machines.
    package var isMachineID: @Sendable (Substring) -> Bool

    package init(backend: String, providerID: IdentityTemplate?, nodeName: IdentityTemplate, machineIDs: String,
                 isMachineID: @escaping @Sendable (Substring) -> Bool = { !$0.isEmpty }) {
        self.backend = backend
        self.providerID = providerID
        self.nodeName = nodeName
        self.machineIDs = machineIDs
        self.isMachineID = isMachineID
    }

    /// An RE2 expression (PromQL `=~`, anchored) matching the node names of the workers.
    package var workerNodeNames: String { nodeName.expression(id: machineIDs) }

    /// Whether a machine with no node can be told to have failed to boot: only when its
    /// backend declares the provider id its node would carry.
    package var detectsFailedBoots: Bool { providerID != nil }

    /// The machine behind a node, from its provider id first, its name second; nil when the node
    /// is not one of this backend's machines (a control-plane node, another backend's node).
    package func machineID(_ nodeName: String, _ providerID: String?) -> String? {
        if let providerID, let template = self.providerID, let id = template.id(in: providerID), isMachineID(id) {
            return String(id)
        }
        if let id = self.nodeName.id(in: nodeName), isMachineID(id) { return String(id) }
        return nil
    }

    /// No rules at all: matches no node (listing settings, where no fleet is made).
    package static let none = MachineIdentity(backend: "none", providerID: nil, nodeName: IdentityTemplate.machineID,
                                              machineIDs: "", isMachineID: { _ in false })
}

/// A name or provider id template: literal text with `{id}` exactly once and optionally other
/// `{name}` placeholders, each standing for one non-empty segment without `/` (a zone, a
/// cluster name). `aws:///{zone}/{id}` matches `aws:///us-east-1a/i-0abc` with id `i-0abc`.
package struct IdentityTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Piece: Sendable, Equatable {
        case literal(String)
        case id
        case segment(String)
    }

    let pieces: [Piece]
    package let description: String

    /// `{id}` alone: the node is named after its machine.
    package static let machineID = IdentityTemplate(pieces: [.id], description: "{id}")

    private init(pieces: [Piece], description: String) {
        self.pieces = pieces
        self.description = description
    }

    /// Why a template text is not one.
    package struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        package var description: String
    }

    package init(_ text: String) throws(Problem) {
        var pieces: [Piece] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { pieces.append(.literal(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw Problem(description: "`{` without `}` in \(text)")
            }
            let name = rest[rest.index(after: open)..<close]
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0 == "_") }) else {
                throw Problem(description: "`{\(name)}` is not a placeholder: write {id}, or {name} in lower case for any one segment")
            }
            pieces.append(name == "id" ? .id : .segment(String(name)))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.literal(String(rest))) }
        for case .literal(let literal) in pieces where literal.contains("}") {
            throw Problem(description: "`}` without `{` in \(text)")
        }
        guard pieces.count(where: { $0 == .id }) == 1 else {
            throw Problem(description: "\(text) must contain {id} exactly once")
        }
        for (first, second) in zip(pieces, pieces.dropFirst()) {
            if case .literal = first { continue }
            if case .literal = second { continue }
            throw Problem(description: "two placeholders touch in \(text): put a separator between them")
        }
        self.init(pieces: pieces, description: text)
    }

    /// The text `{id}` stands for in `text`, when all of `text` matches; nil otherwise.
    package func id(in text: String) -> Substring? {
        if case .some(.some(let id)) = Self.match(pieces[...], Substring(text)) { id } else { nil }
    }

    /// Placeholders take one or more characters other than `/`; the shortest take that lets
    /// the rest match wins (backtracking over a handful of pieces). nil: no match; `.some(nil)`:
    /// a match of pieces after `{id}`.
    private static func match(_ pieces: ArraySlice<Piece>, _ text: Substring) -> Substring?? {
        guard let piece = pieces.first else { return text.isEmpty ? .some(nil) : nil }
        let rest = pieces.dropFirst()
        switch piece {
        case .literal(let literal):
            guard text.hasPrefix(literal) else { return nil }
            return match(rest, text.dropFirst(literal.count))
        case .id, .segment:
            var end = text.startIndex
            while end < text.endIndex, text[end] != "/" {
                end = text.index(after: end)
                if let found = match(rest, text[end...]) {
                    return piece == .id ? .some(text[text.startIndex..<end]) : found
                }
            }
            return nil
        }
    }

    /// An anchored RE2 expression for the texts this template matches, `{id}` as `id`.
    package func expression(id: String) -> String {
        if pieces == [.id] { return id }
        return pieces.map { piece in
            switch piece {
            case .literal(let literal): Self.escaped(literal)
            case .id: "(?:\(id))"
            case .segment: "[^/]+"
            }
        }.joined()
    }

    private static func escaped(_ literal: String) -> String {
        var out = ""
        for character in literal {
            if "\\.+*?()|[]{}^$".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
