import KScalerCore

/// The user data of a worker or server, rendered from the templates in userdata/ (compiled into
/// the binary, see `UserDataTemplates`) by the contract of userdata/README.md.
package enum UserDataRenderer {
    /// EC2 refuses more user data than this (bytes, before base64).
    package static let ec2Limit = 16 * 1024

    /// What `kscaler run` passes to RunInstances: the k3s worker's user data, or nil when a
    /// launch template is configured (it carries its own user data, which EC2 then applies).
    package static func workerUserData(for config: KScalerConfig) throws -> String? {
        guard config.workers.launchTemplate == nil else { return nil }
        return try render(.k3sWorker, UserDataInputs(config: config))
    }

    /// Renders `kind`, checking every value against its rule, and for workers the size against
    /// EC2's limit (kscaler passes them as they are; server user data over the limit can still
    /// be gzipped by hand, see userdata/README.md). All problems are reported at once.
    package static func render(_ kind: UserDataKind, _ inputs: UserDataInputs) throws(UserDataError) -> String {
        let output: UserDataTemplate.Output
        do throws(UserDataTemplate.Malformed) {
            guard let text = UserDataTemplates.files[kind.templatePath] else {
                throw UserDataTemplate.Malformed(description: "\(kind.templatePath) is not compiled in; run scripts/embed-userdata.py")
            }
            output = try UserDataTemplate(path: kind.templatePath, text: text, files: UserDataTemplates.files)
                .render(values: inputs.values, sections: inputs.sections, blocks: inputs.blocks)
        } catch {
            throw UserDataError(kind: kind, problems: [UserDataProblem(name: kind.templatePath, message: error.description,
                                                                      fix: "fix the template in userdata/ (a kscaler bug)")])
        }
        var problems: [UserDataProblem] = []
        for section in inputs.sections.subtracting(output.sections).sorted() {
            let available = output.sections.isEmpty ? "it has none" : "it has " + output.sections.sorted().joined(separator: ", ")
            problems.append(UserDataProblem(name: section, message: "\(kind.rawValue) user data has no section \(section)",
                                            fix: "leave it out (\(available))"))
        }
        problems += valueProblems(kind, output, inputs)
        for name in output.blocksMissing.sorted() {
            problems.append(UserDataProblem(name: name, message: "no content given for the block", fix: "give the block \(name)"))
        }
        for (name, block) in inputs.blocks.sorted(by: { $0.key < $1.key }) where UserDataTemplate.containsOpeningBraces(block) {
            problems.append(UserDataProblem(name: name, message: "contains \"{{\", which user data must not", fix: "remove it from \(name)"))
        }
        if problems.isEmpty, UserDataTemplate.containsOpeningBraces(output.text) {
            problems.append(UserDataProblem(name: kind.templatePath, message: "the output still contains \"{{\"",
                                            fix: "fix the template in userdata/ (a kscaler bug)"))
        }
        let size = output.text.utf8.count
        if kind.isWorker, size > ec2Limit {
            problems.append(UserDataProblem(
                name: "size", message: "the user data is \(size) bytes; EC2 accepts at most \(ec2Limit)",
                fix: "shorten workers.labels and workers.taints"))
        }
        guard problems.isEmpty else { throw UserDataError(kind: kind, problems: problems) }
        return output.text
    }

    /// Every value the template used, against its rule and the rules that tie values together.
    private static func valueProblems(_ kind: UserDataKind, _ output: UserDataTemplate.Output, _ inputs: UserDataInputs) -> [UserDataProblem] {
        var problems: [UserDataProblem] = []
        for name in output.valuesUsed {
            guard let rule = UserDataValueRule.all[name] else {
                problems.append(UserDataProblem(name: name, message: "the template uses {{\(name)}}, which has no rule",
                                                fix: "fix the template in userdata/ (a kscaler bug)"))
                continue
            }
            guard let value = inputs.values[name] else {
                problems.append(UserDataProblem(name: name, message: "no value given, and it has no default", fix: rule.fix))
                continue
            }
            if !rule.matches(value) {
                problems.append(UserDataProblem(name: name, message: "\"\(value)\" is not \(rule.expected)", fix: rule.fix))
            } else if name == "node_labels" {
                problems += value.split(separator: ",").compactMap { labelProblem(String($0)) }
            }
        }
        let used = Set(output.valuesUsed), invalid = Set(problems.map(\.name))
        /// A value that passed its rule, as a number; nil when unused or already reported.
        func number(_ name: String) -> Int? {
            used.contains(name) && !invalid.contains(name) ? inputs.values[name].flatMap { Int($0) } : nil
        }
        if let total = number("shutdown_grace_seconds"), let critical = number("shutdown_grace_critical_seconds"), critical >= total {
            problems.append(UserDataProblem(
                name: "shutdown_grace_critical_seconds", message: "\(critical) is not less than shutdown_grace_seconds (\(total))",
                fix: "the critical pods' share must be shorter than the whole grace period: lower it or raise shutdown_grace_seconds"))
        }
        if let ttl = number("token_ttl_minutes"), let rotateAfter = number("rotate_after_minutes"), ttl < rotateAfter + 30 {
            problems.append(UserDataProblem(
                name: "token_ttl_minutes", message: "\(ttl) is less than rotate_after_minutes (\(rotateAfter)) + 30",
                fix: "a replaced token must stay valid while workers are still joining with it: raise it to at least \(rotateAfter + 30)"))
        }
        for name in inputs.explicitlySet.subtracting(used).sorted() {
            problems.append(UserDataProblem(
                name: name, message: "not used by \(kind.rawValue) user data",
                fix: "leave it out (this user data uses \(output.valuesUsed.joined(separator: ", ")))"))
        }
        return problems
    }

    /// A label the kubelet, or kscaler, would refuse, though its syntax is right.
    private static func labelProblem(_ label: String) -> UserDataProblem? {
        let key = label.prefix(while: { $0 != "=" })
        guard let slash = key.firstIndex(of: "/") else { return nil }
        let prefix = key[..<slash]
        if prefix == "kscaler.io" {
            return UserDataProblem(name: "node_labels", message: "\(key) is kscaler's own (it sets kscaler.io/cluster and kscaler.io/pool)",
                                   fix: "remove \(key) from workers.labels")
        }
        let within = { (domain: String) in prefix == domain || prefix.hasSuffix("." + domain) }
        if (within("kubernetes.io") || within("k8s.io")) && !within("node.kubernetes.io") && !within("kubelet.kubernetes.io") {
            return UserDataProblem(name: "node_labels", message: "\(key) is reserved: the kubelet refuses to set labels under kubernetes.io and k8s.io",
                                   fix: "use your own prefix (e.g. example.com/role) or node.kubernetes.io/ in workers.labels")
        }
        return nil
    }
}

/// One of the four templates in userdata/.
package enum UserDataKind: String, CaseIterable, Sendable {
    case k3sWorker = "k3s-worker"
    case kubeadmWorker = "kubeadm-worker"
    case k3sServer = "k3s-server"
    case kubeadmControlPlane = "kubeadm-control-plane"
    /// A k3s worker cloned from a Proxmox VE template (the `user_data_snippet`): joins from a
    /// join drive, not SSM.
    case k3sProxmoxWorker = "k3s-proxmox-worker"

    var templatePath: String { "userdata/\(rawValue).cloud-config.tmpl" }

    /// Worker user data goes on every launch kscaler makes, so it must fit EC2's limit as is.
    package var isWorker: Bool { self == .k3sWorker || self == .kubeadmWorker || self == .k3sProxmoxWorker }
}

/// The values, optional sections and blocks of one render. Cluster, pool, join parameters,
/// labels and taints come from the configuration; everything it has no key for starts at the
/// default of userdata/README.md and can be `set`.
package struct UserDataInputs: Sendable, Equatable {
    package private(set) var values: [String: String]
    /// Optional sections to keep (`install_kscaler`).
    package var sections: Set<String> = []
    /// Multi-line values by name (`kscaler_config`: the configuration file installed on a server).
    package var blocks: [String: String] = [:]
    /// Names given with `set`: each must be used by the rendered template, or it was a mistake.
    private(set) var explicitlySet: Set<String> = []

    /// Where the configuration owns a value: it is set there, not with `set`.
    package static let configurationKeys: [String: String] = [
        "cluster_id": "cluster_id", "pool": "workers.pool", "token_parameter": "workers.join.token_parameter",
        "server_url_parameter": "workers.join.server_url_parameter", "node_labels": "workers.labels", "node_taints": "workers.taints",
    ]

    /// The names `set` accepts.
    package static var settableNames: [String] {
        UserDataValueRule.all.keys.filter { configurationKeys[$0] == nil }.sorted()
    }

    package init(config: KScalerConfig) {
        values = Self.defaults(clusterID: config.clusterID)
        values["pool"] = config.workers.pool
        values["token_parameter"] = config.workers.join.tokenParameter
        values["server_url_parameter"] = config.workers.join.serverURLParameter
        values["node_labels"] = config.workers.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        values["node_taints"] = config.workers.taints.map(\.description).joined(separator: ",")
        if case .proxmox(let proxmox) = config.backend { values["proxmox_cluster_name"] = proxmox.clusterName }
        if let region = config.region { values["region"] = region }
    }

    /// The values used when nobody gives one (userdata/README.md, "Placeholders").
    static func defaults(clusterID: String) -> [String: String] {
        [
            "cluster_id": clusterID,
            "pool": "default",
            "token_parameter": "/kscaler/\(clusterID)/join-token",
            "server_url_parameter": "/kscaler/\(clusterID)/server-url",
            "ca_cert_hash_parameter": "/kscaler/\(clusterID)/ca-cert-hash",
            "node_labels": "",
            "node_taints": "",
            "shutdown_grace_seconds": "45",
            "shutdown_grace_critical_seconds": "15",
            "k3s_install_url": "",
            "k3s_install_sha256": "",
            "k3s_version": "",
            "kubeadm_api_version": "v1beta4",
            "server_url": "",
            "publish_server_url": "true",
            "token_ttl_minutes": "120",
            "rotate_after_minutes": "60",
            "proxmox_cluster_name": "",
        ]
    }

    /// Sets a value the configuration has no key for; the value is checked when rendering.
    package mutating func set(_ name: String, to value: String) throws(UserDataError.Setting) {
        if let key = Self.configurationKeys[name] {
            throw .init(description: "\(name) comes from the configuration: set \(key) there")
        }
        guard UserDataValueRule.all[name] != nil else {
            throw .init(description: "\(name) is not a user-data value; known: \(Self.settableNames.joined(separator: ", "))")
        }
        values[name] = value
        explicitlySet.insert(name)
    }
}

/// One thing wrong with a render: the value (or section, block, `size`) concerned, what is
/// wrong and how to fix it.
package struct UserDataProblem: Sendable, Equatable, CustomStringConvertible {
    package var name: String
    package var message: String
    package var fix: String

    package var description: String { "\(name): \(message). Fix: \(fix)" }
}

/// Rendering failed; every problem found is listed.
package struct UserDataError: Error, Sendable, Equatable, CustomStringConvertible {
    package var kind: UserDataKind
    package var problems: [UserDataProblem]

    package var description: String {
        let noun = problems.count == 1 ? "problem" : "problems"
        return (["cannot render \(kind.rawValue) user data (\(problems.count) \(noun)):"] + problems.map { "  - \($0)" })
            .joined(separator: "\n")
    }

    /// `UserDataInputs.set` was given a name it does not take.
    package struct Setting: Error, Sendable, Equatable, CustomStringConvertible {
        package var description: String
    }
}
