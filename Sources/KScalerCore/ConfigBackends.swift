#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which backend runs the workers (`fleet.backend`), with its own settings. EC2 is the default
/// and keeps its settings under `workers:` / `pools:`; the others add a section under `fleet:`.
package enum FleetBackend: Sendable, Equatable {
    case ec2
    /// A user's program speaks kscaler's JSON protocol for list, launch and terminate
    /// (docs/backends/exec.md).
    case exec(ExecBackendSettings)
    /// Proxmox VE's API: full clones of a template VM.
    case proxmox(ProxmoxSettings)

    /// The name in `fleet.backend`, in reports, history and metrics.
    package var name: String {
        switch self {
        case .ec2: "ec2"
        case .exec: "exec"
        case .proxmox: "proxmox"
        }
    }
}

/// `fleet.exec`: the program and how its machines show up as nodes.
package struct ExecBackendSettings: Sendable, Equatable {
    /// The program and its first arguments; kscaler appends the operation (`list`, `launch`,
    /// `terminate`) and writes the request to its stdin.
    package var command: [String]
    /// Longest a call may take; the program is then killed and a launch or terminate counts as
    /// unknown (the next run looks before acting again).
    package var timeout: TimeInterval
    /// How a machine's node is named, `{id}` standing for the machine id (default `{id}`).
    package var nodeName: String
    /// The provider id the node of a machine carries (e.g. `k3s://{id}`); nil: not known, and
    /// then a machine without a node is never terminated as a failed boot.
    package var providerID: String?
    /// RE2 for one machine id, to select the workers' nodes in the default queries.
    package var machineIDs: String

    package static let defaultTimeout: TimeInterval = 60
    package static let defaultMachineIDs = "[a-z0-9]([-a-z0-9.]*[a-z0-9])?"

    package init(command: [String], timeout: TimeInterval = defaultTimeout, nodeName: String = "{id}", providerID: String? = nil,
                 machineIDs: String = defaultMachineIDs) {
        self.command = command
        self.timeout = timeout
        self.nodeName = nodeName
        self.providerID = providerID
        self.machineIDs = machineIDs
    }
}

/// Where a secret is read at run time; never the secret itself.
package enum SecretSource: Sendable, Equatable {
    /// A file holding it (trailing newline ignored), e.g. a systemd credential.
    case file(path: String)
    /// An SSM SecureString parameter.
    case ssmParameter(name: String)
}

/// `fleet.proxmox`: the API, the template to clone and where clones may run.
package struct ProxmoxSettings: Sendable, Equatable {
    /// `https://host:8006` (the API is under `/api2/json`).
    package var url: String
    /// `user@realm!tokenid`: the API token's id (not secret).
    package var tokenID: String
    /// The token's secret (the UUID after `=` in `PVEAPIToken=user@realm!tokenid=secret`).
    package var tokenSecret: SecretSource
    /// The Proxmox nodes clones may be placed on; each launch picks the one with the most free memory.
    package var nodes: [String]
    /// The VM id of the template to full-clone.
    package var templateVMID: Int
    /// Storage for the clone's disks; nil: the template's.
    package var storage: String?
    /// The cloud-init user data snippet (`cicustom: user=<volume>`), e.g. `local:snippets/kscaler-worker.yaml`.
    package var userDataSnippet: String?
    /// The name in provider ids `proxmox://<cluster>/<vmid>`, as the Proxmox cloud controller sets them.
    package var clusterName: String
    /// A CA bundle for the API's certificate; nil: the system's.
    package var caFile: String?
    /// Longest a task (clone, start, stop, destroy) is waited for.
    package var taskTimeout: TimeInterval

    package init(url: String, tokenID: String, tokenSecret: SecretSource, nodes: [String], templateVMID: Int, storage: String? = nil,
                 userDataSnippet: String? = nil, clusterName: String, caFile: String? = nil, taskTimeout: TimeInterval = 300) {
        self.url = url
        self.tokenID = tokenID
        self.tokenSecret = tokenSecret
        self.nodes = nodes
        self.templateVMID = templateVMID
        self.storage = storage
        self.userDataSnippet = userDataSnippet
        self.clusterName = clusterName
        self.caFile = caFile
        self.taskTimeout = taskTimeout
    }
}
