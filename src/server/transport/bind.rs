//! `--listen` and `--metrics-listen`: an IP address or a host name with a port, every
//! address it resolves to bound.
//!
//! An address this machine does not have (`::1` where IPv6 is off) is logged and skipped as
//! long as another one is bound; any other failure (the port is taken, no permission) stops
//! the start, as a server on half of `localhost` would answer only some clients.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tracing::warn;

use crate::server::ServerError;

/// The kernel's queue of connections not yet accepted (what tokio's `bind` asks for).
const BACKLOG: i32 = 1024;

/// A listen address as written: `0.0.0.0:8443`, `[::]:8443`, `localhost:8443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Ip(SocketAddr),
    Host { host: String, port: u16 },
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<ListenAddr, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ListenAddr::Ip(addr));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err("expected HOST:PORT, e.g. localhost:8443 or [::]:8443".into());
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{port:?} is not a port number (0-65535)"))?;
        if host.contains(':') || host.starts_with('[') {
            return Err(format!(
                "{host:?} is not an IP address or host name (IPv6 addresses go in brackets: [::1]:{port})"
            ));
        }
        if host.is_empty() {
            return Err("the host is missing (0.0.0.0 or [::] for every address)".into());
        }
        Ok(ListenAddr::Host {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Ip(addr) => write!(f, "{addr}"),
            ListenAddr::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Binds every address `addr` stands for; port 0 becomes one port shared by all of them.
pub async fn bind_all(
    addr: &ListenAddr,
    flag: &'static str,
) -> Result<Vec<TcpListener>, ServerError> {
    let resolved = match addr {
        ListenAddr::Ip(ip) => vec![*ip],
        ListenAddr::Host { host, port } => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|error| ServerError::Resolve {
                flag,
                addr: addr.to_string(),
                error,
            })?
            .collect(),
    };
    bind_resolved(&plan(resolved), flag, addr)
}

/// Each address once, with whether its socket must be IPv6-only: an IPv6 socket takes IPv4
/// connections too unless told otherwise, and would then collide with an IPv4 one beside it.
fn plan(mut addrs: Vec<SocketAddr>) -> Vec<(SocketAddr, bool)> {
    let mut seen = Vec::new();
    addrs.retain(|addr| {
        let new = !seen.contains(addr);
        seen.push(*addr);
        new
    });
    let with_ipv4 = addrs.iter().any(SocketAddr::is_ipv4);
    addrs
        .into_iter()
        .map(|addr| (addr, addr.is_ipv6() && with_ipv4))
        .collect()
}

fn bind_resolved(
    plan: &[(SocketAddr, bool)],
    flag: &'static str,
    asked: &ListenAddr,
) -> Result<Vec<TcpListener>, ServerError> {
    let mut bound: Vec<TcpListener> = Vec::new();
    let mut skipped = None;
    for &(addr, v6_only) in plan {
        let addr = match bound.first().map(TcpListener::local_addr) {
            Some(Ok(first)) if addr.port() == 0 => SocketAddr::new(addr.ip(), first.port()),
            _ => addr,
        };
        match bind_one(addr, v6_only) {
            Ok(listener) => bound.push(listener),
            Err(Failure::Unavailable(error)) => {
                warn!(flag, %addr, %error, "address not available on this machine; skipped");
                skipped = Some(error);
            }
            Err(Failure::Fatal(error)) => {
                return Err(ServerError::Bind {
                    flag,
                    addr: addr.to_string(),
                    error,
                });
            }
        }
    }
    if bound.is_empty() {
        let error = skipped.unwrap_or_else(|| io::Error::other("it resolves to no address"));
        return Err(ServerError::Bind {
            flag,
            addr: asked.to_string(),
            error,
        });
    }
    Ok(bound)
}

enum Failure {
    /// The address family or the address does not exist here.
    Unavailable(io::Error),
    Fatal(io::Error),
}

fn bind_one(addr: SocketAddr, v6_only: bool) -> Result<TcpListener, Failure> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(Failure::Unavailable)?;
    let fatal = Failure::Fatal;
    if addr.is_ipv6() {
        // Set either way: the system default (net.ipv6.bindv6only) varies.
        socket.set_only_v6(v6_only).map_err(fatal)?;
    }
    // As tokio's bind: a restarted server can bind while old connections are in TIME_WAIT.
    socket.set_reuse_address(true).map_err(fatal)?;
    socket.set_nonblocking(true).map_err(fatal)?;
    socket
        .bind(&addr.into())
        .map_err(|error| match error.kind() {
            io::ErrorKind::AddrNotAvailable => Failure::Unavailable(error),
            _ => Failure::Fatal(error),
        })?;
    socket.listen(BACKLOG).map_err(fatal)?;
    TcpListener::from_std(socket.into()).map_err(fatal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ListenAddr, String> {
        text.parse()
    }

    #[test]
    fn parses_addresses_as_people_write_them() {
        assert_eq!(
            parse("0.0.0.0:8443"),
            Ok(ListenAddr::Ip("0.0.0.0:8443".parse().unwrap()))
        );
        assert_eq!(
            parse("[::]:8443"),
            Ok(ListenAddr::Ip("[::]:8443".parse().unwrap()))
        );
        let localhost = parse("localhost:18443").unwrap();
        assert_eq!(
            localhost,
            ListenAddr::Host {
                host: "localhost".into(),
                port: 18443
            }
        );
        assert_eq!(localhost.to_string(), "localhost:18443");
        for (bad, says) in [
            ("localhost", "expected HOST:PORT"),
            ("localhost:http", "not a port number"),
            ("localhost:70000", "not a port number"),
            ("::1:8443", "IPv6 addresses go in brackets"),
            ("[::1:8443", "IPv6 addresses go in brackets"),
            (":8443", "the host is missing"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn ipv6_sockets_are_ipv6_only_when_ipv4_is_bound_beside_them() {
        let v4: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let v6: SocketAddr = "[::]:8443".parse().unwrap();
        assert_eq!(plan(vec![v6]), vec![(v6, false)]);
        assert_eq!(plan(vec![v4, v6, v4]), vec![(v4, false), (v6, true)]);
    }

    #[tokio::test]
    async fn skips_an_address_this_machine_lacks_but_not_a_port_in_use() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // TEST-NET-1 (RFC 5737) is never a local address.
        let absent: SocketAddr = "192.0.2.1:0".parse().unwrap();
        let asked = ListenAddr::Host {
            host: "example".into(),
            port: 0,
        };
        let bound =
            bind_resolved(&[(absent, false), (loopback, false)], "--listen", &asked).unwrap();
        assert_eq!(bound.len(), 1);
        assert!(bound[0].local_addr().unwrap().ip().is_loopback());

        let error = bind_resolved(&[(absent, false)], "--listen", &asked)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot listen on example:0 (--listen): "),
            "{error}"
        );

        let taken = bound[0].local_addr().unwrap();
        let error = bind_resolved(&[(loopback, false), (taken, false)], "--listen", &asked)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&taken.to_string()), "{error}");
    }
}
