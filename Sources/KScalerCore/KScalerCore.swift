// The pure core: config, observation, decide(). Implemented in issue 4.
