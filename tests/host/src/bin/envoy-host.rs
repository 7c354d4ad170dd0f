//! `envoy-host`: a small HTTP/1.1 reverse proxy that runs each request through a
//! proxy-wasm filter, then forwards it to one upstream or returns the filter's local reply.
//!
//! The filter VMs run on one event-loop thread; each client connection has its own thread
//! and exchanges one request with the loop through channels.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use envoy_host::http::{self, HttpRequest, IncomingRequest};
use envoy_host::{Envoy, HostOptions, LogLevel, Outcome, Request, RequestId, Response, StartError};

const USAGE: &str = "usage: envoy-host --wasm FILE --config FILE [--vm-config FILE] \
[--cluster NAME=127.0.0.1:PORT]... --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT \
[--workers N] [--root-id ID] [--log-level trace|debug|info|warn|error|critical]

  --wasm FILE          filter module (wasm32-wasip1, proxy-wasm ABI 0.2.1)
  --config FILE        plugin configuration bytes (proxy_on_configure)
  --vm-config FILE     VM configuration bytes (proxy_on_vm_start); empty by default
  --cluster NAME=ADDR  cluster for proxy_http_call; loopback addresses only; repeatable
  --listen ADDR        address to accept clients on; port 0 picks a free port
  --upstream ADDR      where forwarded requests go; loopback addresses only
  --workers N          number of filter VMs, requests are spread round-robin; default 1
  --root-id ID         Envoy root_id; empty by default
  --log-level LEVEL    Envoy log level for filter logs; default info

Prints 'listening on ADDR' once ready. Stops on SIGTERM, or when standard input closes
unless standard input is /dev/null.";

/// How long a forwarded request may wait for the upstream response, per socket read.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    options: HostOptions,
    listen: SocketAddr,
    upstream: SocketAddr,
}

fn parse_args() -> Result<Args, String> {
    let mut options = HostOptions::default();
    let mut listen = None;
    let mut upstream = None;
    let mut wasm = None;
    let mut config = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("missing value after {flag}"))?;
        match flag.as_str() {
            "--wasm" => wasm = Some(value),
            "--config" => config = Some(value),
            "--vm-config" => {
                options.vm_config = std::fs::read(&value)
                    .map_err(|e| format!("failed to read VM config {value}: {e}"))?;
            }
            "--cluster" => {
                let (name, address) = value
                    .split_once('=')
                    .ok_or_else(|| format!("invalid --cluster {value:?}: expected NAME=ADDR"))?;
                let address: SocketAddr = address
                    .parse()
                    .map_err(|e| format!("invalid address in --cluster {value:?}: {e}"))?;
                options.clusters.insert(name.to_string(), address);
            }
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("invalid --listen {value:?}: {e}"))?,
                );
            }
            "--upstream" => {
                upstream = Some(
                    value
                        .parse()
                        .map_err(|e| format!("invalid --upstream {value:?}: {e}"))?,
                );
            }
            "--workers" => {
                options.workers = value
                    .parse()
                    .map_err(|e| format!("invalid --workers {value:?}: {e}"))?;
            }
            "--root-id" => options.root_id = value,
            "--log-level" => {
                options.log_level = LogLevel::parse(&value)
                    .ok_or_else(|| format!("invalid --log-level {value:?}"))?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }

    let wasm = wasm.ok_or("missing --wasm")?;
    options.wasm =
        std::fs::read(&wasm).map_err(|e| format!("failed to read module {wasm}: {e}"))?;
    let config = config.ok_or("missing --config")?;
    options.plugin_config =
        std::fs::read(&config).map_err(|e| format!("failed to read config {config}: {e}"))?;

    let listen: SocketAddr = listen.ok_or("missing --listen")?;
    let upstream: SocketAddr = upstream.ok_or("missing --upstream")?;
    if !listen.ip().is_loopback() || !upstream.ip().is_loopback() {
        return Err("--listen and --upstream must be loopback addresses".to_string());
    }
    Ok(Args {
        options,
        listen,
        upstream,
    })
}

/// The event loop's decision on a connection thread's request.
enum Decision {
    Forward {
        id: RequestId,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Reply(Response),
    Reset,
}

enum Command {
    Start {
        request: Request,
        reply: mpsc::Sender<Decision>,
    },
    Respond {
        id: RequestId,
        response: Response,
        reply: mpsc::Sender<Option<Response>>,
    },
    Abandon {
        id: RequestId,
    },
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (commands, command_receiver) = mpsc::channel();
    let (ready_sender, ready) = mpsc::channel();
    let options = args.options;
    let spawned = thread::Builder::new()
        .name("filter-loop".to_string())
        .spawn(move || run_loop(options, command_receiver, ready_sender));
    if let Err(error) = spawned {
        eprintln!("error: failed to start the filter thread: {error}");
        return ExitCode::FAILURE;
    }
    match ready.recv() {
        Ok(Ok(())) => {}
        Ok(Err(message)) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("error: the filter thread stopped during start-up");
            return ExitCode::FAILURE;
        }
    }
    let listener = match TcpListener::bind(args.listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: failed to listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    println!("listening on {address}");
    let _ = io::stdout().flush();
    watch_stdin();

    for connection in listener.incoming() {
        let stream = match connection {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("warning: failed to accept a connection: {error}");
                continue;
            }
        };
        let commands = commands.clone();
        let upstream = args.upstream;
        let spawned = thread::Builder::new()
            .name("connection".to_string())
            .spawn(move || handle_connection(stream, upstream, commands));
        if let Err(error) = spawned {
            eprintln!("warning: failed to start a connection thread: {error}");
        }
    }
    ExitCode::SUCCESS
}

/// Exits when standard input reaches end of file, unless it is /dev/null (as for a
/// background job), where that would stop the proxy at once.
fn watch_stdin() {
    use std::os::unix::fs::MetadataExt;
    let is_dev_null = match (
        std::fs::metadata("/dev/stdin"),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(stdin), Ok(null)) => stdin.rdev() == null.rdev() && stdin.ino() == null.ino(),
        _ => true,
    };
    if is_dev_null {
        return;
    }
    let _ = thread::Builder::new()
        .name("stdin-watch".to_string())
        .spawn(|| {
            let mut buffer = [0u8; 1024];
            let mut stdin = io::stdin();
            while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
            eprintln!("info: standard input closed; stopping");
            std::process::exit(0);
        });
}

fn run_loop(
    options: HostOptions,
    commands: mpsc::Receiver<Command>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let pump_limit = options.pump_limit;
    let mut envoy = match Envoy::start(options) {
        Ok(envoy) => envoy,
        Err(error) => {
            // A rejected configuration is explained only in the filter's log lines.
            let mut message = String::new();
            if let StartError::ConfigRejected { logs, .. } = &error {
                for record in logs {
                    message.push_str(&format!("[{}] worker {}: {}\n", record.level, record.worker, record.message));
                }
            }
            message.push_str(&format!("error: failed to start the filter: {error}"));
            let _ = ready.send(Err(message));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut pending: BTreeMap<RequestId, (mpsc::Sender<Decision>, Instant)> = BTreeMap::new();
    let mut next_worker = 0;
    loop {
        match commands.recv_timeout(Duration::from_millis(2)) {
            Ok(Command::Start { request, reply }) => {
                let id = envoy.start_request(next_worker, request);
                next_worker = (next_worker + 1) % envoy.workers();
                pending.insert(id, (reply, Instant::now()));
            }
            Ok(Command::Respond {
                id,
                response,
                reply,
            }) => {
                let filtered = envoy.respond(id, response);
                envoy.finish(id);
                let _ = reply.send(filtered);
            }
            Ok(Command::Abandon { id }) => {
                envoy.finish(id);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        envoy.poll(Duration::from_millis(2));

        let decided: Vec<RequestId> = pending
            .iter()
            .filter(|(id, (_, started))| {
                envoy.outcome(**id).is_some() || started.elapsed() >= pump_limit
            })
            .map(|(id, _)| *id)
            .collect();
        for id in decided {
            let Some((reply, _)) = pending.remove(&id) else {
                continue;
            };
            let outcome = envoy.outcome(id).unwrap_or(Outcome::TimedOut);
            let decision = match outcome {
                Outcome::Forwarded { headers, body } => Decision::Forward { id, headers, body },
                Outcome::LocalReply {
                    status,
                    headers,
                    body,
                    ..
                } => Decision::Reply(Response {
                    status,
                    headers,
                    body,
                }),
                // Envoy fails closed with an empty 503 when the VM has failed.
                Outcome::Trapped { .. } => Decision::Reply(Response {
                    status: 503,
                    headers: Vec::new(),
                    body: Vec::new(),
                }),
                Outcome::TimedOut => Decision::Reply(Response {
                    status: 504,
                    headers: Vec::new(),
                    body: b"the filter did not resume the request in time".to_vec(),
                }),
                Outcome::Reset => Decision::Reset,
            };
            let forwarded = matches!(decision, Decision::Forward { .. });
            if reply.send(decision).is_err() || !forwarded {
                envoy.finish(id);
            }
        }
        for record in envoy.drain_logs() {
            eprintln!(
                "[{}] worker {}: {}",
                record.level, record.worker, record.message
            );
        }
    }
}

fn request_for_filter(incoming: &IncomingRequest) -> Request {
    let authority = incoming
        .headers
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut headers = vec![
        (":authority".to_string(), authority),
        (":path".to_string(), incoming.path.clone()),
        (":method".to_string(), incoming.method.clone()),
        (":scheme".to_string(), "http".to_string()),
    ];
    headers.extend(
        incoming
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "host" | "connection" | "keep-alive"))
            .cloned(),
    );
    // The connection manager adds these before any filter runs.
    headers.push(("x-forwarded-proto".to_string(), "http".to_string()));
    Request {
        headers,
        body: incoming.body.clone(),
    }
}

fn handle_connection(mut stream: TcpStream, upstream: SocketAddr, commands: mpsc::Sender<Command>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let incoming = match http::read_request(&mut stream) {
        Ok(incoming) => incoming,
        Err(error) => {
            let body = format!("invalid request: {error}");
            let _ = http::write_response(&mut stream, 400, &[], body.as_bytes());
            return;
        }
    };
    let (reply, decision) = mpsc::channel();
    let request = request_for_filter(&incoming);
    if commands.send(Command::Start { request, reply }).is_err() {
        let _ = http::write_response(&mut stream, 503, &[], b"");
        return;
    }
    let Ok(decision) = decision.recv() else {
        let _ = http::write_response(&mut stream, 503, &[], b"");
        return;
    };
    let response = match decision {
        Decision::Reply(response) => Some(response),
        Decision::Reset => None,
        Decision::Forward { id, headers, body } => forward(id, headers, body, upstream, &commands),
    };
    if let Some(response) = response {
        let _ = http::write_response(
            &mut stream,
            response.status,
            &response.headers,
            &response.body,
        );
    }
}

/// Sends a forwarded request upstream and passes the response back through the filter.
fn forward(
    id: RequestId,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    upstream: SocketAddr,
    commands: &mpsc::Sender<Command>,
) -> Option<Response> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let request = HttpRequest {
        method: header(":method"),
        path: header(":path"),
        authority: header(":authority"),
        headers: headers
            .iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .cloned()
            .collect(),
        body,
    };
    let upstream_response = match http::fetch(upstream, &request, Some(UPSTREAM_TIMEOUT)) {
        Ok(response) => response,
        Err(error) => {
            eprintln!("warning: request to upstream {upstream} failed: {error:?}");
            let _ = commands.send(Command::Abandon { id });
            let body = b"upstream connect error or disconnect/reset before headers".to_vec();
            return Some(Response {
                status: 503,
                headers: vec![("content-type".to_string(), "text/plain".to_string())],
                body,
            });
        }
    };
    let (reply, filtered) = mpsc::channel();
    let response = Response {
        status: upstream_response.status,
        headers: upstream_response.headers,
        body: upstream_response.body,
    };
    commands
        .send(Command::Respond {
            id,
            response,
            reply,
        })
        .ok()?;
    filtered.recv().ok().flatten()
}
