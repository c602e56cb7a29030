#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP

/// Coordinates of the real peers that `scripts/peers.sh start` runs on 127.0.0.1 (the README's
/// test command does this). A test that needs a peer calls `Peers.moto()`; when the peer is not
/// running the test FAILS with instructions — it is never silently skipped.
package enum Peers {
    package struct Missing: Error, CustomStringConvertible {
        package var variable: String
        package var description: String {
            "\(variable) is not set: the real peers are not running. Run the tests with `make test` (or `scripts/peers.sh start && . .peers/env` first)."
        }
    }

    package struct Moto: Sendable {
        package var endpoint: String
        package var accessKeyID: String
        package var secretAccessKey: String
        /// A user whose IAM policy allows only reads (Describe/Get/Query, GetCallerIdentity).
        package var readOnlyAccessKeyID: String
        package var readOnlySecretAccessKey: String

        /// A transport that waits for moto as long as a loaded machine needs. moto answers one
        /// request at a time (so that its conditional writes are atomic), and when the whole
        /// suite starts at once on two busy cores, a request can queue longer than the
        /// product's 10 s default. Tests that exercise kscaler's own timeouts use their own.
        package var transport: CurlTransport { CurlTransport(connectTimeout: .seconds(30), totalTimeout: .seconds(120)) }

        /// Environment variables that point the AWS SDK conventions at this moto.
        package func environment(region: String = "us-east-1", readOnly: Bool = false, extra: [String: String] = [:]) -> [String: String] {
            [
                "AWS_ACCESS_KEY_ID": readOnly ? readOnlyAccessKeyID : accessKeyID,
                "AWS_SECRET_ACCESS_KEY": readOnly ? readOnlySecretAccessKey : secretAccessKey,
                "AWS_REGION": region,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_EC2_METADATA_DISABLED": "true",
                "HOME": "/nonexistent-kscaler-test-home",
            ].merging(extra) { _, new in new }
        }
    }

    static func variable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { throw Missing(variable: name) }
        return value
    }

    package static func moto() throws -> Moto {
        Moto(
            endpoint: try variable("KSTEST_MOTO_ENDPOINT"),
            accessKeyID: try variable("KSTEST_AWS_ACCESS_KEY_ID"),
            secretAccessKey: try variable("KSTEST_AWS_SECRET_ACCESS_KEY"),
            readOnlyAccessKeyID: try variable("KSTEST_AWS_LIMITED_ACCESS_KEY_ID"),
            readOnlySecretAccessKey: try variable("KSTEST_AWS_LIMITED_SECRET_ACCESS_KEY")
        )
    }

    /// A name unique to this test process and call, so parallel tests never share moto state.
    package static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
    }
}
