//! `tcpreset-lab mirror`: a SPAN port that tags, for a kernel without 802.1Q support.
//!
//! It reads every frame another interface receives (an `AF_PACKET` socket; the frames the
//! namespace itself sends are skipped, so nothing it writes can come back) and writes a copy to
//! the mirror interface with one VLAN tag (0x8100) or two (QinQ: 0x88a8 outside, 0x8100 inside)
//! inserted after the MAC addresses. It prints `READY` to stderr once both sockets are bound,
//! copies until its stdin closes, then prints one JSON line of counters.
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct MirrorArgs {
    /// Network namespace holding both interfaces (under /run/netns).
    #[arg(long)]
    ns: String,
    /// Interface whose received frames are copied (a bridge is put in promiscuous mode).
    #[arg(long)]
    from: String,
    /// Interface the tagged copies are written to.
    #[arg(long)]
    to: String,
    /// VLAN ids, outermost first: one gives an 802.1Q tag, two give QinQ.
    #[arg(long, value_delimiter = ',', num_args = 1.., required = true)]
    vlan: Vec<u16>,
}

/// How long a read waits before the loop looks at the stop flag again.
const POLL: Duration = Duration::from_millis(50);

/// Copies frames until stdin closes; true if it copied any.
pub fn run(args: MirrorArgs) -> Result<bool> {
    let tags = tags(&args.vlan)?;
    let ns = args.ns.clone();
    let (from, to) = super::in_netns(&ns, move || -> Result<(OwnedFd, OwnedFd)> {
        let from = packet_socket(&args.from, libc::ETH_P_ALL as u16)?;
        ignore_outgoing_and_promisc(&from, &args.from)?;
        set_read_timeout(&from, POLL)?;
        // Protocol 0: this socket sends and never receives.
        let to = packet_socket(&args.to, 0)?;
        Ok((from, to))
    })??;
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        s.store(true, Ordering::Relaxed);
    });
    eprintln!("READY");
    let (mut frames, mut tcp, mut errors) = (0u64, 0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(buf.len() + tags.len());
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = recv_incoming(&from, &mut buf)? else {
            continue;
        };
        if n < 14 {
            continue;
        }
        out.clear();
        out.extend_from_slice(&buf[..12]);
        out.extend_from_slice(&tags);
        out.extend_from_slice(&buf[12..n]);
        // SAFETY: `out` holds `out.len()` initialized bytes; the socket is bound to `to`.
        let rc = unsafe { libc::send(to.as_raw_fd(), out.as_ptr().cast(), out.len(), 0) };
        if rc < 0 {
            errors += 1;
            continue;
        }
        frames += 1;
        if is_tcp(&buf[..n]) {
            tcp += 1;
        }
    }
    println!(
        "{}",
        json!({"frames": frames, "tcp_frames": tcp, "send_errors": errors, "vlans": args.vlan})
    );
    Ok(frames > 0)
}

/// The tag bytes for `vlans`, outermost first.
fn tags(vlans: &[u16]) -> Result<Vec<u8>> {
    let tpids: &[u16] = match vlans.len() {
        1 => &[0x8100],
        2 => &[0x88a8, 0x8100],
        n => bail!("--vlan takes one id (802.1Q) or two (QinQ), not {n}"),
    };
    let mut out = Vec::new();
    for (tpid, vid) in tpids.iter().zip(vlans) {
        if !(1..=4094).contains(vid) {
            bail!("VLAN id {vid} is outside 1-4094");
        }
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
    }
    Ok(out)
}

/// An IPv4 or IPv6 frame (untagged, as the lab's hosts send) carrying TCP.
fn is_tcp(frame: &[u8]) -> bool {
    let (ethertype, v4_protocol, v6_next) =
        (frame.get(12..14), frame.get(14 + 9), frame.get(14 + 6));
    matches!(
        (ethertype, v4_protocol, v6_next),
        (Some([0x08, 0x00]), Some(6), _) | (Some([0x86, 0xdd]), _, Some(6))
    )
}

fn ifindex(name: &str) -> Result<i32> {
    let index =
        nix::net::if_::if_nametoindex(name).with_context(|| format!("if_nametoindex({name})"))?;
    Ok(index as i32)
}

/// A raw `AF_PACKET` socket bound to `iface`, receiving `protocol` (0: nothing).
fn packet_socket(iface: &str, protocol: u16) -> Result<OwnedFd> {
    // Created with protocol 0 so it receives nothing before it is bound to its interface.
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex(iface)?;
    // SAFETY: sa is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("bind to {iface}"));
    }
    Ok(fd)
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T, what: &str) -> Result<()> {
    // SAFETY: value points to a T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).context(what.to_owned());
    }
    Ok(())
}

/// Frames this namespace sends are not delivered to the socket; the interface goes promiscuous.
fn ignore_outgoing_and_promisc(fd: &OwnedFd, iface: &str) -> Result<()> {
    setsockopt(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_IGNORE_OUTGOING,
        &1i32,
        "PACKET_IGNORE_OUTGOING",
    )?;
    // SAFETY: packet_mreq is plain data; all-zero is a valid value.
    let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mreq.mr_ifindex = ifindex(iface)?;
    mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
    setsockopt(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        &mreq,
        "PACKET_ADD_MEMBERSHIP(PACKET_MR_PROMISC)",
    )
}

fn set_read_timeout(fd: &OwnedFd, after: Duration) -> Result<()> {
    let tv = libc::timeval {
        tv_sec: after.as_secs() as libc::time_t,
        tv_usec: after.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")
}

/// One received frame's length, or None on a timeout or a frame the namespace sent itself.
fn recv_incoming(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<usize>> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: buf and sa are valid for the sizes given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut sa as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e).context("recvfrom"),
        };
    }
    if sa.sll_pkttype == libc::PACKET_OUTGOING {
        return Ok(None);
    }
    Ok(Some(n as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_id_is_a_dot1q_tag_two_are_qinq() {
        assert_eq!(tags(&[100]).unwrap(), [0x81, 0x00, 0x00, 100]);
        assert_eq!(
            tags(&[100, 200]).unwrap(),
            [0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 200]
        );
        assert!(tags(&[]).is_err());
        assert!(tags(&[0]).is_err());
        assert!(tags(&[1, 2, 3]).is_err());
    }
}
