#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import HTTP
import YAML

/// The parts of a kubeconfig file kscaler reads (`kubectl config view` shows the same keys).
/// Unknown keys are ignored, as kubectl ignores them.
struct Kubeconfig: Decodable {
    struct Named<Value: Decodable>: Decodable {
        var name: String
        var value: Value?

        private enum CodingKeys: String, CodingKey { case name, cluster, user, context }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            let key: CodingKeys = Value.self == Cluster.self ? .cluster : Value.self == User.self ? .user : .context
            value = try container.decodeIfPresent(Value.self, forKey: key)
        }
    }

    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var tlsServerName: String?
        var proxyURL: String?

        private enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
        }
    }

    struct User: Decodable {
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var token: String?
        var tokenFile: String?
        var username: String?
        var password: String?
        var authProvider: AuthProvider?
        var exec: Exec?
        var impersonate: String?

        struct AuthProvider: Decodable { var name: String? }

        private enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case token, tokenFile, username, password
            case authProvider = "auth-provider"
            case exec
            case impersonate = "as"
        }
    }

    struct Exec: Decodable {
        struct Variable: Decodable {
            var name: String
            var value: String
        }
        var apiVersion: String?
        var command: String?
        var args: [String]?
        var env: [Variable]?
        var installHint: String?
        var provideClusterInfo: Bool?
        var interactiveMode: String?
    }

    struct Context: Decodable {
        var cluster: String?
        var user: String?
        var namespace: String?
    }

    var clusters: [Named<Cluster>]?
    var users: [Named<User>]?
    var contexts: [Named<Context>]?
    var currentContext: String?

    private enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }
}

/// Finds the API server and kscaler's credentials the way kubectl does.
///
/// Everything it reads from outside is injected — the environment, the home directory, the
/// root under which a pod's service account files live, the clock — so tests never touch the
/// real home or a real pod.
package struct KubernetesEndpointResolver: Sendable {
    package var environment: [String: String]
    /// `~` for `~/.kube/config`; by default `$HOME`.
    package var homeDirectory: String
    /// Prefix of `/var/run/secrets/kubernetes.io/serviceaccount` (a temporary directory in tests).
    package var inClusterRoot: String
    /// Bound for one run of an exec credential plugin.
    package var execTimeout: Duration
    /// Judges an exec credential's expiry.
    package var now: @Sendable () -> Date

    package static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    package init(environment: [String: String] = ProcessInfo.processInfo.environment, homeDirectory: String? = nil,
                 inClusterRoot: String = "/", execTimeout: Duration = .seconds(30), now: @escaping @Sendable () -> Date = { Date() }) {
        self.environment = environment
        self.homeDirectory = homeDirectory ?? environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
        self.inClusterRoot = inClusterRoot
        self.execTimeout = execTimeout
        self.now = now
    }

    // MARK: - Entry points

    /// A kubeconfig if there is one — `kubeconfig` (the `kubernetes.kubeconfig` setting), else
    /// the first existing file of `$KUBECONFIG`, else `~/.kube/config` — and otherwise the
    /// pod's service account when running in a pod.
    package func resolve(kubeconfig: String? = nil, context: String? = nil) throws(KubernetesError) -> KubernetesEndpoint {
        if let found = try kubeconfigPath(explicit: kubeconfig) {
            return try fromKubeconfig(at: found.path, context: context, warnings: found.warnings)
        }
        if environment["KUBERNETES_SERVICE_HOST"].map({ !$0.isEmpty }) == true {
            return try inCluster()
        }
        throw .credentials("no kubeconfig and not in a pod: no kubeconfig was given, KUBECONFIG is not set, "
            + "\(homeDirectory)/.kube/config does not exist and KUBERNETES_SERVICE_HOST is not set. "
            + "Give kscaler a kubeconfig (on a k3s server: /etc/rancher/k3s/k3s.yaml) or run it in a pod with a service account")
    }

    /// The kubeconfig at `path`, or found as `resolve` finds it (never the in-cluster account).
    /// `context` overrides the file's `current-context`.
    package func fromKubeconfig(path: String? = nil, context: String? = nil) throws(KubernetesError) -> KubernetesEndpoint {
        guard let found = try kubeconfigPath(explicit: path) else {
            throw .credentials("no kubeconfig found: KUBECONFIG is not set and \(homeDirectory)/.kube/config does not exist")
        }
        return try fromKubeconfig(at: found.path, context: context, warnings: found.warnings)
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, and the token and CA the
    /// kubelet mounts. The token is read now, once per run: the kubelet rotates it.
    package func inCluster() throws(KubernetesError) -> KubernetesEndpoint {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw .credentials("not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set (the kubelet sets them in every pod)")
        }
        let directory = join(inClusterRoot, Self.serviceAccountDirectory)
        let tokenPath = "\(directory)/token"
        let token = try readToken(tokenPath, what: "the service account token")
        let ca = try readFile("\(directory)/ca.crt", what: "the service account's CA certificate")
        try requirePEM(ca, "CERTIFICATE", what: "the service account's CA certificate \(directory)/ca.crt")
        let server = "https://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        return KubernetesEndpoint(server: server, tls: TLSOptions(trustedCA: .pem(ca)), auth: .bearerToken(token),
                                  description: "in-cluster service account (token \(tokenPath)), server \(server)")
    }

    // MARK: - Finding the file

    private func kubeconfigPath(explicit: String?) throws(KubernetesError) -> (path: String, warnings: [String])? {
        if let explicit, !explicit.isEmpty {
            let path = absolute(explicit)
            guard FileManager.default.fileExists(atPath: path) else {
                throw .credentials("the kubeconfig \(path) does not exist")
            }
            return (path, [])
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            let paths = list.split(separator: ":", omittingEmptySubsequences: true).map { absolute(String($0)) }
            guard let first = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw .credentials("KUBECONFIG names \(paths.joined(separator: ", ")), and none of them exists")
            }
            let warnings = paths.count > 1
                ? ["KUBECONFIG lists \(paths.count) files; kscaler reads only the first that exists, \(first) (kubectl would merge them)"]
                : []
            return (first, warnings)
        }
        let home = "\(homeDirectory)/.kube/config"
        return FileManager.default.fileExists(atPath: home) ? (home, []) : nil
    }

    // MARK: - Reading the kubeconfig

    private func fromKubeconfig(at path: String, context requested: String?, warnings: [String]) throws(KubernetesError) -> KubernetesEndpoint {
        let config = try load(path)
        var warnings = warnings
        let directory = Self.directory(of: path)

        guard let contextName = requested.flatMap({ $0.isEmpty ? nil : $0 }) ?? config.currentContext.flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw .credentials("kubeconfig \(path) has no current-context and no context was given; "
                + "name one of its contexts (\(names(config.contexts))) or run `kubectl config use-context`")
        }
        guard let context = config.contexts?.first(where: { $0.name == contextName })?.value else {
            throw .credentials("kubeconfig \(path) has no context \"\(contextName)\"; its contexts: \(names(config.contexts))")
        }
        guard let clusterName = context.cluster, let cluster = config.clusters?.first(where: { $0.name == clusterName })?.value else {
            throw .credentials("kubeconfig \(path): context \"\(contextName)\" names cluster \"\(context.cluster ?? "")\", "
                + "which is not among its clusters (\(names(config.clusters)))")
        }
        let userName = context.user ?? ""
        let user: Kubeconfig.User
        if userName.isEmpty {
            user = Kubeconfig.User()
        } else if let found = config.users?.first(where: { $0.name == userName }) {
            user = found.value ?? Kubeconfig.User()
        } else {
            throw .credentials("kubeconfig \(path): context \"\(contextName)\" names user \"\(userName)\", which is not among its users (\(names(config.users)))")
        }
        let place = "kubeconfig \(path), cluster \"\(clusterName)\""
        let userPlace = "kubeconfig \(path), user \"\(userName)\""

        // The cluster: server and trust.
        guard let rawServer = cluster.server, !rawServer.isEmpty else {
            throw .credentials("\(place) has no server")
        }
        let server = rawServer.contains("://") ? rawServer : "https://\(rawServer)"
        if cluster.tlsServerName.map({ !$0.isEmpty }) == true {
            throw .credentials("\(place) sets tls-server-name, which kscaler does not support; make server a name or address the API server's certificate holds")
        }
        if cluster.proxyURL.map({ !$0.isEmpty }) == true {
            throw .credentials("\(place) sets proxy-url, which kscaler does not support; remove it (HTTPS_PROXY in the environment is honoured)")
        }
        var tls = TLSOptions()
        let caData = cluster.certificateAuthorityData.flatMap { $0.isEmpty ? nil : $0 }
        let caFile = cluster.certificateAuthority.flatMap { $0.isEmpty ? nil : $0 }.map { resolve($0, against: directory) }
        if cluster.insecureSkipTLSVerify == true {
            guard caData == nil, caFile == nil else {
                throw .credentials("\(place) sets insecure-skip-tls-verify together with a certificate authority, which kubectl refuses too; keep only the certificate authority")
            }
            tls.insecureSkipVerify = true
            warnings.append("\(place): insecure-skip-tls-verify is true, so the API server's certificate is not verified and anyone on the "
                + "network path could pose as it and receive kscaler's credentials; set certificate-authority-data instead")
        } else if let caData {
            let pem = try base64(caData, what: "\(place): certificate-authority-data")
            try requirePEM(pem, "CERTIFICATE", what: "\(place): certificate-authority-data")
            tls.trustedCA = .pem(pem)
            if caFile != nil { warnings.append("\(place) has both certificate-authority-data and certificate-authority; the data is used, as kubectl does") }
        } else if let caFile {
            let pem = try readFile(caFile, what: "\(place): certificate-authority")
            try requirePEM(pem, "CERTIFICATE", what: "\(place): certificate-authority \(caFile)")
            tls.trustedCA = .pem(pem)
        }

        // The user: what kscaler can and cannot do.
        if user.username.map({ !$0.isEmpty }) == true || user.password.map({ !$0.isEmpty }) == true {
            throw .credentials("\(userPlace) uses username/password (basic authentication), which kscaler does not support "
                + "(the API server dropped it in 1.19); give it a token, a client certificate or an exec plugin")
        }
        if let provider = user.authProvider {
            throw .credentials("\(userPlace) uses auth-provider \(provider.name.map { "\"\($0)\"" } ?? ""), which kscaler does not support "
                + "(kubectl dropped the built-in providers in 1.26); use an exec plugin instead (gke-gcloud-auth-plugin, kubelogin, …), a token or a client certificate")
        }
        if user.impersonate.map({ !$0.isEmpty }) == true {
            throw .credentials("\(userPlace) impersonates another user (as), which kscaler does not support; give kscaler credentials of its own")
        }

        var methods: [String] = []
        let certificate = try clientCertificate(user, directory: directory, place: userPlace)
        if certificate != nil {
            tls.clientCertificate = certificate
            methods.append("client certificate")
        }
        var auth = KubernetesAuth.none
        if let tokenFile = user.tokenFile.flatMap({ $0.isEmpty ? nil : $0 }).map({ resolve($0, against: directory) }) {
            // client-go: the file, re-read, wins over an inline token.
            auth = .bearerToken(try readToken(tokenFile, what: "\(userPlace): tokenFile"))
            methods.append("token file \(tokenFile)")
        } else if let token = user.token.flatMap({ $0.isEmpty ? nil : $0 }) {
            guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .credentials("\(userPlace): token holds line breaks or control characters; put the token alone on the line")
            }
            auth = .bearerToken(token)
            methods.append("token")
        }
        if let exec = user.exec {
            guard case .none = auth else {
                throw .credentials("\(userPlace) has both a token and an exec plugin; keep one of them")
            }
            let plugin = try execPlugin(exec, directory: directory, place: userPlace, server: server, tls: tls)
            auth = .exec(plugin)
            methods.append("exec plugin \(plugin.command)")
        }

        let how = methods.isEmpty ? "no credentials" : methods.joined(separator: " and ")
        let description = "kubeconfig \(path), context \(contextName), user \(userName.isEmpty ? "(none)" : userName) (\(how))"
        return KubernetesEndpoint(server: server, tls: tls, auth: auth, description: description, warnings: warnings)
    }

    private func load(_ path: String) throws(KubernetesError) -> Kubeconfig {
        let data = try readFile(path, what: "the kubeconfig")
        let node: YAMLNode?
        do throws(YAMLError) {
            node = try YAMLParser.parse(String(decoding: data, as: UTF8.self))
        } catch {
            throw .credentials("kubeconfig \(path) is not valid YAML: \(Self.describeYAMLError(error))")
        }
        guard let node else { throw .credentials("kubeconfig \(path) is empty") }
        do {
            return try YAMLDecoder().decode(Kubeconfig.self, from: node)
        } catch let error as DecodingError {
            throw .credentials("kubeconfig \(path) is not a kubeconfig: \(error.readableReason)")
        } catch {
            throw .credentials("kubeconfig \(path) is not a kubeconfig")
        }
    }

    /// The position and problem only, never the file's text, which may hold a token.
    private static func describeYAMLError(_ error: YAMLError) -> String {
        switch error.kind {
        case .reader:
            error.problem
        case .composer where !error.duplicateKeys.isEmpty:
            "duplicated keys \(error.duplicateKeys.joined(separator: ", ")) at line \(error.line)"
        default:
            error.description
        }
    }

    private func clientCertificate(_ user: Kubeconfig.User, directory: String, place: String) throws(KubernetesError) -> TLSOptions.ClientCertificate? {
        func pem(data: String?, file: String?, what: String) throws(KubernetesError) -> Data? {
            if let data = data.flatMap({ $0.isEmpty ? nil : $0 }) {
                return try base64(data, what: "\(place): \(what)-data")
            }
            if let file = file.flatMap({ $0.isEmpty ? nil : $0 }) {
                return try readFile(resolve(file, against: directory), what: "\(place): \(what)")
            }
            return nil
        }
        let certificate = try pem(data: user.clientCertificateData, file: user.clientCertificate, what: "client-certificate")
        let key = try pem(data: user.clientKeyData, file: user.clientKey, what: "client-key")
        switch (certificate, key) {
        case (nil, nil):
            return nil
        case (let certificate?, let key?):
            try requirePEM(certificate, "CERTIFICATE", what: "\(place): the client certificate")
            try requirePEM(key, "PRIVATE KEY", what: "\(place): the client key")
            return TLSOptions.ClientCertificate(certificatePEM: certificate, privateKeyPEM: key)
        case (_?, nil):
            throw .credentials("\(place) has a client certificate but no client-key or client-key-data; give both")
        case (nil, _?):
            throw .credentials("\(place) has a client key but no client-certificate or client-certificate-data; give both")
        }
    }

    private func execPlugin(_ exec: Kubeconfig.Exec, directory: String, place: String, server: String,
                            tls: TLSOptions) throws(KubernetesError) -> ExecPlugin {
        guard let command = exec.command, !command.isEmpty else {
            throw .credentials("\(place): the exec plugin has no command")
        }
        guard let version = exec.apiVersion, let apiVersion = ExecPlugin.APIVersion(rawValue: version) else {
            throw .credentials("\(place): the exec plugin's apiVersion \(exec.apiVersion.map { "\"\($0)\"" } ?? "(none)") is not supported; "
                + "use \(ExecPlugin.APIVersion.v1.rawValue) (or \(ExecPlugin.APIVersion.v1beta1.rawValue))")
        }
        if exec.interactiveMode == "Always" {
            throw .credentials("\(place): the exec plugin's interactiveMode is Always, but kscaler runs without a terminal; "
                + "configure a plugin that can run unattended (interactiveMode Never or IfAvailable)")
        }
        // kubectl resolves a command with a slash in it against the kubeconfig's directory; a
        // bare name is looked up in PATH.
        let resolvedCommand = command.contains("/") ? resolve(command, against: directory) : command
        var cluster: JSONValue?
        if exec.provideClusterInfo == true {
            var info: [String: JSONValue] = ["server": .string(server)]
            if case .pem(let data) = tls.trustedCA { info["certificate-authority-data"] = .string(data.base64EncodedString()) }
            if tls.insecureSkipVerify { info["insecure-skip-tls-verify"] = true }
            cluster = .object(info)
        }
        return ExecPlugin(command: resolvedCommand, arguments: exec.args ?? [],
                          extraEnvironment: (exec.env ?? []).map { (name: $0.name, value: $0.value) },
                          apiVersion: apiVersion, installHint: exec.installHint, cluster: cluster,
                          environment: environment, timeout: execTimeout, now: now)
    }

    // MARK: - Files

    /// The directory part of a path, as `dirname` gives it ("" for a bare file name): relative
    /// paths in a kubeconfig are relative to its own directory.
    static func directory(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    private func readFile(_ path: String, what: String) throws(KubernetesError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            var status = stat()
            let problem = stat(path, &status) != 0 ? "does not exist"
                : (status.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "cannot be read (check its permissions)"
            throw .credentials("\(what) \(path) \(problem)")
        }
    }

    /// A token file's content without surrounding whitespace (as client-go trims it).
    private func readToken(_ path: String, what: String) throws(KubernetesError) -> String {
        let token = String(decoding: try readFile(path, what: what), as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw .credentials("\(what) \(path) is empty") }
        guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .credentials("\(what) \(path) holds more than one line or control characters; put the token alone in it")
        }
        return token
    }

    private func base64(_ text: String, what: String) throws(KubernetesError) -> Data {
        guard let data = Data(base64Encoded: text.filter { !$0.isWhitespace }) else {
            throw .credentials("\(what) is not valid base64")
        }
        return data
    }

    /// A PEM block of the expected kind; nothing of the content is repeated in the error.
    private func requirePEM(_ data: Data, _ label: String, what: String) throws(KubernetesError) {
        let text = String(decoding: data, as: UTF8.self)
        guard text.contains("-----BEGIN "), text.contains("\(label)-----") else {
            throw .credentials("\(what) is not a PEM \(label.lowercased()) (no -----BEGIN …\(label)----- block)")
        }
    }

    private func resolve(_ path: String, against directory: String) -> String {
        path.hasPrefix("/") ? path : join(directory, path)
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : join(FileManager.default.currentDirectoryPath, path)
    }

    private func join(_ base: String, _ path: String) -> String {
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        let relative = path.hasPrefix("/") ? String(path.dropFirst()) : path
        return trimmed + "/" + relative
    }

    private func names<Value>(_ entries: [Kubeconfig.Named<Value>]?) -> String {
        let names = (entries ?? []).map { "\"\($0.name)\"" }
        return names.isEmpty ? "none" : names.joined(separator: ", ")
    }
}
