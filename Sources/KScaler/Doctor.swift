import AWS
import HTTP
import SigV4

/// `kscaler doctor`: one line per check, so an operator sees at once what is missing.
/// Each check reports what it used (never a secret) or what failed and how to fix it.
public struct DoctorCheck: Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var detail: String

    public init(name: String, passed: Bool, detail: String) {
        self.name = name
        self.passed = passed
        self.detail = detail
    }
}

public enum Doctor {
    /// Runs the AWS identity checks: region, credential source, STS GetCallerIdentity.
    /// Later checks are skipped (and reported as such) when an earlier one they need failed.
    public static func awsChecks(environment: AWSEnvironment, configuredRegion: String?,
                                 transport: any HTTPTransport) async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let context: AWSContext
        do {
            context = try await AWSContext.resolve(environment: environment, configuredRegion: configuredRegion, transport: transport)
            checks.append(DoctorCheck(name: "region", passed: true, detail: "\(context.region) (from \(context.regionSource))"))
        } catch {
            checks.append(DoctorCheck(name: "region", passed: false, detail: "\(error)"))
            return checks
        }
        do {
            let resolved = try await context.credentials.resolve()
            checks.append(DoctorCheck(name: "credentials", passed: true,
                                      detail: "from \(resolved.source), access key \(resolved.credentials.redactedAccessKeyID)"))
        } catch {
            checks.append(DoctorCheck(name: "credentials", passed: false, detail: "\(error)"))
            return checks
        }
        do {
            let identity = try await context.sts.getCallerIdentity()
            checks.append(DoctorCheck(name: "identity", passed: true, detail: "account \(identity.account), \(identity.arn)"))
        } catch {
            checks.append(DoctorCheck(name: "identity", passed: false, detail: "STS GetCallerIdentity: \(error)"))
        }
        return checks
    }
}

extension Credentials {
    /// The access key id with its middle elided: enough to tell keys apart, not to use one.
    public var redactedAccessKeyID: String {
        guard accessKeyID.count > 8 else { return "…" }
        return "\(accessKeyID.prefix(4))…\(accessKeyID.suffix(4))"
    }
}
