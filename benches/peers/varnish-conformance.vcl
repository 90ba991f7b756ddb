# Varnish with its default VCL in front of the HTTP caching test suite's server
# (benches/conformance.sh).
vcl 4.1;
backend suite { .host = "127.0.0.1"; .port = "__SUITE_PORT__"; }
