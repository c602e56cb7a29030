/// What a string setting must look like, and how to say so.
struct TextRule: Sendable {
    /// "a cluster id ([a-z0-9-], 1…40 characters)".
    let expected: String
    let fix: String
    let isValid: @Sendable (String) -> Bool

    /// A parser: a string (or YAML number) that satisfies the rule.
    var parse: (ConfigValue) -> Result<String, ScalarError> {
        { value in
            Scalar.string(value).flatMap { text in
                let text = Scalar.trimmed(text)
                return isValid(text)
                    ? .success(text)
                    : .failure(ScalarError(message: "\"\(text)\" is not \(expected)", fix: fix))
            }
        }
    }

    /// A list parser: every item satisfies the rule and appears once; one problem names all bad items.
    var parseList: (ConfigValue) -> Result<[String], ScalarError> {
        { value in
            Scalar.stringList(value).flatMap { items in
                let items = items.map(Scalar.trimmed)
                let invalid = items.filter { !isValid($0) }
                if !invalid.isEmpty {
                    let names = invalid.map { "\"\($0)\"" }.joined(separator: ", ")
                    return .failure(ScalarError(message: "\(names) \(invalid.count == 1 ? "is" : "are") not \(expected)", fix: fix))
                }
                var seen = Set<String>()
                let duplicates = items.filter { !seen.insert($0).inserted }
                if !duplicates.isEmpty {
                    return .failure(ScalarError(message: "\(duplicates.map { "\"\($0)\"" }.joined(separator: ", ")) listed more than once", fix: "list each entry once"))
                }
                return .success(items)
            }
        }
    }
}

private func isLowerAlphanumeric(_ c: Character) -> Bool { c.isASCII && (c.isLowercase || c.isNumber) }
private func isLowerHex(_ c: Character) -> Bool { c.isASCII && c.isHexDigit && !c.isUppercase }
private func isAlphanumeric(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber) }

/// `prefix` followed by lowercase hex, the shape of every EC2 resource id.
private func isAWSID(_ text: String, prefix: String) -> Bool {
    text.hasPrefix(prefix) && text.count > prefix.count && text.dropFirst(prefix.count).allSatisfy(isLowerHex)
}

/// A Kubernetes name segment: 1…63 of [A-Za-z0-9-_.], alphanumeric at both ends.
func isKubernetesName(_ text: String) -> Bool { ASCIIMatch.matches(text, ASCIIMatch.isName) }

/// A label or taint key: `[prefix/]name`, prefix a DNS subdomain.
func isKubernetesKey(_ text: String) -> Bool { ASCIIMatch.matches(text, ASCIIMatch.isKey) }

/// A label value: empty, or a Kubernetes name.
func isKubernetesValue(_ text: String) -> Bool { text.isEmpty || isKubernetesName(text) }

extension TextRule {
    static let clusterID = TextRule(
        expected: "a valid cluster id (1 to 40 of a-z 0-9 -, a letter or digit at both ends)",
        fix: "use lowercase letters, digits and dashes only, at most 40, starting and ending with a letter or digit, e.g. demo or prod-eu",
        isValid: { ASCIIMatch.matches($0, ASCIIMatch.isShortName) }
    )
    static let region = TextRule(
        expected: "an AWS region name",
        fix: "write a region such as us-east-1 or eu-west-3",
        isValid: { ASCIIMatch.matches($0, ASCIIMatch.isRegion) }
    )
    static let table = TextRule(
        expected: "a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)",
        fix: "write a table name such as kscaler",
        isValid: { (3...255).contains($0.count) && $0.allSatisfy { isAlphanumeric($0) || "_.-".contains($0) } }
    )
    static let pool = TextRule(
        expected: "a pool name (1 to 40 of a-z 0-9 -, a letter or digit at both ends)",
        fix: "use lowercase letters, digits and dashes, starting and ending with a letter or digit, e.g. default or batch",
        isValid: { ASCIIMatch.matches($0, ASCIIMatch.isShortName) }
    )
    static let instanceID = TextRule(expected: "an EC2 instance id", fix: "write ids such as i-0123456789abcdef0", isValid: { isAWSID($0, prefix: "i-") })
    static let subnetID = TextRule(expected: "a subnet id", fix: "write subnet ids such as subnet-0123456789abcdef0", isValid: { isAWSID($0, prefix: "subnet-") })
    static let securityGroupID = TextRule(expected: "a security group id", fix: "write security group ids such as sg-0123456789abcdef0", isValid: { isAWSID($0, prefix: "sg-") })
    static let imageID = TextRule(expected: "an AMI id", fix: "write an AMI id such as ami-0123456789abcdef0", isValid: { isAWSID($0, prefix: "ami-") })
    static let launchTemplateID = TextRule(expected: "a launch template id", fix: "write an id such as lt-0123456789abcdef0, or use name: instead", isValid: { isAWSID($0, prefix: "lt-") })
    static let instanceType = TextRule(
        expected: "an EC2 instance type",
        fix: "write types such as t3.large or m7g.2xlarge",
        isValid: { text in
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" } }
                && parts[0].first!.isLetter
        }
    )
    static let launchTemplateVersion = TextRule(
        expected: "a launch template version ($Latest, $Default or a number)",
        fix: "write $Latest, $Default or a version number such as 3",
        isValid: { $0 == "$Latest" || $0 == "$Default" || (!$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } && $0.first != "0") }
    )
    static let ssmParameter = TextRule(
        expected: "an SSM parameter path (a leading / and 1 to 1010 of A-Z a-z 0-9 _ . - /)",
        fix: "write a path such as /kscaler/demo/join-token",
        isValid: { ASCIIMatch.matches($0, ASCIIMatch.isParameter) }
    )
    static let instanceProfile = TextRule(
        expected: "an instance profile name or ARN",
        fix: "write a name such as kscaler-worker, or an arn:aws:iam::…:instance-profile/… ARN",
        isValid: { !$0.isEmpty && $0.count <= 2048 && !$0.contains(where: \.isWhitespace) }
    )
    static let base64 = TextRule(
        expected: "base64 text (the certificate-authority-data of a kubeconfig)",
        fix: "write the CA as one base64 line, e.g. the output of: kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}'",
        isValid: { text in !text.isEmpty && text.utf8.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
        } }
    )
    static let nonEmpty = TextRule(expected: "a non-empty value", fix: "write a value or remove the key", isValid: { !$0.isEmpty })
    static let path = TextRule(
        expected: "a file path",
        fix: "write the path of the file holding the secret, e.g. /etc/kscaler/prometheus-password",
        isValid: { !$0.isEmpty && !$0.contains("\n") }
    )
}

/// Checks an `http(s)://` URL without ever echoing it (a pasted URL can hold credentials).
/// Returns the problem to report, or nil when fine.
func urlProblem(_ text: String, field: String) -> ScalarError? {
    let fix = "write http://host:port or https://host[:port][/path], e.g. http://127.0.0.1:9090"
    guard let schemeEnd = text.firstRange(of: "://") else {
        return ScalarError(message: "is not a URL (no scheme)", fix: fix)
    }
    let scheme = text[..<schemeEnd.lowerBound].lowercased()
    guard scheme == "http" || scheme == "https" else {
        return ScalarError(message: "scheme \"\(scheme)\" is not supported", fix: "use http or https; " + fix)
    }
    let rest = text[schemeEnd.upperBound...]
    let authority = rest.prefix(while: { !"/?#".contains($0) })
    if authority.contains("@") {
        return ScalarError(message: "contains credentials (user:password@); it is not shown here",
                           fix: "remove them from \(field) and use prometheus.auth (type basic with password_file, or bearer with token_file)")
    }
    if text.contains(where: \.isWhitespace) {
        return ScalarError(message: "contains whitespace", fix: fix)
    }
    var host = Substring(authority)
    if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
        let port = authority[authority.index(after: colon)...]
        guard let number = Int(port), (1...65535).contains(number) else {
            return ScalarError(message: "has an invalid port", fix: "write a port between 1 and 65535")
        }
        host = authority[..<colon]
    }
    guard !host.isEmpty else { return ScalarError(message: "has no host", fix: fix) }
    return nil
}

/// A parser for URL settings (whitespace around is trimmed).
func urlParser(field: String) -> (ConfigValue) -> Result<String, ScalarError> {
    { value in
        Scalar.string(value).flatMap { text in
            let text = Scalar.trimmed(text)
            return urlProblem(text, field: field).map { .failure($0) } ?? .success(text)
        }
    }
}

/// `key[=value]:Effect`.
func parseTaint(_ text: String) -> Result<Taint, ScalarError> {
    let fix = "write key=value:Effect or key:Effect, Effect one of NoSchedule, PreferNoSchedule, NoExecute"
    guard let colon = text.lastIndex(of: ":") else {
        return .failure(ScalarError(message: "taint \"\(text)\" has no effect", fix: fix))
    }
    let effectText = String(text[text.index(after: colon)...])
    guard let effect = Taint.Effect(rawValue: effectText) else {
        return .failure(ScalarError(message: "taint \"\(text)\" has unknown effect \"\(effectText)\"", fix: fix))
    }
    let keyValue = text[..<colon]
    let key: String, value: String?
    if let equals = keyValue.firstIndex(of: "=") {
        key = String(keyValue[..<equals])
        value = String(keyValue[keyValue.index(after: equals)...])
    } else {
        key = String(keyValue)
        value = nil
    }
    guard isKubernetesKey(key), isKubernetesValue(value ?? "") else {
        return .failure(ScalarError(message: "taint \"\(text)\" has an invalid key or value", fix: fix + "; keys and values use letters, digits, - _ . (up to 63)"))
    }
    return .success(Taint(key: key, value: value, effect: effect))
}
