"""The local sandbox: moto + Prometheus + a simulated cluster driven by kscaler (see infra/local/README.md).

Its peers (peers.py: moto, Prometheus, the process runner), its moto set-up (aws.py) and the
simulated cluster's exposition (exporter.py) serve the benchmark and the tests too."""
