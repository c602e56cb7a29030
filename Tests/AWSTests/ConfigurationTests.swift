import Testing
@testable import AWS

@Suite struct SharedConfigFileTests {
    /// A file saved on Windows: "\r\n" is one Character in Swift, so splitting on the
    /// Character "\n" kept the whole file as one line.
    @Test func crlfLineEndsAreLineEnds() throws {
        let credentials = try SharedConfigFiles.parse("[default]\r\naws_access_key_id = AKIDEXAMPLE\r\naws_secret_access_key = s\r\n",
                                                      file: "credentials", isConfigFile: false)
        #expect(credentials["default"] == ["aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"])
    }

    @Test func parsesProfilesFromBothFiles() throws {
        let credentials = try SharedConfigFiles.parse("""
        # a comment
        [default]
        aws_access_key_id = AKIDEXAMPLE
        aws_secret_access_key=secret/with+chars=
        [dev]
        aws_access_key_id = DEVKEY
        """, file: "credentials", isConfigFile: false)
        let config = try SharedConfigFiles.parse("""
        [default]
        region = eu-west-1
        [profile dev]
        region = us-west-2
        role_arn = arn:aws:iam::123456789012:role/kscaler
        s3 =
          max_concurrent_requests = 10
        """, file: "config", isConfigFile: true)
        let files = SharedConfigFiles(credentials: credentials, config: config)
        #expect(files.profile("default")?["aws_secret_access_key"] == "secret/with+chars=")
        #expect(files.profile("default")?["region"] == "eu-west-1")
        #expect(files.profile("dev")?["region"] == "us-west-2")
        #expect(files.profile("dev")?["aws_access_key_id"] == "DEVKEY")
        #expect(files.profile("missing") == nil)
    }

    @Test(arguments: [
        ("[default\nx = 1", 1, "without ']'"),
        ("[default]\nthis line is nonsense", 2, "expected 'key = value'"),
        ("key = before-section", 1, "before any [section]"),
        ("[default]\n= value", 2, "without a name"),
    ])
    func malformedFileNamesFileAndLine(text: String, line: Int, reason: String) {
        #expect {
            _ = try SharedConfigFiles.parse(text, file: "/home/u/.aws/config", isConfigFile: true)
        } throws: { error in
            guard let error = error as? SharedConfigError else { return false }
            return error.line == line && error.description.hasPrefix("/home/u/.aws/config:\(line):") && error.reason.contains(reason)
        }
    }
}

@Suite struct EndpointTests {
    @Test func serviceSpecificOverrideWinsOverGlobal() {
        let environment = AWSEnvironment(variables: [
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000/",
            "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
        ])
        #expect(EndpointResolver.endpoint(for: .dynamoDB, region: "us-east-1", environment: environment) == "http://127.0.0.1:8000")
        #expect(EndpointResolver.endpoint(for: .ec2, region: "us-east-1", environment: environment) == "http://127.0.0.1:5000")
    }

    @Test func defaultsToTheRegionalEndpoint() {
        let none = AWSEnvironment(variables: [:])
        #expect(EndpointResolver.endpoint(for: .ssm, region: "eu-central-1", environment: none) == "https://ssm.eu-central-1.amazonaws.com")
        #expect(EndpointResolver.endpoint(for: .ec2, region: "cn-north-1", environment: none) == "https://ec2.cn-north-1.amazonaws.com.cn")
        let ignoring = AWSEnvironment(variables: ["AWS_ENDPOINT_URL": "http://x", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"])
        #expect(EndpointResolver.endpoint(for: .sts, region: "us-east-1", environment: ignoring) == "https://sts.us-east-1.amazonaws.com")
    }

    @Test func endpointURLKeepsPortDropsDefaultPort() throws {
        let local = try EndpointURL("http://127.0.0.1:5000")
        #expect(local.hostHeader == "127.0.0.1:5000")
        #expect(local.url == "http://127.0.0.1:5000/")
        let aws = try EndpointURL("https://ec2.us-east-1.amazonaws.com:443")
        #expect(aws.hostHeader == "ec2.us-east-1.amazonaws.com")
        #expect(throws: (any Error).self) { try EndpointURL("ftp://x") }
        #expect(throws: (any Error).self) { try EndpointURL("127.0.0.1:5000") }
    }

    @Test func formEncodingEscapesEverythingButUnreserved() {
        #expect(FormEncoding.encode("a+b/c=d e~_.-") == "a%2Bb%2Fc%3Dd+e~_.-")
        #expect(FormEncoding.encode("ሴ") == "%E1%88%B4")
    }

    @Test func containerFullURIHostsAreRestricted() {
        #expect(ContainerCredentialProvider.isAllowed(fullURI: "http://127.0.0.1:8080/creds"))
        #expect(ContainerCredentialProvider.isAllowed(fullURI: "http://169.254.170.23/v1/credentials"))
        #expect(ContainerCredentialProvider.isAllowed(fullURI: "http://[fd00:ec2::23]/v1/credentials"))
        #expect(ContainerCredentialProvider.isAllowed(fullURI: "https://creds.example.com/x"))
        #expect(!ContainerCredentialProvider.isAllowed(fullURI: "http://10.0.0.5/creds"))
        #expect(!ContainerCredentialProvider.isAllowed(fullURI: "http://evil.example.com/creds"))
    }
}
