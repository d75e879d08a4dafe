//! Injection: raw IP sockets (IPv4 and IPv6, header included) bound to a reset interface.
//!
//! The kernel routes each RST out of the bound interface and resolves the next hop's link
//! address, which is why the reset interface needs an IP address. `IPPROTO_RAW` implies
//! `IP_HDRINCL` for IPv4 and `IPV6_HDRINCL` for IPv6 on Linux, so we write whole IP packets with
//! the spoofed source address.
use crate::health::SendFailure;
use crate::wire::Forged;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A failed syscall, named.
#[derive(Debug, thiserror::Error)]
#[error("{call} on reset interface '{iface}': {source}{hint}")]
pub struct InjectError {
    pub call: &'static str,
    pub iface: String,
    pub source: io::Error,
    hint: &'static str,
}

impl InjectError {
    /// The failure of `call` on `iface`, with the fix when it is a permission problem.
    pub fn new(call: &'static str, iface: &str, source: io::Error) -> Self {
        let hint = if source.kind() == io::ErrorKind::PermissionDenied {
            "; run tcpresetd as root or give it CAP_NET_RAW (setcap cap_net_raw,cap_net_admin+ep)"
        } else {
            ""
        };
        InjectError {
            call,
            iface: iface.to_owned(),
            source,
            hint,
        }
    }

    /// What the failure says about the interface and the socket.
    pub fn failure(&self) -> SendFailure {
        self.source
            .raw_os_error()
            .map_or(SendFailure::Other, SendFailure::of_errno)
    }
}

/// The two raw sockets of one reset interface, opened on first use.
#[derive(Debug)]
struct Sockets {
    iface: String,
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
}

/// Sends RSTs through whichever reset interfaces they name.
#[derive(Debug, Default)]
pub struct Injector {
    ifaces: Vec<Sockets>,
}

impl Injector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the sockets of `iface` now, so permission problems surface at registration.
    pub fn prepare(&mut self, iface: &str) -> Result<(), InjectError> {
        self.socket(iface, false)?;
        self.socket(iface, true).map(|_| ())
    }

    /// Sends `rst` out of `iface`. A socket bound to an interface that is gone is closed, so
    /// the next send opens one on the interface that now has the name.
    pub fn send(&mut self, iface: &str, rst: &Forged) -> Result<(), InjectError> {
        let result = self.send_once(iface, rst);
        if let Err(e) = &result {
            if e.failure() == SendFailure::StaleSocket {
                self.ifaces.retain(|s| s.iface != iface);
            }
        }
        result
    }

    /// Closes every socket; the next send on each interface opens a new one.
    pub fn reopen_all(&mut self) {
        self.ifaces.clear();
    }

    fn send_once(&mut self, iface: &str, rst: &Forged) -> Result<(), InjectError> {
        let mut buf = [0u8; 64];
        let n = rst.emit_ip(&mut buf);
        if n == 0 {
            return Ok(());
        }
        let v6 = rst.dst.is_ipv6();
        let fd = self.socket(iface, v6)?.as_raw_fd();
        let to = socket2::SockAddr::from(std::net::SocketAddr::new(rst.dst, 0));
        // SAFETY: buf holds n initialized bytes and `to` is a valid socket address of its length.
        let rc =
            unsafe { libc::sendto(fd, buf.as_ptr().cast(), n, 0, to.as_ptr().cast(), to.len()) };
        if rc < 0 {
            return Err(InjectError::new(
                "sendto",
                iface,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn socket(&mut self, iface: &str, v6: bool) -> Result<&OwnedFd, InjectError> {
        let i = match self.ifaces.iter().position(|s| s.iface == iface) {
            Some(i) => i,
            None => {
                self.ifaces.push(Sockets {
                    iface: iface.to_owned(),
                    v4: None,
                    v6: None,
                });
                self.ifaces.len() - 1
            }
        };
        let s = &mut self.ifaces[i];
        let slot = if v6 { &mut s.v6 } else { &mut s.v4 };
        if slot.is_none() {
            *slot = Some(open_raw(iface, v6)?);
        }
        Ok(slot.as_ref().expect("opened above"))
    }

    /// Closes the sockets of interfaces no longer named by any rule.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.ifaces.retain(|s| keep(&s.iface));
    }
}

fn open_raw(iface: &str, v6: bool) -> Result<OwnedFd, InjectError> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if fd < 0 {
        return Err(InjectError::new(
            "socket(SOCK_RAW)",
            iface,
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = iface.as_bytes();
    // SAFETY: name points to name.len() valid bytes; the kernel copies at most IFNAMSIZ.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(InjectError::new(
            "setsockopt(SO_BINDTODEVICE)",
            iface,
            io::Error::last_os_error(),
        ));
    }
    Ok(fd)
}
