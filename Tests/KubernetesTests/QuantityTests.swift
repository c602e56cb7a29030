// Kubernetes quantities as numbers: every form the API's grammar allows, and text it does not.
import Kubernetes
import Testing

@Suite struct QuantityTests {
    @Test(arguments: [
        ("0", 0.0), ("1", 1), ("42", 42), ("0.5", 0.5), (".5", 0.5), ("1.", 1), ("007", 7),
        ("+2", 2), ("-2", -2), ("-.25", -0.25),
    ] as [(String, Double)])
    func plainAndDecimalNumbers(text: String, value: Double) {
        #expect(KubeQuantity.parse(text) == value, "\(text)")
    }

    @Test(arguments: [
        ("250m", 0.25), ("1930m", 1.93), ("100m", 0.1), ("1m", 0.001), ("1500m", 1.5), ("0.5m", 0.0005),
        ("123456789n", 0.123456789), ("250u", 0.00025),
    ] as [(String, Double)])
    func milliAndSmallerSuffixes(text: String, value: Double) {
        #expect(KubeQuantity.parse(text) == value, "\(text)")
    }

    @Test(arguments: [
        ("1k", 1e3), ("2M", 2e6), ("1.5G", 1.5e9), ("3T", 3e12), ("1P", 1e15), ("2E", 2e18),
    ] as [(String, Double)])
    func decimalSISuffixes(text: String, value: Double) {
        #expect(KubeQuantity.parse(text) == value, "\(text)")
    }

    @Test(arguments: [
        ("1Ki", 1024.0), ("7921112Ki", 7_921_112 * 1024), ("128Mi", 128 * 1_048_576), ("1.5Gi", 1_610_612_736),
        ("3Gi", 3 * 1_073_741_824), ("1Ti", 1_099_511_627_776), ("1Pi", 1_125_899_906_842_624),
        ("1Ei", 1_152_921_504_606_846_976), ("-1Mi", -1_048_576),
    ] as [(String, Double)])
    func binarySISuffixes(text: String, value: Double) {
        #expect(KubeQuantity.parse(text) == value, "\(text)")
    }

    @Test(arguments: [
        ("1e3", 1e3), ("12E6", 12e6), ("1.5e3", 1500), ("5e-3", 0.005), ("2E+2", 200), ("1e0", 1), ("-1e3", -1000),
    ] as [(String, Double)])
    func exponentForm(text: String, value: Double) {
        #expect(KubeQuantity.parse(text) == value, "\(text)")
    }

    /// `E` alone is exa; followed by digits it is an exponent.
    @Test func capitalEIsExaAloneAndAnExponentWithDigits() {
        #expect(KubeQuantity.parse("1E") == 1e18)
        #expect(KubeQuantity.parse("1E1") == 10)
    }

    @Test(arguments: [
        "", "1.2.3", "5Xi", "m", "1e", "--1", "-", "+", ".", "Ki", "e3", "1 ", " 1", "1 Gi", "1gi", "1KI", "1K", "1mi",
        "1e3.5", "1e+", "1e--3", "1Gi1", "0x10", "1_000", "١", "1e99999999999999999999", "1e400", "NaN", "inf", "1,5",
    ])
    func invalidTextIsNil(text: String) {
        #expect(KubeQuantity.parse(text) == nil, "\(text)")
    }
}
