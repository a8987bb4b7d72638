//! A capped capture of a stream that keeps its tail: the end of a failing script's stderr is
//! where the traceback and the harness's structured error line are.

use std::collections::VecDeque;

/// The last `cap` bytes of a stream, and whether anything before them was dropped.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    bytes: VecDeque<u8>,
    cap: usize,
    truncated: bool,
}

impl Tail {
    /// An empty tail keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            cap,
            truncated: false,
        }
    }

    /// Appends `chunk`, dropping the oldest bytes past the cap.
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = if chunk.len() > self.cap {
            self.truncated = true;
            &chunk[chunk.len() - self.cap..]
        } else {
            chunk
        };
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.cap);
        if overflow > 0 {
            self.truncated = true;
            self.bytes.drain(..overflow);
        }
        self.bytes.extend(chunk);
    }

    /// Whether bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The kept bytes, lossily decoded.
    pub fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut all = Vec::with_capacity(a.len() + b.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        String::from_utf8_lossy(&all).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_says_it_dropped_the_rest() {
        let mut tail = Tail::new(5);
        tail.push(b"abc");
        assert_eq!((tail.text().as_str(), tail.truncated()), ("abc", false));
        tail.push(b"defg");
        assert_eq!((tail.text().as_str(), tail.truncated()), ("cdefg", true));
        tail.push(b"0123456789");
        assert_eq!(tail.text(), "56789");
    }

    #[test]
    fn exactly_the_cap_is_not_truncated() {
        let mut tail = Tail::new(4);
        tail.push(b"ab");
        tail.push(b"cd");
        assert_eq!((tail.text().as_str(), tail.truncated()), ("abcd", false));
    }
}
