// swift-tools-version:6.1
// kscaler: a run-once node autoscaler for self-managed Kubernetes on EC2.
// One target per layer; dependencies point down only (docs/architecture.md):
//   kscaler (CLI) → KScaler → KScalerCore | AWS | Prometheus | Kubernetes | Proxmox | Spawn → SigV4 | HTTP → CLibCrypto | CCurl
//   (KScaler, Kubernetes → YAML → CYAML: libyaml)
import PackageDescription

let package = Package(
    name: "kscaler",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kscaler", targets: ["kscaler"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", exact: "2.0.1"),
    ],
    targets: [
        // libcurl, with fixed-arity inline wrappers for its variadic setopt/getinfo.
        .systemLibrary(
            name: "CCurl",
            path: "Sources/CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(name: "HTTP", dependencies: ["CCurl"]),
        // The reference C libyaml's event parser.
        .systemLibrary(
            name: "CYAML",
            path: "Sources/CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // YAML text → node tree (libyaml's events, aliases expanded within limits), YAML 1.1
        // scalar resolution without regular expressions, and a Decodable decoder; no Foundation.
        .target(name: "YAML", dependencies: ["CYAML"]),
        // SHA-256 and HMAC from OpenSSL's libcrypto, which libcurl loads anyway.
        .systemLibrary(
            name: "CLibCrypto",
            path: "Sources/CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "SigV4", dependencies: ["CLibCrypto"]),
        .target(name: "AWS", dependencies: ["SigV4", "HTTP", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Prometheus", dependencies: ["HTTP", .product(name: "Logging", package: "swift-log")]),
        // One-shot calls to the Kubernetes API (nodes, pods, evictions, PDBs, events, access
        // reviews) and credentials resolved as kubectl resolves them (kubeconfig, exec, in-cluster).
        .target(name: "Kubernetes", dependencies: ["HTTP", "YAML", "Spawn", .product(name: "Logging", package: "swift-log")]),
        // Runs a program bounded in time and output, off the cooperative pool (exec credential
        // plugins, the exec fleet backend).
        .target(name: "Spawn", dependencies: ["HTTP"]),
        // The Proxmox VE API calls of the Proxmox backend (clone, tasks, config, power, destroy),
        // with API-token auth.
        .target(name: "Proxmox", dependencies: ["HTTP", .product(name: "Logging", package: "swift-log")]),
        .target(name: "KScalerCore"),
        // Prints how long decide() and the EC2 / Prometheus parsers take at several fleet sizes
        // (figures, no pass/fail; `make bench` checks the targets).
        .executableTarget(name: "kscaler-bench", dependencies: ["KScalerCore", "AWS", "Prometheus", "HTTP", "SigV4"]),
        .target(
            name: "KScaler",
            dependencies: [
                "KScalerCore", "AWS", "Prometheus", "Kubernetes", "Proxmox", "HTTP", "SigV4", "YAML", "Spawn",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "kscaler",
            dependencies: [
                "KScaler", "AWS", "HTTP", "Spawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Shared by the test targets only: local stand-in servers and the peers' coordinates.
        .target(name: "TestSupport", dependencies: ["HTTP", .product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),
        .testTarget(name: "TestSupportTests", dependencies: ["TestSupport", "HTTP"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "TestSupport"]),
        .testTarget(name: "SigV4Tests", dependencies: ["SigV4"]),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "PrometheusTests", dependencies: ["Prometheus", "KScalerCore", "KScaler", "TestSupport",
                                                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "KubernetesTests", dependencies: ["Kubernetes", "TestSupport", "HTTP",
                                                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "KScalerCoreTests",
            dependencies: ["KScalerCore", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "KScalerTests", dependencies: ["KScaler", "Proxmox", "HTTP", "TestSupport", "YAML",
                                                        .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "YAMLTests", dependencies: ["YAML"]),
        // The command line's own code (the log handler's redaction), imported @testable.
        .testTarget(name: "CLITests", dependencies: ["kscaler", "KScaler", "KScalerCore", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
