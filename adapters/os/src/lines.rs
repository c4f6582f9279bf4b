//! Splitting a byte stream (a worker's stderr) into lines, with a bound on line length so a
//! worker printing without newlines cannot grow the node's memory.

/// Longest line kept; longer ones are cut and the rest starts a new line.
pub const MAX_LINE: usize = 4096;

#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Appends bytes; complete lines (without `\n` or `\r\n`) go to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        for &b in bytes {
            if b == b'\n' {
                self.emit(out);
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE {
                    self.emit(out);
                }
            }
        }
    }

    /// The stream ended: a last line without a newline still counts.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.partial.is_empty() {
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut Vec<String>) {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        out.push(String::from_utf8_lossy(&self.partial).into_owned());
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_in_any_chunking_and_bounds_lines() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(b"Trace", &mut out);
        s.push(b"back\r\nline two\nlast", &mut out);
        s.finish(&mut out);
        assert_eq!(out, vec!["Traceback", "line two", "last"]);
        out.clear();
        s.push(&vec![b'x'; MAX_LINE + 10], &mut out);
        s.finish(&mut out);
        assert_eq!(
            out.iter().map(String::len).collect::<Vec<_>>(),
            vec![MAX_LINE, 10]
        );
    }
}
