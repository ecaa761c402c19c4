//! The framework's floor: a Pingora proxy that does nothing but pass requests to one upstream over
//! reused connections. Built from the workspace's Pingora, so the gateway is compared with the very
//! code it runs on.
//!
//! Usage: `pingora-passthrough <listen addr> <upstream addr> <threads>`

use async_trait::async_trait;
use pingora::prelude::*;

struct PassThrough {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for PassThrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, threads] = &args[..] else {
        eprintln!("usage: pingora-passthrough <listen addr> <upstream addr> <threads>");
        std::process::exit(2);
    };
    let conf = pingora::server::configuration::ServerConf {
        threads: threads.parse().expect("threads is a number"),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(
        &server.configuration,
        PassThrough {
            upstream: upstream.clone(),
        },
    );
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever();
}
