#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import PropertyBased
import Testing
@testable import KScalerCore

/// Each backend's identity as it declares it (the fleets in KScaler hold the real ones; these
/// are the same rules, spelled here so the core is tested without any backend).
private let ec2Like = MachineIdentity(backend: "ec2", providerID: try! IdentityTemplate("aws:///{zone}/{id}"), nodeName: .machineID,
                                      machineIDs: "i-[0-9a-f]+",
                                      isMachineID: { $0.hasPrefix("i-") && $0.count > 2 && $0.dropFirst(2).allSatisfy(\.isHexDigit) })
private let proxmoxLike = MachineIdentity(backend: "proxmox", providerID: try! IdentityTemplate("proxmox://lab/{id}"),
                                          nodeName: try! IdentityTemplate("kscaler-demo-{id}"), machineIDs: "[0-9]+",
                                          isMachineID: { !$0.isEmpty && $0.allSatisfy(\.isNumber) })
/// An `exec` backend configured without a provider id: it matches by node name alone.
private let execWithoutProviderID = MachineIdentity(backend: "exec", providerID: nil, nodeName: .machineID, machineIDs: "kscaler-[a-z0-9]+")

@Suite("machine identity: templates and node matching")
struct MachineIdentityTests {
    @Test("a template takes {id} once, named one-segment placeholders, and literal text around them")
    func templatesParse() throws {
        #expect(try IdentityTemplate("aws:///{zone}/{id}").id(in: "aws:///us-east-1a/i-0abc") == "i-0abc")
        #expect(try IdentityTemplate("proxmox://{cluster}/{id}").id(in: "proxmox://lab/107") == "107")
        #expect(try IdentityTemplate("kind://{runtime}/{cluster}/{id}").id(in: "kind://podman/kind/kind-worker2") == "kind-worker2")
        #expect(try IdentityTemplate("k3s://{id}").id(in: "k3s://kscaler-demo-7f3a") == "kscaler-demo-7f3a")
        // The shortest id that lets the rest match: a suffix after {id} still matches.
        #expect(try IdentityTemplate("{id}-node").id(in: "a-b-node") == "a-b")
        // No match: another scheme, an empty placeholder, a `/` inside one, trailing text.
        let aws = try IdentityTemplate("aws:///{zone}/{id}")
        for text in ["gce://p/z/i-0abc", "aws:////i-0abc", "aws:///us-east-1a/x/i-0abc", "aws:///us-east-1a/", "aws:///us-east-1a"] {
            #expect(aws.id(in: text) == nil, "\(text)")
        }
        for (text, problem) in [("k3s://", "{id} exactly once"), ("{id}/{id}", "{id} exactly once"), ("{id", "without `}`"),
                                ("a}{id}", "without `{`"), ("{Zone}/{id}", "not a placeholder"), ("{zone}{id}", "touch")] {
            #expect(throws: IdentityTemplate.Problem.self, "\(text)") { try IdentityTemplate(text) }
            do { _ = try IdentityTemplate(text) } catch { #expect(error.description.contains(problem), "\(text): \(error)") }
        }
    }

    @Test("the worker selector is the node-name template with the id expression, literals escaped")
    func workerSelector() throws {
        #expect(ec2Like.workerNodeNames == "i-[0-9a-f]+")
        #expect(proxmoxLike.workerNodeNames == "kscaler-demo-(?:[0-9]+)")
        #expect(try IdentityTemplate("w.{zone}.{id}").expression(id: "[0-9]+") == "w\\.[^/]+\\.(?:[0-9]+)")
    }

    @Test("provider id first, node name second, and only this backend's ids")
    func joinOrder() {
        // A node named after another machine: its provider id wins.
        #expect(ec2Like.machineID("i-0aaa", "aws:///us-east-1a/i-0bbb") == "i-0bbb")
        // A node named otherwise is found by its provider id; a node without one by its name.
        #expect(ec2Like.machineID("ip-10-0-0-1.ec2.internal", "aws:///us-east-1a/i-0bbb") == "i-0bbb")
        #expect(ec2Like.machineID("i-0aaa", nil) == "i-0aaa")
        // Another backend's node is not this backend's machine, however it is named.
        #expect(ec2Like.machineID("kscaler-demo-107", "proxmox://lab/107") == nil)
        #expect(proxmoxLike.machineID("i-0aaa", "aws:///us-east-1a/i-0aaa") == nil)
        #expect(proxmoxLike.machineID("kscaler-demo-107", nil) == "107")
        #expect(proxmoxLike.machineID("control-plane", "proxmox://lab/100") == "100")
        #expect(proxmoxLike.machineID("kscaler-demo-abc", "k3s://kscaler-demo-abc") == nil)
        #expect(ec2Like.detectsFailedBoots && proxmoxLike.detectsFailedBoots && !execWithoutProviderID.detectsFailedBoots)
    }

    @Test("round trip: any id and segments rendered through a template come back as that id")
    func roundTrip() async {
        let templates = ["aws:///{zone}/{id}", "proxmox://{cluster}/{id}", "{id}", "pre-{id}-post", "x://{a}/{b}/{id}.node"]
        let cases = Generator<(String, String, String), Shrink.None<(String, String, String)>> { rng in
            let alphabet = Array("abcxyz0189-._")
            func piece() -> String { String((0..<Int.random(in: 1...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }) }
            return (templates.randomElement(using: &rng)!, piece(), piece())
        }
        await propertyCheck(count: 2000, input: cases) { text, id, segment in
            let template = try! IdentityTemplate(text)
            var rendered = text.replacingOccurrences(of: "{id}", with: id)
            for name in ["{zone}", "{cluster}", "{a}", "{b}"] { rendered = rendered.replacingOccurrences(of: name, with: segment) }
            let found = template.id(in: rendered)
            // Unambiguous templates give the id back; with text after {id} the shortest fit
            // wins, which is the id unless the id itself contains that text.
            if !text.hasSuffix("{id}"), let suffix = text.components(separatedBy: "{id}").last, id.contains(suffix) {
                #expect(found != nil)
            } else {
                #expect(found.map(String.init) == id, "\(text) → \(rendered)")
            }
        }
    }
}

/// The rule the issue asks to fail safe: a machine whose node kscaler cannot match is never
/// terminated as a failed boot unless the backend declares the provider id its node carries.
@Suite("failed boots fail safe")
struct FailedBootSafetyProperties {
    @Test("a backend without a provider-id rule never terminates a failed boot, and counts it as capacity")
    func noRuleNoTermination() async {
        await propertyCheck(count: 2000, input: scenarios) { scenario in
            var observation = scenario.observation
            observation.failedBootsDetectable = false
            let blind = decide(observation, policy: scenario.policy, now: scenario.now)
            let seeing = scenario.decision
            #expect(blind.failedBoots.isEmpty)
            // Unconfirmed failed boots stay capacity: the count never drops below what a backend
            // that could see them would have counted.
            #expect(blind.counts.current >= seeing.counts.current)
            let unconfirmed = blind.reasons(.unconfirmedFailedBoot)
            #expect(unconfirmed.count == seeing.failedBoots.count + seeing.reasons(.protectedFailedBoot).count)
        }
    }

    @Test("whatever nodes and names a cluster has, a failed boot is a machine no node maps to")
    func failedBootsHaveNoNode() async {
        let cases = Generator<(Scenario, Bool), Shrink.None<(Scenario, Bool)>> { rng in
            (scenarios.run(using: &rng), Bool.random(using: &rng))
        }
        await propertyCheck(count: 2000, input: cases) { scenario, asProxmox in
            let identity = asProxmox ? proxmoxLike : ec2Like
            var observation = scenario.observation
            // Re-present every node as the Kubernetes API would: some named after their
            // machine, some named otherwise with only a provider id, some foreign.
            observation.nodes = observation.nodes.enumerated().map { index, node in
                let id = node.instanceID ?? "none"
                let (name, providerID): (String, String?) = switch index % 4 {
                case 0: (asProxmox ? "kscaler-demo-\(id)" : id, nil)
                case 1: ("host-\(index)", asProxmox ? "proxmox://lab/\(id)" : "aws:///us-east-1a/\(id)")
                case 2: ("host-\(index)", asProxmox ? "aws:///us-east-1a/\(id)" : "proxmox://lab/\(id)")
                default: (node.name, nil)
                }
                return NodeObservation(name: name, instanceID: nil, providerID: providerID, ready: node.ready,
                                       nonDaemonSetPods: node.nonDaemonSetPods).identified(by: identity)
            }
            let decision = decide(observation, policy: scenario.policy, now: scenario.now)
            let matched = Set(observation.nodes.compactMap(\.instanceID))
            for failed in decision.failedBoots {
                #expect(!matched.contains(failed.instanceID), "\(failed.instanceID) has a node")
                #expect(observation.instances.contains { $0.id == failed.instanceID }, "\(failed.instanceID) is one of ours")
            }
        }
    }
}
