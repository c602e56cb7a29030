import ArgumentParser

@main
struct KScalerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kscaler",
        abstract: "A run-once node autoscaler for self-managed Kubernetes on EC2.",
        version: "0.1.0"
    )
}
