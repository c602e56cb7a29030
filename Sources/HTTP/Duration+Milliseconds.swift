extension Duration {
    /// The duration in milliseconds, to a tenth of one: how logs give elapsed times and back-offs.
    package var inMilliseconds: Double {
        let (seconds, attoseconds) = components
        return ((Double(seconds) * 1_000 + Double(attoseconds) / 1e15) * 10).rounded() / 10
    }
}
