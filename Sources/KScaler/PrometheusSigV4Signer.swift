import AWS
import HTTP
import Prometheus
import SigV4

/// SigV4 for Amazon Managed Service for Prometheus: signs the finished request as sent.
struct SigV4RequestSigner: RequestSigner {
    let credentials: Credentials
    let region: String
    let service: String

    func sign(_ request: HTTPRequest, at time: Date) throws -> HTTPRequest {
        guard let url = URLComponents(string: request.url), let host = url.host else {
            throw HTTPError(kind: .invalidURL, host: "", detail: "cannot sign a request without a host")
        }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let query = (url.queryItems ?? []).map { (name: $0.name, value: $0.value ?? "") }
        let headers = [(name: "Host", value: hostHeader)] + request.headers.map { (name: $0.name, value: $0.value) }
        let signed = SigV4Signer(credentials: credentials, region: region, service: service)
            .sign(SigningRequest(method: request.method, path: url.path.isEmpty ? "/" : url.path, query: query, headers: headers, body: request.body), at: time)
        var result = request
        result.headers = signed.headers.map { HTTPHeader($0.name, $0.value) }
        return result
    }
}
