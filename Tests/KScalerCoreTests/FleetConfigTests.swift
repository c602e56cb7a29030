import Testing
@testable import KScalerCore

/// `fleet:`: the backend, its section, and the workers' settings checked by its rules.
@Suite("config: fleet backends")
struct FleetConfigTests {
    static let execConfig: ConfigValue = [
        "cluster_id": "demo",
        "table": "kscaler",
        "prometheus": ["url": "http://127.0.0.1:9090"],
        "fleet": ["backend": "exec", "exec": ["command": ["/usr/local/lib/kscaler/docker-backend.sh", "--host", "a"],
                                                 "timeout": "90s", "provider_id": "k3s://{id}", "machine_ids": "kscaler-demo-[a-z0-9]+"]],
        "workers": ["instance_types": ["small", "2c-4g"], "subnets": ["host-a"],
                    "sizes": ["small": ["cpu": 2, "memory": "4Gi"], "2c-4g": ["cpu": 2, "memory": "4Gi"]]],
        "victims": ["protected_instances": ["kscaler-demo-7f3a", "107"]],
    ]

    static let proxmoxConfig: ConfigValue = [
        "cluster_id": "demo",
        "table": "kscaler",
        "prometheus": ["url": "http://127.0.0.1:9090"],
        "fleet": ["backend": "proxmox", "proxmox": ["url": "https://pve.example.net:8006", "token_id": "kscaler@pve!autoscaler",
                                                      "token_secret_file": "/etc/kscaler/pve-token", "nodes": ["pve1", "pve2"],
                                                      "template_vmid": 9000, "user_data_snippet": "local:snippets/kscaler-worker.yaml"]],
        "workers": ["instance_types": ["2c-4g"], "sizes": ["2c-4g": ["cpu": 2, "memory": "4Gi"]]],
    ]

    @Test("exec: the program, its timeout and node rules; machine types and ids as the program names them")
    func execParses() throws {
        let config = try KScalerConfig.parse(Self.execConfig).get()
        guard case .exec(let exec) = config.backend else { Issue.record("backend \(config.backend.name)"); return }
        #expect(exec.command == ["/usr/local/lib/kscaler/docker-backend.sh", "--host", "a"])
        #expect(exec.timeout == 90 && exec.nodeName == "{id}" && exec.providerID == "k3s://{id}")
        #expect(config.workers.instanceTypes == ["small", "2c-4g"] && config.victims.protectedInstances == ["kscaler-demo-7f3a", "107"])
        // Listed back as written, so `config check` shows what is in force.
        let listed = Dictionary(config.effectiveSettings(machines: .none).map { ($0.path, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(listed["fleet.backend"] == "exec" && listed["fleet.exec.provider_id"] == "k3s://{id}" && listed["fleet.exec.timeout"] == "1m30s")
    }

    @Test("EC2 stays the default and keeps its own rules")
    func ec2IsTheDefault() throws {
        let config = try KScalerConfig.parse(minimalConfig).get()
        #expect(config.backend == .ec2)
        let found = problems(minimalConfig.with("victims.protected_instances", ["107"]))
        #expect(found.map(\.path) == ["victims.protected_instances"])
        #expect(problems(minimalConfig.with("workers.instance_types", ["small"])).contains { $0.path == "workers.instance_types" })
    }

    @Test("exec: what is wrong is said, where, with how to fix it")
    func execProblems() {
        let cases: [(ConfigValue, String, String)] = [
            (Self.execConfig.with("fleet.exec.command", []), "fleet.exec.command", "names no program"),
            (Self.execConfig.with("fleet.exec.command", ["bin/relative"]), "fleet.exec.command", "absolute path"),
            (Self.execConfig.with("fleet.exec.provider_id", "k3s://"), "fleet.exec.provider_id", "{id} exactly once"),
            (Self.execConfig.with("fleet.exec.machine_ids", #"a"b"#), "fleet.exec.machine_ids", "without quotes"),
            (Self.execConfig.with("fleet.exec.timeout", "0s"), "fleet.exec.timeout", "longer than 0"),
            (Self.execConfig.with("fleet.backend", "docker"), "fleet.backend", "not one of"),
            (Self.execConfig.with("workers.launch_template", ["name": "lt"]), "workers.launch_template", "EC2 setting"),
            (Self.execConfig.with("workers.image_id", "ami-0123456789abcdef0"), "workers.image_id", "EC2 setting"),
            (Self.execConfig.with("workers.sizes", ["small": ["cpu": 2, "memory": "4Gi"]]), "workers.sizes.2c-4g", "cannot be asked"),
            (Self.execConfig.with("workers.instance_types", []), "workers.instance_types", "at least one machine type"),
            (Self.execConfig.with("victims.protected_instances", ["has space"]), "victims.protected_instances", "machine id"),
            (minimalConfig.with("fleet.exec", ["command": ["/bin/true"]]), "fleet.exec", "fleet.backend is ec2"),
            (Self.execConfig.with("fleet.proxmox", ["url": "https://x"]), "fleet.proxmox", "fleet.backend is exec"),
        ]
        for (tree, path, words) in cases {
            let found = problems(tree)
            let match = found.first { $0.path == path }
            #expect(match != nil, "\(path): \(found.map { "\($0.path): \($0.message)" })")
            if let match { #expect("\(match.message) \(match.fix)".contains(words), "\(path): \(match.message) / \(match.fix)") }
        }
    }

    @Test("proxmox: the API, the token's id and where its secret is, the template and the nodes")
    func proxmoxParses() throws {
        let config = try KScalerConfig.parse(Self.proxmoxConfig).get()
        guard case .proxmox(let proxmox) = config.backend else { Issue.record("backend \(config.backend.name)"); return }
        #expect(proxmox.url == "https://pve.example.net:8006" && proxmox.tokenID == "kscaler@pve!autoscaler")
        #expect(proxmox.tokenSecret == .file(path: "/etc/kscaler/pve-token") && proxmox.nodes == ["pve1", "pve2"])
        #expect(proxmox.templateVMID == 9000 && proxmox.clusterName == "demo" && proxmox.taskTimeout == 300)
        let cases: [(ConfigValue, String)] = [
            (Self.proxmoxConfig.with("fleet.proxmox.token_id", "kscaler@pve!x=secret"), "fleet.proxmox.token_id"),
            (Self.proxmoxConfig.with("fleet.proxmox.token_secret_parameter", "/kscaler/pve"), "fleet.proxmox.token_secret_parameter"),
            (Self.proxmoxConfig.with("fleet.proxmox.template_vmid", 7), "fleet.proxmox.template_vmid"),
            (Self.proxmoxConfig.with("fleet.proxmox.url", "https://user:pw@pve:8006"), "fleet.proxmox.url"),
            (Self.proxmoxConfig.with("workers.subnets", ["host-a"]), "workers.subnets"),
        ]
        for (tree, path) in cases {
            #expect(problems(tree).contains { $0.path == path }, "\(path): \(problems(tree))")
        }
        // A token id written with its secret is refused without echoing the secret.
        let leaked = problems(Self.proxmoxConfig.with("fleet.proxmox.token_id", "kscaler@pve!x=0f5e-secret"))
        #expect(leaked.contains { $0.path == "fleet.proxmox.token_id" })
        #expect(!leaked.contains { "\($0.message) \($0.fix)".contains("0f5e-secret") })
    }

    @Test("the backend can be chosen from the environment too")
    func fromTheEnvironment() {
        #expect(KScalerConfig.environmentVariables["KSCALER_FLEET_BACKEND"] == ["fleet", "backend"])
        #expect(KScalerConfig.environmentVariables["KSCALER_FLEET_EXEC_COMMAND"] == ["fleet", "exec", "command"])
        #expect(KScalerConfig.environmentVariables["KSCALER_FLEET_PROXMOX_TOKEN_SECRET_FILE"] == ["fleet", "proxmox", "token_secret_file"])
    }
}
