import KScalerCore

/// Worker user data for launches. Filled in by the userdata issue; until then launches carry
/// no user data of kscaler's own (a launch template's user data applies).
enum UserDataRenderer {
    static func workerUserData(for config: KScalerConfig) throws -> String? { nil }
}
