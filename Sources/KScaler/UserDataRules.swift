/// What each value placeholder may hold (userdata/README.md, "Placeholders"). The patterns are
/// the reference renderer's (infra/tests/userdata_render.py), character for character; besides
/// Kubernetes syntax they keep every value free of quotes, newlines and braces, so no value can
/// leave its single-quoted env-file line or its YAML scalar.
struct UserDataValueRule: Sendable {
    /// Must match the whole value.
    let pattern: String
    /// What the value must be, in words.
    let expected: String
    /// How to fix it; names the configuration key when the value comes from there.
    let fix: String

    func matches(_ value: String) -> Bool {
        guard let regex = try? Regex(pattern).matchingSemantics(.unicodeScalar) else { return false }
        return value.wholeMatch(of: regex) != nil
    }
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
        UserDataValueRule(pattern: parameter, expected: "an SSM parameter path: / and 1 to 1010 of A-Z a-z 0-9 _ . - /", fix: fix)
    }

    /// By placeholder name.
    static let all: [String: UserDataValueRule] = [
        "cluster_id": UserDataValueRule(
            pattern: "[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?",
            expected: "a cluster id: 1 to 40 of a-z 0-9 -, a letter or digit at both ends",
            fix: "set cluster_id in the configuration, e.g. demo or prod-eu"),
        "pool": UserDataValueRule(
            pattern: name, expected: "a Kubernetes label value (1 to 63 of A-Z a-z 0-9 - _ ., a letter or digit at both ends)",
            fix: "set workers.pool in the configuration, e.g. default or batch"),
        "token_parameter": parameterRule("set workers.join.token_parameter in the configuration, e.g. /kscaler/demo/join-token"),
        "server_url_parameter": parameterRule("set workers.join.server_url_parameter in the configuration, e.g. /kscaler/demo/server-url"),
        "ca_cert_hash_parameter": parameterRule("--set ca_cert_hash_parameter=/kscaler/<cluster>/ca-cert-hash"),
        "node_labels": UserDataValueRule(
            pattern: "(\(label)(,\(label))*)?",
            expected: "comma-separated key=value Kubernetes labels (key [dns-prefix/]name, value up to 63 of A-Z a-z 0-9 - _ .)",
            fix: "fix workers.labels in the configuration"),
        "node_taints": UserDataValueRule(
            pattern: "(\(taint)(,\(taint))*)?",
            expected: "comma-separated key[=value]:Effect taints, Effect one of NoSchedule, PreferNoSchedule, NoExecute",
            fix: "fix workers.taints in the configuration"),
        "shutdown_grace_seconds": UserDataValueRule(
            pattern: "[1-9][0-9]{0,3}", expected: "whole seconds, 1 to 9999",
            fix: "--set shutdown_grace_seconds=45 (how long a terminated worker's pods get to stop)"),
        "shutdown_grace_critical_seconds": UserDataValueRule(
            pattern: "[0-9]{1,4}", expected: "whole seconds, 0 to 9999",
            fix: "--set shutdown_grace_critical_seconds=15 (the part of the grace period kept for critical pods)"),
        "k3s_install_url": UserDataValueRule(
            pattern: "(\(url))?", expected: "an https:// URL without quotes, spaces or braces (or empty)",
            fix: "--set k3s_install_url=https://get.k3s.io/, or leave it out to use the installer baked into the AMI"),
        "k3s_install_sha256": UserDataValueRule(
            pattern: "(\(sha256))?", expected: "64 lowercase hex digits (or empty)",
            fix: "--set k3s_install_sha256=<the installer's sha256sum>"),
        "k3s_version": UserDataValueRule(
            pattern: "(v[0-9A-Za-z.+-]{1,60})?", expected: "a k3s release such as v1.33.1+k3s1 (or empty)",
            fix: "--set k3s_version=v1.33.1+k3s1, or leave it out for the installer's default"),
        "kubeadm_api_version": UserDataValueRule(
            pattern: "v1beta4|v1beta3", expected: "v1beta4 (kubeadm 1.31 and later) or v1beta3",
            fix: "--set kubeadm_api_version=v1beta3 for kubeadm older than 1.31, else leave it out"),
        "server_url": UserDataValueRule(
            pattern: "(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?)?", expected: "https://host[:port] (or empty for https://<private IPv4>:6443)",
            fix: "--set server_url=https://api.example.com:6443, or leave it out"),
        "publish_server_url": UserDataValueRule(
            pattern: "true|false", expected: "true or false",
            fix: "--set publish_server_url=false when the stack's ServerUrl owns the parameter, else leave it out"),
        "token_ttl_minutes": UserDataValueRule(
            pattern: "[0-9]{2,5}", expected: "minutes, 2 to 5 digits",
            fix: "--set token_ttl_minutes=120 (at least rotate_after_minutes + 30)"),
        "rotate_after_minutes": UserDataValueRule(
            pattern: "[0-9]{1,5}", expected: "minutes, 1 to 5 digits",
            fix: "--set rotate_after_minutes=60"),
        "region": UserDataValueRule(
            pattern: "[a-z]{2}(-[a-z]+)+-[0-9]", expected: "an AWS region such as eu-west-1",
            fix: "set region in the configuration, or --set region=eu-west-1"),
        "kscaler_binary_url": UserDataValueRule(
            pattern: url, expected: "an https:// URL without quotes, spaces or braces",
            fix: "--set kscaler_binary_url=https://…/kscaler-linux-x86_64 (where the server downloads kscaler from)"),
        "kscaler_binary_sha256": UserDataValueRule(
            pattern: sha256, expected: "64 lowercase hex digits",
            fix: "--set kscaler_binary_sha256=<sha256sum of that binary>"),
    ]
}
