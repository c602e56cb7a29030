import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore

extension ConfigCommand {
    /// `kscaler config init`: the starter file, generated from the settings the parser reads.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a starter configuration: every setting with its default and a one-line comment.",
            discussion: """
            Values that must be given appear as "<required: …>" placeholders; `kscaler config check` \
            names each one left. Prints to stdout unless --output FILE (an existing FILE is refused, \
            exit 6, unless --force; so is one that cannot be written).

            --discover asks EC2 (read-only Describe calls, the region and credentials the AWS \
            environment resolves) for what it can fill: the region; with --vpc every subnet of \
            that VPC, else subnets tagged kscaler:cluster=<id> or whose Name contains the cluster \
            id; security groups and a launch template tagged kscaler:cluster=<id> or named with \
            the cluster id. What it could not find is said in the file and on stderr.
            """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Write the file here instead of stdout.", valueName: "file"))
        var output: String?

        @Flag(name: .long, help: "Overwrite the --output file if it exists.")
        var force = false

        @Option(name: .customLong("cluster-id"), help: "Fill in cluster_id; --discover matches resources by it.")
        var clusterID: String?

        @Flag(name: .long, help: "Fill in what EC2 can tell: region, subnets, security groups, launch template.")
        var discover = false

        @Option(name: .long, help: "With --discover: take every subnet of this VPC, and look for security groups in it.")
        var vpc: String?

        @Option(name: .long, help: "With --discover: the AWS region (default: AWS_REGION, the profile, instance metadata).")
        var region: String?

        /// A write failure in words (Foundation's errors print as their whole structure).
        static func describe(_ error: any Error) -> String {
            guard let error = error as? CocoaError else { return "\(error)" }
            return switch error.code {
            case .fileNoSuchFile: "its directory does not exist"
            case .fileWriteNoPermission: "permission denied"
            case .fileWriteFileExists: "it exists (add --force to overwrite it)"
            case .fileWriteVolumeReadOnly: "the file system is read-only"
            case .fileWriteOutOfSpace: "no space left"
            default: "error \(error.code.rawValue)"
            }
        }

        func validate() throws {
            if let clusterID, case .failure(let errors) = KScalerConfig.parse(["cluster_id": .string(clusterID)]),
               let problem = errors.problems.first(where: { $0.path == "cluster_id" }) {
                throw ValidationError("--cluster-id: \(problem.message). \(problem.fix)")
            }
            if discover && clusterID == nil && vpc == nil {
                throw ValidationError("--discover needs --cluster-id (to match tags and names) or --vpc (to take its subnets)")
            }
            if !discover && (vpc != nil || region != nil) {
                throw ValidationError("--vpc and --region are used only with --discover")
            }
        }

        func run() async throws {
            let logger = global.makeLogger()
            if let output, !force, FileManager.default.fileExists(atPath: output) {
                printError("kscaler: \(output) exists; nothing was written. Fix: choose another --output, or add --force to overwrite it")
                throw KScalerExit.refused
            }
            var starter = StarterConfig()
            if let clusterID { starter.values["cluster_id"] = StarterConfig.yaml(clusterID) }
            if discover {
                let transport = CurlTransport()
                do {
                    let context = try await AWSContext.resolve(environment: AWSEnvironment(variables: processEnvironment()),
                                                               configuredRegion: region, transport: transport, logger: logger)
                    let outcome = await StarterDiscovery.discover(ec2: context.ec2, region: context.region, regionSource: context.regionSource,
                                                                  clusterID: clusterID, vpcID: vpc)
                    starter.values.merge(outcome.values) { _, discovered in discovered }
                    starter.notes = outcome.notes
                    for line in outcome.found { printError("kscaler: found \(line)") }
                    for line in outcome.missing { printError("kscaler: not found \(line)") }
                } catch {
                    starter.notes = ["--discover found nothing: \(error)"]
                    printError("kscaler: --discover found nothing: \(error)")
                }
            }
            let text = starter.render(machines: EC2Fleet.machines)
            guard let output else {
                print(text, terminator: "")
                return
            }
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: force ? [.atomic] : [.withoutOverwriting])
            } catch {
                printError("kscaler: cannot write \(output): \(Self.describe(error)); nothing was written")
                throw KScalerExit.refused
            }
            printError("kscaler: wrote \(output); fill in its \"<required: …>\" values, then run `kscaler config check --config \(output)`")
        }
    }
}
