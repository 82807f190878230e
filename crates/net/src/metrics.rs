//! Measurement hooks: what tether-net observes (DNS queries and answers, forwards to
//! upstreams, nftables batches) reported to one process-wide [`Observer`].
//!
//! tether-net keeps no metric state of its own and depends on no metrics library: the
//! daemon installs an observer ([`install`]) that turns these calls into Prometheus series
//! (tether-engine's `metrics` module). Without one, every hook is a no-op costing one
//! atomic load.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How a DNS answer was made, for latency buckets that mean something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerSource {
    /// From the registry (or a local error: FORMERR, NOTIMP, BADVERS): no network involved.
    Local,
    /// Relayed from an upstream resolver, or SERVFAIL because none answered.
    Forwarded,
}

impl AnswerSource {
    /// The label value: `local` or `forwarded`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerSource::Local => "local",
            AnswerSource::Forwarded => "forwarded",
        }
    }
}

/// The outcome of one attempt at one upstream resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardResult {
    /// The upstream answered (any rcode but SERVFAIL and REFUSED).
    Answered,
    /// The upstream answered SERVFAIL or REFUSED: the next upstream is tried.
    Rejected,
    /// ICMP port unreachable: nothing listens there.
    Refused,
    /// No reply within the per-attempt timeout.
    Timeout,
    /// No usable socket, or too many queries outstanding at that upstream.
    Unavailable,
    /// Any other socket error.
    Error,
}

impl ForwardResult {
    /// The label value: `answered`, `rejected`, `refused`, `timeout`, `unavailable`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardResult::Answered => "answered",
            ForwardResult::Rejected => "rejected",
            ForwardResult::Refused => "refused",
            ForwardResult::Timeout => "timeout",
            ForwardResult::Unavailable => "unavailable",
            ForwardResult::Error => "error",
        }
    }
}

/// Why the DNS server itself answered SERVFAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServfailReason {
    /// Every upstream failed or rejected the query (or there is none).
    NoUpstream,
    /// Too many forwarded queries in flight on the listener: answered at once.
    Overloaded,
}

impl ServfailReason {
    /// The label value: `no_upstream` or `overloaded`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServfailReason::NoUpstream => "no_upstream",
            ServfailReason::Overloaded => "overloaded",
        }
    }
}

/// The mnemonic of a DNS response code (RFC 1035 4.1.1, RFC 2136, RFC 6891), as used for
/// the `rcode` label: `NOERROR`, `FORMERR`, `SERVFAIL`, `NXDOMAIN`, `NOTIMP`, `REFUSED`,
/// `YXDOMAIN`, `YXRRSET`, `NXRRSET`, `NOTAUTH`, `NOTZONE`, `BADVERS`; `OTHER` for the rest
/// (which keeps the label's values bounded).
pub fn rcode_name(code: u16) -> &'static str {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => "OTHER",
    }
}

/// Receives tether-net's measurements. Every method has a no-op default; implementations
/// must be cheap and must not block (they run on the DNS serving path).
pub trait Observer: Send + Sync {
    /// A DNS message that will be answered arrived (UDP or TCP, any listener).
    fn dns_query(&self) {}
    /// A DNS answer is ready to be sent: its response code (see [`rcode_name`]), how it was
    /// made, and the time from the query's arrival to the answer.
    fn dns_answer(&self, _rcode: u16, _source: AnswerSource, _elapsed: Duration) {}
    /// One attempt at one upstream resolver ended (a forwarded query makes one attempt per
    /// upstream until one answers).
    fn dns_forward(&self, _result: ForwardResult) {}
    /// The server answered SERVFAIL itself.
    fn dns_servfail(&self, _reason: ServfailReason) {}
    /// One nftables batch (JSON or text) was applied (`ok`) or refused, taking `elapsed`.
    fn nft_batch(&self, _elapsed: Duration, _ok: bool) {}
}

static OBSERVER: OnceLock<Arc<dyn Observer>> = OnceLock::new();

/// Installs the process-wide observer. The first installation wins: returns false (and
/// drops `observer`) if one is already installed.
pub fn install(observer: Arc<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Runs `f` with the installed observer, if any.
pub(crate) fn observe(f: impl FnOnce(&dyn Observer)) {
    if let Some(o) = OBSERVER.get() {
        f(o.as_ref());
    }
}

/// Runs `f`, reporting its duration and success to [`Observer::nft_batch`].
pub(crate) fn timed_batch<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let t0 = std::time::Instant::now();
    let r = f();
    let elapsed = t0.elapsed();
    observe(|o| o.nft_batch(elapsed, r.is_ok()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcode_names_are_bounded() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(16), "BADVERS");
        assert_eq!(rcode_name(11), "OTHER");
        assert_eq!(rcode_name(4095), "OTHER");
    }
}
