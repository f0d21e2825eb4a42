//! Per-request resource limits the host enforces on a guest: linear memory, tables,
//! host-call count. Exceeding one traps with a [`LimitExceeded`] the executor maps
//! to a typed error code.

use std::fmt;

/// A guest went past one of its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Linear memory would grow past the request's limit.
    Memory {
        /// The limit in bytes.
        limit: usize,
    },
    /// A table would grow past its element limit.
    Table {
        /// The limit in elements.
        limit: usize,
    },
    /// Too many host function calls.
    HostCalls {
        /// The limit.
        limit: u32,
    },
    /// Too many log bytes (logging interface plus stdout/stderr).
    LogBytes {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Memory { limit } => {
                write!(f, "linear memory limit of {} MiB exceeded", limit >> 20)
            }
            LimitExceeded::Table { limit } => write!(f, "table limit of {limit} elements exceeded"),
            LimitExceeded::HostCalls { limit } => {
                write!(f, "host call limit of {limit} calls exceeded")
            }
            LimitExceeded::LogBytes { limit } => write!(f, "log limit of {limit} bytes exceeded"),
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// The `ResourceLimiter` of a request's store; it also records the peak memory.
#[derive(Debug)]
pub struct GuestLimiter {
    memory_limit: usize,
    table_limit: usize,
    /// Largest total of linear memory seen, in bytes.
    pub peak_memory: usize,
    total_memory: usize,
}

impl GuestLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory in all.
    pub fn new(memory_limit: usize) -> Self {
        GuestLimiter {
            memory_limit,
            table_limit: 100_000,
            peak_memory: 0,
            total_memory: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The limit covers all memories of the component together.
        let total = self.total_memory - current.min(self.total_memory) + desired;
        if total > self.memory_limit {
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                limit: self.memory_limit,
            }));
        }
        self.total_memory = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_limit {
            return Err(wasmtime::Error::new(LimitExceeded::Table {
                limit: self.table_limit,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// Counts host function calls against the request's budget.
#[derive(Debug)]
pub struct HostCallBudget {
    used: u32,
    limit: u32,
}

impl HostCallBudget {
    /// A budget of `limit` calls.
    pub fn new(limit: u32) -> Self {
        HostCallBudget { used: 0, limit }
    }

    /// Charges one call; past the budget the guest traps.
    pub fn charge(&mut self) -> wasmtime::Result<()> {
        self.used += 1;
        if self.used > self.limit {
            return Err(wasmtime::Error::new(LimitExceeded::HostCalls {
                limit: self.limit,
            }));
        }
        Ok(())
    }

    /// Calls made so far.
    pub fn used(&self) -> u32 {
        self.used
    }
}
