extension String {
    /// Every byte outside RFC 3986's unreserved set (`A–Z a–z 0–9 - . _ ~`) as `%XX`: safe in a
    /// path segment, a query value and an `application/x-www-form-urlencoded` body alike
    /// (`spec.nodeName=a` → `spec.nodeName%3Da`).
    package var percentEncodedAllButUnreserved: String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
