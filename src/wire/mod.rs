//! Packets on the wire: zero-copy views, the parsed [`Segment`] summary and the RST builder.
//!
//! Each protocol has its own file with a view `Packet<T: AsRef<[u8]>>` entered through
//! `new_checked` (untrusted input) or `new_unchecked` (a buffer sized by the caller), field
//! offsets in a private `mod field`, and unit tests on real bytes; [`view!`] declares the view and
//! its two ways in, so a file holds only what its protocol checks and reads. Malformed input is ordinary
//! traffic on a SPAN port, so [`Error`] is tiny and cheap to return.
/// Declares a view `$name<T: AsRef<[u8]>>` over a buffer, with `new_unchecked` and
/// `with_header`, the start of every `new_checked`: the buffer holds at least `len` bytes.
macro_rules! view {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            pub fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// The view, if `buffer` holds at least `len` bytes.
            fn with_header(buffer: T, len: usize) -> $crate::wire::Result<Self> {
                if buffer.as_ref().len() < len {
                    return Err($crate::wire::Error::Truncated);
                }
                Ok($name { buffer })
            }
        }
    };
}

mod bytes;
mod checksum;
pub mod ethernet;
mod forge;
pub mod ipv4;
pub mod ipv6;
mod link;
mod segment;
pub mod tcp;

pub use forge::{Forged, Kind, RST_V4_LEN, RST_V6_LEN};
pub use link::{strip_link, Link, LinkType, L2};
pub use segment::Segment;
pub use tcp::Flags;

/// Why a frame was not turned into a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before a header it announces.
    #[error("truncated packet")]
    Truncated,
    /// A header field is impossible (bad version, lengths that do not add up).
    #[error("malformed packet")]
    Malformed,
    /// Valid, but nothing we act on (not IP, not TCP, a non-first fragment, an unknown link type).
    #[error("not a TCP segment we handle")]
    Unsupported,
}

pub type Result<T> = core::result::Result<T, Error>;
