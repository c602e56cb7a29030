// Prometheus HTTP API client. Implemented in issue 4.
