#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How a `CurlTransport` sets up TLS: which CAs to trust, which client certificate to present,
/// and — only because a kubeconfig can ask for it — whether to verify the server at all.
///
/// Certificates and keys are PEM bytes in memory, handed to libcurl as blobs: a kubeconfig's
/// `client-key-data` or an exec plugin's key never touches the disk. Descriptions and
/// `dump` never show a private key.
package struct TLSOptions: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
    /// Whose certificates make a server trusted.
    package enum TrustedCA: Sendable, Equatable {
        /// The system's CA bundle (libcurl's default).
        case system
        /// A PEM file of CA certificates (a private CA in front of Prometheus, say), trusted
        /// instead of the system's.
        case file(path: String)
        /// PEM CA certificates in memory (a kubeconfig's `certificate-authority-data`), trusted
        /// instead of the system's, as kubectl does.
        case pem(Data)
    }

    /// A certificate (with its chain, if any) and its private key, both PEM.
    package struct ClientCertificate: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
        package var certificatePEM: Data
        package var privateKeyPEM: Data

        package init(certificatePEM: Data, privateKeyPEM: Data) {
            self.certificatePEM = certificatePEM
            self.privateKeyPEM = privateKeyPEM
        }

        package var description: String { "client certificate (\(certificatePEM.count) bytes, key <redacted>)" }
        package var customMirror: Mirror { Mirror(self, children: ["description": description]) }
    }

    package var trustedCA: TrustedCA
    package var clientCertificate: ClientCertificate?
    /// Turns off peer and host-name verification: anyone on the path can read and change the
    /// traffic. Set only when a kubeconfig says `insecure-skip-tls-verify: true`.
    package var insecureSkipVerify: Bool

    package init(trustedCA: TrustedCA = .system, clientCertificate: ClientCertificate? = nil, insecureSkipVerify: Bool = false) {
        self.trustedCA = trustedCA
        self.clientCertificate = clientCertificate
        self.insecureSkipVerify = insecureSkipVerify
    }

    package var description: String {
        var parts: [String]
        switch trustedCA {
        case .system: parts = ["system CAs"]
        case .file(let path): parts = ["CA file \(path)"]
        case .pem(let data): parts = ["CA data (\(data.count) bytes)"]
        }
        if clientCertificate != nil { parts.append("client certificate") }
        if insecureSkipVerify { parts.append("verification OFF") }
        return parts.joined(separator: ", ")
    }

    package var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}
