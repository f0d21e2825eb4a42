//! `alga:extension/logging`, and the log buffer that guest stdout/stderr share with it.
//!
//! cap:log.emit is always granted; without it the calls would be silent no-ops.
//! All guest log output of a request counts against one byte budget; past it the
//! guest traps with [`LimitExceeded::LogBytes`].

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

#[derive(Debug, Default)]
struct Buffer {
    lines: Vec<LogLine>,
    bytes: usize,
    limit: usize,
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

    /// Appends a line from the host itself (it does not count against the budget).
    pub fn note(&self, level: LogLevel, message: String) {
        self.0.lock().unwrap().lines.push(LogLine {
            level,
            source: "host",
            message,
        });
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
