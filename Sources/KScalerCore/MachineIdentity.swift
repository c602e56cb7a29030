/// How a backend's machines show up as Kubernetes nodes. The core knows no cloud's ids: the
/// fleet supplies this, and with it the default queries select the workers and each observed
/// node is matched to the machine behind it (EC2: nodes named `i-…`, provider id `aws:///<az>/<id>`).
package struct MachineIdentity: Sendable {
    /// An RE2 expression (PromQL `=~`, anchored) matching the node names of the workers.
    package var workerNodeNames: String
    /// The machine behind a node, from its name and provider id; nil when the node is not one
    /// of this backend's machines (a control-plane node, another cloud's node).
    package var machineID: @Sendable (_ nodeName: String, _ providerID: String?) -> String?

    package init(workerNodeNames: String, machineID: @escaping @Sendable (_ nodeName: String, _ providerID: String?) -> String?) {
        self.workerNodeNames = workerNodeNames
        self.machineID = machineID
    }
}
