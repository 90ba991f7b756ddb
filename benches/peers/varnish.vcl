# Varnish in front of the origin (compare_cache.sh): default caching, 1 h TTL for what the
# origin sends without one, objects in memory (malloc storage).
vcl 4.1;
backend origin {
    .host = "127.0.0.1";
    .port = "__ORIGIN_PORT__";
}
sub vcl_backend_response {
    set beresp.ttl = 1h;
}
