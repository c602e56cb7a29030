import KScalerCore

/// What each value placeholder may hold (userdata/README.md, "Placeholders"). Besides Kubernetes
/// syntax the rules keep every value free of quotes, newlines and braces, so no value can leave
/// its single-quoted env-file line or its YAML scalar.
///
/// `pattern` is the reference renderer's regular expression (infra/tests/userdata_render.py),
/// character for character; `matches` implements it by hand, because compiling Swift regexes
/// costs about 10 ms per process and `kscaler run` renders worker user data every run. The tests
/// check both against the reference: the patterns by text, the matchers against Python's `re`.
struct UserDataValueRule: Sendable {
    /// Must match the whole value.
    let pattern: String
    /// What the value must be, in words.
    let expected: String
    /// How to fix it; names the configuration key when the value comes from there.
    let fix: String
    private let matcher: @Sendable (ArraySlice<UInt8>) -> Bool

    init(_ pattern: String, expected: String, fix: String, matcher: @escaping @Sendable (ArraySlice<UInt8>) -> Bool) {
        self.pattern = pattern
        self.expected = expected
        self.fix = fix
        self.matcher = matcher
    }

    /// Every pattern is ASCII, so matching UTF-8 bytes is matching code points: a non-ASCII
    /// character fails either way.
    func matches(_ value: String) -> Bool { matcher(Array(value.utf8)[...]) }
}

extension UserDataValueRule {
    private static let name = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
    private static let key = "([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?" + name
    private static let parameter = "/[A-Za-z0-9_./-]{1,1010}"
    private static let url = "https://[A-Za-z0-9._~:/?#\\[\\]@!$&()*+,;=%-]+"
    private static let effect = "(NoSchedule|PreferNoSchedule|NoExecute)"
    private static let label = "\(key)=(\(name))?"
    private static let taint = "\(key)(=(\(name))?)?:\(effect)"
    private static let sha256 = "[0-9a-f]{64}"

    private static func parameterRule(_ fix: String) -> UserDataValueRule {
        UserDataValueRule(parameter, expected: "an SSM parameter path: / and 1 to 1010 of A-Z a-z 0-9 _ . - /", fix: fix,
                          matcher: ASCIIMatch.isParameter)
    }

    /// By placeholder name.
    static let all: [String: UserDataValueRule] = [
        "cluster_id": UserDataValueRule(
            "[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?",
            expected: "a cluster id: 1 to 40 of a-z 0-9 -, a letter or digit at both ends",
            fix: "set cluster_id in the configuration, e.g. demo or prod-eu",
            matcher: ASCIIMatch.isShortName),
        "pool": UserDataValueRule(
            name, expected: "a Kubernetes label value (1 to 63 of A-Z a-z 0-9 - _ ., a letter or digit at both ends)",
            fix: "set workers.pool in the configuration, e.g. default or batch", matcher: ASCIIMatch.isName),
        "token_parameter": parameterRule("set workers.join.token_parameter in the configuration, e.g. /kscaler/demo/join-token"),
        "server_url_parameter": parameterRule("set workers.join.server_url_parameter in the configuration, e.g. /kscaler/demo/server-url"),
        "ca_cert_hash_parameter": parameterRule("--set ca_cert_hash_parameter=/kscaler/<cluster>/ca-cert-hash"),
        "node_labels": UserDataValueRule(
            "(\(label)(,\(label))*)?",
            expected: "comma-separated key=value Kubernetes labels (key [dns-prefix/]name, value up to 63 of A-Z a-z 0-9 - _ .)",
            fix: "fix workers.labels in the configuration", matcher: { ASCIIMatch.isList($0, of: ASCIIMatch.isLabel) }),
        "node_taints": UserDataValueRule(
            "(\(taint)(,\(taint))*)?",
            expected: "comma-separated key[=value]:Effect taints, Effect one of NoSchedule, PreferNoSchedule, NoExecute",
            fix: "fix workers.taints in the configuration", matcher: { ASCIIMatch.isList($0, of: ASCIIMatch.isTaint) }),
        "shutdown_grace_seconds": UserDataValueRule(
            "[1-9][0-9]{0,3}", expected: "whole seconds, 1 to 9999",
            fix: "--set shutdown_grace_seconds=45 (how long a terminated worker's pods get to stop)",
            matcher: { ASCIIMatch.isDigits($0, count: 1...4) && $0.first != UInt8(ascii: "0") }),
        "shutdown_grace_critical_seconds": UserDataValueRule(
            "[0-9]{1,4}", expected: "whole seconds, 0 to 9999",
            fix: "--set shutdown_grace_critical_seconds=15 (the part of the grace period kept for critical pods)",
            matcher: { ASCIIMatch.isDigits($0, count: 1...4) }),
        "k3s_install_url": UserDataValueRule(
            "(\(url))?", expected: "an https:// URL without quotes, spaces or braces (or empty)",
            fix: "--set k3s_install_url=https://get.k3s.io/, or leave it out to use the installer baked into the AMI",
            matcher: { $0.isEmpty || ASCIIMatch.isURL($0) }),
        "k3s_install_sha256": UserDataValueRule(
            "(\(sha256))?", expected: "64 lowercase hex digits (or empty)",
            fix: "--set k3s_install_sha256=<the installer's sha256sum>", matcher: { $0.isEmpty || ASCIIMatch.isSHA256($0) }),
        "k3s_version": UserDataValueRule(
            "(v[0-9A-Za-z.+-]{1,60})?", expected: "a k3s release such as v1.33.1+k3s1 (or empty)",
            fix: "--set k3s_version=v1.33.1+k3s1, or leave it out for the installer's default",
            matcher: { value in
                value.isEmpty || (value.first == UInt8(ascii: "v") && (2...61).contains(value.count)
                    && value.dropFirst().allSatisfy { ASCIIMatch.isAlphanumeric($0) || ".+-".utf8.contains($0) })
            }),
        "kubeadm_api_version": UserDataValueRule(
            "v1beta4|v1beta3", expected: "v1beta4 (kubeadm 1.31 and later) or v1beta3",
            fix: "--set kubeadm_api_version=v1beta3 for kubeadm older than 1.31, else leave it out",
            matcher: { $0.elementsEqual("v1beta4".utf8) || $0.elementsEqual("v1beta3".utf8) }),
        "server_url": UserDataValueRule(
            "(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?)?", expected: "https://host[:port] (or empty for https://<private IPv4>:6443)",
            fix: "--set server_url=https://api.example.com:6443, or leave it out", matcher: ASCIIMatch.isServerURL),
        "publish_server_url": UserDataValueRule(
            "true|false", expected: "true or false",
            fix: "--set publish_server_url=false when the stack's ServerUrl owns the parameter, else leave it out",
            matcher: { $0.elementsEqual("true".utf8) || $0.elementsEqual("false".utf8) }),
        "token_ttl_minutes": UserDataValueRule(
            "[0-9]{2,5}", expected: "minutes, 2 to 5 digits",
            fix: "--set token_ttl_minutes=120 (at least rotate_after_minutes + 30)", matcher: { ASCIIMatch.isDigits($0, count: 2...5) }),
        "rotate_after_minutes": UserDataValueRule(
            "[0-9]{1,5}", expected: "minutes, 1 to 5 digits",
            fix: "--set rotate_after_minutes=60", matcher: { ASCIIMatch.isDigits($0, count: 1...5) }),
        "proxmox_cluster_name": UserDataValueRule(
            "[A-Za-z0-9]([A-Za-z0-9-]{0,38}[A-Za-z0-9])?", expected: "a Proxmox VE cluster name: 1 to 40 of A-Z a-z 0-9 -, a letter or digit at both ends",
            fix: "set fleet.proxmox.cluster_name in the configuration, or --set proxmox_cluster_name=<the name in proxmox://<name>/<vmid>>",
            matcher: { ASCIIMatch.isBounded($0, length: 1...40, ends: ASCIIMatch.isAlphanumeric,
                                            inner: { ASCIIMatch.isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) }),
        "region": UserDataValueRule(
            "[a-z]{2}(-[a-z]+)+-[0-9]", expected: "an AWS region such as eu-west-1",
            fix: "set region in the configuration, or --set region=eu-west-1", matcher: ASCIIMatch.isRegion),
        "kscaler_binary_url": UserDataValueRule(
            url, expected: "an https:// URL without quotes, spaces or braces",
            fix: "--set kscaler_binary_url=https://…/kscaler-linux-x86_64 (where the server downloads kscaler from)",
            matcher: ASCIIMatch.isURL),
        "kscaler_binary_sha256": UserDataValueRule(
            sha256, expected: "64 lowercase hex digits",
            fix: "--set kscaler_binary_sha256=<sha256sum of that binary>", matcher: ASCIIMatch.isSHA256),
    ]
}
