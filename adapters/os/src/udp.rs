//! UDP for discovery (docs/cluster.md): non-blocking sockets watched through the host's
//! [`Runtime`] like every other descriptor. A unicast socket binds where the core says (the
//! control endpoint's host and port); a multicast socket binds the group's port on every
//! address, shared with the other nodes on the machine (`SO_REUSEADDR`), and joins the group.
//!
//! UDP promises nothing, so nothing here is reported back but the bind: a datagram that
//! cannot be sent is dropped (the host logs it at debug level) and one that arrives is handed
//! to the core as it is, which judges it.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use bytes::Bytes;
use cocaine_core::node::{BindError, Input, Multicast};
use cocaine_core::EndpointId;

use crate::boundary::bind_io;
use crate::host::{Runtime, Source};
use crate::tcp::socket_address;

/// The largest datagram read whole: the largest UDP payload there is.
const MAX_DATAGRAM: usize = 65_536;
/// Read errors in a row after which a wake-up stops reading (a socket in an error state must
/// not spin the loop).
const MAX_READ_ERRORS: usize = 16;

/// Every UDP socket of the host, by the ids the core knows them by.
#[derive(Debug)]
pub struct UdpTable {
    sockets: HashMap<EndpointId, UdpSocket>,
    scratch: Box<[u8]>,
}

impl Default for UdpTable {
    fn default() -> Self {
        Self {
            sockets: HashMap::new(),
            scratch: vec![0; MAX_DATAGRAM].into_boxed_slice(),
        }
    }
}

impl UdpTable {
    /// Opens `address` (`udp://HOST:PORT`) for `endpoint`, in `multicast`'s group if given,
    /// and watches it.
    pub fn open(
        &mut self,
        endpoint: EndpointId,
        address: &str,
        multicast: Option<&Multicast>,
        runtime: &mut impl Runtime,
    ) -> Result<(), BindError> {
        let socket = match multicast {
            Some(m) => open_multicast(m),
            None => open_unicast(address),
        }?;
        runtime
            .watch(Source::Udp(endpoint), socket.as_raw_fd())
            .map_err(|e| bind_io(&e, format!("{address}: {e}")))?;
        self.sockets.insert(endpoint, socket);
        Ok(())
    }

    /// Closes `endpoint`; false if it is not a UDP endpoint.
    pub fn close(&mut self, endpoint: EndpointId, runtime: &mut impl Runtime) -> bool {
        if !self.sockets.contains_key(&endpoint) {
            return false;
        }
        runtime.unwatch(Source::Udp(endpoint));
        self.sockets.remove(&endpoint);
        true
    }

    /// Sends one datagram; the error, if any, for the log.
    pub fn send(&self, endpoint: EndpointId, to: SocketAddr, bytes: &[u8]) -> Result<(), String> {
        let Some(socket) = self.sockets.get(&endpoint) else {
            return Ok(());
        };
        match socket.send_to(bytes, to) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("discovery: a datagram to {to} was not sent: {e}")),
        }
    }

    /// Reads every datagram waiting on `endpoint` into `Input::Datagram`s.
    pub fn read(&mut self, endpoint: EndpointId, inputs: &mut VecDeque<Input>) {
        let Some(socket) = self.sockets.get(&endpoint) else {
            return;
        };
        let mut errors = 0;
        while errors < MAX_READ_ERRORS {
            match socket.recv_from(&mut self.scratch) {
                Ok((n, from)) => inputs.push_back(Input::Datagram {
                    endpoint,
                    from,
                    bytes: Bytes::copy_from_slice(&self.scratch[..n]),
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error from an earlier send, reported on this socket: read on.
                Err(_) => errors += 1,
            }
        }
    }
}

fn invalid(address: &str, what: impl std::fmt::Display) -> BindError {
    BindError::InvalidAddress(format!("{address}: {what}"))
}

fn open_unicast(address: &str) -> Result<UdpSocket, BindError> {
    let Some(rest) = address.strip_prefix("udp://") else {
        return Err(invalid(address, "not udp://HOST:PORT"));
    };
    let at = socket_address(&format!("tcp://{rest}")).map_err(BindError::from)?;
    let socket = UdpSocket::bind(at).map_err(|e| bind_io(&e, format!("{address}: {e}")))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| bind_io(&e, format!("{address}: {e}")))?;
    Ok(socket)
}

/// A socket on the group's port on every address, shared with the machine's other nodes,
/// joined to the group on `m.interface` (or the kernel's choice), sending there too.
fn open_multicast(m: &Multicast) -> Result<UdpSocket, BindError> {
    let address = format!("udp://{}", m.group);
    let io_error = |e: io::Error| bind_io(&e, format!("{address}: {e}"));
    if !m.group.ip().is_multicast() {
        return Err(invalid(&address, "not a multicast group (224.0.0.0/4)"));
    }
    let interface = match &m.interface {
        Some(name) => interface_address(name).map_err(|e| invalid(&address, e))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    let socket = shared_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, m.group.port()))
        .map_err(io_error)?;
    socket
        .join_multicast_v4(m.group.ip(), &interface)
        .map_err(io_error)?;
    socket.set_multicast_ttl_v4(m.ttl).map_err(io_error)?;
    socket.set_multicast_loop_v4(m.loopback).map_err(io_error)?;
    if !interface.is_unspecified() {
        set_multicast_interface(socket.as_raw_fd(), interface).map_err(io_error)?;
    }
    Ok(socket)
}

/// The IPv4 address of an interface given by address or by name.
fn interface_address(name: &str) -> Result<Ipv4Addr, String> {
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let resolved =
        crate::endpoint::resolve(&format!("tcp://{name}:1")).map_err(|e| e.to_string())?;
    match socket_address(&resolved).map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        _ => Err(format!("{name:?} has no IPv4 address to join the group on")),
    }
}

/// A non-blocking IPv4 UDP socket bound at `at` with `SO_REUSEADDR`, so that every node on the
/// machine can bind the group's port (std cannot set an option before binding).
fn shared_socket(at: SocketAddrV4) -> io::Result<UdpSocket> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned by the UdpSocket
    // made from it at once, which closes it on every path below.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let socket = unsafe { UdpSocket::from_raw_fd(fd) };
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: at.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*at.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_in and the length is its size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast::<libc::sockaddr>(),
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a c_int and the length is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `IP_MULTICAST_IF`: send the group's datagrams out of this interface (std has no setter).
fn set_multicast_interface(fd: RawFd, interface: Ipv4Addr) -> io::Result<()> {
    let addr = libc::in_addr {
        s_addr: u32::from(interface).to_be(),
    };
    // SAFETY: the option value is an in_addr and the length is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&addr as *const libc::in_addr).cast(),
            mem::size_of::<libc::in_addr>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Instant;

    use cocaine_core::Now;

    use super::*;
    use crate::host::{system_now, Wake};

    /// Takes every watch and never wakes: the tests read the sockets themselves.
    struct Still;

    impl Runtime for Still {
        fn watch(&mut self, _: Source, _: RawFd) -> io::Result<()> {
            Ok(())
        }
        fn want_read(&mut self, _: Source, _: bool) {}
        fn want_write(&mut self, _: Source, _: bool) {}
        fn unwatch(&mut self, _: Source) {}
        fn wait(
            &mut self,
            _: Option<Instant>,
            _: &mut Wake,
        ) -> impl Future<Output = io::Result<()>> {
            std::future::ready(Ok(()))
        }
        fn now(&self) -> Now {
            system_now()
        }
    }

    fn local(table: &UdpTable, endpoint: EndpointId) -> SocketAddr {
        table.sockets[&endpoint].local_addr().unwrap()
    }

    #[test]
    fn datagrams_come_in_as_inputs_and_go_out_to_their_address() {
        let mut table = UdpTable::default();
        let ep = EndpointId(1);
        table
            .open(ep, "udp://127.0.0.1:0", None, &mut Still)
            .unwrap();
        let at = local(&table, ep);
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"one", at).unwrap();
        peer.send_to(&[7; 60_000], at).unwrap();
        let mut inputs = VecDeque::new();
        // Loopback delivers at once, but a read may still race the send: read until both.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while inputs.len() < 2 && Instant::now() < deadline {
            table.read(ep, &mut inputs);
        }
        let got: Vec<(SocketAddr, usize)> = inputs
            .iter()
            .map(|i| match i {
                Input::Datagram {
                    from,
                    bytes,
                    endpoint,
                } if *endpoint == ep => (*from, bytes.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        let from = peer.local_addr().unwrap();
        assert_eq!(got, [(from, 3), (from, 60_000)]);

        table.send(ep, from, b"back").unwrap();
        let mut buf = [0; 16];
        let (n, sender) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], sender), (&b"back"[..], at));
        assert!(table.close(ep, &mut Still));
        assert!(!table.close(ep, &mut Still));
        assert_eq!(table.send(ep, from, b"gone"), Ok(()));
    }

    #[test]
    fn bad_addresses_are_bind_errors() {
        let mut table = UdpTable::default();
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = format!("udp://{}", taken.local_addr().unwrap());
        assert!(matches!(
            table.open(EndpointId(1), &address, None, &mut Still),
            Err(BindError::AddressInUse(_))
        ));
        assert!(matches!(
            table.open(EndpointId(2), "tcp://127.0.0.1:1", None, &mut Still),
            Err(BindError::InvalidAddress(_))
        ));
        let not_a_group = Multicast {
            group: "10.0.0.1:5001".parse().unwrap(),
            interface: None,
            ttl: 1,
            loopback: true,
        };
        assert!(matches!(
            table.open(
                EndpointId(3),
                "udp://10.0.0.1:5001",
                Some(&not_a_group),
                &mut Still
            ),
            Err(BindError::InvalidAddress(_))
        ));
        let no_such_interface = Multicast {
            group: "239.192.74.66:5001".parse().unwrap(),
            interface: Some("no-such-if0".into()),
            ..not_a_group
        };
        let error = table
            .open(
                EndpointId(4),
                "udp://239.192.74.66:5001",
                Some(&no_such_interface),
                &mut Still,
            )
            .unwrap_err();
        assert!(error.to_string().contains("no-such-if0"), "{error}");
    }

    #[test]
    fn every_node_on_a_machine_can_bind_the_group_port() {
        let first = shared_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let second = shared_socket(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
        assert_eq!(second.local_addr().unwrap().port(), port);
    }
}
