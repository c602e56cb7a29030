// Resolving the API server and credentials from kubeconfig files, as kubectl does.
import Foundation
import HTTP
import Kubernetes
import Testing

let caPEM = "-----BEGIN CERTIFICATE-----\nQ0EtQ0VSVElGSUNBVEU=\n-----END CERTIFICATE-----\n"
let certificatePEM = "-----BEGIN CERTIFICATE-----\nQ0xJRU5ULUNFUlQ=\n-----END CERTIFICATE-----\n"
let keyPEM = "-----BEGIN EC PRIVATE KEY-----\nS0VZLVNFQ1JFVC1CWVRFUw==\n-----END EC PRIVATE KEY-----\n"

func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

/// A kubeconfig with one cluster `k3s` (with `cluster` lines), one user `admin` (with `user`
/// lines) and a context `k3s` that joins them, current unless `current` says otherwise.
func kubeconfigYAML(cluster: String, user: String, current: String? = "k3s", extra: String = "") -> String {
    func indented(_ text: String) -> String { text.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n") }
    return """
        apiVersion: v1
        kind: Config
        clusters:
        - name: k3s
          cluster:
        \(indented(cluster))
        users:
        - name: admin
          user:
        \(indented(user))
        contexts:
        - name: k3s
          context:
            cluster: k3s
            user: admin
        - name: other
          context:
            cluster: k3s
            user: admin
            namespace: web
        \(current.map { "current-context: \($0)" } ?? "")
        \(extra)
        """
}

@Suite struct KubeconfigTests {
    let scratch: ScratchDirectory
    init() throws { scratch = try ScratchDirectory() }

    func resolver(_ environment: [String: String] = [:], home: String? = nil) -> KubernetesEndpointResolver {
        KubernetesEndpointResolver(environment: environment, homeDirectory: home ?? scratch.path + "/home", inClusterRoot: scratch.path + "/pod")
    }

    @Test func dataFormsGoIntoTheTLSOptionsAsTheyAre() throws {
        let path = try scratch.write("config", kubeconfigYAML(
            cluster: "server: https://10.0.0.1:6443\ncertificate-authority-data: \(base64(caPEM))",
            user: "client-certificate-data: \(base64(certificatePEM))\nclient-key-data: \(base64(keyPEM))"))
        let endpoint = try resolver().fromKubeconfig(path: path)
        #expect(endpoint.server == "https://10.0.0.1:6443")
        #expect(endpoint.tls == TLSOptions(trustedCA: .pem(Data(caPEM.utf8)),
                                           clientCertificate: .init(certificatePEM: Data(certificatePEM.utf8), privateKeyPEM: Data(keyPEM.utf8))))
        guard case .none = endpoint.auth else { Issue.record("expected no token, got \(endpoint.auth)"); return }
        #expect(endpoint.description == "kubeconfig \(path), context k3s, user admin (client certificate)")
        #expect(endpoint.warnings.isEmpty)
        var dumped = ""
        dump(endpoint, to: &dumped)
        #expect(!dumped.contains("S0VZLVNFQ1JFVC1CWVRFUw"))
    }

    @Test func fileFormsAreReadIntoMemoryWithRelativePathsFromTheKubeconfigsDirectory() throws {
        try scratch.write("kube/pki/ca.crt", caPEM)
        try scratch.write("kube/pki/admin.crt", certificatePEM)
        try scratch.write("absolute/admin.key", keyPEM)
        let path = try scratch.write("kube/config", kubeconfigYAML(
            cluster: "server: https://10.0.0.1:6443\ncertificate-authority: pki/ca.crt",
            user: "client-certificate: ./pki/admin.crt\nclient-key: \(scratch.path)/absolute/admin.key"))
        let endpoint = try resolver().fromKubeconfig(path: path)
        #expect(endpoint.tls == TLSOptions(trustedCA: .pem(Data(caPEM.utf8)),
                                           clientCertificate: .init(certificatePEM: Data(certificatePEM.utf8), privateKeyPEM: Data(keyPEM.utf8))))
    }

    @Test func aTokenAndATokenFile() throws {
        let inline = try scratch.write("inline", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443", user: "token: \(testToken)"))
        let endpoint = try resolver().fromKubeconfig(path: inline)
        guard case .bearerToken(let token) = endpoint.auth else { Issue.record("got \(endpoint.auth)"); return }
        #expect(token == testToken)
        #expect(endpoint.tls.trustedCA == .system)
        #expect(endpoint.description.hasSuffix("user admin (token)"))
        #expect(!endpoint.description.contains(testToken))

        try scratch.write("tokens/kscaler", "  file-token-1\n")
        let fromFile = try scratch.write("file", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443",
                                                                 user: "token: ignored-inline\ntokenFile: tokens/kscaler"))
        let fileEndpoint = try resolver().fromKubeconfig(path: fromFile)
        guard case .bearerToken(let fileToken) = fileEndpoint.auth else { Issue.record("got \(fileEndpoint.auth)"); return }
        #expect(fileToken == "file-token-1")
        #expect(fileEndpoint.description.hasSuffix("user admin (token file \(scratch.path)/tokens/kscaler)"))
    }

    @Test func aCertificateAndATokenTogether() throws {
        let path = try scratch.write("config", kubeconfigYAML(
            cluster: "server: https://10.0.0.1:6443",
            user: "client-certificate-data: \(base64(certificatePEM))\nclient-key-data: \(base64(keyPEM))\ntoken: \(testToken)"))
        let endpoint = try resolver().fromKubeconfig(path: path)
        #expect(endpoint.tls.clientCertificate != nil)
        #expect(endpoint.description.hasSuffix("(client certificate and token)"))
    }

    @Test func contextsAreChosenByNameOrCurrentContext() throws {
        let yaml = kubeconfigYAML(cluster: "server: https://10.0.0.1:6443", user: "token: t", current: "other",
                                  extra: "")
            .replacingOccurrences(of: "contexts:\n", with: "contexts:\n- name: staging\n  context:\n    cluster: staging\n    user: admin\n")
            .replacingOccurrences(of: "clusters:\n", with: "clusters:\n- name: staging\n  cluster:\n    server: https://staging.test:6443\n")
        let path = try scratch.write("config", yaml)
        #expect(try resolver().fromKubeconfig(path: path).description.contains("context other,"))
        let staging = try resolver().fromKubeconfig(path: path, context: "staging")
        #expect(staging.server == "https://staging.test:6443")
        #expect(staging.description.contains("context staging,"))

        let missing = kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: path, context: "prod") })
        #expect(missing?.description == #"Kubernetes credentials: kubeconfig \#(path) has no context "prod"; its contexts: "staging", "k3s", "other""#)

        let noCurrent = try scratch.write("nocurrent", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443", user: "token: t", current: nil))
        let none = kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: noCurrent) })
        #expect(none?.description.contains("has no current-context and no context was given") == true)
        #expect(try resolver().fromKubeconfig(path: noCurrent, context: "k3s").server == "https://10.0.0.1:6443")
    }

    @Test func aContextNamingAMissingClusterOrUserSaysWhichExist() throws {
        let badCluster = try scratch.write("c", kubeconfigYAML(cluster: "server: https://a", user: "token: t")
            .replacingOccurrences(of: "    cluster: k3s\n    user: admin\n- name: other", with: "    cluster: gone\n    user: admin\n- name: other"))
        #expect(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: badCluster) })?.description
            .contains(#"context "k3s" names cluster "gone", which is not among its clusters ("k3s")"#) == true)
        let badUser = try scratch.write("u", kubeconfigYAML(cluster: "server: https://a", user: "token: t")
            .replacingOccurrences(of: "    cluster: k3s\n    user: admin\n- name: other", with: "    cluster: k3s\n    user: nobody\n- name: other"))
        #expect(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: badUser) })?.description
            .contains(#"names user "nobody", which is not among its users ("admin")"#) == true)
    }

    @Test func kubeconfigVariableThenHomeAndTheFirstExistingFileOfAList() throws {
        let first = try scratch.write("a/config", kubeconfigYAML(cluster: "server: https://first.test", user: "token: t"))
        let second = try scratch.write("b/config", kubeconfigYAML(cluster: "server: https://second.test", user: "token: t"))
        let missing = scratch.path + "/missing/config"
        let listed = try resolver(["KUBECONFIG": "\(missing):\(first):\(second)"]).resolve()
        #expect(listed.server == "https://first.test")
        #expect(listed.warnings == ["KUBECONFIG lists 3 files; kscaler reads only the first that exists, \(first) (kubectl would merge them)"])

        let single = try resolver(["KUBECONFIG": second]).resolve()
        #expect(single.server == "https://second.test")
        #expect(single.warnings.isEmpty)

        let noneExists = kubernetesError(sync: { _ = try resolver(["KUBECONFIG": missing]).resolve() })
        #expect(noneExists?.description.contains("KUBECONFIG names \(missing), and none of them exists") == true)

        // Explicit beats the variable; the variable beats the home directory.
        let home = try scratch.write("home/.kube/config", kubeconfigYAML(cluster: "server: https://home.test", user: "token: t"))
        #expect(try resolver(["KUBECONFIG": first]).resolve(kubeconfig: second).server == "https://second.test")
        #expect(try resolver(["KUBECONFIG": first]).resolve().server == "https://first.test")
        let fromHome = try resolver().resolve()
        #expect(fromHome.server == "https://home.test")
        #expect(fromHome.description.hasPrefix("kubeconfig \(home),"))

        let explicitMissing = kubernetesError(sync: { _ = try resolver().resolve(kubeconfig: missing) })
        #expect(explicitMissing?.description == "Kubernetes credentials: the kubeconfig \(missing) does not exist")
    }

    @Test func nothingToResolveSaysWhatWasTried() throws {
        let error = kubernetesError(sync: { _ = try resolver().resolve() })
        let text = try #require(error?.description)
        #expect(text.contains("KUBECONFIG is not set"))
        #expect(text.contains("\(scratch.path)/home/.kube/config does not exist"))
        #expect(text.contains("KUBERNETES_SERVICE_HOST is not set"))
        #expect(text.contains("/etc/rancher/k3s/k3s.yaml"))
    }

    @Test func insecureSkipVerifyIsHonouredOnlyWhenSaidAndWarnedAbout() throws {
        let path = try scratch.write("config", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443\ninsecure-skip-tls-verify: true", user: "token: t"))
        let endpoint = try resolver().fromKubeconfig(path: path)
        #expect(endpoint.tls.insecureSkipVerify)
        #expect(endpoint.warnings.count == 1)
        #expect(endpoint.warnings.first?.contains("insecure-skip-tls-verify is true, so the API server's certificate is not verified") == true)

        let off = try scratch.write("off", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443\ninsecure-skip-tls-verify: false", user: "token: t"))
        #expect(try resolver().fromKubeconfig(path: off).tls.insecureSkipVerify == false)

        let both = try scratch.write("both", kubeconfigYAML(
            cluster: "server: https://10.0.0.1:6443\ninsecure-skip-tls-verify: true\ncertificate-authority-data: \(base64(caPEM))", user: "token: t"))
        #expect(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: both) })?.description
            .contains("insecure-skip-tls-verify together with a certificate authority") == true)
    }

    @Test(arguments: [
        ("username: admin\npassword: hunter2", "username/password (basic authentication), which kscaler does not support"),
        ("auth-provider:\n  name: gcp\n  config:\n    access-token: hunter2", #"auth-provider "gcp", which kscaler does not support"#),
        ("token: hunter2\nas: system:admin", "impersonates another user (as), which kscaler does not support"),
        ("client-certificate-data: \(base64(certificatePEM))", "has a client certificate but no client-key"),
        ("client-key-data: \(base64("hunter2"))\nclient-certificate-data: \(base64(certificatePEM))", "the client key is not a PEM private key"),
        ("token: hunter2\nexec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: aws", "has both a token and an exec plugin"),
        ("exec:\n  apiVersion: client.authentication.k8s.io/v1alpha1\n  command: aws", "apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported"),
        ("exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: aws\n  interactiveMode: Always", "interactiveMode is Always"),
        ("client-certificate: missing.crt\nclient-key: missing.key", "client-certificate"),
    ])
    func unsupportedOrBrokenUsersAreRefusedClearly(user: String, expected: String) throws {
        let path = try scratch.write("config", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443", user: user))
        let error = kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: path) })
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.description.contains("hunter2") == false)
        #expect(error?.description.contains("S0VZ") == false)
    }

    @Test(arguments: [
        ("server: https://10.0.0.1:6443\ntls-server-name: kubernetes", "tls-server-name, which kscaler does not support"),
        ("server: https://10.0.0.1:6443\nproxy-url: http://proxy:3128", "proxy-url, which kscaler does not support"),
        ("certificate-authority-data: \(base64(caPEM))", "has no server"),
        ("server: https://10.0.0.1:6443\ncertificate-authority-data: '%%%'", "certificate-authority-data is not valid base64"),
        ("server: https://10.0.0.1:6443\ncertificate-authority-data: \(base64("not a pem"))", "is not a PEM certificate"),
        ("server: https://10.0.0.1:6443\ncertificate-authority: /nonexistent/ca.crt", "certificate-authority /nonexistent/ca.crt does not exist"),
        ("server: https://10.0.0.1:6443\ncertificate-authority: /tmp", "certificate-authority /tmp is a directory"),
    ])
    func brokenClustersAreRefusedClearly(cluster: String, expected: String) throws {
        let path = try scratch.write("config", kubeconfigYAML(cluster: cluster, user: "token: t"))
        let error = kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: path) })
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
    }

    @Test func aServerWithoutSchemeIsHTTPS() throws {
        let path = try scratch.write("config", kubeconfigYAML(cluster: "server: 10.0.0.1:6443", user: "token: t"))
        #expect(try resolver().fromKubeconfig(path: path).server == "https://10.0.0.1:6443")
    }

    @Test func brokenYAMLIsReportedByPositionWithoutQuotingTheFile() throws {
        let path = try scratch.write("config", "users:\n- name: admin\n  user:\n    token: \"hunter2-secret\n  bad: [\n")
        let error = kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: path) })
        let text = try #require(error?.description)
        #expect(text.contains("kubeconfig \(path) is not valid YAML: line"), "\(text)")
        #expect(!text.contains("hunter2"))

        let notAConfig = try scratch.write("list", "- a\n- b\n")
        #expect(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: notAConfig) })?.description.contains("is not a kubeconfig") == true)
        let empty = try scratch.write("empty", "")
        #expect(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: empty) })?.description.contains("is empty") == true)
    }

    @Test func repeatedKeysNonUTF8AndWrongShapesAreNamedWithoutQuotingTheFile() throws {
        let repeated = try scratch.write("repeated", "users:\n- name: admin\n  user:\n    token: hunter2\n    token: hunter3\n")
        let repeatedText = try #require(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: repeated) })?.description)
        #expect(repeatedText.contains("kubeconfig \(repeated) is not valid YAML: duplicated keys token at line 4"), "\(repeatedText)")
        #expect(!repeatedText.contains("hunter"))

        let control = try scratch.write("control", "users:\n- name: admin\n  user:\n    token: hunter2\u{07}\n")
        let controlText = try #require(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: control) })?.description)
        #expect(controlText.contains("kubeconfig \(control) is not valid YAML: control characters are not allowed"), "\(controlText)")
        #expect(!controlText.contains("hunter"))

        let shape = try scratch.write("shape", "clusters: {name: x}\n")
        let shapeText = try #require(kubernetesError(sync: { _ = try resolver().fromKubeconfig(path: shape) })?.description)
        #expect(shapeText.contains("kubeconfig \(shape) is not a kubeconfig: unexpected JSON at clusters: Expected to decode Sequence but found Mapping instead."),
                "\(shapeText)")
    }
}

@Suite struct InClusterTests {
    let scratch: ScratchDirectory
    init() throws { scratch = try ScratchDirectory() }

    func resolver(_ environment: [String: String]) -> KubernetesEndpointResolver {
        KubernetesEndpointResolver(environment: environment, homeDirectory: scratch.path + "/home", inClusterRoot: scratch.path + "/root")
    }

    let pod = ["KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443"]

    @Test func theServiceAccountTokenAndCAAreReadFromTheRoot() throws {
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/token", "eyJhbGciOi.first")
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", caPEM)
        let endpoint = try resolver(pod).inCluster()
        #expect(endpoint.server == "https://10.43.0.1:443")
        #expect(endpoint.tls == TLSOptions(trustedCA: .pem(Data(caPEM.utf8))))
        guard case .bearerToken(let token) = endpoint.auth else { Issue.record("got \(endpoint.auth)"); return }
        #expect(token == "eyJhbGciOi.first")
        #expect(endpoint.description ==
            "in-cluster service account (token \(scratch.path)/root/var/run/secrets/kubernetes.io/serviceaccount/token), server https://10.43.0.1:443")

        // The kubelet rotates the token: each resolution reads it again.
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/token", "eyJhbGciOi.second")
        guard case .bearerToken(let rotated) = try resolver(pod).resolve().auth else { Issue.record("no token"); return }
        #expect(rotated == "eyJhbGciOi.second")
    }

    @Test func anIPv6ServiceHostIsBracketed() throws {
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/token", "t")
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", caPEM)
        let endpoint = try resolver(["KUBERNETES_SERVICE_HOST": "fd00:10:43::1", "KUBERNETES_SERVICE_PORT": "443"]).inCluster()
        #expect(endpoint.server == "https://[fd00:10:43::1]:443")
    }

    @Test func missingPiecesAreNamed() throws {
        #expect(kubernetesError(sync: { _ = try resolver([:]).inCluster() })?.description
            .contains("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set") == true)
        let noToken = kubernetesError(sync: { _ = try resolver(pod).inCluster() })
        #expect(noToken?.description.contains("the service account token \(scratch.path)/root/var/run/secrets/kubernetes.io/serviceaccount/token does not exist") == true,
                "\(String(describing: noToken))")
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/token", "\n")
        #expect(kubernetesError(sync: { _ = try resolver(pod).inCluster() })?.description.contains("is empty") == true)
        try scratch.write("root/var/run/secrets/kubernetes.io/serviceaccount/token", "t")
        #expect(kubernetesError(sync: { _ = try resolver(pod).inCluster() })?.description.contains("CA certificate") == true)
    }
}
