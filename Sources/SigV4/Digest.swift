#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CLibCrypto

/// SHA-256 and HMAC-SHA256, from OpenSSL's libcrypto (loaded anyway, by libcurl). The 72 cases
/// of the AWS SigV4 test suite check them through every stage of the signature.
package enum Digest {
    /// SHA-256 of `bytes`: 32 bytes.
    package static func sha256<Bytes: ContiguousBytes>(_ bytes: Bytes) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let done = bytes.withUnsafeBytes { data in
            digest.withUnsafeMutableBufferPointer { kscaler_sha256(data.baseAddress, data.count, $0.baseAddress) }
        }
        // Fails only when libcrypto cannot allocate: nothing sensible can go on from there.
        precondition(done == 1, "libcrypto could not compute a SHA-256")
        return digest
    }

    /// HMAC-SHA256 of `bytes` under `key`: 32 bytes.
    package static func hmacSHA256<Key: ContiguousBytes, Bytes: ContiguousBytes>(_ bytes: Bytes, key: Key) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        let done = key.withUnsafeBytes { key in
            bytes.withUnsafeBytes { data in
                mac.withUnsafeMutableBufferPointer { kscaler_hmac_sha256(key.baseAddress, key.count, data.baseAddress, data.count, $0.baseAddress) }
            }
        }
        precondition(done == 1, "libcrypto could not compute an HMAC-SHA256")
        return mac
    }
}

/// A SigV4 signing key: the 32 bytes of the HMAC chain (`SigV4Signer.signingKey`). It signs for a
/// whole day in one region and service, so it is a secret like the secret key it comes from:
/// its description shows none of it.
package struct SigningKey: Sendable, CustomStringConvertible, ContiguousBytes {
    package let bytes: [UInt8]

    package init(bytes: [UInt8]) { self.bytes = bytes }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    package var description: String { "SigningKey(\(bytes.count) bytes, redacted)" }
}
