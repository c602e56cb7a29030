#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AWS
import HTTP
import Prometheus
import SigV4

/// Answers one fixed body to every request, so a client's whole receive path (signing,
/// envelope, parsing) is timed without a network.
struct CannedTransport: HTTPTransport {
    let body: Data
    func send(_ request: HTTPRequest) async throws -> HTTPResponse { HTTPResponse(status: 200, body: body) }
}

/// Answers DescribeInstances page by page, as EC2 does: the request's NextToken names the page.
struct PagedTransport: HTTPTransport {
    let pages: [Data]
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let form = String(decoding: request.body, as: UTF8.self)
        let page = form.split(separator: "&").first { $0.hasPrefix("NextToken=page-") }.flatMap { Int($0.dropFirst("NextToken=page-".count)) } ?? 0
        return HTTPResponse(status: 200, body: pages[page])
    }
}

/// EC2 DescribeInstances of `count` instances in AWS's shape (one to four instances per
/// reservation, the nested network-interface / volume / group elements real answers carry),
/// decoded through `EC2Client.describeInstances` — the path a run takes. Pages hold at most
/// 1,000 instances, EC2's largest MaxResults, so 10,000 instances are ten pages, as in a run.
enum EC2ParsingBenchmark {
    static let pageSize = 1_000

    static func pages(instances count: Int) -> [Data] {
        stride(from: 0, to: count, by: pageSize).map { first in
            page(instances: first..<min(count, first + pageSize), nextToken: first + pageSize < count ? "page-\(first / pageSize + 1)" : nil)
        }
    }

    static func page(instances numbers: Range<Int>, nextToken: String?) -> Data {
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
            + #"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId><reservationSet>"#
        var number = numbers.lowerBound
        var reservation = 0
        let count = numbers.upperBound
        while number < count {
            xml += "<item><reservationId>r-\(reservation)</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>"
            for _ in 0..<min(count - number, 1 + reservation % 4) {
                xml += instance(number)
                number += 1
            }
            xml += "</instancesSet></item>"
            reservation += 1
        }
        xml += "</reservationSet>" + (nextToken.map { "<nextToken>\($0)</nextToken>" } ?? "")
        return Data((xml + "</DescribeInstancesResponse>").utf8)
    }

    static func instance(_ number: Int) -> String {
        let hex = String(number, radix: 16)
        let id = "i-" + String(repeating: "0", count: 17 - hex.count) + hex
        return """
        <item>
          <instanceId>\(id)</instanceId><imageId>ami-\(number % 11)</imageId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateDnsName>ip-10-0-0-1.ec2.internal</privateDnsName><amiLaunchIndex>0</amiLaunchIndex><productCodes/>
          <instanceType>m7i.large</instanceType><launchTime>2026-11-21T09:31:30.000Z</launchTime>
          <placement><availabilityZone>us-east-1\(["a", "b", "c"][number % 3])</availabilityZone><groupName/><tenancy>default</tenancy></placement>
          <monitoring><state>disabled</state></monitoring>
          <subnetId>subnet-\(number % 5)</subnetId><vpcId>vpc-1</vpcId><privateIpAddress>10.0.\(number / 250).\(number % 250)</privateIpAddress>
          <groupSet><item><groupId>sg-1</groupId><groupName>workers</groupName></item></groupSet>
          <blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-1</volumeId><status>attached</status></ebs></item></blockDeviceMapping>
          <networkInterfaceSet><item><subnetId>subnet-nested</subnetId><privateIpAddress>192.0.2.1</privateIpAddress>
            <privateIpAddressesSet><item><privateIpAddress>192.0.2.1</privateIpAddress><primary>true</primary></item></privateIpAddressesSet>
            <tagSet><item><key>nested</key><value>not an instance tag</value></item></tagSet></item></networkInterfaceSet>
          <tagSet><item><key>Name</key><value>kscaler-prod-default</value></item><item><key>kscaler:cluster</key><value>prod</value></item>\
        <item><key>kscaler:launch-id</key><value>ks-\(number / 7)</value></item><item><key>kscaler:pool</key><value>default</value></item></tagSet>
          <metadataOptions><state>applied</state><httpTokens>required</httpTokens><httpEndpoint>enabled</httpEndpoint></metadataOptions>
        </item>
        """
    }

    static func run(sizes: [Int], plan: MeasurementPlan) async throws -> [Result] {
        var results: [Result] = []
        for count in sizes {
            let client = EC2Client(client: AWSClient(
                service: .ec2, displayName: "EC2", region: "us-east-1", endpoint: "http://127.0.0.1:1",
                credentials: CredentialChain(fixed: Credentials(accessKeyID: "AKIDBENCH", secretAccessKey: "bench-secret")),
                transport: PagedTransport(pages: pages(instances: count))))
            let filters = [(name: "tag:kscaler:cluster", values: ["prod"]), (name: "instance-state-name", values: ["pending", "running"])]
            let decoded = try await client.describeInstances(filters: filters).count
            precondition(decoded == count, "decoded \(decoded) of \(count) instances")
            let timings = try await plan.measure(budget: .milliseconds(400)) {
                try await client.describeInstances(filters: filters).count
            }
            results.append(Result(benchmark: "ec2-describe", variant: "parse", items: count, itemName: "instances", timings: timings))
        }
        return results
    }
}

/// Prometheus instant-query answers: a vector of `count` series with the labels a raw
/// kube-state-metrics series carries (seven), decoded through `PrometheusClient.query`.
enum PrometheusParsingBenchmark {
    static func answer(series count: Int) -> Data {
        var json = #"{"status":"success","data":{"resultType":"vector","result":["#
        for number in 0..<count {
            if number > 0 { json += "," }
            let node = "i-" + String(0x1000_0000 + number / 10, radix: 16)
            json += #"{"metric":{"__name__":"kube_pod_info","created_by_kind":"ReplicaSet","instance":"10.0.3.17:8080","#
                + #""job":"kube-state-metrics","namespace":"default","node":"\#(node)","pod":"app-\#(number)"},"#
                + #""value":[1795253657.431,"\#(number % 7 == 0 ? "NaN" : String(Double(number) / 8))"]}"#
        }
        return Data((json + "]}}").utf8)
    }

    static func run(sizes: [Int], plan: MeasurementPlan) async throws -> [Result] {
        var results: [Result] = []
        for count in sizes {
            let client = try PrometheusClient(baseURL: "http://127.0.0.1:1", transport: CannedTransport(body: answer(series: count)))
            let decoded = try await client.query("kube_pod_info").samples
            precondition(decoded.count == count && decoded.last?.labels.count == 7, "decoded \(decoded.count) of \(count) series")
            let timings = try await plan.measure(budget: .milliseconds(400)) {
                try await client.query("kube_pod_info").samples.count
            }
            results.append(Result(benchmark: "prometheus-vector", variant: "decode", items: count, itemName: "series", timings: timings))
        }
        return results
    }
}
