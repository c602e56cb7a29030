"""The local sandbox: moto + Prometheus + a simulated cluster driven by kscaler (see infra/local/README.md)."""
