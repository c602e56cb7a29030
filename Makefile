# The two commands a newcomer needs (see README.md):
#   make demo   – the local sandbox: kscaler scaling a simulated cluster on moto + Prometheus
#   make test   – every test, against real peers on 127.0.0.1
#   make bench  – benchmark figures and targets, against real peers on 127.0.0.1 (BENCHMARKS.md)
.PHONY: test demo build release bench clean

test:
	scripts/test.sh

demo:
	scripts/demo.sh

build:
	swift build

release:
	swift build -c release --static-swift-stdlib

bench:
	benchmarks/bench.sh

clean:
	rm -rf .build .peers
