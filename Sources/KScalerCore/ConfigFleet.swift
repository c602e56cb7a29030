#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `fleet:`: which backend runs the workers, and the section of the one chosen. Read before
/// `workers:` and `pools:`, whose machine types, placements and ids are then checked by the
/// backend's rules (EC2's `t3.large` and `subnet-…`, or any name another backend gives).
extension ConfigSettings {
    static var fleet: [SettingSpec] { [fleetBackend, execSection, proxmoxSection] }

    static let backendNames = ["ec2", "exec", "proxmox"]

    private static var fleetBackend: SettingSpec { SettingSpec(
        path: ["fleet", "backend"], shape: .value, summary: "where workers run: ec2 (default), exec (your program) or proxmox",
        read: { reader, value, config in
            guard let value else { return }
            switch Scalar.oneOf(value, backendNames) {
            case .success("exec"): config.backend = .exec(ExecBackendSettings(command: []))
            case .success("proxmox"):
                config.backend = .proxmox(ProxmoxSettings(url: "", tokenID: "", tokenSecret: .file(path: ""), nodes: [], templateVMID: 0,
                                                          clusterName: ""))
            case .success: config.backend = .ec2
            case .failure(let error):
                reader.report("fleet.backend", error.message, fix: error.fix)
                reader.markBroken("fleet")
            }
        },
        listing: { config, _ in [(["fleet", "backend"], config.backend.name)] },
        environment: { config in config.backend == .ec2 ? [] : [(["fleet", "backend"], config.backend.name)] }) }

    private static let execKeys = ["command", "timeout", "node_name", "provider_id", "machine_ids"]

    private static var execSection: SettingSpec { SettingSpec(
        path: ["fleet", "exec"], shape: .section(execKeys),
        summary: "the program that lists, launches and terminates machines (docs/backends/exec.md)",
        read: { reader, value, config in
            let section = reader.section(value, at: "fleet.exec")
            guard case .exec = config.backend else {
                if !section.fields.isEmpty, !reader.isBroken("fleet") {
                    reader.report("fleet.exec", "is set but fleet.backend is \(config.backend.name)", fix: "set fleet.backend: exec, or remove fleet.exec")
                }
                return
            }
            var settings = ExecBackendSettings(command: [])
            settings.command = reader.require(section, "command", fix: "set fleet.exec.command to the program and its arguments, "
                                              + "e.g. [/usr/local/lib/kscaler/docker-backend.sh]", commandParser) ?? []
            settings.timeout = reader.read(section, "timeout", Parse.positiveDuration) ?? ExecBackendSettings.defaultTimeout
            settings.nodeName = reader.read(section, "node_name", templateParser) ?? "{id}"
            settings.providerID = reader.read(section, "provider_id", templateParser)
            settings.machineIDs = reader.read(section, "machine_ids", TextRule.promQLExpression.parse) ?? ExecBackendSettings.defaultMachineIDs
            config.backend = .exec(settings)
        },
        listing: { config, _ in execLines(config) },
        environment: { config in execLines(config).filter { !$0.value.isEmpty } }) }

    private static let proxmoxKeys = ["url", "token_id", "token_secret_file", "token_secret_parameter", "nodes", "template_vmid", "storage",
                                      "user_data_snippet", "cluster_name", "ca_file", "task_timeout"]

    private static var proxmoxSection: SettingSpec { SettingSpec(
        path: ["fleet", "proxmox"], shape: .section(proxmoxKeys),
        summary: "the Proxmox VE API, the template VM to clone and the nodes clones run on (docs/backends/proxmox.md)",
        read: { reader, value, config in
            let section = reader.section(value, at: "fleet.proxmox")
            guard case .proxmox = config.backend else {
                if !section.fields.isEmpty, !reader.isBroken("fleet") {
                    reader.report("fleet.proxmox", "is set but fleet.backend is \(config.backend.name)",
                                  fix: "set fleet.backend: proxmox, or remove fleet.proxmox")
                }
                return
            }
            let url = reader.require(section, "url", fix: "set fleet.proxmox.url, e.g. https://pve.example.net:8006",
                                     urlParser(field: "fleet.proxmox.url"))
            let tokenID = reader.require(section, "token_id", fix: "set fleet.proxmox.token_id to the API token's id, e.g. kscaler@pve!autoscaler",
                                         tokenIDParser)
            let secretFile = reader.read(section, "token_secret_file", TextRule.path.parse)
            let secretParameter = reader.read(section, "token_secret_parameter", TextRule.ssmParameter.parse)
            var secret: SecretSource?
            switch (section.has("token_secret_file"), section.has("token_secret_parameter")) {
            case (true, true):
                reader.report("fleet.proxmox.token_secret_parameter", "is set together with token_secret_file",
                              fix: "keep one place for the token's secret")
            case (false, false):
                reader.report("fleet.proxmox.token_secret_file", "the API token's secret has no source",
                              fix: "set fleet.proxmox.token_secret_file (a file holding it) or token_secret_parameter (an SSM SecureString)")
            default:
                secret = secretFile.map { .file(path: $0) } ?? secretParameter.map { .ssmParameter(name: $0) }
            }
            let nodes = reader.require(section, "nodes", fix: "list the Proxmox nodes clones may run on, e.g. [pve1, pve2]",
                                       TextRule.proxmoxName.parseList)
            if nodes?.isEmpty == true { reader.report("fleet.proxmox.nodes", "is empty", fix: "list at least one Proxmox node") }
            let template = reader.require(section, "template_vmid", fix: "set fleet.proxmox.template_vmid to the template VM's id, e.g. 9000",
                                          Parse.checked(Scalar.integer, { (100...999_999_999).contains($0) }, { "\($0) is not a VM id" },
                                                        fix: "write the template's VM id, 100 or more"))
            var settings = ProxmoxSettings(url: url ?? "", tokenID: tokenID ?? "", tokenSecret: secret ?? .file(path: ""), nodes: nodes ?? [],
                                           templateVMID: template ?? 0, clusterName: config.clusterID)
            settings.storage = reader.read(section, "storage", TextRule.proxmoxName.parse)
            settings.userDataSnippet = reader.read(section, "user_data_snippet", TextRule.proxmoxVolume.parse)
            settings.clusterName = reader.read(section, "cluster_name", TextRule.proxmoxName.parse) ?? config.clusterID
            settings.caFile = reader.read(section, "ca_file", TextRule.path.parse)
            settings.taskTimeout = reader.read(section, "task_timeout", Parse.positiveDuration) ?? settings.taskTimeout
            config.backend = .proxmox(settings)
        },
        listing: { config, _ in proxmoxLines(config) },
        environment: { config in proxmoxLines(config).filter { !$0.value.isEmpty } }) }

    private static var commandParser: (ConfigValue) -> Result<[String], ScalarError> {
        { value in
            let items: Result<[String], ScalarError> = if case .string(let text) = value { .success([Scalar.trimmed(text)]) } else { Scalar.stringList(value) }
            return items.flatMap { argv in
                guard let program = argv.first, !program.isEmpty else {
                    return .failure(ScalarError(message: "names no program", fix: "write the program's path first, e.g. [/usr/local/bin/my-backend, --flag]"))
                }
                guard program.hasPrefix("/") || program.hasPrefix("./") || !program.contains("/") else {
                    return .failure(ScalarError(message: "\"\(program)\" is neither an absolute path nor a name on PATH", fix: "write an absolute path"))
                }
                return .success(argv)
            }
        }
    }

    /// The token's id, never echoed: a value pasted as `id=secret` would carry the secret.
    private static var tokenIDParser: (ConfigValue) -> Result<String, ScalarError> {
        { value in
            Scalar.string(value).flatMap { text in
                let text = Scalar.trimmed(text)
                if text.contains("=") {
                    return .failure(ScalarError(message: "holds a \"=\": it looks like the token's secret is in it (not shown here)",
                                                fix: "keep only user@realm!tokenid here, put the secret in the file named by token_secret_file"))
                }
                return TextRule.proxmoxTokenID.isValid(text) ? .success(text)
                    : .failure(ScalarError(message: "is not a Proxmox API token id (user@realm!tokenid)", fix: TextRule.proxmoxTokenID.fix))
            }
        }
    }

    private static var templateParser: (ConfigValue) -> Result<String, ScalarError> {
        { value in
            Scalar.string(value).flatMap { text in
                let text = Scalar.trimmed(text)
                do throws(IdentityTemplate.Problem) {
                    _ = try IdentityTemplate(text)
                    return .success(text)
                } catch {
                    return .failure(ScalarError(message: error.description, fix: "write a template such as k3s://{id} ({id} is the machine id)"))
                }
            }
        }
    }

    private static func execLines(_ config: KScalerConfig) -> [(path: [String], value: String)] {
        guard case .exec(let exec) = config.backend else { return [] }
        return [(["fleet", "exec", "command"], Parse.list(exec.command)), (["fleet", "exec", "timeout"], formatDuration(exec.timeout)),
                (["fleet", "exec", "node_name"], exec.nodeName), (["fleet", "exec", "provider_id"], exec.providerID ?? ""),
                (["fleet", "exec", "machine_ids"], exec.machineIDs)]
    }

    private static func proxmoxLines(_ config: KScalerConfig) -> [(path: [String], value: String)] {
        guard case .proxmox(let proxmox) = config.backend else { return [] }
        let (file, parameter): (String, String) = switch proxmox.tokenSecret {
        case .file(let path): (path, "")
        case .ssmParameter(let name): ("", name)
        }
        let lines: [(String, String)] = [
            ("url", proxmox.url), ("token_id", proxmox.tokenID), ("token_secret_file", file), ("token_secret_parameter", parameter),
            ("nodes", Parse.list(proxmox.nodes)), ("template_vmid", String(proxmox.templateVMID)), ("storage", proxmox.storage ?? ""),
            ("user_data_snippet", proxmox.userDataSnippet ?? ""), ("cluster_name", proxmox.clusterName), ("ca_file", proxmox.caFile ?? ""),
            ("task_timeout", formatDuration(proxmox.taskTimeout)),
        ]
        return lines.map { (["fleet", "proxmox", $0.0], $0.1) }
    }
}

extension TextRule {
    /// A machine type another backend understands (`small`, `2c-4g`): kscaler only passes it on.
    static let machineType = TextRule(
        expected: "a machine type (1 to 64 of A-Z a-z 0-9 . _ -)", fix: "write names such as small or 2c-4g",
        isValid: { text in (1...64).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) } })
    /// A placement another backend understands (a host, a zone).
    static let placement = TextRule(
        expected: "a placement (1 to 128 of A-Z a-z 0-9 . _ : -)", fix: "write names such as host-a",
        isValid: { text in (1...128).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._:-".contains($0)) } })
    /// A machine id another backend gives (`kscaler-demo-7f3a`, `107`).
    static let machineID = TextRule(
        expected: "a machine id (1 to 128 of A-Z a-z 0-9 . _ : -)", fix: "write the ids your backend lists, e.g. kscaler-demo-7f3a or 107",
        isValid: { text in (1...128).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._:-".contains($0)) } })
    /// An RE2 expression that goes inside a PromQL string: no quote, backslash-quote or newline.
    static let promQLExpression = TextRule(
        expected: "an RE2 expression without quotes or newlines", fix: "write an expression such as kscaler-demo-[a-z0-9]+",
        isValid: { !$0.isEmpty && !$0.contains("\"") && !$0.contains("\n") && !$0.contains("`") })
    static let proxmoxTokenID = TextRule(
        expected: "a Proxmox API token id (user@realm!tokenid)", fix: "write the id as Proxmox shows it, e.g. kscaler@pve!autoscaler",
        isValid: { text in
            let parts = text.split(separator: "!", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[0].contains("@") && !parts[1].isEmpty && !text.contains(where: \.isWhitespace) && !text.contains("=")
        })
    static let proxmoxName = TextRule(
        expected: "a Proxmox name (1 to 64 of A-Z a-z 0-9 . _ -)", fix: "write names such as pve1 or local-lvm",
        isValid: { text in (1...64).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) } })
    static let proxmoxVolume = TextRule(
        expected: "a Proxmox volume (storage:snippets/file)", fix: "write e.g. local:snippets/kscaler-worker.yaml",
        isValid: { text in text.contains(":") && !text.contains(where: \.isWhitespace) && !text.contains(",") })
}
