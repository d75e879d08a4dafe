//! A read-only memory map of one window of a regular file, for [`super::savefile`].
//!
//! Reading a capture through `read(2)` copies every byte from the page cache into a buffer;
//! mapping the page cache instead costs one page-table setup per window (`MAP_POPULATE`) and
//! no copy. Windows stay small (a few MiB) so the mapped pages counted in the resident set
//! stay bounded however large the file is.
//!
//! A file cut short by another process while it is mapped would raise SIGBUS on access; the
//! length is therefore read again before every window, which narrows that to a race with a
//! concurrent truncation (the same caveat as every tool that maps its input).
use std::fs::File;
use std::os::fd::AsRawFd;

/// A mapped, read-only range of a file.
#[derive(Debug)]
pub struct Window {
    ptr: *const u8,
    len: usize,
    /// File offset of the first mapped byte (a multiple of the page size).
    offset: u64,
}

/// The page size, to which a window's offset must be aligned.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

impl Window {
    /// An empty window at offset 0.
    pub fn empty() -> Window {
        Window {
            ptr: std::ptr::null(),
            len: 0,
            offset: 0,
        }
    }

    /// Maps `len` bytes of `file` from `offset`, which must be page-aligned and, with `len`,
    /// lie within the file.
    pub fn map(file: &File, offset: u64, len: usize) -> std::io::Result<Window> {
        if len == 0 {
            return Ok(Window {
                offset,
                ..Window::empty()
            });
        }
        let file_offset = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::other("file offset out of range"))?;
        // SAFETY: a fresh private read-only mapping of a file we hold open; the kernel checks
        // the arguments and we check the result before using it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                file_offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Window {
            ptr: ptr.cast_const().cast(),
            len,
            offset,
        })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes until `self` is dropped, and the mapping is
        // private and read-only, so nothing in this process writes it.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: exactly the range `map` created; no slice of it outlives `self`.
            unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
        }
    }
}

/// All the bytes of a file: mapped when it is a regular file, read when it is not (a pipe).
#[derive(Debug)]
pub enum Contents {
    Mapped(Window),
    Read(Vec<u8>),
}

impl Contents {
    pub fn of(path: &std::path::Path) -> std::io::Result<Contents> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_file() {
            let len = usize::try_from(meta.len())
                .map_err(|_| std::io::Error::other("file too large to map"))?;
            return Ok(Contents::Mapped(Window::map(&file, 0, len)?));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok(Contents::Read(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Contents::Mapped(w) => w.bytes(),
            Contents::Read(v) => v,
        }
    }
}
