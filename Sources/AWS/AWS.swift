// AWS clients. Implemented in issue 2 onwards.
