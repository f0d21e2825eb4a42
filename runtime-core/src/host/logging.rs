//! `alga:extension/logging`, and the log buffer that guest stdout/stderr share with it.
//!
//! cap:log.emit is always granted; without it the calls would be silent no-ops.
//! All guest log output of a request counts against one byte budget; past it the
//! guest traps with [`LimitExceeded::LogBytes`]. The host's own notes about the
//! guest (refused calls, backend failures) count against the same budget, so a
//! guest cannot make the host buffer unbounded text by provoking refusals: guest
//! strings inside a note are clipped ([`clip`]), and once the budget is spent
//! further notes are dropped (counted, one marker line), never trapped on, so a
//! refusal answers the same whatever the log holds.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::HostState;
use super::bindings::alga::extension::logging;
use super::limits::LimitExceeded;
use crate::capability::Capability;

/// Severity of a guest log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `log-info` and stdout.
    Info,
    /// `log-warn`.
    Warn,
    /// `log-error` and stderr.
    Error,
}

/// One line a guest logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Where it came from: `log`, `stdout` or `stderr`.
    pub source: &'static str,
    /// The text (lossy UTF-8 for stdio).
    pub message: String,
}

/// Longest guest-supplied string (URL, route, error detail) kept inside a host note.
pub const NOTE_FIELD_MAX: usize = 256;

/// Longest host note, whatever its parts (a backstop behind [`clip`]).
pub const NOTE_MAX: usize = 1024;

/// `s` cut to at most `max` bytes on a char boundary, with `…` and the original
/// length appended when it was cut.
pub fn clip_to(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[{} bytes]", &s[..end], s.len()))
}

/// A guest-supplied string clipped for a host note ([`NOTE_FIELD_MAX`] bytes).
pub fn clip(s: &str) -> Cow<'_, str> {
    clip_to(s, NOTE_FIELD_MAX)
}

#[derive(Debug, Default)]
struct Buffer {
    lines: Vec<LogLine>,
    bytes: usize,
    limit: usize,
    /// Host notes dropped because the budget was spent.
    dropped_notes: u64,
}

/// The request's log lines, shared by the logging interface and the stdio pipes.
#[derive(Debug, Clone)]
pub struct LogSink(Arc<Mutex<Buffer>>);

impl LogSink {
    /// A sink holding at most `limit` bytes of messages.
    pub fn new(limit: usize) -> Self {
        LogSink(Arc::new(Mutex::new(Buffer {
            limit,
            ..Buffer::default()
        })))
    }

    /// Appends a line, or reports that the budget is spent.
    pub fn push(
        &self,
        level: LogLevel,
        source: &'static str,
        message: String,
    ) -> Result<(), LimitExceeded> {
        let mut b = self.0.lock().unwrap();
        if b.bytes + message.len() > b.limit {
            return Err(LimitExceeded::LogBytes { limit: b.limit });
        }
        b.bytes += message.len();
        b.lines.push(LogLine {
            level,
            source,
            message,
        });
        Ok(())
    }

    /// Appends a line from the host itself. It counts against the request's log
    /// budget like the guest's own lines; past the budget it is dropped (the first
    /// drop leaves one fixed marker line), because the guest provoked it and a
    /// host note must not be a way around the budget. Callers clip guest strings
    /// with [`clip`]; the whole note is clipped to [`NOTE_MAX`] here as well.
    pub fn note(&self, level: LogLevel, message: String) {
        let message = match clip_to(&message, NOTE_MAX) {
            Cow::Borrowed(_) => message,
            Cow::Owned(clipped) => clipped,
        };
        let mut b = self.0.lock().unwrap();
        if b.bytes + message.len() > b.limit {
            b.dropped_notes += 1;
            if b.dropped_notes == 1 {
                b.lines.push(LogLine {
                    level: LogLevel::Warn,
                    source: "host",
                    message: "log budget spent: further host notes are dropped".into(),
                });
            }
            return;
        }
        b.bytes += message.len();
        b.lines.push(LogLine {
            level,
            source: "host",
            message,
        });
    }

    /// Host notes dropped because the log budget was spent.
    pub fn dropped_notes(&self) -> u64 {
        self.0.lock().unwrap().dropped_notes
    }

    /// The lines logged so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.0.lock().unwrap().lines.clone()
    }

    /// Bytes logged so far.
    pub fn bytes(&self) -> usize {
        self.0.lock().unwrap().bytes
    }

    /// A WASI stdout/stderr stream writing into this sink.
    pub fn stdio(&self, level: LogLevel, source: &'static str) -> StdioPipe {
        StdioPipe {
            sink: self.clone(),
            level,
            source,
        }
    }
}

impl HostState {
    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.budget.charge()?;
        if !self.grants.has(Capability::LogEmit) {
            return Ok(());
        }
        self.logs.push(level, "log", message)?;
        Ok(())
    }
}

impl logging::Host for HostState {
    async fn log_info(&mut self, message: String) -> wasmtime::Result<()> {
        self.log(LogLevel::Info, message)
    }

    async fn log_warn(&mut self, message: String) -> wasmtime::Result<()> {
        self.log(LogLevel::Warn, message)
    }

    async fn log_error(&mut self, message: String) -> wasmtime::Result<()> {
        self.log(LogLevel::Error, message)
    }
}

/// Guest stdout or stderr, captured into the [`LogSink`] one write per line.
#[derive(Debug, Clone)]
pub struct StdioPipe {
    sink: LogSink,
    level: LogLevel,
    source: &'static str,
}

impl IsTerminal for StdioPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StdioPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl StdioPipe {
    fn write_bytes(&self, bytes: &[u8]) -> Result<(), LimitExceeded> {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches('\n');
        if text.is_empty() {
            return Ok(());
        }
        self.sink.push(self.level, self.source, text.to_string())
    }
}

#[async_trait::async_trait]
impl Pollable for StdioPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for StdioPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for StdioPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(
            self.write_bytes(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_a_char_boundary_and_says_so() {
        assert_eq!(clip_to("short", 10), "short");
        // `é` is two bytes: a cut at 3 would split the second one.
        assert_eq!(clip_to("éééé", 3), "é…[8 bytes]");
        assert_eq!(clip_to("abcdef", 3), "abc…[6 bytes]");
        let long = "x".repeat(1 << 20);
        assert!(clip(&long).len() < NOTE_FIELD_MAX + 20);
    }

    #[test]
    fn notes_are_charged_and_dropped_past_the_budget() {
        let sink = LogSink::new(100);
        sink.note(LogLevel::Warn, "a".repeat(60));
        assert_eq!(sink.bytes(), 60);
        sink.note(LogLevel::Warn, "b".repeat(60));
        sink.note(LogLevel::Warn, "c".repeat(60));
        assert_eq!(sink.dropped_notes(), 2);
        let lines = sink.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].message.starts_with("log budget spent"));
        // The guest's own lines find the budget spent by the notes.
        assert!(sink.push(LogLevel::Info, "log", "d".repeat(50)).is_err());
        // A huge note is clipped as a whole.
        let sink = LogSink::new(1 << 20);
        sink.note(LogLevel::Warn, "e".repeat(100_000));
        assert!(sink.bytes() <= NOTE_MAX + 20);
    }
}
