//! An HTTP server, muduo's `muduo/net/http/tests/HttpServer_test.cc`: a
//! page at `/`, plain text at `/hello`, 404 elsewhere; and, beyond muduo,
//! a WebSocket echo at `/echo`.
//!
//! ```text
//! cargo run -p net --example http_server -- [PORT] [THREADS]   # default 8000 0
//! curl -i http://127.0.0.1:8000/hello
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use net::http::{HttpCallback, HttpResponse, HttpServer, Reply};
use net::websocket::{WebSocket, WebSocketHandler, WsEvent};
use net::EventLoop;

/// Sends every text message back.
struct Echo;

impl WebSocketHandler for Echo {
    fn on_message(&self, ws: &WebSocket, message: WsEvent) {
        if let WsEvent::Text(text) = message {
            ws.send_text(&text);
        }
    }
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8000);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);

    let callback: HttpCallback = Arc::new(|req, _conn| {
        log::info!("{} {}", req.method, req.path);
        Reply::Respond(match req.path.as_str() {
            "/" => HttpResponse::with_body(
                200,
                "text/html",
                "<html><head><title>This is title</title></head>\
                 <body><h1>Hello</h1>Now is a good time</body></html>",
            ),
            "/hello" => HttpResponse::text(200, "hello, world!\n"),
            "/echo" => return Reply::Upgrade(Arc::new(Echo)),
            _ => HttpResponse::text(404, "Not Found\n"),
        })
    });
    let mut lp = EventLoop::new()?;
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let mut server = HttpServer::new(&lp, addr, "HttpServer", callback)?;
    server.set_thread_num(threads);
    server.start(&mut lp)?;
    log::info!("listening on {}", server.listen_addr());
    lp.run();
    Ok(())
}
