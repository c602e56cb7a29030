import ArgumentParser
import KScaler
import KScalerCore

struct UserdataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "userdata", abstract: "Cloud-init user data for the cluster's workers and servers.", subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the cloud-init user data of a worker or server of this cluster.",
            discussion: """
            Cluster, pool, join parameters, labels and taints come from the configuration; the other \
            values have the defaults of userdata/README.md and can be given with --set. `kscaler run` \
            passes the k3s worker's user data to every launch unless workers.launch_template is set \
            (the launch template's own user data applies then). Invalid values: every problem is \
            printed, exit 2. Settable: \(UserDataInputs.settableNames.joined(separator: ", ")).
            """)

        @OptionGroup var configOptions: ConfigOptions

        @Option(name: .long, help: "Which user data.")
        var kind: UserDataKind = .k3sWorker

        @Option(name: .long, help: ArgumentHelp("Workers: the pool whose labels, taints and name the user data carries (with pools:).",
                                                valueName: "name"))
        var pool: String?

        @Option(name: .customLong("set"), help: ArgumentHelp("A value the configuration has no key for, e.g. k3s_version=v1.33.1+k3s1 (repeatable).",
                                                             valueName: "name=value"))
        var assignments: [String] = []

        @Flag(name: .long, help: ArgumentHelp(
            "Servers: also install kscaler from kscaler_binary_url (checked against kscaler_binary_sha256) with the --config file.",
            discussion: "Its timer is left off: run `kscaler plan` on the server first."))
        var installKscaler = false

        /// The configuration as the chosen pool's workers see it. With several pools a worker's
        /// user data is one pool's: `--pool` says which.
        func scoped(_ config: KScalerConfig) throws -> KScalerConfig {
            let pools = config.workerPools
            let names = pools.map(\.name).joined(separator: ", ")
            if let pool {
                guard let chosen = pools.first(where: { $0.name == pool }) else {
                    printError("kscaler: --pool \(pool): no such pool; the configuration has \(names)")
                    throw KScalerExit.invalidConfig
                }
                return config.scoped(to: chosen)
            }
            let isWorker = kind.isWorker
            guard pools.count == 1 || !isWorker else {
                printError("kscaler: the configuration has pools \(names): say whose worker user data with --pool NAME")
                throw KScalerExit.invalidConfig
            }
            // A server's user data names the join parameters: the default pool's.
            return config.defaultPool.map(config.scoped(to:)) ?? config
        }

        func validate() throws {
            for assignment in assignments where !assignment.contains("=") {
                throw ValidationError("--set \(assignment): write name=value")
            }
        }

        func run() async throws {
            let loaded = try configOptions.load(environment: processEnvironment())
            var inputs = UserDataInputs(config: try scoped(loaded.config))
            for assignment in assignments {
                let equals = assignment.firstIndex(of: "=")!  // validate() made sure
                let name = String(assignment[..<equals]), value = String(assignment[assignment.index(after: equals)...])
                do {
                    try inputs.set(name, to: value)
                } catch {
                    printError("kscaler: --set \(name): \(error)")
                    throw KScalerExit.invalidConfig
                }
            }
            if installKscaler {
                guard let file = loaded.file, let data = FileManager.default.contents(atPath: file) else {
                    printError("kscaler: --install-kscaler writes the configuration file to the server: give it with --config FILE")
                    throw KScalerExit.invalidConfig
                }
                inputs.sections.insert("install_kscaler")
                inputs.blocks["kscaler_config"] = String(decoding: data, as: UTF8.self)
            }
            let userData: String
            do {
                userData = try UserDataRenderer.render(kind, inputs)
            } catch {
                printError("kscaler: \(error)")
                throw KScalerExit.invalidConfig
            }
            let size = userData.utf8.count
            if size > UserDataRenderer.ec2Limit {
                printError("kscaler: warning: this user data is \(size) bytes, over EC2's \(UserDataRenderer.ec2Limit): "
                           + "compress it (gzip -9; cloud-init reads gzip user data) or leave --install-kscaler out and install kscaler afterwards")
            }
            print(userData, terminator: "")
        }
    }
}

extension UserDataKind: ExpressibleByArgument {}
