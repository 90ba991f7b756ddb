//! A bare Pingora pass-through proxy with no gateway logic: the floor `benches/compare_nginx.sh`
//! measures assetgate against, so gateway overhead and Pingora overhead can be told apart.
//!
//! `cargo run --release --example bare_pingora -- LISTEN_ADDR ORIGIN_ADDR THREADS`

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Bare {
    origin: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.origin, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, origin, threads) = match args.as_slice() {
        [_, l, o, t] => (
            l.clone(),
            o.parse().expect("origin addr"),
            t.parse().expect("threads"),
        ),
        _ => panic!("usage: bare_pingora LISTEN_ADDR ORIGIN_ADDR THREADS"),
    };
    let conf = ServerConf {
        threads,
        work_stealing: false,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Bare { origin });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
