// Prefer the light FoundationEssentials on Linux: it keeps process start in milliseconds.
#if canImport(FoundationEssentials)
@_exported import FoundationEssentials
#else
@_exported import Foundation
#endif
