# The two commands a newcomer needs (see README.md):
#   make demo   – the local sandbox: kscaler scaling a simulated cluster on moto + Prometheus
#   make test   – every test, against real peers on 127.0.0.1
#   make bench  – benchmark figures and targets, against real peers on 127.0.0.1 (BENCHMARKS.md)
#   make deb    – dist/kscaler_<version>_<arch>.deb, to install on a server (README.md)
.PHONY: test demo build release bench deb clean

test:
	scripts/test.sh

demo:
	scripts/demo.sh

build:
	swift build

release:
	scripts/build-release.sh

deb:
	scripts/package-deb.sh

bench:
	benchmarks/bench.sh

clean:
	rm -rf .build .peers
