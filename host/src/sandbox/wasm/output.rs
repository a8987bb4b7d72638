//! A guest stdout/stderr that never fails the guest and never grows past its cap.
//!
//! wasmtime-wasi's `MemoryOutputPipe` answers an overflow with EIO, which turns a chatty but
//! correct pipeline into a crash. This stream accepts every write, keeps only the last `cap`
//! bytes (tracebacks live at the end) in the same [`Tail`] the Docker backend uses, and records
//! that it dropped something.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use ks_sandbox_fallback::Tail;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A capped, shared output buffer; clones write to the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedOutput {
    tail: Arc<Mutex<Tail>>,
}

impl CappedOutput {
    pub(crate) fn new(cap: u64) -> Self {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        Self {
            tail: Arc::new(Mutex::new(Tail::new(cap))),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.push(bytes);
    }

    /// The kept tail, decoded lossily, and whether anything was dropped.
    pub(crate) fn finish(&self) -> (String, bool) {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        (tail.text(), tail.truncated())
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_the_cap_everything_is_kept() {
        let out = CappedOutput::new(10);
        out.push(b"hello");
        out.push(b"world");
        assert_eq!(out.finish(), ("helloworld".to_owned(), false));
    }

    #[test]
    fn over_the_cap_the_tail_is_kept_and_flagged() {
        let out = CappedOutput::new(4);
        out.push(b"abc");
        out.push(b"defgh");
        assert_eq!(out.finish(), ("efgh".to_owned(), true));
        out.push(b"i");
        assert_eq!(out.finish(), ("fghi".to_owned(), true));
    }
}
