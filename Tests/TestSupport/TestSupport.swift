// Helpers shared by test targets.
