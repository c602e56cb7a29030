#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP

/// Where the API server is and how to prove who kscaler is: what a kubeconfig context, a
/// pod's service account or kscaler's own settings resolve to.
package struct KubernetesEndpoint: Sendable, CustomStringConvertible {
    /// `https://host:6443`, possibly with a path prefix (a proxy in front of the API); no
    /// trailing slash.
    package var server: String
    /// The CA to trust and the client certificate to present, if any.
    package var tls: TLSOptions
    package var auth: KubernetesAuth
    /// Where this came from, without any secret: `kubeconfig /home/u/.kube/config, context
    /// k3s, user admin (client certificate)`. For `config check`, `doctor` and error messages.
    package var description: String
    /// Things the caller should log as warnings (verification turned off, files ignored).
    package var warnings: [String]

    package init(server: String, tls: TLSOptions = TLSOptions(), auth: KubernetesAuth, description: String? = nil, warnings: [String] = []) {
        self.server = server
        self.tls = tls
        self.auth = auth
        self.description = description ?? "server \(server) (\(auth.kind)\(tls.clientCertificate == nil ? "" : ", client certificate"))"
        self.warnings = warnings
    }
}

/// The request-level credential. A client certificate is not here: it is part of the TLS
/// handshake (`KubernetesEndpoint.tls`), and may come with any of these.
package enum KubernetesAuth: Sendable, CustomStringConvertible, CustomReflectable {
    /// No Authorization header: a client certificate alone, or anonymous.
    case none
    /// `Authorization: Bearer <token>`.
    case bearerToken(String)
    /// A kubeconfig `exec` plugin, run when a credential is first needed and again when it
    /// expires or is refused.
    case exec(ExecPlugin)

    /// How it authenticates, in a word or two; never the credential.
    package var kind: String {
        switch self {
        case .none: "no token"
        case .bearerToken: "bearer token"
        case .exec(let plugin): "exec plugin \(plugin.command)"
        }
    }

    package var description: String { kind }
    package var customMirror: Mirror { Mirror(self, children: ["kind": kind]) }
}

/// A credential plugin as a kubeconfig `user.exec` declares it
/// (client.authentication.k8s.io ExecCredential).
package struct ExecPlugin: Sendable, CustomStringConvertible, CustomReflectable {
    package enum APIVersion: String, Sendable, CaseIterable {
        case v1 = "client.authentication.k8s.io/v1"
        case v1beta1 = "client.authentication.k8s.io/v1beta1"
    }

    /// A path (relative ones already resolved against the kubeconfig's directory), or a name
    /// looked up in `environment`'s PATH.
    package var command: String
    package var arguments: [String]
    /// `env` entries, set on top of `environment`.
    package var extraEnvironment: [(name: String, value: String)]
    package var apiVersion: APIVersion
    /// Shown when the command is not found (`installHint`).
    package var installHint: String?
    /// `spec.cluster` of `KUBERNETES_EXEC_INFO` when the kubeconfig sets `provideClusterInfo`.
    package var cluster: JSONValue?
    /// The environment the plugin starts from (the process's, or a test's).
    package var environment: [String: String]
    package var timeout: Duration
    /// The clock expiry is judged by.
    package var now: @Sendable () -> Date

    package init(command: String, arguments: [String] = [], extraEnvironment: [(name: String, value: String)] = [],
                 apiVersion: APIVersion = .v1, installHint: String? = nil, cluster: JSONValue? = nil,
                 environment: [String: String], timeout: Duration = .seconds(30), now: @escaping @Sendable () -> Date = { Date() }) {
        self.command = command
        self.arguments = arguments
        self.extraEnvironment = extraEnvironment
        self.apiVersion = apiVersion
        self.installHint = installHint
        self.cluster = cluster
        self.environment = environment
        self.timeout = timeout
        self.now = now
    }

    package var description: String { "exec plugin \(command)" }
    /// Arguments and environment values may hold secrets (a role, a static token): not shown.
    package var customMirror: Mirror { Mirror(self, children: ["command": command, "apiVersion": apiVersion.rawValue]) }
}

/// What an exec plugin returned: a token, a client certificate, or both.
package struct ExecCredential: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
    package var token: String?
    package var clientCertificate: TLSOptions.ClientCertificate?
    /// nil: valid for the life of the process.
    package var expiration: Date?

    package init(token: String? = nil, clientCertificate: TLSOptions.ClientCertificate? = nil, expiration: Date? = nil) {
        self.token = token
        self.clientCertificate = clientCertificate
        self.expiration = expiration
    }

    package var description: String {
        let parts = [token == nil ? nil : "token", clientCertificate == nil ? nil : "client certificate"].compactMap { $0 }
        return "ExecCredential(\(parts.joined(separator: " and "))\(expiration.map { ", expires \(KubeTime.format($0))" } ?? ""))"
    }

    package var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}

/// A credential that prints as `<redacted>` in descriptions, debug output and `dump`.
struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String
    init(_ value: String) { self.value = value }
    var description: String { "<redacted>" }
    var debugDescription: String { "<redacted>" }
    var customMirror: Mirror { Mirror(self, children: [:]) }
}
